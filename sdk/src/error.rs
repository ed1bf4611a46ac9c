//! Errors a client sees: the server's own refusals (with its stable `code`), and failures to
//! reach or understand the server.

use reqwest::StatusCode;

/// Everything a [`crate::Client`] call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server answered with a JSON error body.
    #[error("{status}: {code}: {message}")]
    Api {
        status: StatusCode,
        /// The stable snake_case code, e.g. `insufficient_funds`; match on this, not on `message`.
        code: String,
        message: String,
    },
    /// The request never got an answer (connection refused or reset, timeout…).
    #[error("transport: {0}")]
    Transport(#[from] reqwest::Error),
    /// The server answered something that is not what the API promises.
    #[error("unexpected response ({status}): {detail}")]
    Unexpected { status: StatusCode, detail: String },
}

impl Error {
    /// The server's error code, when the server answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// The HTTP status, when the server answered at all.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Error::Api { status, .. } | Error::Unexpected { status, .. } => Some(*status),
            Error::Transport(error) => error.status(),
        }
    }
}
