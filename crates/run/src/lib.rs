//! The run: everything about one experiment and its folder. A [`config::ExperimentConfig`]
//! (layered from TOML, `S2S_` variables and `--set`) is trained in a [`RunDir`] by
//! [`session::start`] / [`session::resume`]: the translation [`task`] drives the trainer,
//! [`checkpoint`]s are written and verified, and observers keep `metrics.csv` and the
//! [`report`]. A trained run is opened with [`OpenedRun`] to translate, [`eval`]uated,
//! summarised ([`summary`]) and compared ([`compare`]). Views kept outside the run's own
//! files (TensorBoard's, in `s2s-tensorboard`) plug in through [`view`]; sweeps live in
//! `s2s-sweep`. A program that embeds this crate sets `RAYON_NUM_THREADS=1` and
//! `CANDLE_NUM_THREADS=1` before it starts a thread, as the `s2s` binary does
//! (`run.threads` splits the work; see `examples/translate.rs`).
//!
//! ```no_run
//! let run = s2s_run::OpenedRun::open("experiments/base-20261201-120000".as_ref(), &s2s_run::Which::Best)?;
//! let out = run.translate(&["je suis froid .".to_string()])?;
//! println!("{}", out[0].text);
//! # Ok::<(), s2s_run::RunError>(())
//! ```

pub mod average;
pub mod checkpoint;
pub mod clock;
pub mod compare;
pub mod config;
pub mod device;
pub mod error;
pub mod eval;
pub mod export;
pub mod memory;
pub mod metrics_csv;
pub mod opened;
pub mod report;
pub mod roots;
pub mod run_dir;
pub mod run_info;
pub mod scoring;
pub mod session;
pub mod steps_csv;
pub mod summary;
pub mod task;
pub mod tokenizer;
pub mod translator;
pub mod view;

pub use checkpoint::Which;
pub use config::ExperimentConfig;
pub use error::{ConfigError, Result, RunError};
pub use opened::OpenedRun;
pub use run_dir::RunDir;
pub use run_info::RunInfo;
pub use session::{Finished, Outcome, SessionHooks};
pub use summary::{find_runs, RunSummary};
pub use translator::Translation;
