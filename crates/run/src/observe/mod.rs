//! Observers a training session attaches to the trainer: the metrics file, the report
//! and TensorBoard's event files.

pub mod metrics_csv;
mod report;
pub mod tensorboard;

pub use metrics_csv::MetricsCsv;
pub use report::ReportObserver;
pub use tensorboard::TensorBoardObserver;
