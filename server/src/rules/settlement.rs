//! When a delivery report settles a contract, and for what.

use chrono::{DateTime, Utc};
use suanli_sdk::{NewDelivery, Settlement};
use uuid::Uuid;

use crate::db::settlement::{ContractFacts, SettlementRow};
use crate::market::money;

/// Why a delivery report was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No such contract, or one the caller is no party to (which it may not learn exists).
    #[error("no such contract")]
    NoSuchContract,
    /// The contract's buyer reporting: it may see the contract, not settle it.
    #[error("only the contract's provider reports delivery")]
    NotTheProvider,
    #[error("the contract is already settled")]
    AlreadySettled,
    #[error("this idempotency key was used for another delivery")]
    KeyReused,
    #[error("the contract covers {contracted} unit-hours; {reported} were reported")]
    OverDelivery { contracted: u64, reported: u64 },
    #[error("delivery can be reported once the window has started, at {}", starts.to_rfc3339())]
    WindowNotStarted { starts: DateTime<Utc> },
}

/// What a delivery report leads to.
pub enum Outcome {
    /// The contract was settled before with this same report: the first settlement.
    Repeat(Settlement),
    /// A new settlement: the amounts to pay out.
    New {
        facts: ContractFacts,
        contracted: u64,
        amounts: money::SettlementAmounts,
    },
}

/// Decides what the report `delivery` by `caller` does to the contract `facts` (None: no such
/// contract), given its earlier settlement if any.
///
/// Only the contract's provider may report (its buyer gets 403; anyone else 404). A retry with
/// the same idempotency key and body returns the first settlement; any other second report is a
/// 409. A report of more than was contracted is a 422.
pub fn decide(
    facts: Option<&ContractFacts>,
    earlier: Option<&SettlementRow>,
    caller: Uuid,
    delivery: &NewDelivery,
    exchange_fee_bps: u32,
) -> Result<Outcome, Refusal> {
    let facts = facts.ok_or(Refusal::NoSuchContract)?;
    if facts.provider_id != caller {
        return Err(if facts.buyer_id == caller {
            Refusal::NotTheProvider
        } else {
            Refusal::NoSuchContract
        });
    }
    if let Some(earlier) = earlier {
        return if earlier.idempotency_key != delivery.idempotency_key {
            Err(Refusal::AlreadySettled)
        } else if earlier.delivered_unit_hours as u64 != delivery.delivered_unit_hours {
            Err(Refusal::KeyReused)
        } else {
            Ok(Outcome::Repeat(earlier.to_wire()))
        };
    }
    let contracted = (facts.units as u64) * (facts.hours as u64);
    if delivery.delivered_unit_hours > contracted {
        return Err(Refusal::OverDelivery {
            contracted,
            reported: delivery.delivered_unit_hours,
        });
    }
    let amounts = money::settle(
        facts.notional,
        contracted,
        delivery.delivered_unit_hours,
        exchange_fee_bps,
        facts.levy_bps as u32,
    );
    Ok(Outcome::New {
        facts: facts.clone(),
        contracted,
        amounts,
    })
}

/// Refuses a report before the contract's window has started.
pub fn check_started(facts: &ContractFacts, now: DateTime<Utc>) -> Result<(), Refusal> {
    if facts.window_start > now {
        Err(Refusal::WindowNotStarted {
            starts: facts.window_start,
        })
    } else {
        Ok(())
    }
}
