//! Observers a training session attaches to the trainer: the metrics file and the report.

pub mod metrics_csv;
mod report;

pub use metrics_csv::MetricsCsv;
pub use report::ReportObserver;
