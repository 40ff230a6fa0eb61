//! `s2s`: train, inspect and compare attention-based seq2seq models.

// The commands' doc comments are clap's help text, read in a terminal: `eval-<split>.json`
// there is a file name, not an HTML tag.
#![allow(rustdoc::invalid_html_tags)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bench;
mod commands;
mod output;
mod progress;
mod signal;
mod tables;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(name = "s2s", version, about = "Train, inspect and compare attention-based seq2seq models")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Train a model from an experiment config and write a run folder under experiments/.
    Run {
        /// The experiment config (TOML), e.g. configs/base.toml.
        config: PathBuf,
        /// Override a config value, e.g. --set train.learning_rate=0.001 (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
    },
    /// Continue a run from its newest good checkpoint, in the same folder.
    Resume {
        /// The run folder.
        run: PathBuf,
        /// Train until this many epochs in all.
        #[arg(long)]
        epochs: Option<usize>,
        /// Change a setting that does not alter the model (epochs, patience, checkpoint or
        /// validation frequency, report settings, threads, device).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
    },
    /// Score a trained run: loss, perplexity, BLEU, chrF, exact match (saved as eval-<split>.json).
    Eval {
        /// The run folder.
        run: PathBuf,
        /// Which split of the run's data: valid, test or train.
        #[arg(long, default_value = "valid")]
        split: String,
        /// Evaluate on this TSV file instead (normalized as the run's data).
        #[arg(long, value_name = "PATH")]
        data: Option<PathBuf>,
        /// Which checkpoint: best, last, average (see `s2s average`), or a checkpoint folder.
        #[arg(long, default_value = "best")]
        checkpoint: String,
        /// Beam width (1 = greedy; default: the run's model.beam_size).
        #[arg(long)]
        beam: Option<usize>,
        /// Beam search length penalty (default: the run's model.length_penalty).
        #[arg(long)]
        length_penalty: Option<f64>,
        /// Print the figures as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Translate sentences with a trained run (reads lines from stdin when no TEXT is given).
    Translate {
        /// The run folder, e.g. experiments/base-20261126-120000.
        run: PathBuf,
        /// Sentences to translate.
        text: Vec<String>,
        /// Which checkpoint: best, last, average (see `s2s average`), or a checkpoint folder.
        #[arg(long, default_value = "best")]
        checkpoint: String,
        /// Beam width (1 = greedy; default: the run's model.beam_size).
        #[arg(long)]
        beam: Option<usize>,
        /// Print the N best translations with their log-probabilities.
        #[arg(long, default_value_t = 1)]
        n_best: usize,
        /// Write the (first) translation's attention heatmap to this SVG file (a
        /// Transformer's also gets FILE.heads.svg, its layer × head grid).
        #[arg(long, value_name = "FILE.svg")]
        heatmap: Option<PathBuf>,
        /// Transformer: draw this decoder layer's cross-attention (0-based; default: the
        /// last), averaged over its heads unless --head is given.
        #[arg(long, requires = "heatmap")]
        layer: Option<usize>,
        /// Transformer: draw this head of the layer (0-based).
        #[arg(long, requires = "heatmap")]
        head: Option<usize>,
    },
    /// Average the model weights of a run's newest checkpoints into checkpoints/average/
    /// (then: eval or translate with --checkpoint average).
    Average {
        /// The run folder.
        run: PathBuf,
        /// How many of the newest numbered checkpoints to average.
        #[arg(long, default_value_t = 5)]
        last: usize,
    },
    /// One line per run: name, status, epochs, best validation metric, age.
    List {
        /// Folder holding run folders.
        #[arg(default_value = "experiments")]
        dir: PathBuf,
    },
    /// Compare runs: differing config keys, key results, and a comparison folder with
    /// overlaid loss curves and side-by-side attention heatmaps.
    Compare {
        /// Run folders (default: every run under --dir).
        runs: Vec<PathBuf>,
        /// Show every config key, not only those that differ.
        #[arg(long)]
        all_keys: bool,
        /// Sort by a result column, e.g. best_valid_bleu.
        #[arg(long, value_name = "METRIC")]
        sort: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Print CSV instead of a table.
        #[arg(long, conflicts_with = "json")]
        csv: bool,
        /// Comparison folder (default: experiments/compare-<timestamp>/).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Where to find runs when none are named.
        #[arg(long, default_value = "experiments")]
        dir: PathBuf,
    },
    /// Rewrite a run's report.html from its folder.
    Report { run: PathBuf },
    /// Train one run per point of a grid (or of a sweep file) here or on Slurm, in a sweep
    /// folder; `s2s sweep status|cancel|resubmit DIR` manage it.
    #[command(args_conflicts_with_subcommands = true)]
    Sweep {
        #[command(subcommand)]
        action: Option<SweepAction>,
        /// An experiment config with --grid, or a sweep file (configs/sweeps/*.toml).
        config: Option<PathBuf>,
        /// key=v1,v2,... (repeatable; the grid is every combination).
        #[arg(long = "grid", value_name = "KEY=V1,V2")]
        grids: Vec<String>,
        /// Fixed overrides for every run.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
        /// Runs trained at the same time (separate processes; launcher local; default 1).
        #[arg(long)]
        jobs: Option<usize>,
        /// Where the points train: local (default) or slurm (one array job).
        #[arg(long)]
        launcher: Option<String>,
        /// A [sweep.slurm] setting, e.g. --slurm partition=gpu --slurm time=2:00:00 (repeatable).
        #[arg(long = "slurm", value_name = "KEY=VALUE")]
        slurm: Vec<String>,
        /// Write the sweep folder (points.json, job.sbatch) but train or submit nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Measure training and decoding speed for scripts/bench.py (prints JSON).
    #[command(hide = true)]
    Bench {
        #[arg(long)]
        train: PathBuf,
        #[arg(long, default_value_t = 256)]
        hidden: usize,
        #[arg(long, default_value_t = 64)]
        batch: usize,
        #[arg(long, default_value_t = 100)]
        steps: usize,
        /// Use s2s's length bucketing instead of torch_ref.py's batches.
        #[arg(long)]
        bucketing: bool,
        #[arg(long, default_value_t = 1000)]
        infer_sentences: usize,
        /// Batch sizes to time greedy decoding at.
        #[arg(long, value_delimiter = ',', default_value = "64,1")]
        decode_batches: Vec<usize>,
        /// Threads for training and decoding (0 = all cores), as `run.threads`.
        #[arg(long, default_value_t = 0)]
        threads: usize,
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Learn subword tokenizers ahead of runs (`s2s tokenizer train CONFIG`).
    Tokenizer {
        #[command(subcommand)]
        action: TokenizerAction,
    },
    /// Load a config's data into one epoch's batches and time it (prints JSON).
    #[command(hide = true)]
    BenchData {
        config: PathBuf,
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
    },
    /// Print the fully resolved config (defaults < file < S2S_ env < --set) without training.
    Config {
        config: PathBuf,
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
enum SweepAction {
    /// One line per point: Slurm state, run status, epochs, best metric, error line.
    Status {
        /// The sweep folder (experiments/sweep-<name>-<timestamp>).
        dir: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Cancel the sweep's Slurm jobs (running points stop with a checkpoint).
    Cancel { dir: PathBuf },
    /// Submit again the points that failed or were cancelled (they resume from their
    /// checkpoints).
    Resubmit { dir: PathBuf },
    /// Train one point of a sweep folder (what each array task runs).
    #[command(hide = true)]
    Point { dir: PathBuf, index: usize },
}

#[derive(Debug, Subcommand)]
enum TokenizerAction {
    /// Learn the BPE tokenizer a config's runs would learn, on its train split; point runs
    /// at it with --set data.tokenizer_path=PATH.
    Train {
        /// The experiment config (with data.tokenizer = "bpe").
        config: PathBuf,
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
        /// Where to write it: a tokenizer.json file for a joint vocabulary, else a folder of
        /// source.json and target.json (default: tokenizers/<config name>[.json]).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

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
    let cli = Cli::parse();
    let outcome = |r: anyhow::Result<s2s_run::Outcome>| {
        r.map(|o| match o {
            s2s_run::Outcome::Completed(_) => ExitCode::SUCCESS,
            s2s_run::Outcome::Interrupted(_) => ExitCode::from(130),
        })
    };
    let result = match cli.command {
        Command::Run { config, sets } => outcome(commands::run::execute(&config, &sets)),
        Command::Resume { run, epochs, sets } => outcome(commands::resume::execute(&run, epochs, &sets)),
        Command::Eval { run, split, data, checkpoint, beam, length_penalty, json } => {
            let data = data.map_or(s2s_run::eval::EvalData::Split(split), s2s_run::eval::EvalData::File);
            let decoding = s2s_run::opened::DecodingChoice { beam_size: beam, length_penalty };
            commands::eval::execute(&run, &data, &checkpoint, &decoding, json).map(|_| ExitCode::SUCCESS)
        }
        Command::Average { run, last } => commands::average::execute(&run, last).map(|()| ExitCode::SUCCESS),
        Command::List { dir } => commands::list::execute(&dir).map(|()| ExitCode::SUCCESS),
        Command::Compare { runs, all_keys, sort, json, csv, out, dir } => {
            commands::compare::execute(&runs, &commands::compare::Options { all_keys, sort, json, csv, out, dir })
                .map(|_| ExitCode::SUCCESS)
        }
        Command::Report { run } => commands::report::execute(&run).map(|()| ExitCode::SUCCESS),
        Command::Sweep { action: Some(action), .. } => match action {
            SweepAction::Status { dir, json } => commands::sweep::status(&dir, json).map(|()| ExitCode::SUCCESS),
            SweepAction::Cancel { dir } => commands::sweep::cancel(&dir).map(|()| ExitCode::SUCCESS),
            SweepAction::Resubmit { dir } => commands::sweep::resubmit(&dir).map(|()| ExitCode::SUCCESS),
            SweepAction::Point { dir, index } => commands::sweep::point(&dir, index),
        },
        Command::Sweep { action: None, config: None, .. } => {
            Err(anyhow::anyhow!("give a config with --grid, a sweep file, or status|cancel|resubmit DIR"))
        }
        Command::Sweep { action: None, config: Some(config), grids, sets, jobs, launcher, slurm, dry_run } => {
            let args = s2s_sweep::SweepArgs { grids, sets, launcher, jobs, slurm };
            commands::sweep::execute(&config, &commands::sweep::LaunchOptions { args, dry_run })
                .map(|()| ExitCode::SUCCESS)
        }
        Command::Bench { train, hidden, batch, steps, bucketing, infer_sentences, decode_batches, threads, seed } => {
            commands::bench::execute(&crate::bench::BenchOptions {
                train,
                hidden,
                batch,
                steps,
                bucketing,
                infer_sentences,
                decode_batches,
                threads,
                seed,
            })
            .map(|()| ExitCode::SUCCESS)
        }
        Command::Tokenizer { action: TokenizerAction::Train { config, sets, out } } => {
            commands::tokenizer::train(&config, &sets, out.as_deref()).map(|()| ExitCode::SUCCESS)
        }
        Command::BenchData { config, sets } => commands::bench::data(&config, &sets).map(|()| ExitCode::SUCCESS),
        Command::Config { config, sets } => commands::config::execute(&config, &sets).map(|()| ExitCode::SUCCESS),
        Command::Translate { run, text, checkpoint, beam, n_best, heatmap, layer, head } => {
            commands::translate::execute(
                &run,
                &text,
                &commands::translate::Options { checkpoint, beam, n_best, heatmap, layer, head },
            )
            .map(|()| ExitCode::SUCCESS)
        }
    };
    match result {
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
