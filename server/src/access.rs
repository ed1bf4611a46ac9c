//! Authorization: what each role may do, in one place.
//!
//! Handlers name the [`Action`] they are about to perform (with the owner of the thing it touches,
//! where there is one) and call [`authorize`]. A regulator reads everything and writes nothing; a
//! participant acts only on its own things; nobody acts as someone else.

use suanli_sdk::ParticipantKind;

use crate::auth::Caller;
use crate::error::ApiError;

/// Something a caller wants to do.
#[derive(Debug, Clone, Copy)]
pub enum Action {
    /// Create a participant (admin).
    CreateParticipant,
    /// Credit a buyer's deposit (admin).
    Deposit,
    /// Read the caller's own ledger balances (buyers, providers, hub operators).
    ReadOwnAccount,
    /// Read the audit log and verify it (regulators).
    ReadAuditLog,
}

/// Allows or refuses `action` for `caller`, with a 403 naming what was refused.
pub fn authorize(caller: &Caller, action: Action) -> Result<(), ApiError> {
    use ParticipantKind::*;
    let allowed = match action {
        Action::CreateParticipant | Action::Deposit => caller.role == Admin,
        Action::ReadOwnAccount => matches!(caller.role, Buyer | Provider | HubOperator),
        Action::ReadAuditLog => caller.role == Regulator,
    };
    if allowed {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "forbidden",
            format!("a {} may not {}", caller.role.as_str(), describe(action)),
        ))
    }
}

fn describe(action: Action) -> &'static str {
    match action {
        Action::CreateParticipant => "create participants",
        Action::Deposit => "credit deposits",
        Action::ReadOwnAccount => "hold an account",
        Action::ReadAuditLog => "read the audit log",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn caller(role: ParticipantKind) -> Caller {
        Caller { id: Uuid::nil(), role, hub: None }
    }

    #[test]
    fn each_action_is_allowed_to_exactly_its_roles() {
        use ParticipantKind::*;
        let table: &[(Action, &[ParticipantKind])] = &[
            (Action::CreateParticipant, &[Admin]),
            (Action::Deposit, &[Admin]),
            (Action::ReadOwnAccount, &[Buyer, Provider, HubOperator]),
            (Action::ReadAuditLog, &[Regulator]),
        ];
        for (action, allowed) in table {
            for role in [Provider, Buyer, HubOperator, Regulator, Admin] {
                let result = authorize(&caller(role), *action);
                assert_eq!(result.is_ok(), allowed.contains(&role), "{action:?} by {role:?}");
            }
        }
    }
}
