//! Standard output for commands: every line is written with [`outln!`], which returns the
//! write's error instead of panicking. A closed pipe (`s2s list | head -n 1`) is such an
//! error: `main` ends the command quietly on it, as ripgrep does, and a training
//! session's lines ([`say`]) stop being printed while the training goes on.

use std::io::Write;

/// `println!` that returns the `std::io::Result` of the write.
macro_rules! outln {
    () => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock())
    }};
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)
    }};
}
pub(crate) use outln;

/// Whether `e` comes from writing to a pipe whose reader has gone.
pub fn is_closed_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe))
}

/// Prints a line of a training session: after the reader of a pipe has gone, the lines
/// are dropped and the training goes on; any other failure to write is told on stderr.
pub fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{line}") {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("warning: cannot write to standard output: {e}");
        }
    }
}
