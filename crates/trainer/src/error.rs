#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Candle(candle_core::Error),
    #[error("train.{key}: {message}")]
    InvalidConfig { key: &'static str, message: String },
    #[error("training diverged at epoch {epoch}, step {step}: the loss is {loss}")]
    Diverged { epoch: usize, step: usize, loss: f64 },
    #[error("{0}")]
    Task(Box<dyn std::error::Error + Send + Sync>),
    #[error("optimizer state does not match the model: {0}")]
    State(String),
    #[error("an optimizer thread stopped unexpectedly")]
    Worker,
}

pub type Result<T, E = TrainError> = std::result::Result<T, E>;

impl TrainError {
    pub fn task(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Task(Box::new(e))
    }
}

/// candle's error without the backtrace it attaches under `RUST_BACKTRACE` (a user's error
/// is one line).
impl From<candle_core::Error> for TrainError {
    fn from(mut e: candle_core::Error) -> Self {
        while let candle_core::Error::WithBacktrace { inner, .. } = e {
            e = *inner;
        }
        Self::Candle(e)
    }
}
