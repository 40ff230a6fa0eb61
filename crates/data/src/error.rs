use std::path::PathBuf;

/// Everything that can go wrong while reading or preparing data. Each variant names
/// the file, line or key at fault.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("cannot read data file {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: a line longer than {limit} bytes")]
    LineTooLong { path: PathBuf, line: usize, limit: usize },
    #[error("{path}:{line}: not valid UTF-8")]
    InvalidUtf8 { path: PathBuf, line: usize },
    #[error("{path}:{line}: no tab between source and target (set data.skip_malformed = true to skip such lines)")]
    MissingTab { path: PathBuf, line: usize },
    #[error("no sentence pairs left in {what} after filtering (check data.max_length and the normalization settings)")]
    Empty { what: String },
    #[error("{}{message}", path.as_ref().map(|p| format!("tokenizer {}: ", p.display())).unwrap_or_else(|| "tokenizer: ".into()))]
    Tokenizer { path: Option<PathBuf>, message: String },
    #[error("a tokenizing thread stopped unexpectedly")]
    Worker,
    #[error("data.{key}: {message}")]
    InvalidConfig { key: &'static str, message: String },
}

pub type Result<T, E = DataError> = std::result::Result<T, E>;
