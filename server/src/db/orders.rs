//! Storage of offers, bids and contracts: the batched writes of the sequenced writer, the reads
//! of start-up recovery, and the reads behind `GET` endpoints.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, Int4, Nullable, Numeric, Text};
use rust_decimal::Decimal;
use suanli_sdk::{Bid, BookLevel, Contract, Offer, OrderStatus, Side, Trade, Window};
use uuid::Uuid;

use super::ledger::{self, LedgerTransaction};
use super::prepared::{Prepared, prepared};
use super::schema::{bids, contracts, offers};
use super::types::{
    RESTING, StoredContractStatus, StoredDataClass, StoredOrderStatus, StoredSide,
    StoredTimeInForce, resting_sql,
};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = offers)]
pub struct OfferRow {
    pub id: Uuid,
    pub seq: i64,
    pub provider_id: Uuid,
    pub cluster: String,
    pub hub: String,
    pub sku: String,
    pub quantity: i32,
    pub window_start: DateTime<Utc>,
    pub window_end: DateTime<Utc>,
    pub ask_price: Decimal,
    pub green_share: i16,
    pub attributes: serde_json::Value,
    pub status: StoredOrderStatus,
    pub remaining: i32,
    pub idempotency_key: String,
    pub request_hash: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl OfferRow {
    /// The offer as the API shows it.
    pub fn to_wire(&self) -> Offer {
        Offer {
            id: self.id,
            provider_id: self.provider_id,
            cluster: self.cluster.clone(),
            hub: self.hub.clone(),
            sku: self.sku.clone(),
            quantity: self.quantity as u32,
            window: Window {
                start: self.window_start,
                end: self.window_end,
            },
            ask_price: self.ask_price.normalize(),
            green_share: self.green_share as u8,
            attributes: self.attributes.as_object().cloned().unwrap_or_default(),
            status: self.status.0,
            remaining: self.remaining as u32,
            idempotency_key: self.idempotency_key.clone(),
            created_at: self.created_at,
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = bids)]
pub struct BidRow {
    pub id: Uuid,
    pub seq: i64,
    pub buyer_id: Uuid,
    pub skus: Vec<String>,
    pub quantity: i32,
    pub window_start: DateTime<Utc>,
    pub window_end: DateTime<Utc>,
    pub limit_price: Decimal,
    pub hubs: Vec<String>,
    pub requested_hubs: Option<Vec<String>>,
    pub data_origin: Option<String>,
    pub max_latency_ms: Option<i32>,
    pub min_green_share: i16,
    pub data_class: StoredDataClass,
    pub time_in_force: StoredTimeInForce,
    pub expires_at: Option<DateTime<Utc>>,
    pub min_fill: i32,
    pub unit_hold: Decimal,
    pub status: StoredOrderStatus,
    pub remaining: i32,
    pub idempotency_key: String,
    pub request_hash: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Why units stayed unfilled when the bid was matched: `[{"code","message","hub"?}]`.
    pub reasons: serde_json::Value,
}

impl BidRow {
    /// The bid as the API shows it.
    pub fn to_wire(&self) -> Bid {
        Bid {
            id: self.id,
            buyer_id: self.buyer_id,
            skus: self.skus.clone(),
            quantity: self.quantity as u32,
            window: Window {
                start: self.window_start,
                end: self.window_end,
            },
            limit_price: self.limit_price.normalize(),
            hubs: self.hubs.clone(),
            data_origin: self.data_origin.clone(),
            max_latency_ms: self.max_latency_ms.map(|ms| ms as u32),
            min_green_share: self.min_green_share as u8,
            data_class: self.data_class.0,
            time_in_force: self.time_in_force.0,
            expires_at: self.expires_at,
            min_fill: self.min_fill as u32,
            status: self.status.0,
            remaining: self.remaining as u32,
            held: (self.unit_hold * Decimal::from(self.remaining)).normalize(),
            idempotency_key: self.idempotency_key.clone(),
            created_at: self.created_at,
            reasons: if self.status.0 == OrderStatus::Filled {
                Vec::new()
            } else {
                serde_json::from_value(self.reasons.clone()).unwrap_or_default()
            },
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = contracts)]
pub struct ContractRow {
    pub id: Uuid,
    #[diesel(skip_insertion)]
    pub seq: i64,
    pub bid_id: Uuid,
    pub offer_id: Uuid,
    pub buyer_id: Uuid,
    pub provider_id: Uuid,
    pub hub: String,
    pub cluster: String,
    pub sku: String,
    pub data_origin: Option<String>,
    pub units: i32,
    pub window_start: DateTime<Utc>,
    pub window_end: DateTime<Utc>,
    pub hours: i32,
    pub unit_price: Decimal,
    pub notional: Decimal,
    pub levy_bps: i32,
    pub maker: StoredSide,
    pub status: StoredContractStatus,
    pub decisions: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

impl ContractRow {
    /// The contract as the API shows it.
    pub fn to_wire(&self) -> Contract {
        Contract {
            id: self.id,
            bid_id: self.bid_id,
            offer_id: self.offer_id,
            buyer_id: self.buyer_id,
            provider_id: self.provider_id,
            hub: self.hub.clone(),
            cluster: self.cluster.clone(),
            sku: self.sku.clone(),
            units: self.units as u32,
            window: Window {
                start: self.window_start,
                end: self.window_end,
            },
            hours: self.hours as u32,
            unit_price: self.unit_price.normalize(),
            notional: self.notional.normalize(),
            levy_bps: self.levy_bps as u32,
            maker: self.maker.0,
            status: self.status.0,
            decisions: self.decisions.as_array().cloned().unwrap_or_default(),
            created_at: self.created_at,
        }
    }
}

/// A contract as one of its parties sees it: each policy decision without its `input`, which
/// holds the other side's order (a bid's limit, quantity and data class; an offer's ask, quantity
/// and attributes). Regulators and the hub's operator read the inputs, and replay them.
pub fn for_party(mut contract: Contract) -> Contract {
    for decision in &mut contract.decisions {
        if let Some(fields) = decision.as_object_mut() {
            fields.remove("input");
        }
    }
    contract
}

impl ContractRow {
    /// The contract as its parties see it ([`for_party`]).
    pub fn to_party_wire(&self) -> Contract {
        for_party(self.to_wire())
    }
}

/// An order's state after a batch touched it.
#[derive(Debug, Clone, Copy)]
pub struct OrderUpdate {
    pub remaining: i32,
    pub status: OrderStatus,
    /// For bids: the minimum fill of the resting remainder (offers: 1).
    pub min_fill: i32,
}

/// Everything one batch of commands changes, written with a few statements.
#[derive(Debug, Default)]
pub struct BatchWrites {
    pub new_offers: Vec<OfferRow>,
    pub new_bids: Vec<BidRow>,
    /// Offer id → its new state.
    pub offer_updates: HashMap<Uuid, OrderUpdate>,
    /// Bid id → its new state.
    pub bid_updates: HashMap<Uuid, OrderUpdate>,
    pub contracts: Vec<ContractRow>,
    pub ledger: Vec<LedgerTransaction>,
    /// Audit entries: (actor, kind, payload), in order.
    pub audit: Vec<(String, &'static str, serde_json::Value)>,
    /// Faults the hubs' policies caused while matching.
    pub faults: Vec<super::policies::FaultRecord>,
    /// Every policy evaluation made while matching.
    pub decisions: Vec<super::policies::DecisionRow>,
    /// Contracts settled in this batch.
    pub settlements: Vec<super::settlement::SettlementRow>,
    /// Participants suspended in this batch, with the reason.
    pub suspensions: Vec<(Uuid, String)>,
    /// Withdrawals requested in this batch.
    pub withdrawals: Vec<super::withdrawals::WithdrawalRow>,
}

/// Writes a batch of the sequenced writer in one transaction, all of it or nothing, and
/// answers the market stream's events the batch recorded; `None` (nothing written) when
/// `lease_token` no longer holds the matching lease (checked in the batch's last statement, by
/// the database's `batch_end`: see `db::lease::holds`).
pub fn write_batch(
    connection: &mut PgConnection,
    writes: &BatchWrites,
    now: DateTime<Utc>,
    lease_token: i64,
) -> QueryResult<Option<Vec<super::stream::StreamEvent>>> {
    match connection.transaction(|connection| write(connection, writes, now, lease_token)) {
        Err(diesel::result::Error::DatabaseError(_, info))
            if info.constraint_name() == Some(LEASE_HELD) =>
        {
            Ok(None)
        }
        written => written.map(Some),
    }
}

/// The constraint the database's `batch_end` names when a batch's lease token no longer holds
/// the matching lease.
const LEASE_HELD: &str = "matching_lease_held";

/// Makes this session plan its statements again, foreign-key checks included. PostgreSQL plans a
/// foreign-key check once per session and keeps that plan: made while a table was tiny (a new
/// exchange), it scans the whole table, and keeps doing so as the table grows (every contract
/// names its bid, offer and parties; every new contract adds an escrow account), so the order path
/// slows down in proportion to its history. Plans made again once the tables have grown use
/// their indexes.
pub fn forget_plans(connection: &mut PgConnection) -> QueryResult<()> {
    diesel::connection::SimpleConnection::batch_execute(connection, "DISCARD PLANS")
}

/// What a batch changed in each price level of the book: (side, SKU, price) → (units, orders).
pub type LevelDeltas = HashMap<(Side, String, Decimal), (i64, i64)>;

/// A row of [`UPDATES_AND_BALANCES`]'s answer: an updated order as it stood before and after the
/// batch (`part` `offer` or `bid`), or an account's balance after it (`part` `account`).
#[derive(QueryableByName)]
struct Changed {
    #[diesel(sql_type = Text)]
    part: String,
    #[diesel(sql_type = Nullable<Array<Text>>)]
    skus: Option<Vec<String>>,
    #[diesel(sql_type = Nullable<Numeric>)]
    price: Option<Decimal>,
    #[diesel(sql_type = Nullable<Int4>)]
    remaining: Option<i32>,
    #[diesel(sql_type = Nullable<Text>)]
    status: Option<String>,
    #[diesel(sql_type = Nullable<Int4>)]
    new_remaining: Option<i32>,
    #[diesel(sql_type = Nullable<Text>)]
    new_status: Option<String>,
    #[diesel(sql_type = Nullable<diesel::sql_types::Uuid>)]
    account: Option<Uuid>,
    #[diesel(sql_type = Nullable<Numeric>)]
    balance: Option<Decimal>,
}

/// What an order contributes to its levels: (units, orders), nothing unless it rests.
fn resting_share(remaining: i32, status: &str) -> (i64, i64) {
    if RESTING.iter().any(|resting| resting.0.as_str() == status) {
        (i64::from(remaining), 1)
    } else {
        (0, 0)
    }
}

fn add_share(
    levels: &mut LevelDeltas,
    side: Side,
    skus: &[String],
    price: Decimal,
    share: (i64, i64),
) {
    if share == (0, 0) {
        return;
    }
    for sku in skus {
        let level = levels.entry((side, sku.clone(), price)).or_default();
        level.0 += share.0;
        level.1 += share.1;
    }
}

/// The batch's first statement: updates the resting orders of both sides (`$1`–`$3` offers'
/// ids, remaining and status; `$4`–`$7` bids' ids, remaining, status and minimum fill; `$8`
/// when) and moves the balances of the accounts that existed (`$9` their ids, `$10` the amounts:
/// `ledger::move_balances`, which locks their rows in id order). Answers each updated order as it
/// was and as it is (read on the statement's snapshot, before its updates), and each moved
/// account's new balance. One text whatever the batch holds (empty arrays update nothing), so
/// PostgreSQL plans it once per session.
pub static UPDATES_AND_BALANCES: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "WITH vo AS (SELECT * FROM unnest($1::uuid[], $2::int4[], $3::text[]) AS v(id, remaining, status)), \
         bo AS (SELECT ARRAY[o.sku] AS skus, o.ask_price AS price, o.remaining, o.status, \
                       vo.remaining AS new_remaining, vo.status AS new_status \
                FROM offers o JOIN vo ON o.id = vo.id), \
         uo AS (UPDATE offers o SET remaining = vo.remaining, status = vo.status, updated_at = $8 \
                FROM vo WHERE o.id = vo.id), \
         vb AS (SELECT * FROM unnest($4::uuid[], $5::int4[], $6::text[], $7::int4[]) \
                    AS v(id, remaining, status, min_fill)), \
         bb AS (SELECT b.skus, b.limit_price AS price, b.remaining, b.status, \
                       vb.remaining AS new_remaining, vb.status AS new_status \
                FROM bids b JOIN vb ON b.id = vb.id), \
         ub AS (UPDATE bids b SET remaining = vb.remaining, status = vb.status, \
                       min_fill = vb.min_fill, updated_at = $8 \
                FROM vb WHERE b.id = vb.id), \
         {} \
         SELECT 'offer' AS part, skus, price, remaining, status, new_remaining, new_status, \
                NULL::uuid AS account, NULL::numeric AS balance FROM bo \
         UNION ALL \
         SELECT 'bid', skus, price, remaining, status, new_remaining, new_status, NULL, NULL FROM bb \
         UNION ALL \
         SELECT 'account', NULL, NULL, NULL, NULL, NULL, NULL, id, balance FROM moved_balances",
        ledger::move_balances(9, 10)
    )
});

/// Applies the batch's updates to resting orders placed before it and moves the balances of
/// accounts that existed, in one statement ([`struct@UPDATES_AND_BALANCES`]): adds what the orders'
/// updates change in the book's levels to `levels`, and answers the accounts' new balances.
fn update_orders_and_balances(
    connection: &mut PgConnection,
    offers: &HashMap<Uuid, OrderUpdate>,
    bids: &HashMap<Uuid, OrderUpdate>,
    postings: &ledger::Postings<'_>,
    now: DateTime<Utc>,
    levels: &mut LevelDeltas,
) -> QueryResult<Vec<(Uuid, Decimal)>> {
    if offers.is_empty() && bids.is_empty() && postings.moved_accounts.is_empty() {
        return Ok(Vec::new());
    }
    // In id order, so that rows are locked in one order whoever else updates them.
    let sorted = |updates: &HashMap<Uuid, OrderUpdate>| {
        let mut updates: Vec<(Uuid, OrderUpdate)> =
            updates.iter().map(|(id, update)| (*id, *update)).collect();
        updates.sort_unstable_by_key(|(id, _)| *id);
        updates
    };
    let (offers, bids) = (sorted(offers), sorted(bids));
    let changed: Vec<Changed> = super::prepared::prepared(&UPDATES_AND_BALANCES)
        .bind::<Array<diesel::sql_types::Uuid>, _>(
            offers.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        )
        .bind::<Array<Int4>, _>(offers.iter().map(|(_, u)| u.remaining).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(
            offers
                .iter()
                .map(|(_, u)| u.status.as_str())
                .collect::<Vec<_>>(),
        )
        .bind::<Array<diesel::sql_types::Uuid>, _>(
            bids.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        )
        .bind::<Array<Int4>, _>(bids.iter().map(|(_, u)| u.remaining).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(
            bids.iter()
                .map(|(_, u)| u.status.as_str())
                .collect::<Vec<_>>(),
        )
        .bind::<Array<Int4>, _>(bids.iter().map(|(_, u)| u.min_fill).collect::<Vec<_>>())
        .bind::<diesel::sql_types::Timestamptz, _>(now)
        .bind::<Array<diesel::sql_types::Uuid>, _>(&postings.moved_accounts)
        .bind::<Array<Numeric>, _>(&postings.moved_amounts)
        .load(connection)?;
    let mut moved = Vec::new();
    for row in changed {
        let side = match row.part.as_str() {
            "offer" => Side::Offer,
            "bid" => Side::Bid,
            _ => {
                if let (Some(account), Some(balance)) = (row.account, row.balance) {
                    moved.push((account, balance));
                }
                continue;
            }
        };
        let (
            Some(skus),
            Some(price),
            Some(remaining),
            Some(status),
            Some(new_remaining),
            Some(new_status),
        ) = (
            row.skus,
            row.price,
            row.remaining,
            row.status,
            row.new_remaining,
            row.new_status,
        )
        else {
            continue;
        };
        let (was, is) = (
            resting_share(remaining, &status),
            resting_share(new_remaining, &new_status),
        );
        add_share(levels, side, &skus, price, (is.0 - was.0, is.1 - was.1));
    }
    Ok(moved)
}

/// Writes the batch; answers the market stream's events it recorded, in order. Three statements
/// whatever orders the batch holds (five round trips with `BEGIN` and `COMMIT`; one more for
/// each kind of rare write below that it holds): the statement whose answers the
/// rest needs (the resting orders' updates, with their states before, and the moved balances);
/// then every insert of orders, contracts, escrow accounts, candles, the ledger, policy decisions
/// and settlements as one statement; then withdrawals, suspensions and policy faults, each its own
/// statement when the batch has any; and last the stream's events with the batch's end
/// (`db::stream::end_statement`): the audit entries appended to the chain, which locks its head,
/// and the matching lease checked. The head is locked after every row this transaction locks in
/// a table others write to (the book's levels, locked in the same statement, are only ever
/// written by the writer holding the lease), as the endpoints that append to the chain do (a key
/// rotation updates the participant, then appends), so that no transaction holding a row the
/// batch needs can wait for the head while the batch waits for that row.
fn write(
    connection: &mut PgConnection,
    writes: &BatchWrites,
    now: DateTime<Utc>,
    lease_token: i64,
) -> QueryResult<Vec<super::stream::StreamEvent>> {
    let mut levels = LevelDeltas::new();
    // Orders placed in this batch are inserted as they stand after it (they do not exist yet
    // when the other orders' updates run).
    let (new_offers, offer_updates) = as_after_batch(&writes.new_offers, &writes.offer_updates);
    let (new_bids, bid_updates) = as_after_batch(&writes.new_bids, &writes.bid_updates);
    for offer in new_offers.iter() {
        let share = resting_share(offer.remaining, offer.status.0.as_str());
        add_share(
            &mut levels,
            Side::Offer,
            std::slice::from_ref(&offer.sku),
            offer.ask_price,
            share,
        );
    }
    for bid in new_bids.iter() {
        let share = resting_share(bid.remaining, bid.status.0.as_str());
        add_share(&mut levels, Side::Bid, &bid.skus, bid.limit_price, share);
    }
    let escrows: HashSet<Uuid> = writes
        .contracts
        .iter()
        .map(|contract| ledger::contract_escrow_account(contract.id))
        .collect();
    let postings = ledger::Postings::of(&writes.ledger, &escrows);
    let moved = update_orders_and_balances(
        connection,
        &offer_updates,
        &bid_updates,
        &postings,
        now,
        &mut levels,
    )?;
    let (ledger_statements, escrow_balances) = postings.statements(moved);
    let mut statements = Vec::new();
    statements.extend(offers_statement(&new_offers));
    statements.extend(bids_statement(&new_bids));
    statements.extend(contracts_statements(&writes.contracts, &escrow_balances));
    statements.extend(super::market::trades_statement(&writes.contracts));
    statements.extend(ledger_statements);
    statements.extend(super::policies::decisions_statement(&writes.decisions, now));
    statements.extend(super::settlement::statements(&writes.settlements));
    if let Some(statement) = super::prepared::all_of(statements) {
        statement.execute(connection)?;
    }
    super::withdrawals::insert(connection, &writes.withdrawals)?;
    for (participant, reason) in &writes.suspensions {
        super::participants::suspend(connection, *participant, reason, now)?;
    }
    super::policies::record_faults(connection, &writes.faults, now)?;
    let audit = super::audit::Entries::of(&writes.audit, now);
    let mut events: Vec<super::stream::StreamEvent> =
        super::stream::end_statement(writes, &levels, audit, lease_token)
            .load::<super::stream::Ended>(connection)?
            .into_iter()
            .filter_map(super::stream::Ended::event)
            .collect();
    events.sort_by_key(|event| event.id);
    Ok(events)
}

/// An order row whose state a batch's update can set.
trait Updatable: Clone {
    fn id(&self) -> Uuid;
    fn apply(&mut self, update: &OrderUpdate);
}

impl Updatable for OfferRow {
    fn id(&self) -> Uuid {
        self.id
    }

    fn apply(&mut self, update: &OrderUpdate) {
        self.remaining = update.remaining;
        self.status = update.status.into();
    }
}

impl Updatable for BidRow {
    fn id(&self) -> Uuid {
        self.id
    }

    fn apply(&mut self, update: &OrderUpdate) {
        self.remaining = update.remaining;
        self.status = update.status.into();
        self.min_fill = update.min_fill;
    }
}

/// The batch's new orders as they stand after it, and the updates left for orders placed before
/// it. Borrows both when no new order was updated (the common case).
fn as_after_batch<'a, R: Updatable>(
    rows: &'a [R],
    updates: &'a HashMap<Uuid, OrderUpdate>,
) -> (Cow<'a, [R]>, Cow<'a, HashMap<Uuid, OrderUpdate>>) {
    if !rows.iter().any(|row| updates.contains_key(&row.id())) {
        return (Cow::Borrowed(rows), Cow::Borrowed(updates));
    }
    let mut left = updates.clone();
    let rows = rows
        .iter()
        .map(|row| {
            let mut row = row.clone();
            if let Some(update) = left.remove(&row.id()) {
                row.apply(&update);
            }
            row
        })
        .collect();
    (Cow::Owned(rows), Cow::Owned(left))
}

/// The statement inserting new offers: its text never changes, whatever their number
/// (PostgreSQL parses and plans it once per session).
fn offers_statement(rows: &[OfferRow]) -> Option<Prepared<'_>> {
    use diesel::sql_types::{Int2, Int8, Jsonb, Timestamptz, Uuid as SqlUuid};
    if rows.is_empty() {
        return None;
    }
    let texts = |pick: fn(&OfferRow) -> &str| rows.iter().map(pick).collect::<Vec<&str>>();
    let times = |pick: fn(&OfferRow) -> DateTime<Utc>| rows.iter().map(pick).collect::<Vec<_>>();
    let int4s = |pick: fn(&OfferRow) -> i32| rows.iter().map(pick).collect::<Vec<_>>();
    super::prepared::prepared(
        "INSERT INTO offers (id, seq, provider_id, cluster, hub, sku, quantity, window_start, window_end, \
         ask_price, green_share, attributes, status, remaining, idempotency_key, request_hash, created_at, updated_at) \
         SELECT * FROM unnest($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)",
    )
    .bind::<Array<SqlUuid>, _>(rows.iter().map(|r| r.id).collect::<Vec<_>>())
    .bind::<Array<Int8>, _>(rows.iter().map(|r| r.seq).collect::<Vec<_>>())
    .bind::<Array<SqlUuid>, _>(rows.iter().map(|r| r.provider_id).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(texts(|r| &r.cluster))
    .bind::<Array<Text>, _>(texts(|r| &r.hub))
    .bind::<Array<Text>, _>(texts(|r| &r.sku))
    .bind::<Array<Int4>, _>(int4s(|r| r.quantity))
    .bind::<Array<Timestamptz>, _>(times(|r| r.window_start))
    .bind::<Array<Timestamptz>, _>(times(|r| r.window_end))
    .bind::<Array<Numeric>, _>(rows.iter().map(|r| r.ask_price).collect::<Vec<_>>())
    .bind::<Array<Int2>, _>(rows.iter().map(|r| r.green_share).collect::<Vec<_>>())
    .bind::<Array<Jsonb>, _>(rows.iter().map(|r| &r.attributes).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(texts(|r| r.status.0.as_str()))
    .bind::<Array<Int4>, _>(int4s(|r| r.remaining))
    .bind::<Array<Text>, _>(texts(|r| &r.idempotency_key))
    .bind::<Array<Text>, _>(texts(|r| &r.request_hash))
    .bind::<Array<Timestamptz>, _>(times(|r| r.created_at))
    .bind::<Array<Timestamptz>, _>(times(|r| r.updated_at))
    .into()
}

/// The statement inserting new bids: its text never changes, whatever their number. Their
/// list columns (`skus`, `hubs`, `requested_hubs`) differ in length from bid to bid, which one
/// array parameter per column cannot carry (PostgreSQL's arrays are rectangular): each list
/// travels as its array literal and is read back by a cast.
fn bids_statement(rows: &[BidRow]) -> Option<Prepared<'_>> {
    use diesel::sql_types::{Int2, Int8, Jsonb, Nullable, Timestamptz, Uuid as SqlUuid};
    if rows.is_empty() {
        return None;
    }
    let texts = |pick: fn(&BidRow) -> &str| rows.iter().map(pick).collect::<Vec<&str>>();
    let times = |pick: fn(&BidRow) -> DateTime<Utc>| rows.iter().map(pick).collect::<Vec<_>>();
    let int4s = |pick: fn(&BidRow) -> i32| rows.iter().map(pick).collect::<Vec<_>>();
    let lists = |pick: fn(&BidRow) -> &[String]| {
        rows.iter()
            .map(|r| text_array_literal(pick(r)))
            .collect::<Vec<_>>()
    };
    super::prepared::prepared(
        "INSERT INTO bids (id, seq, buyer_id, skus, quantity, window_start, window_end, limit_price, hubs, \
         requested_hubs, data_origin, max_latency_ms, min_green_share, data_class, time_in_force, expires_at, \
         min_fill, unit_hold, status, remaining, idempotency_key, request_hash, created_at, updated_at, reasons) \
         SELECT id, seq, buyer_id, skus::text[], quantity, window_start, window_end, limit_price, hubs::text[], \
                requested_hubs::text[], data_origin, max_latency_ms, min_green_share, data_class, time_in_force, \
                expires_at, min_fill, unit_hold, status, remaining, idempotency_key, request_hash, created_at, \
                updated_at, reasons \
         FROM unnest($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, \
                     $21, $22, $23, $24, $25) \
           AS v(id, seq, buyer_id, skus, quantity, window_start, window_end, limit_price, hubs, requested_hubs, \
                data_origin, max_latency_ms, min_green_share, data_class, time_in_force, expires_at, min_fill, \
                unit_hold, status, remaining, idempotency_key, request_hash, created_at, updated_at, reasons)",
    )
    .bind::<Array<SqlUuid>, _>(rows.iter().map(|r| r.id).collect::<Vec<_>>())
    .bind::<Array<Int8>, _>(rows.iter().map(|r| r.seq).collect::<Vec<_>>())
    .bind::<Array<SqlUuid>, _>(rows.iter().map(|r| r.buyer_id).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(lists(|r| &r.skus))
    .bind::<Array<Int4>, _>(int4s(|r| r.quantity))
    .bind::<Array<Timestamptz>, _>(times(|r| r.window_start))
    .bind::<Array<Timestamptz>, _>(times(|r| r.window_end))
    .bind::<Array<Numeric>, _>(rows.iter().map(|r| r.limit_price).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(lists(|r| &r.hubs))
    .bind::<Array<Nullable<Text>>, _>(
        rows.iter()
            .map(|r| r.requested_hubs.as_deref().map(text_array_literal))
            .collect::<Vec<_>>(),
    )
    .bind::<Array<Nullable<Text>>, _>(rows.iter().map(|r| r.data_origin.as_deref()).collect::<Vec<_>>())
    .bind::<Array<Nullable<Int4>>, _>(rows.iter().map(|r| r.max_latency_ms).collect::<Vec<_>>())
    .bind::<Array<Int2>, _>(rows.iter().map(|r| r.min_green_share).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(texts(|r| r.data_class.0.as_str()))
    .bind::<Array<Text>, _>(texts(|r| r.time_in_force.0.as_str()))
    .bind::<Array<Nullable<Timestamptz>>, _>(rows.iter().map(|r| r.expires_at).collect::<Vec<_>>())
    .bind::<Array<Int4>, _>(int4s(|r| r.min_fill))
    .bind::<Array<Numeric>, _>(rows.iter().map(|r| r.unit_hold).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(texts(|r| r.status.0.as_str()))
    .bind::<Array<Int4>, _>(int4s(|r| r.remaining))
    .bind::<Array<Text>, _>(texts(|r| &r.idempotency_key))
    .bind::<Array<Text>, _>(texts(|r| &r.request_hash))
    .bind::<Array<Timestamptz>, _>(times(|r| r.created_at))
    .bind::<Array<Timestamptz>, _>(times(|r| r.updated_at))
    .bind::<Array<Jsonb>, _>(rows.iter().map(|r| &r.reasons).collect::<Vec<_>>())
    .into()
}

/// A `text[]` literal holding exactly `items`: every element quoted, `"` and `\` escaped, so
/// any text survives the cast back.
fn text_array_literal(items: &[String]) -> String {
    let mut literal =
        String::with_capacity(2 + items.iter().map(|item| item.len() + 3).sum::<usize>());
    literal.push('{');
    for (index, item) in items.iter().enumerate() {
        if index > 0 {
            literal.push(',');
        }
        literal.push('"');
        for character in item.chars() {
            if matches!(character, '"' | '\\') {
                literal.push('\\');
            }
            literal.push(character);
        }
        literal.push('"');
    }
    literal.push('}');
    literal
}

/// The statements inserting contracts and opening their escrow accounts, each account holding
/// its balance after the batch (`escrow_balances`, by account; the batch's ledger moves no
/// balance of an account it opens). Their texts never change.
fn contracts_statements<'a>(
    rows: &'a [ContractRow],
    escrow_balances: &HashMap<Uuid, Decimal>,
) -> Vec<Prepared<'a>> {
    use diesel::sql_types::{Jsonb, Nullable, Timestamptz, Uuid as SqlUuid};
    if rows.is_empty() {
        return Vec::new();
    }
    let column = |pick: fn(&ContractRow) -> Uuid| rows.iter().map(pick).collect::<Vec<Uuid>>();
    let texts = |pick: fn(&ContractRow) -> &str| rows.iter().map(pick).collect::<Vec<&str>>();
    let ids = column(|r| r.id);
    let escrows: Vec<Uuid> = ids
        .iter()
        .map(|id| ledger::contract_escrow_account(*id))
        .collect();
    // An account opens at the sum of the batch's entries on it: zero when it has none (a fill's
    // zero amount posts no entry), which is its balance by definition, not a guess.
    let balances: Vec<Decimal> = escrows
        .iter()
        .map(|account| {
            escrow_balances
                .get(account)
                .copied()
                .unwrap_or(Decimal::ZERO)
        })
        .collect();
    let contracts = prepared(
        "INSERT INTO contracts (id, bid_id, offer_id, buyer_id, provider_id, hub, cluster, sku, data_origin, units, \
         window_start, window_end, hours, unit_price, notional, levy_bps, maker, status, decisions, created_at) \
         SELECT * FROM unnest($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)",
    )
    .bind::<Array<SqlUuid>, _>(ids.clone())
    .bind::<Array<SqlUuid>, _>(column(|r| r.bid_id))
    .bind::<Array<SqlUuid>, _>(column(|r| r.offer_id))
    .bind::<Array<SqlUuid>, _>(column(|r| r.buyer_id))
    .bind::<Array<SqlUuid>, _>(column(|r| r.provider_id))
    .bind::<Array<Text>, _>(texts(|r| &r.hub))
    .bind::<Array<Text>, _>(texts(|r| &r.cluster))
    .bind::<Array<Text>, _>(texts(|r| &r.sku))
    .bind::<Array<Nullable<Text>>, _>(rows.iter().map(|r| r.data_origin.as_deref()).collect::<Vec<_>>())
    .bind::<Array<Int4>, _>(rows.iter().map(|r| r.units).collect::<Vec<_>>())
    .bind::<Array<Timestamptz>, _>(rows.iter().map(|r| r.window_start).collect::<Vec<_>>())
    .bind::<Array<Timestamptz>, _>(rows.iter().map(|r| r.window_end).collect::<Vec<_>>())
    .bind::<Array<Int4>, _>(rows.iter().map(|r| r.hours).collect::<Vec<_>>())
    .bind::<Array<Numeric>, _>(rows.iter().map(|r| r.unit_price).collect::<Vec<_>>())
    .bind::<Array<Numeric>, _>(rows.iter().map(|r| r.notional).collect::<Vec<_>>())
    .bind::<Array<Int4>, _>(rows.iter().map(|r| r.levy_bps).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(texts(|r| r.maker.0.as_str()))
    .bind::<Array<Text>, _>(texts(|r| r.status.0.as_str()))
    .bind::<Array<Jsonb>, _>(rows.iter().map(|r| &r.decisions).collect::<Vec<_>>())
    .bind::<Array<Timestamptz>, _>(rows.iter().map(|r| r.created_at).collect::<Vec<_>>());
    let accounts = prepared(
        "INSERT INTO accounts (id, kind, contract_id, balance) \
         SELECT a, 'contract_escrow', c, b FROM unnest($1, $2, $3) AS t(a, c, b)",
    )
    .bind::<Array<SqlUuid>, _>(escrows)
    .bind::<Array<SqlUuid>, _>(ids)
    .bind::<Array<Numeric>, _>(balances);
    vec![contracts, accounts]
}

#[derive(QueryableByName)]
struct KeyedOrder {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    owner: Uuid,
    #[diesel(sql_type = Text)]
    idempotency_key: String,
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    id: Uuid,
    #[diesel(sql_type = Text)]
    request_hash: String,
}

/// Orders of `table` (whose owner column is `owner`) already placed under any of these exact
/// (owner, key) pairs: key → (id, request hash). Joins on the pairs, so each is one probe of the
/// unique (owner, key) index, however many orders an owner has.
fn existing(
    connection: &mut PgConnection,
    table: &str,
    owner: &str,
    keys: &[(Uuid, String)],
) -> QueryResult<HashMap<(Uuid, String), (Uuid, String)>> {
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    let owners: Vec<Uuid> = keys.iter().map(|(owner, _)| *owner).collect();
    let names: Vec<&str> = keys.iter().map(|(_, key)| key.as_str()).collect();
    let rows: Vec<KeyedOrder> = super::prepared::prepared(&format!(
        "SELECT o.{owner} AS owner, o.idempotency_key, o.id, o.request_hash FROM {table} o \
         JOIN unnest($1, $2) AS k(owner, key) ON o.{owner} = k.owner AND o.idempotency_key = k.key"
    ))
    .bind::<Array<diesel::sql_types::Uuid>, _>(&owners)
    .bind::<Array<Text>, _>(&names)
    .load(connection)?;
    Ok(rows
        .into_iter()
        .map(|row| ((row.owner, row.idempotency_key), (row.id, row.request_hash)))
        .collect())
}

/// Offers already placed under any of these (provider, key) pairs: key → (id, request hash).
pub fn existing_offers(
    connection: &mut PgConnection,
    keys: &[(Uuid, String)],
) -> QueryResult<HashMap<(Uuid, String), (Uuid, String)>> {
    existing(connection, "offers", "provider_id", keys)
}

/// Bids already placed under any of these (buyer, key) pairs: key → (id, request hash).
pub fn existing_bids(
    connection: &mut PgConnection,
    keys: &[(Uuid, String)],
) -> QueryResult<HashMap<(Uuid, String), (Uuid, String)>> {
    existing(connection, "bids", "buyer_id", keys)
}

/// Units of an offer that one contract sold, over the contract's window.
#[derive(Debug, Clone, Copy)]
pub struct SoldUnits {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub units: i32,
}

/// A resting offer with what its contracts sold.
#[derive(Debug, Clone)]
pub struct RestingOffer {
    pub row: OfferRow,
    pub sold: Vec<SoldUnits>,
}

/// `status IN ('open', 'partially_filled')` written into the query's text, not bound: the
/// writer's sessions keep one generic plan per statement (`db::open_for_writer`), and only a
/// condition the planner can read proves that the resting orders' partial indexes
/// (`offers_resting`, `bids_resting`) hold every row asked for. With the statuses bound, the book's
/// rebuild would walk every order ever placed.
fn resting_literally() -> diesel::expression::SqlLiteral<diesel::sql_types::Bool> {
    diesel::dsl::sql(&format!("status IN ({})", super::types::resting_sql()))
}

/// At most `limit` resting offers numbered after `after_seq`, in arrival order, each with what
/// its contracts sold. The book is read page by page so that a large one never sits in memory
/// twice (rows and engine) at start-up.
pub fn resting_offers_after(
    connection: &mut PgConnection,
    after_seq: i64,
    limit: i64,
) -> QueryResult<Vec<RestingOffer>> {
    let rows: Vec<OfferRow> = offers::table
        .filter(resting_literally())
        .filter(offers::seq.gt(after_seq))
        .order(offers::seq)
        .limit(limit)
        .select(OfferRow::as_select())
        .load(connection)?;
    let ids: Vec<Uuid> = rows.iter().map(|row| row.id).collect();
    let sold: Vec<(Uuid, DateTime<Utc>, DateTime<Utc>, i32)> = contracts::table
        .filter(contracts::offer_id.eq_any(&ids))
        .select((
            contracts::offer_id,
            contracts::window_start,
            contracts::window_end,
            contracts::units,
        ))
        .load(connection)?;
    let mut by_offer: HashMap<Uuid, Vec<SoldUnits>> = HashMap::new();
    for (offer, start, end, units) in sold {
        by_offer
            .entry(offer)
            .or_default()
            .push(SoldUnits { start, end, units });
    }
    Ok(rows
        .into_iter()
        .map(|row| {
            let sold = by_offer.remove(&row.id).unwrap_or_default();
            RestingOffer { row, sold }
        })
        .collect())
}

/// At most `limit` resting bids numbered after `after_seq`, in arrival order.
pub fn resting_bids_after(
    connection: &mut PgConnection,
    after_seq: i64,
    limit: i64,
) -> QueryResult<Vec<BidRow>> {
    bids::table
        .filter(resting_literally())
        .filter(bids::seq.gt(after_seq))
        .order(bids::seq)
        .limit(limit)
        .select(BidRow::as_select())
        .load(connection)
}

/// The highest order number ever given, 0 if none.
pub fn last_seq(connection: &mut PgConnection) -> QueryResult<i64> {
    let offers: Option<i64> = offers::table
        .select(diesel::dsl::max(offers::seq))
        .first(connection)?;
    let bids: Option<i64> = bids::table
        .select(diesel::dsl::max(bids::seq))
        .first(connection)?;
    Ok(offers.unwrap_or(0).max(bids.unwrap_or(0)))
}

/// One contract.
pub fn contract(connection: &mut PgConnection, id: Uuid) -> QueryResult<Option<ContractRow>> {
    contracts::table
        .find(id)
        .select(ContractRow::as_select())
        .first(connection)
        .optional()
}

/// The contracts an order produced when it arrived (it was the taker), oldest first.
pub fn contracts_taken_by(
    connection: &mut PgConnection,
    side: Side,
    id: Uuid,
) -> QueryResult<Vec<ContractRow>> {
    let query = contracts::table
        .select(ContractRow::as_select())
        .order(contracts::seq)
        .into_boxed();
    let query = match side {
        Side::Bid => query.filter(
            contracts::bid_id
                .eq(id)
                .and(contracts::maker.eq(StoredSide(Side::Offer))),
        ),
        Side::Offer => query.filter(
            contracts::offer_id
                .eq(id)
                .and(contracts::maker.eq(StoredSide(Side::Bid))),
        ),
    };
    query.load(connection)
}

/// What offers and bids have in common as stored: who placed them, where they stand, how they are
/// read one at a time and a page at a time. One table per side; everything else is shared.
pub trait StoredOrder: Sized + Send + 'static {
    /// Which side of the book this is.
    const SIDE: Side;
    /// How the API shows it.
    type Wire: serde::Serialize;
    /// The participant who placed it (a provider or a buyer).
    fn owner(&self) -> Uuid;
    /// Its place in the sequence of orders.
    fn seq(&self) -> i64;
    fn status(&self) -> OrderStatus;
    fn to_wire(&self) -> Self::Wire;
    /// One order.
    fn load(connection: &mut PgConnection, id: Uuid) -> QueryResult<Option<Self>>;
    /// A page, newest first: `owner` = None lists everyone's.
    fn list(
        connection: &mut PgConnection,
        owner: Option<Uuid>,
        status: Option<OrderStatus>,
        before_seq: Option<i64>,
        limit: i64,
    ) -> QueryResult<Vec<Self>>;
}

/// [`StoredOrder`] for one side: its row, table and owner column.
macro_rules! stored_order {
    ($row:ident, $side:expr, $wire:ty, $table:ident, $owner:ident) => {
        impl StoredOrder for $row {
            const SIDE: Side = $side;
            type Wire = $wire;

            fn owner(&self) -> Uuid {
                self.$owner
            }

            fn seq(&self) -> i64 {
                self.seq
            }

            fn status(&self) -> OrderStatus {
                self.status.0
            }

            fn to_wire(&self) -> $wire {
                $row::to_wire(self)
            }

            fn load(connection: &mut PgConnection, id: Uuid) -> QueryResult<Option<Self>> {
                $table::table
                    .find(id)
                    .select($row::as_select())
                    .first(connection)
                    .optional()
            }

            fn list(
                connection: &mut PgConnection,
                owner: Option<Uuid>,
                status: Option<OrderStatus>,
                before_seq: Option<i64>,
                limit: i64,
            ) -> QueryResult<Vec<Self>> {
                let mut query = $table::table
                    .select($row::as_select())
                    .order($table::seq.desc())
                    .limit(limit)
                    .into_boxed();
                if let Some(owner) = owner {
                    query = query.filter($table::$owner.eq(owner));
                }
                if let Some(status) = status {
                    query = query.filter($table::status.eq(StoredOrderStatus(status)));
                }
                if let Some(before) = before_seq {
                    query = query.filter($table::seq.lt(before));
                }
                query.load(connection)
            }
        }
    };
}

stored_order!(OfferRow, Side::Offer, Offer, offers, provider_id);
stored_order!(BidRow, Side::Bid, Bid, bids, buyer_id);

/// Filters of a contract listing.
#[derive(Debug, Default, Clone)]
pub struct ContractFilter {
    /// Only contracts where this participant is buyer or provider.
    pub party: Option<Uuid>,
    pub hub: Option<String>,
    pub sku: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

/// A contract's public columns: all but the participant ids and the decisions.
#[derive(Queryable, Selectable)]
#[diesel(table_name = contracts)]
struct PublicContract {
    id: Uuid,
    bid_id: Uuid,
    offer_id: Uuid,
    hub: String,
    cluster: String,
    sku: String,
    units: i32,
    window_start: DateTime<Utc>,
    window_end: DateTime<Utc>,
    hours: i32,
    unit_price: Decimal,
    notional: Decimal,
    levy_bps: i32,
    maker: StoredSide,
    status: StoredContractStatus,
    created_at: DateTime<Utc>,
}

/// Recent trades for the public: contracts without participant ids, newest first (their
/// decisions, whose inputs name the participants, are not even read).
pub fn trades(
    connection: &mut PgConnection,
    hub: Option<&str>,
    sku: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<Trade>> {
    let mut query = contracts::table
        .select(PublicContract::as_select())
        .order(contracts::seq.desc())
        .limit(limit)
        .into_boxed();
    if let Some(hub) = hub {
        query = query.filter(contracts::hub.eq(hub.to_owned()));
    }
    if let Some(sku) = sku {
        query = query.filter(contracts::sku.eq(sku.to_owned()));
    }
    let rows: Vec<PublicContract> = query.load(connection)?;
    Ok(rows
        .into_iter()
        .map(|row| Trade {
            id: row.id,
            bid_id: row.bid_id,
            offer_id: row.offer_id,
            hub: row.hub,
            cluster: row.cluster,
            sku: row.sku,
            units: row.units as u32,
            window: Window {
                start: row.window_start,
                end: row.window_end,
            },
            hours: row.hours as u32,
            unit_price: row.unit_price.normalize(),
            notional: row.notional.normalize(),
            levy_bps: row.levy_bps as u32,
            maker: row.maker.0,
            status: row.status.0,
            created_at: row.created_at,
        })
        .collect())
}

/// Resting offers (cheapest first) and bids (highest first) aggregated by price.
pub fn book(
    connection: &mut PgConnection,
    hub: Option<&str>,
    sku: Option<&str>,
    levels_max: i64,
) -> QueryResult<(Vec<BookLevel>, Vec<BookLevel>)> {
    #[derive(QueryableByName)]
    struct Level {
        #[diesel(sql_type = Numeric)]
        price: Decimal,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        units: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        orders: i64,
        #[diesel(sql_type = Array<Text>)]
        hubs: Vec<String>,
        #[diesel(sql_type = diesel::sql_types::Int2)]
        green_min: i16,
        #[diesel(sql_type = diesel::sql_types::Int2)]
        green_max: i16,
        #[diesel(sql_type = diesel::sql_types::Timestamptz)]
        window_start: DateTime<Utc>,
        #[diesel(sql_type = diesel::sql_types::Timestamptz)]
        window_end: DateTime<Utc>,
    }
    let resting = resting_sql();
    let offers: Vec<Level> = diesel::sql_query(format!(
        "SELECT ask_price AS price, sum(remaining)::bigint AS units, count(*) AS orders, \
         array_agg(DISTINCT hub ORDER BY hub) AS hubs, min(green_share) AS green_min, max(green_share) AS green_max, \
         min(window_start) AS window_start, max(window_end) AS window_end FROM offers \
         WHERE status IN ({resting}) AND ($1::text IS NULL OR hub = $1) AND ($2::text IS NULL OR sku = $2) \
         GROUP BY ask_price ORDER BY ask_price ASC LIMIT $3",
    ))
    .bind::<diesel::sql_types::Nullable<Text>, _>(hub)
    .bind::<diesel::sql_types::Nullable<Text>, _>(sku)
    .bind::<diesel::sql_types::BigInt, _>(levels_max)
    .load(connection)?;
    // A bid names several hubs: the level's hubs are the union of its bids'. One pass over the
    // resting bids for the levels, one over the bids of the levels shown for their hubs.
    let bids: Vec<Level> = diesel::sql_query(format!(
        "WITH resting AS (SELECT limit_price, remaining, hubs, min_green_share, window_start, window_end FROM bids \
           WHERE status IN ({resting}) AND ($1::text IS NULL OR $1 = ANY(hubs)) AND ($2::text IS NULL OR $2 = ANY(skus))), \
         levels AS (SELECT limit_price, sum(remaining)::bigint AS units, count(*) AS orders, \
           min(min_green_share) AS green_min, max(min_green_share) AS green_max, \
           min(window_start) AS window_start, max(window_end) AS window_end FROM resting \
           GROUP BY limit_price ORDER BY limit_price DESC LIMIT $3), \
         hubs AS (SELECT r.limit_price, array_agg(DISTINCT h ORDER BY h) AS hubs \
           FROM resting r JOIN levels l USING (limit_price), unnest(r.hubs) AS h GROUP BY r.limit_price) \
         SELECT l.limit_price AS price, l.units, l.orders, coalesce(h.hubs, '{{}}') AS hubs, l.green_min, \
           l.green_max, l.window_start, l.window_end FROM levels l LEFT JOIN hubs h USING (limit_price) \
         ORDER BY l.limit_price DESC",
    ))
    .bind::<diesel::sql_types::Nullable<Text>, _>(hub)
    .bind::<diesel::sql_types::Nullable<Text>, _>(sku)
    .bind::<diesel::sql_types::BigInt, _>(levels_max)
    .load(connection)?;
    let level = |level: Level| BookLevel {
        price: level.price.normalize(),
        units: level.units as u64,
        orders: level.orders as u64,
        hubs: level.hubs,
        green_share_min: level.green_min.clamp(0, 100) as u8,
        green_share_max: level.green_max.clamp(0, 100) as u8,
        window: Some(Window {
            start: level.window_start,
            end: level.window_end,
        }),
    };
    Ok((
        offers.into_iter().map(level).collect(),
        bids.into_iter().map(level).collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::text_array_literal;

    #[test]
    fn a_text_array_literal_quotes_every_element_and_escapes_quotes_and_backslashes() {
        let items = |texts: &[&str]| texts.iter().map(|t| t.to_string()).collect::<Vec<_>>();
        assert_eq!(text_array_literal(&[]), "{}");
        assert_eq!(text_array_literal(&items(&["nx", "gz"])), r#"{"nx","gz"}"#);
        assert_eq!(
            text_array_literal(&items(&["a,b", "c\"d", "e\\f", "NULL", "{}", ""])),
            r#"{"a,b","c\"d","e\\f","NULL","{}",""}"#
        );
    }
}
