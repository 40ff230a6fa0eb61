//! Ctrl-C and SIGTERM: the first asks the session to stop after the current step with a
//! checkpoint (exit 130); the second quits at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};

static STOP: LazyLock<Arc<AtomicBool>> = LazyLock::new(|| Arc::new(AtomicBool::new(false)));

/// Installs the handler and returns the flag it sets, for the session to watch.
pub fn stop_flag() -> Arc<AtomicBool> {
    let installed = ctrlc::set_handler(|| {
        if STOP.swap(true, Ordering::SeqCst) {
            eprintln!("\nstopping now");
            std::process::exit(130);
        }
        eprintln!("\nstopping after this step to write a checkpoint (Ctrl-C again to quit at once)");
    });
    if let Err(e) = installed {
        eprintln!("warning: Ctrl-C will stop at once, without a checkpoint: {e}");
    }
    STOP.clone()
}
