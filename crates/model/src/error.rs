use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(transparent)]
    Candle(candle_core::Error),
    #[error("model.{key}: {message}")]
    InvalidConfig { key: &'static str, message: String },
    #[error("input of {len} tokens (EOS included) is longer than the location attention's max_length {max}")]
    SourceTooLong { len: usize, max: usize },
    #[error("input of {len} positions is longer than the {what} ({max})")]
    TooLong { len: usize, max: usize, what: &'static str },
    #[error("checkpoint {path}: {message}")]
    Checkpoint { path: PathBuf, message: String },
    #[error("a worker thread stopped unexpectedly")]
    Worker,
    #[error("shape mismatch in {what}: expected {expected}, got {got}")]
    Shape { what: &'static str, expected: String, got: String },
    /// The family cannot be run by that engine; `reason` says why and what works instead.
    #[error("{engine} cannot run this model: {reason}")]
    CannotExport { engine: &'static str, reason: String },
    /// A parameter the export reads is missing from the model (not a model of this family).
    #[error("export: the model has no parameter {name}")]
    MissingParameter { name: String },
}

pub type Result<T, E = ModelError> = std::result::Result<T, E>;

/// Checks a tensor's dims at function entry (`/// # Shapes` contracts).
pub(crate) fn expect_dims(what: &'static str, t: &candle_core::Tensor, expected: &[usize]) -> Result<()> {
    if t.dims() != expected {
        return Err(ModelError::Shape { what, expected: format!("{expected:?}"), got: format!("{:?}", t.dims()) });
    }
    Ok(())
}

/// candle's error without the backtrace it attaches under `RUST_BACKTRACE` (a user's error
/// is one line).
impl From<candle_core::Error> for ModelError {
    fn from(mut e: candle_core::Error) -> Self {
        while let candle_core::Error::WithBacktrace { inner, .. } = e {
            e = *inner;
        }
        Self::Candle(e)
    }
}
