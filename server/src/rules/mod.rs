//! The exchange's rules outside matching: when a delivery settles a contract and for what, what a
//! deposit or a withdrawal decision may do, when a window may still be traded. Each area refuses
//! with a small error enum of its own; this module maps every refusal to its HTTP-shaped
//! [`ApiError`] (status, code, message), in one place.
//!
//! Order rules (bounds, windows, prices, hubs) are checked by `exchange::requests`, which uses
//! [`window`] for the one rule the writer checks again when a command is applied.

pub mod money;
pub mod settlement;
pub mod window;

use crate::error::ApiError;

impl From<settlement::Refusal> for ApiError {
    fn from(refusal: settlement::Refusal) -> Self {
        use settlement::Refusal::*;
        let message = refusal.to_string();
        match refusal {
            NoSuchContract => ApiError::not_found(message),
            NotTheProvider => ApiError::forbidden("forbidden", message),
            AlreadySettled => ApiError::conflict("already_settled", message),
            KeyReused => ApiError::conflict("idempotency_conflict", message),
            OverDelivery { .. } => ApiError::unprocessable("over_delivery", message),
            WindowNotStarted { .. } => ApiError::conflict("window_not_started", message),
        }
    }
}

impl From<money::DepositRefusal> for ApiError {
    fn from(refusal: money::DepositRefusal) -> Self {
        use money::DepositRefusal::*;
        let message = refusal.to_string();
        match refusal {
            KeyReused => ApiError::conflict("idempotency_conflict", message),
            NoSuchParticipant => ApiError::not_found(message),
            NotABuyer => ApiError::unprocessable("not_a_buyer", message),
        }
    }
}

impl From<money::WithdrawalRefusal> for ApiError {
    fn from(refusal: money::WithdrawalRefusal) -> Self {
        use money::WithdrawalRefusal::*;
        let message = refusal.to_string();
        match refusal {
            NoSuchWithdrawal => ApiError::not_found(message),
            AlreadyDecided { .. } => ApiError::conflict("withdrawal_decided", message),
        }
    }
}

impl From<window::WindowStarted> for ApiError {
    fn from(refusal: window::WindowStarted) -> Self {
        ApiError::unprocessable("window_started", refusal.to_string())
    }
}

impl<R: Into<ApiError>> From<crate::db::Refusable<R>> for ApiError {
    fn from(error: crate::db::Refusable<R>) -> Self {
        match error {
            crate::db::Refusable::Refused(refusal) => refusal.into(),
            crate::db::Refusable::Store(error) => error.into(),
        }
    }
}
