//! Authorization: what each role may do, in one place.
//!
//! Handlers name the [`Action`] they are about to perform (with the owner of the thing it touches,
//! where there is one) and call [`authorize`]. A regulator reads everything and writes nothing; a
//! participant acts only on its own things; nobody acts as someone else.

use suanli_sdk::ParticipantKind;
use uuid::Uuid;

use crate::auth::Caller;
use crate::error::ApiError;

/// Something a caller wants to do.
#[derive(Debug, Clone, Copy)]
pub enum Action<'a> {
    /// Create a participant (admin).
    CreateParticipant,
    /// Suspend or reinstate a participant (admin).
    ManageParticipants,
    /// Replace one's own API key: everyone but the admin, whose key is `SUANLI_ADMIN_API_KEY`.
    RotateOwnKey,
    /// Credit a buyer's deposit (admin).
    Deposit,
    /// Read the caller's own ledger balances (buyers, providers, hub operators).
    ReadOwnAccount,
    /// Read the audit log and verify it (regulators).
    ReadAuditLog,
    /// List capacity (providers).
    PlaceOffer,
    /// Bid for capacity (buyers).
    PlaceBid,
    /// List contracts: one's own (providers, buyers), or everyone's (regulators).
    ListOwnOrEverything,
    /// List offers: one's own (providers), or everyone's (regulators).
    ListOffers,
    /// List bids: one's own (buyers), or everyone's (regulators).
    ListBids,
    /// Read one order or contract whose parties are these.
    Read {
        party: Uuid,
        other_party: Option<Uuid>,
    },
    /// Report delivery on a contract: providers (the contract's own provider is checked when the
    /// contract is read, in settlement; its buyer gets 403 there, anyone else 404), and buyers so
    /// that a contract's buyer learns it may not.
    ReportDelivery,
    /// Cancel an order: its owner only.
    Cancel { owner: Uuid },
    /// Upload, activate and dry-run the policies of a hub: that hub's operator only.
    ManageHubPolicies { hub: &'a str },
    /// See a hub's policies: that hub's operator, and regulators.
    ReadHubPolicies { hub: &'a str },
    /// See a hub's contracts, policy decisions and faults: that hub's operator, and regulators.
    ReadHubActivity { hub: &'a str },
    /// Ask what a bid would get (buyers).
    Quote,
    /// Ask for money to be paid out of one's own account (buyers, providers, hub operators).
    Withdraw,
    /// List withdrawals: one's own, or (the admin) everyone's.
    ListWithdrawals,
    /// Mark withdrawals paid or rejected (admin).
    DecideWithdrawals,
}

/// Allows or refuses `action` for `caller`, with a 403 naming what was refused.
pub fn authorize(caller: &Caller, action: Action<'_>) -> Result<(), ApiError> {
    use ParticipantKind::*;
    let allowed = match action {
        Action::CreateParticipant | Action::ManageParticipants | Action::Deposit => {
            caller.role == Admin
        }
        Action::RotateOwnKey => caller.role != Admin,
        Action::ReadOwnAccount => matches!(caller.role, Buyer | Provider | HubOperator),
        Action::ReadAuditLog => caller.role == Regulator,
        Action::PlaceOffer => caller.role == Provider,
        Action::PlaceBid => caller.role == Buyer,
        Action::ListOwnOrEverything => matches!(caller.role, Provider | Buyer | Regulator),
        Action::ListOffers => matches!(caller.role, Provider | Regulator),
        Action::ListBids => matches!(caller.role, Buyer | Regulator),
        Action::ReportDelivery => matches!(caller.role, Provider | Buyer),
        Action::Read { party, other_party } => {
            let is_party = caller.id == party || Some(caller.id) == other_party;
            if !(is_party || caller.role == Regulator) {
                // Someone else's order or contract: do not even confirm it exists.
                return Err(ApiError::not_found("no such order or contract"));
            }
            true
        }
        Action::Cancel { owner } => {
            if caller.id != owner {
                return Err(ApiError::not_found("no such order"));
            }
            true
        }
        Action::ManageHubPolicies { hub } => {
            caller.role == HubOperator && caller.hub.as_deref() == Some(hub)
        }
        Action::ReadHubPolicies { hub } | Action::ReadHubActivity { hub } => {
            caller.role == Regulator
                || (caller.role == HubOperator && caller.hub.as_deref() == Some(hub))
        }
        Action::Quote => caller.role == Buyer,
        Action::Withdraw => matches!(caller.role, Buyer | Provider | HubOperator),
        Action::ListWithdrawals => matches!(caller.role, Buyer | Provider | HubOperator | Admin),
        Action::DecideWithdrawals => caller.role == Admin,
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

/// Whether a withdrawal listing shows the caller everyone's withdrawals (the admin) rather than
/// those out of its own account. Call it after [`Action::ListWithdrawals`] was allowed.
pub fn sees_every_withdrawal(caller: &Caller) -> bool {
    caller.role == ParticipantKind::Admin
}

/// Whether the caller reads a contract's policy decisions with their inputs (regulators), rather
/// than as a party does, without the other side's order (`db::orders::for_party`).
pub fn sees_decision_inputs(caller: &Caller) -> bool {
    caller.role == ParticipantKind::Regulator
}

/// Whose orders and contracts a listing shows the caller: its own (`Some(id)`), or, for a
/// regulator, everyone's (`None`). Call it after [`Action::ListOwnOrEverything`],
/// [`Action::ListOffers`] or [`Action::ListBids`] was allowed.
pub fn listing_scope(caller: &Caller) -> Option<Uuid> {
    (caller.role != ParticipantKind::Regulator).then_some(caller.id)
}

fn describe(action: Action<'_>) -> &'static str {
    match action {
        Action::CreateParticipant => "create participants",
        Action::ManageParticipants => "suspend or reinstate participants",
        Action::RotateOwnKey => "rotate its key here (it comes from SUANLI_ADMIN_API_KEY)",
        Action::Deposit => "credit deposits",
        Action::ReadOwnAccount => "hold an account",
        Action::ReadAuditLog => "read the audit log",
        Action::PlaceOffer => "place offers",
        Action::PlaceBid => "place bids",
        Action::ListOwnOrEverything => "list contracts",
        Action::ListOffers => "list offers",
        Action::ListBids => "list bids",
        Action::ReportDelivery => "report delivery",
        Action::Read { .. } => "read this",
        Action::Cancel { .. } => "cancel this",
        Action::ManageHubPolicies { .. } => "manage this hub's policies",
        Action::ReadHubPolicies { .. } => "see this hub's policies",
        Action::ReadHubActivity { .. } => "see this hub's contracts, decisions and faults",
        Action::Quote => "ask for quotes",
        Action::Withdraw => "withdraw money",
        Action::ListWithdrawals => "list withdrawals",
        Action::DecideWithdrawals => "mark withdrawals paid or rejected",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(role: ParticipantKind) -> Caller {
        Caller {
            id: Uuid::nil(),
            role,
            hub: None,
        }
    }

    #[test]
    fn each_action_is_allowed_to_exactly_its_roles() {
        use ParticipantKind::*;
        let table: &[(Action, &[ParticipantKind])] = &[
            (Action::CreateParticipant, &[Admin]),
            (Action::ManageParticipants, &[Admin]),
            (
                Action::RotateOwnKey,
                &[Provider, Buyer, HubOperator, Regulator],
            ),
            (Action::Deposit, &[Admin]),
            (Action::ReadOwnAccount, &[Buyer, Provider, HubOperator]),
            (Action::ReadAuditLog, &[Regulator]),
            (Action::PlaceOffer, &[Provider]),
            (Action::PlaceBid, &[Buyer]),
            (Action::ListOwnOrEverything, &[Provider, Buyer, Regulator]),
            (Action::ListOffers, &[Provider, Regulator]),
            (Action::ListBids, &[Buyer, Regulator]),
            (Action::ReportDelivery, &[Provider, Buyer]),
        ];
        for (action, allowed) in table {
            for role in [Provider, Buyer, HubOperator, Regulator, Admin] {
                let result = authorize(&caller(role), *action);
                assert_eq!(
                    result.is_ok(),
                    allowed.contains(&role),
                    "{action:?} by {role:?}"
                );
            }
        }
    }

    #[test]
    fn only_parties_and_regulators_read_and_only_owners_cancel() {
        let owner = Uuid::from_u128(7);
        let me = |role| Caller {
            id: owner,
            role,
            hub: None,
        };
        let stranger = Caller {
            id: Uuid::from_u128(8),
            role: ParticipantKind::Buyer,
            hub: None,
        };
        let regulator = Caller {
            id: Uuid::from_u128(9),
            role: ParticipantKind::Regulator,
            hub: None,
        };
        let read = Action::Read {
            party: owner,
            other_party: Some(Uuid::from_u128(10)),
        };
        assert!(authorize(&me(ParticipantKind::Buyer), read).is_ok());
        assert!(authorize(&regulator, read).is_ok());
        assert_eq!(authorize(&stranger, read).unwrap_err().code, "not_found");
        assert!(authorize(&me(ParticipantKind::Buyer), Action::Cancel { owner }).is_ok());
        assert!(authorize(&stranger, Action::Cancel { owner }).is_err());
        assert!(authorize(&regulator, Action::Cancel { owner }).is_err());
    }

    #[test]
    fn only_a_hubs_operator_manages_its_policies() {
        let operator = |hub: &str| Caller {
            id: Uuid::nil(),
            role: ParticipantKind::HubOperator,
            hub: Some(hub.into()),
        };
        let regulator = caller(ParticipantKind::Regulator);
        assert!(authorize(&operator("nx"), Action::ManageHubPolicies { hub: "nx" }).is_ok());
        assert!(authorize(&operator("bth"), Action::ManageHubPolicies { hub: "nx" }).is_err());
        assert!(authorize(&regulator, Action::ManageHubPolicies { hub: "nx" }).is_err());
        assert!(authorize(&regulator, Action::ReadHubPolicies { hub: "nx" }).is_ok());
        assert!(authorize(&operator("bth"), Action::ReadHubPolicies { hub: "nx" }).is_err());
    }
}
