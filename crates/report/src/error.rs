use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot draw {path}: {message}")]
    Draw { path: PathBuf, message: String },
    #[error("cannot draw {what}: {message}")]
    Input { what: String, message: String },
}

pub type Result<T, E = ReportError> = std::result::Result<T, E>;
