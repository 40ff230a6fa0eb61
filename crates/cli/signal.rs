//! Ctrl-C, SIGTERM and SIGUSR2: the first asks the session to stop after the current step
//! with a checkpoint (exit 130); a second Ctrl-C or SIGTERM quits at once. SIGUSR2 is what
//! Slurm sends ahead of a time limit (`--signal=B:USR2@N`); it only ever asks to stop, so
//! the SIGTERM that follows it on a cluster does not cut the checkpoint short.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};

static STOP: LazyLock<Arc<AtomicBool>> = LazyLock::new(|| Arc::new(AtomicBool::new(false)));
static INTERRUPTS: AtomicUsize = AtomicUsize::new(0);

/// Installs the handlers and returns the flag they set, for the session to watch.
pub fn stop_flag() -> Arc<AtomicBool> {
    let installed = ctrlc::set_handler(|| {
        if INTERRUPTS.fetch_add(1, Ordering::SeqCst) > 0 {
            eprintln!("\nstopping now");
            std::process::exit(130);
        }
        STOP.store(true, Ordering::SeqCst);
        eprintln!("\nstopping after this step to write a checkpoint (Ctrl-C again to quit at once)");
    });
    if let Err(e) = installed {
        eprintln!("warning: Ctrl-C will stop at once, without a checkpoint: {e}");
    }
    if let Err(e) = signal_hook::flag::register(signal_hook::consts::SIGUSR2, STOP.clone()) {
        eprintln!("warning: SIGUSR2 will stop at once, without a checkpoint: {e}");
    }
    STOP.clone()
}
