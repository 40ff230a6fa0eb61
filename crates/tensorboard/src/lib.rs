//! TensorBoard event files, written by an observer into `RUN/tensorboard/` (one file per
//! session), so that `tensorboard --logdir experiments` shows every run under its name:
//!
//! - scalars: `train/loss`, `train/learning_rate`, `train/grad_norm` per step;
//!   `train/loss_epoch` and `train/tokens_per_s` per epoch; `valid/loss|ppl|bleu|chrf` at
//!   each validation; `final/...` and `best/...` when a session completes;
//! - text: the resolved config at step 0, the report sentences' translations;
//! - images: each report sentence's attention heatmap as PNG;
//! - hparams: the `report.hparams` keys (a sweep's grid keys) for the HPARAMS tab.
//!
//! Translations and heatmaps are logged at each validation (at each end-of-epoch
//! checkpoint when the run never validates). A resumed session starts its file with
//! `SessionLog.START` at its first step, which TensorBoard's Python reader takes as "drop
//! what earlier files wrote from this step on"; its Rust data server drops a tag's later
//! points when the tag is logged again at an earlier step, which the resumed session does
//! for every tag. Either way, after a crash each step's value appears once.
//!
//! [`TensorBoard`] is what a session is given to start it (see [`s2s_run::view`]); the
//! event file's records, protobuf messages and images are this crate's own.

mod observer;
mod proto;
mod raster;
mod record;
mod summary;

pub use observer::{TensorBoard, TensorBoardObserver};
pub use raster::svg_to_png;
