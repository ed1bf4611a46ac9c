//! What a deposit or an admin's decision on a withdrawal may refuse.

/// Why a deposit was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DepositRefusal {
    #[error("this idempotency key was already used for a different deposit")]
    KeyReused,
    #[error("no such participant")]
    NoSuchParticipant,
    #[error("deposits are credited to buyers only")]
    NotABuyer,
}

/// Why a decision on a withdrawal was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WithdrawalRefusal {
    #[error("no such withdrawal")]
    NoSuchWithdrawal,
    #[error("the withdrawal is already {status}")]
    AlreadyDecided { status: String },
}
