//! The storage of settlements (their rules are `rules::settlement`). Settlements are applied by
//! the sequenced writer, many per transaction, exactly once per contract (the settlement's primary
//! key is the contract id).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use rust_decimal::Decimal;
use suanli_sdk::{ContractStatus, NewDelivery, Settlement};
use uuid::Uuid;

use super::ledger;
use super::schema::{accounts, contracts, settlements};
use super::types::StoredContractStatus;
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

/// The contract facts settlement needs.
#[derive(Debug, Clone, Queryable)]
pub struct ContractFacts {
    pub id: Uuid,
    pub buyer_id: Uuid,
    pub provider_id: Uuid,
    pub hub: String,
    pub units: i32,
    pub hours: i32,
    pub notional: Decimal,
    pub levy_bps: i32,
    pub window_start: DateTime<Utc>,
}

/// The facts of these contracts (missing ids are absent from the map).
pub fn contract_facts(
    connection: &mut PgConnection,
    ids: &[Uuid],
) -> QueryResult<HashMap<Uuid, ContractFacts>> {
    let rows: Vec<ContractFacts> = contracts::table
        .filter(contracts::id.eq_any(ids))
        .select((
            contracts::id,
            contracts::buyer_id,
            contracts::provider_id,
            contracts::hub,
            contracts::units,
            contracts::hours,
            contracts::notional,
            contracts::levy_bps,
            contracts::window_start,
        ))
        .load(connection)?;
    Ok(rows.into_iter().map(|facts| (facts.id, facts)).collect())
}

/// The settlements these contracts already have.
pub fn existing(
    connection: &mut PgConnection,
    ids: &[Uuid],
) -> QueryResult<HashMap<Uuid, SettlementRow>> {
    let rows: Vec<SettlementRow> = settlements::table
        .filter(settlements::contract_id.eq_any(ids))
        .select(SettlementRow::as_select())
        .load(connection)?;
    Ok(rows.into_iter().map(|row| (row.contract_id, row)).collect())
}

/// The levy account of every hub.
pub fn hub_levy_accounts(connection: &mut PgConnection) -> QueryResult<HashMap<String, Uuid>> {
    let rows: Vec<(Option<String>, Uuid)> = accounts::table
        .filter(accounts::kind.eq(ledger::kind::HUB_LEVY))
        .select((accounts::hub, accounts::id))
        .load(connection)?;
    Ok(rows
        .into_iter()
        .filter_map(|(hub, id)| Some((hub?, id)))
        .collect())
}

/// The statements storing new settlements and marking their contracts settled, for the writer's
/// batch (sent with its other inserts, in its transaction). Their texts never change.
pub fn statements(rows: &[SettlementRow]) -> Vec<super::prepared::Prepared<'_>> {
    use diesel::sql_types::{Array, BigInt, Int4, Numeric, Text, Timestamptz, Uuid as SqlUuid};
    if rows.is_empty() {
        return Vec::new();
    }
    let ids: Vec<Uuid> = rows.iter().map(|row| row.contract_id).collect();
    let amounts = |pick: fn(&SettlementRow) -> Decimal| rows.iter().map(pick).collect::<Vec<_>>();
    let insert = super::prepared::prepared(
        "INSERT INTO settlements (contract_id, delivered_unit_hours, charged, refunded, provider_paid, \
         exchange_fee, hub_levy, exchange_fee_bps, idempotency_key, transaction_id, created_at) \
         SELECT * FROM unnest($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind::<Array<SqlUuid>, _>(ids.clone())
    .bind::<Array<BigInt>, _>(rows.iter().map(|row| row.delivered_unit_hours).collect::<Vec<_>>())
    .bind::<Array<Numeric>, _>(amounts(|row| row.charged))
    .bind::<Array<Numeric>, _>(amounts(|row| row.refunded))
    .bind::<Array<Numeric>, _>(amounts(|row| row.provider_paid))
    .bind::<Array<Numeric>, _>(amounts(|row| row.exchange_fee))
    .bind::<Array<Numeric>, _>(amounts(|row| row.hub_levy))
    .bind::<Array<Int4>, _>(rows.iter().map(|row| row.exchange_fee_bps).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(rows.iter().map(|row| row.idempotency_key.as_str()).collect::<Vec<_>>())
    .bind::<Array<SqlUuid>, _>(rows.iter().map(|row| row.transaction_id).collect::<Vec<_>>())
    .bind::<Array<Timestamptz>, _>(rows.iter().map(|row| row.created_at).collect::<Vec<_>>());
    let settled = super::prepared::prepared("UPDATE contracts SET status = $2 WHERE id = ANY($1)")
        .bind::<Array<SqlUuid>, _>(ids)
        .bind::<Text, _>(StoredContractStatus(ContractStatus::Settled));
    vec![insert, settled]
}

/// The settlement row of a new settlement.
pub fn new_row(
    facts: &ContractFacts,
    amounts: &money::SettlementAmounts,
    delivery: &NewDelivery,
    exchange_fee_bps: u32,
    transaction_id: Uuid,
    at: DateTime<Utc>,
) -> SettlementRow {
    SettlementRow {
        contract_id: facts.id,
        delivered_unit_hours: delivery.delivered_unit_hours as i64,
        charged: amounts.charged,
        refunded: amounts.refunded,
        provider_paid: amounts.provider_paid,
        exchange_fee: amounts.exchange_fee,
        hub_levy: amounts.hub_levy,
        exchange_fee_bps: exchange_fee_bps as i32,
        idempotency_key: delivery.idempotency_key.clone(),
        transaction_id,
        created_at: at,
    }
}
