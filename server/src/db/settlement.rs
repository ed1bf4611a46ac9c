//! Delivery and settlement of contracts: exactly once, in one transaction.

use chrono::{DateTime, SubsecRound, Utc};
use diesel::prelude::*;
use rust_decimal::Decimal;
use serde_json::json;
use suanli_sdk::{NewDelivery, Settlement};
use uuid::Uuid;

use super::schema::{accounts, contracts, settlements};
use super::{audit, ledger};
use crate::error::ApiError;
use crate::market::money;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = settlements)]
pub struct SettlementRow {
    pub contract_id: Uuid,
    pub delivered_unit_hours: i64,
    pub charged: Decimal,
    pub refunded: Decimal,
    pub provider_paid: Decimal,
    pub exchange_fee: Decimal,
    pub hub_levy: Decimal,
    pub exchange_fee_bps: i32,
    pub idempotency_key: String,
    pub transaction_id: Uuid,
    pub created_at: DateTime<Utc>,
}

impl SettlementRow {
    /// The settlement as the API shows it.
    pub fn to_wire(&self) -> Settlement {
        Settlement {
            contract_id: self.contract_id,
            delivered_unit_hours: self.delivered_unit_hours as u64,
            charged: self.charged.normalize(),
            refunded: self.refunded.normalize(),
            provider_paid: self.provider_paid.normalize(),
            exchange_fee: self.exchange_fee.normalize(),
            hub_levy: self.hub_levy.normalize(),
            exchange_fee_bps: self.exchange_fee_bps as u32,
            idempotency_key: self.idempotency_key.clone(),
            settled_at: self.created_at,
        }
    }
}

/// The contract facts settlement needs, read under a row lock.
#[derive(Queryable)]
struct ContractFacts {
    buyer_id: Uuid,
    provider_id: Uuid,
    hub: String,
    units: i32,
    hours: i32,
    notional: Decimal,
    levy_bps: i32,
}

/// Settles contract `id` after its provider `caller` reported `delivery`.
///
/// Only the contract's provider may report (its buyer gets 403; anyone else 404). A retry with
/// the same idempotency key and body returns the first settlement; any other second report is a
/// 409. The buyer is charged pro rata and refunded the rest, the provider is paid net of the
/// exchange fee and the hub levy, the escrow is emptied, and the contract is marked settled: all in
/// one transaction, with an audit entry.
pub fn settle(
    connection: &mut PgConnection,
    caller: Uuid,
    id: Uuid,
    delivery: &NewDelivery,
    exchange_fee_bps: u32,
) -> Result<Settlement, ApiError> {
    connection.transaction(|connection| {
        let facts: Option<ContractFacts> = contracts::table
            .find(id)
            .select((
                contracts::buyer_id,
                contracts::provider_id,
                contracts::hub,
                contracts::units,
                contracts::hours,
                contracts::notional,
                contracts::levy_bps,
            ))
            .for_update()
            .first(connection)
            .optional()?;
        let facts = facts.ok_or_else(|| ApiError::not_found("no such contract"))?;
        if facts.provider_id != caller {
            return Err(if facts.buyer_id == caller {
                ApiError::forbidden("forbidden", "only the contract's provider reports delivery")
            } else {
                ApiError::not_found("no such contract")
            });
        }
        let existing: Option<SettlementRow> =
            settlements::table.find(id).select(SettlementRow::as_select()).first(connection).optional()?;
        if let Some(existing) = existing {
            return if existing.idempotency_key != delivery.idempotency_key {
                Err(ApiError::conflict("already_settled", "the contract is already settled"))
            } else if existing.delivered_unit_hours as u64 != delivery.delivered_unit_hours {
                Err(ApiError::conflict("idempotency_conflict", "this idempotency key was used for another delivery"))
            } else {
                Ok(existing.to_wire())
            };
        }
        let contracted = (facts.units as u64) * (facts.hours as u64);
        if delivery.delivered_unit_hours > contracted {
            return Err(ApiError::unprocessable(
                "over_delivery",
                format!("the contract covers {contracted} unit-hours; {} were reported", delivery.delivered_unit_hours),
            ));
        }
        let amounts = money::settle(
            facts.notional,
            contracted,
            delivery.delivered_unit_hours,
            exchange_fee_bps,
            facts.levy_bps as u32,
        );
        let hub_levy_account: Uuid = accounts::table
            .filter(accounts::kind.eq(ledger::kind::HUB_LEVY).and(accounts::hub.eq(&facts.hub)))
            .select(accounts::id)
            .first(connection)?;
        let transaction_id = ledger::post(
            connection,
            "settlement",
            &id.to_string(),
            &[
                (ledger::contract_escrow_account(id), -facts.notional),
                (ledger::participant_account_id(facts.buyer_id, ledger::kind::BUYER_AVAILABLE), amounts.refunded),
                (ledger::participant_account_id(facts.provider_id, ledger::kind::PROVIDER), amounts.provider_paid),
                (ledger::EXCHANGE_FEES_ACCOUNT, amounts.exchange_fee),
                (hub_levy_account, amounts.hub_levy),
            ],
        )?;
        let row = SettlementRow {
            contract_id: id,
            delivered_unit_hours: delivery.delivered_unit_hours as i64,
            charged: amounts.charged,
            refunded: amounts.refunded,
            provider_paid: amounts.provider_paid,
            exchange_fee: amounts.exchange_fee,
            hub_levy: amounts.hub_levy,
            exchange_fee_bps: exchange_fee_bps as i32,
            idempotency_key: delivery.idempotency_key.clone(),
            transaction_id,
            created_at: Utc::now().trunc_subsecs(6),
        };
        diesel::insert_into(settlements::table).values(&row).execute(connection)?;
        diesel::update(contracts::table.find(id)).set(contracts::status.eq("settled")).execute(connection)?;
        audit::append(
            connection,
            &caller.to_string(),
            "contract_settled",
            json!({
                "contract_id": id,
                "delivered_unit_hours": delivery.delivered_unit_hours,
                "contracted_unit_hours": contracted,
                "charged": amounts.charged.to_string(),
                "refunded": amounts.refunded.to_string(),
                "provider_paid": amounts.provider_paid.to_string(),
                "exchange_fee": amounts.exchange_fee.to_string(),
                "hub_levy": amounts.hub_levy.to_string(),
                "transaction_id": transaction_id,
            }),
        )?;
        Ok(row.to_wire())
    })
}
