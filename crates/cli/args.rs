//! The command line: `s2s`'s subcommands and their options (clap's derive; the doc
//! comments are the help text).

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "s2s",
    version,
    about = "Train, inspect and compare attention-based seq2seq models",
    after_help = "Examples:
  s2s run configs/base.toml                    train the notebook's GRU + attention (seconds)
  s2s run configs/base.toml --set train.epochs=50 --set model.hidden_size=64
  s2s translate latest \"i am a student\" --heatmap -
  s2s compare                                  every run under experiments/, side by side
  s2s resume latest --epochs 800               continue the newest run

Each run writes experiments/<name>-<timestamp>/; open its report.html.
Reference: docs/commands.md, docs/config.md, docs/run-folder.md"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
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
        /// The run: its folder, `latest` (the newest in experiments/), or a unique prefix of
        /// its name in experiments/ (e.g. `base`).
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
        /// The run: its folder, `latest` (the newest in experiments/), or a unique prefix of
        /// its name in experiments/ (e.g. `base`).
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
        /// The run: its folder, `latest` (the newest in experiments/), or a unique prefix of
        /// its name in experiments/ (e.g. `base`).
        run: PathBuf,
        /// Sentences to translate.
        text: Vec<String>,
        /// Which checkpoint: best, last, average (see `s2s average`), or a checkpoint folder.
        #[arg(long, default_value = "best")]
        checkpoint: String,
        /// Beam width (1 = greedy; default: the run's model.beam_size).
        #[arg(long)]
        beam: Option<usize>,
        /// Print the N best translations with their log-probabilities (at most --beam; without
        /// --beam the run's beam is widened to N).
        #[arg(long, default_value_t = 1)]
        n_best: usize,
        /// Draw the (best) translation's attention: `-` prints it on the terminal in
        /// Unicode shades, FILE.svg writes an SVG heatmap (a Transformer's also gets
        /// FILE.heads.svg, its layer × head grid). With several sentences (arguments or
        /// lines of standard input), sentence N goes to FILE-N.svg.
        #[arg(long, value_name = "FILE.svg|-")]
        heatmap: Option<PathBuf>,
        /// Transformer: draw this decoder layer's cross-attention (0-based; default: the
        /// last), averaged over its heads unless --head is given.
        #[arg(long, requires = "heatmap")]
        layer: Option<usize>,
        /// Transformer: draw this head of the layer (0-based).
        #[arg(long, requires = "heatmap")]
        head: Option<usize>,
        /// Sentences decoded together: arguments, and lines piped or redirected into standard
        /// input, are read N at a time and each group is decoded as one batch (a terminal's
        /// lines are translated one by one as they are typed).
        #[arg(long, default_value_t = 32, value_name = "N")]
        batch_size: usize,
    },
    /// Write a run's checkpoint for an inference engine: `s2s export RUN --to ctranslate2 OUT`
    /// (Transformer runs; see docs/export.md).
    Export {
        /// The run: its folder, `latest` (the newest in experiments/), or a unique prefix of
        /// its name in experiments/ (e.g. `base`).
        run: PathBuf,
        /// The engine: ctranslate2.
        #[arg(long, value_enum)]
        to: ExportEngine,
        /// The folder to write (absent or empty).
        out: PathBuf,
        /// Which checkpoint: best, last, average (see `s2s average`), step-N, or a checkpoint
        /// folder.
        #[arg(long, default_value = "best")]
        checkpoint: String,
        /// The Python that has the ctranslate2 package (its spec API writes the model).
        #[arg(long, default_value = "python3")]
        python: PathBuf,
    },
    /// Average the model weights of a run's newest checkpoints into checkpoints/average/
    /// (then: eval or translate with --checkpoint average).
    Average {
        /// The run: its folder, `latest` (the newest in experiments/), or a unique prefix of
        /// its name in experiments/ (e.g. `base`).
        run: PathBuf,
        /// How many of the newest numbered checkpoints to average.
        #[arg(long, default_value_t = 5)]
        last: usize,
    },
    /// A local web app over run folders (read-only): the runs, a run's live curves, and an
    /// explorer that translates typed sentences and shows their attention (by layer and
    /// head for a Transformer), two runs side by side; plus the JSON API it uses.
    Serve {
        /// Folders of runs, or run folders (experiments/ when none is given).
        #[arg(default_value = "experiments")]
        dirs: Vec<PathBuf>,
        /// Address to bind; anything but loopback exposes the runs to the network (warned).
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// Port to listen on (0: any free port).
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// MiB of model weights kept open between requests (the least recently used run
        /// is closed past it; one is always kept).
        #[arg(long, default_value_t = 2048)]
        cache_mib: u64,
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
    Report {
        /// The run: its folder, `latest` (the newest in experiments/), or a unique prefix of
        /// its name in experiments/ (e.g. `base`).
        run: PathBuf,
    },
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
        /// Runs trained at the same time, as separate processes (launcher local)
        /// [default: the sweep file's `jobs`, else 1].
        #[arg(long, value_name = "N")]
        jobs: Option<usize>,
        /// Where the points train: local, or slurm (one array job) [default: the sweep
        /// file's `launcher`, else local].
        #[arg(long, value_name = "local|slurm")]
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
    Bench(crate::bench::BenchOptions),
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
        /// The experiment config (TOML), e.g. configs/base.toml.
        config: PathBuf,
        /// Override a config value, e.g. --set train.learning_rate=0.001 (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
    },
}

/// An inference engine `s2s export` writes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportEngine {
    /// CTranslate2 (OpenNMT's engine): `ctranslate2.Translator(OUT)`.
    #[value(name = "ctranslate2")]
    CTranslate2,
}

#[derive(Debug, Subcommand)]
pub enum SweepAction {
    /// One line per point: Slurm state, run status, epochs, best metric, error line.
    Status {
        /// The sweep folder (experiments/sweep-<name>-<timestamp>).
        dir: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Cancel the sweep's Slurm jobs (running points stop with a checkpoint).
    Cancel {
        /// The sweep folder (experiments/sweep-<name>-<timestamp>).
        dir: PathBuf,
    },
    /// Submit again the points that failed or were cancelled (they resume from their
    /// checkpoints).
    Resubmit {
        /// The sweep folder (experiments/sweep-<name>-<timestamp>).
        dir: PathBuf,
    },
    /// Train one point of a sweep folder (what each array task runs).
    #[command(hide = true)]
    Point { dir: PathBuf, index: usize },
}

#[derive(Debug, Subcommand)]
pub enum TokenizerAction {
    /// Learn the BPE tokenizer a config's runs would learn, on its train split; point runs
    /// at it with --set data.tokenizer_path=PATH.
    Train {
        /// The experiment config (with data.tokenizer = "bpe").
        config: PathBuf,
        /// Override a config value, e.g. --set data.max_vocab_size=4000 (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
        /// Where to write it: a tokenizer.json file for a joint vocabulary, else a folder of
        /// source.json and target.json (default: tokenizers/<config name>[.json]).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Every argument a user can see says what it is (`--help` shows no bare `<DIR>`).
    #[test]
    fn every_visible_argument_has_help() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if arg.is_hide_set() || id == "help" || id == "version" {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set() && s.get_name() != "help") {
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&super::Cli::command(), "s2s", &mut missing);
        assert!(missing.is_empty(), "arguments without help: {missing:?}");
    }
}
