//! `s2s`: train, inspect and compare attention-based seq2seq models.

// The commands' doc comments (args.rs) are clap's help text, read in a terminal: `eval-<split>.json`
// there is a file name, not an HTML tag.
#![allow(rustdoc::invalid_html_tags)]

use std::process::ExitCode;

use clap::Parser;

mod args;
mod bench;
mod commands;
mod output;
mod progress;
mod signal;
mod tables;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (the same index in its v2 and v3 headers).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Training frees and reallocates the same large tensors every step (8,000-entry output
/// layers and their gradients); by default mimalloc hands freed memory back to the OS after
/// 10 ms, so every step paid for page faults and the kernel's zeroing again: 14 % of a
/// Multi30k epoch (BENCHMARKS.md). Never purging keeps the process at its peak size, which
/// it reaches in the first steps anyway.
#[allow(unsafe_code)]
fn keep_freed_memory() {
    // SAFETY: mi_option_set stores one integer option; it takes no pointers, and mimalloc
    // reads its options atomically, so calling it while other threads allocate is sound.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) }
}

/// candle's CPU kernels read these at each product: they stay on one thread each, since
/// s2s splits a batch's rows between its own threads (`run.threads`), where splitting
/// these small products cost more than it gained (see BENCHMARKS.md). Set here, once,
/// before any thread starts; the libraries never set the environment.
fn one_thread_per_kernel() {
    std::env::set_var("RAYON_NUM_THREADS", "1");
    std::env::set_var("CANDLE_NUM_THREADS", "1");
}

fn main() -> ExitCode {
    one_thread_per_kernel();
    keep_freed_memory();
    let cli = args::Cli::parse();
    match commands::execute(cli.command) {
        Ok(code) => code,
        // The reader of our output has gone (`s2s list | head -n 1`): nothing more to say.
        Err(e) if output::is_closed_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            // The error and its causes on one line, by anyhow's own chain formatting.
            let msg = format!("{e:#}").replace('\n', " ");
            eprintln!("error: {msg}");
            ExitCode::from(2)
        }
    }
}
