//! The one error type of the exchange, and the single place where failures become HTTP answers.
//!
//! Policy: handlers and the domain return [`ApiError`]; the store returns its own errors. A refusal the client caused
//! carries a stable snake_case `code` and the right status (400, 401, 403, 404, 409, 413, 422);
//! anything else is [`ApiError::internal`], logged once here with its cause and answered with a
//! generic 500 that leaks nothing. This module knows no HTTP library: `http/` turns an `ApiError`
//! into a response (status from [`ErrorKind::status`]). Store failures a client can cause (named constraints, a
//! race on an idempotency key) become client errors in [`From<StoreError>`]. `anyhow` is used only at the edges (start-up,
//! the CLI), never in a request path.

use std::fmt;

use crate::db::{self, Failure, PoolError, StoreError};

/// Which family of failure, which fixes the HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    Conflict,
    PayloadTooLarge,
    Unprocessable,
    TooManyRequests,
    Unavailable,
    Internal,
}

impl ErrorKind {
    /// The HTTP status of this family (the HTTP layer turns it into a response).
    pub fn status(self) -> u16 {
        match self {
            ErrorKind::BadRequest => 400,
            ErrorKind::Unauthorized => 401,
            ErrorKind::Forbidden => 403,
            ErrorKind::NotFound => 404,
            ErrorKind::Conflict => 409,
            ErrorKind::PayloadTooLarge => 413,
            ErrorKind::Unprocessable => 422,
            ErrorKind::TooManyRequests => 429,
            ErrorKind::Unavailable => 503,
            ErrorKind::Internal => 500,
        }
    }
}

/// A failure on its way to becoming a JSON error answer.
#[derive(Debug)]
pub struct ApiError {
    pub kind: ErrorKind,
    /// Stable snake_case code clients match on.
    pub code: &'static str,
    /// A sentence for people.
    pub message: String,
    /// When to try again, for refusals that pass (a full queue): the `Retry-After` header.
    pub retry_after_s: Option<u32>,
}

impl ApiError {
    fn new(kind: ErrorKind, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            kind,
            code,
            message: message.into(),
            retry_after_s: None,
        }
    }

    /// 503 with its own code and a `Retry-After`: the exchange is busy or cannot take this
    /// command here right now; the same request may succeed later.
    pub fn busy(code: &'static str, message: impl Into<String>, retry_after_s: u32) -> Self {
        ApiError {
            retry_after_s: Some(retry_after_s),
            ..Self::new(ErrorKind::Unavailable, code, message)
        }
    }

    /// 400: the request is malformed (bad JSON, bad decimal, unknown hub…).
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadRequest, code, message)
    }

    /// 401: no usable credentials.
    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unauthorized, code, message)
    }

    /// 403: authenticated, but not allowed to do this.
    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Forbidden, code, message)
    }

    /// 404: no such thing (or not one the caller may know about).
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, "not_found", message)
    }

    /// 409: conflicts with what already happened (idempotency key reuse, double settlement).
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, code, message)
    }

    /// 413: body or module too large.
    pub fn too_large(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::PayloadTooLarge, code, message)
    }

    /// 422: well-formed but against a business rule (insufficient funds, window too long…).
    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unprocessable, code, message)
    }

    /// 429: this client or key failed too often lately.
    pub fn too_many_requests(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::TooManyRequests, code, message)
    }

    /// 503: a dependency (the database) is not reachable right now.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, "unavailable", message)
    }

    /// 500: our fault. The cause is logged here, once, and not shown to the client.
    pub fn internal(cause: impl fmt::Display) -> Self {
        tracing::error!(%cause, "internal error");
        Self::new(
            ErrorKind::Internal,
            "internal_error",
            "internal error; the incident was logged",
        )
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match db::failure(&error) {
            Failure::NotFound => ApiError::not_found("no such record"),
            Failure::InsufficientFunds => {
                ApiError::unprocessable("insufficient_funds", "not enough available money")
            }
            Failure::IdempotencyRace => ApiError::conflict(
                "idempotency_conflict",
                "this idempotency key was used concurrently; retry",
            ),
            Failure::ConnectionLost => ApiError::unavailable("database connection lost"),
            Failure::SerializationFailure => {
                ApiError::unavailable("concurrent update; retry the request")
            }
            Failure::Refused | Failure::Other => ApiError::internal(format!("database: {error}")),
        }
    }
}

impl From<PoolError> for ApiError {
    fn from(error: PoolError) -> Self {
        tracing::warn!(%error, "no database connection");
        ApiError::unavailable("database not reachable")
    }
}
