//! What can go wrong with a run, each carrying the file, key or value at fault.

use std::path::{Path, PathBuf};

use crate::device::DeviceError;

/// A config problem, already phrased for the user (one line naming the key).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Device(#[from] DeviceError),
    #[error(transparent)]
    Data(#[from] s2s_data::DataError),
    #[error(transparent)]
    Model(#[from] s2s_model::ModelError),
    #[error(transparent)]
    Train(#[from] s2s_trainer::TrainError),
    #[error(transparent)]
    Report(#[from] s2s_report::ReportError),
    #[error(transparent)]
    Candle(candle_core::Error),
    #[error("{}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    /// A file that exists but cannot be understood (or does not match its checksum).
    #[error("{}: {message}", path.display())]
    Damaged { path: PathBuf, message: String },
    /// A request that does not fit the run as it is (already trained, changed data, ...).
    #[error("{0}")]
    Refused(String),
}

pub type Result<T, E = RunError> = std::result::Result<T, E>;

/// Tags an I/O error with the path it concerns: `.map_err(io(path))`.
pub fn io(path: &Path) -> impl FnOnce(std::io::Error) -> RunError + '_ {
    move |source| RunError::Io { path: path.to_path_buf(), source }
}

/// A JSON file that cannot be read as what it should hold.
pub fn damaged(path: &Path, e: impl std::fmt::Display) -> RunError {
    RunError::Damaged { path: path.to_path_buf(), message: e.to_string() }
}

/// candle's error without the backtrace it attaches under `RUST_BACKTRACE` (a user's error
/// is one line).
impl From<candle_core::Error> for RunError {
    fn from(mut e: candle_core::Error) -> Self {
        while let candle_core::Error::WithBacktrace { inner, .. } = e {
            e = *inner;
        }
        Self::Candle(e)
    }
}
