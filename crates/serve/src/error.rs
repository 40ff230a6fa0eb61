//! What can go wrong: starting the server ([`ServeError`]), and one request ([`ApiError`],
//! answered as a 4xx with a JSON body naming the problem).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use s2s_run::roots::NameError;
use s2s_run::RunError;

/// The server could not start or stopped on an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Run(#[from] RunError),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: String, source: std::io::Error },
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error("the server stopped: {0}")]
    Stopped(std::io::Error),
}

/// Why one request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Bad JSON, a missing field, a value out of range.
    #[error("{0}")]
    BadRequest(String),
    /// A body, a sentence list or a sentence over its limit.
    #[error("{0}")]
    TooLarge(String),
    #[error(transparent)]
    Name(#[from] NameError),
    /// The run could not serve the request (a checkpoint failing its checksum, a damaged
    /// config, text its tokenizer refuses).
    #[error(transparent)]
    Run(#[from] RunError),
    #[error("{0}")]
    NotFound(String),
    /// A decoding task that did not finish (it panicked or was cancelled).
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Name(NameError::Unknown(_)) | Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Name(_) => StatusCode::BAD_REQUEST,
            Self::Run(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A short word for scripts to match on.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "bad_request",
            Self::TooLarge(_) => "too_large",
            Self::Name(NameError::Unknown(_)) => "unknown_run",
            Self::Name(NameError::Checkpoint { .. }) => "bad_checkpoint",
            Self::Name(_) => "bad_run_name",
            Self::Run(_) => "run_error",
            Self::NotFound(_) => "not_found",
            Self::Internal(_) => "internal",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.to_string(), "kind": self.kind() });
        (self.status(), axum::Json(body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_errors_are_4xx_with_a_kind() {
        let unknown = ApiError::Name(NameError::Unknown("x".into()));
        assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
        assert_eq!(unknown.kind(), "unknown_run");
        let damaged = ApiError::Run(RunError::Refused("no usable `best` checkpoint".into()));
        assert!(damaged.status().is_client_error());
        assert!(ApiError::TooLarge("x".into()).status().is_client_error());
    }
}
