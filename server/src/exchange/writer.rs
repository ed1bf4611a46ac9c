//! The writer thread: batches commands, matches them, writes their effects, commits, answers.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, SubsecRound, TimeZone, Utc};
use diesel::{Connection, PgConnection};
use rust_decimal::Decimal;
use serde_json::json;
use suanli_sdk::{DataClass, PlacedBid, PlacedOffer, Side, TimeInForce};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::{BidRequest, Command, ExchangeConfig, OfferRequest, Placed};
use crate::db::audit::SYSTEM_ACTOR;
use crate::db::ledger::{self, kind};
use crate::db::settlement;
use crate::db::orders::{self, BatchWrites, BidRow, ContractRow, LedgerTransaction, OfferRow};
use crate::db::reference::Reference;
use crate::error::ApiError;
use super::policies::{ActivePolicies, HubPolicies};
use crate::market::{BidSpec, Engine, Fill, HubSet, Hours, OfferSpec, Policies, Removal, RemovalReason};
use crate::policy::{Compiled, PolicyHost, PolicyKind};
use crate::telemetry::Metrics;

pub struct Writer {
    connection: PgConnection,
    host: Arc<PolicyHost>,
    /// Compiled policies by digest, loaded on first use.
    compiled: HashMap<String, Arc<Compiled>>,
    active: ActivePolicies,
    /// The levy account of each hub, loaded on the first settlement.
    hub_levy_accounts: HashMap<String, Uuid>,
    database_url: String,
    engine: Engine,
    reference: Arc<Reference>,
    config: ExchangeConfig,
    metrics: Metrics,
    /// Set when a batch failed: the book must be rebuilt before the next one.
    stale: bool,
}

/// What a command answered, kept until the batch commits.
enum Answer {
    Offer(oneshot::Sender<Result<Placed<PlacedOffer>, ApiError>>, Result<Placed<PlacedOffer>, ApiError>),
    Bid(oneshot::Sender<Result<Placed<PlacedBid>, ApiError>>, Result<Placed<PlacedBid>, ApiError>),
    Cancel(oneshot::Sender<Result<(), ApiError>>, Result<(), ApiError>),
    Settle(oneshot::Sender<Result<suanli_sdk::Settlement, ApiError>>, Result<suanli_sdk::Settlement, ApiError>),
}


impl Writer {
    /// Connects and rebuilds the book.
    pub fn open(
        database_url: &str,
        reference: Arc<Reference>,
        config: ExchangeConfig,
        metrics: Metrics,
        host: Arc<PolicyHost>,
    ) -> anyhow::Result<Self> {
        let mut connection = PgConnection::establish(database_url)?;
        let engine = load_engine(&mut connection, &reference, config)?;
        let (offers, bids) = engine.resting();
        tracing::info!(offers, bids, "order book rebuilt from the database");
        Ok(Writer {
            connection,
            host,
            compiled: HashMap::new(),
            active: ActivePolicies::new(),
            hub_levy_accounts: HashMap::new(),
            database_url: database_url.to_owned(),
            engine,
            reference,
            config,
            metrics,
            stale: false,
        })
    }

    /// Loads the active policy of every hub, compiling those not seen before.
    fn refresh_policies(
        connection: &mut PgConnection,
        host: &Arc<PolicyHost>,
        reference: &Reference,
        compiled: &mut HashMap<String, Arc<Compiled>>,
    ) -> diesel::QueryResult<ActivePolicies> {
        let mut active = ActivePolicies::new();
        for (hub, kind, digest) in crate::db::policies::active(connection)? {
            let (Some(hub_id), Some(kind)) = (reference.hub_id(&hub), PolicyKind::parse(&kind)) else { continue };
            if !compiled.contains_key(&digest) {
                let Some((bytes, _)) = crate::db::policies::module(connection, &digest)? else { continue };
                match host.compile(kind, &bytes) {
                    Ok(policy) => {
                        compiled.insert(digest.clone(), policy);
                    }
                    Err(error) => {
                        tracing::error!(%error, %hub, %digest, "active policy does not compile");
                        continue;
                    }
                }
            }
            active.insert((hub_id, kind), compiled[&digest].clone());
        }
        Ok(active)
    }

    /// Serves commands until every sender is gone.
    pub fn run(mut self, mut receiver: mpsc::Receiver<Command>) {
        while let Some(first) = receiver.blocking_recv() {
            let mut batch = vec![first];
            while batch.len() < self.config.batch_commands_max {
                match receiver.try_recv() {
                    Ok(command) => batch.push(command),
                    Err(_) => break,
                }
            }
            self.process(batch);
        }
    }

    fn process(&mut self, batch: Vec<Command>) {
        let started = Instant::now();
        let commands = batch.len();
        if self.stale && !self.rebuild() {
            answer_all_unavailable(batch);
            return;
        }
        // Microseconds: what PostgreSQL keeps, so answers equal later reads.
        let now = Utc::now().trunc_subsecs(6);
        let Writer { connection, engine, reference, metrics, host, compiled, active, hub_levy_accounts, config, .. } = self;
        let exchange_fee_bps = &config.exchange_fee_bps;
        let mut answers = Vec::with_capacity(batch.len());
        let result = connection.transaction::<_, diesel::result::Error, _>(|connection| {
            *active = Self::refresh_policies(connection, host, reference, compiled)?;
            let mut policies = HubPolicies { host, active, reference, faults: Vec::new() };
            let mut builder = Builder::new(reference, now);
            for removal in engine.expire(now.timestamp()) {
                builder.removal(removal, SYSTEM_ACTOR.to_owned());
            }
            let offer_keys: Vec<(Uuid, String)> = batch
                .iter()
                .filter_map(|command| match command {
                    Command::PlaceOffer(request, _) => Some((request.spec.provider, request.idempotency_key.clone())),
                    _ => None,
                })
                .collect();
            let bid_keys: Vec<(Uuid, String)> = batch
                .iter()
                .filter_map(|command| match command {
                    Command::PlaceBid(request, _) => Some((request.spec.buyer, request.idempotency_key.clone())),
                    _ => None,
                })
                .collect();
            builder.seen_offers = orders::existing_offers(connection, &offer_keys)?;
            builder.seen_bids = orders::existing_bids(connection, &bid_keys)?;
            let buyers: Vec<Uuid> = bid_keys.iter().map(|(buyer, _)| *buyer).collect();
            builder.available = orders::lock_available(connection, &buyers)?;
            let settling: Vec<Uuid> = batch
                .iter()
                .filter_map(|command| match command {
                    Command::Settle { contract, .. } => Some(*contract),
                    _ => None,
                })
                .collect();
            if !settling.is_empty() {
                builder.contract_facts = settlement::contract_facts(connection, &settling)?;
                builder.settled = settlement::existing(connection, &settling)?;
                if hub_levy_accounts.is_empty() {
                    *hub_levy_accounts = settlement::hub_levy_accounts(connection)?;
                }
            }

            for command in batch {
                match command {
                    Command::PlaceOffer(request, reply) => {
                        let result = builder.place_offer(engine, &mut policies, *request);
                        answers.push(Answer::Offer(reply, result));
                    }
                    Command::PlaceBid(request, reply) => {
                        let result = builder.place_bid(engine, &mut policies, *request);
                        answers.push(Answer::Bid(reply, result));
                    }
                    Command::Cancel { owner, side, seq, reply } => {
                        let result = match engine.cancel(seq, owner) {
                            Ok(removal) if removal.state.side == side => {
                                builder.removal(removal, owner.to_string());
                                Ok(())
                            }
                            _ => Err(ApiError::conflict("order_not_open", "the order is no longer resting")),
                        };
                        answers.push(Answer::Cancel(reply, result));
                    }
                    Command::Settle { provider, contract, delivery, reply } => {
                        let result = builder.settle(provider, contract, &delivery, *exchange_fee_bps, hub_levy_accounts);
                        answers.push(Answer::Settle(reply, result));
                    }
                    Command::Tick => {}
                }
            }
            for fault in &policies.faults {
                metrics.policy_faults.with_label_values(&[fault.class.as_str()]).inc();
            }
            builder.writes.faults = policies.faults;
            orders::write(connection, &builder.writes, now)?;
            Ok(builder.contracts_created)
        });
        match result {
            Ok(contracts_created) => {
                metrics.contracts.inc_by(contracts_created);
                metrics.batch_commands.observe(commands as f64);
                metrics.batch_seconds.observe(started.elapsed().as_secs_f64());
                for answer in answers {
                    answer.send(metrics);
                }
            }
            Err(error) => {
                tracing::error!(%error, commands, "batch failed to commit; rebuilding the book");
                for answer in answers {
                    answer.fail();
                }
                self.stale = true;
                self.rebuild();
            }
        }
    }

    /// Rebuilds the book from the database (reconnecting if needed); false if it could not.
    fn rebuild(&mut self) -> bool {
        let rebuilt = (|| -> anyhow::Result<Engine> {
            if diesel::RunQueryDsl::execute(diesel::sql_query("SELECT 1"), &mut self.connection).is_err() {
                self.connection = PgConnection::establish(&self.database_url)?;
            }
            load_engine(&mut self.connection, &self.reference, self.config)
        })();
        match rebuilt {
            Ok(engine) => {
                self.engine = engine;
                self.stale = false;
                true
            }
            Err(error) => {
                tracing::error!(%error, "cannot rebuild the order book");
                false
            }
        }
    }
}

impl Answer {
    fn send(self, metrics: &Metrics) {
        match self {
            Answer::Offer(reply, result) => {
                metrics.orders.with_label_values(&["offer", outcome(&result)]).inc();
                let _ = reply.send(result);
            }
            Answer::Bid(reply, result) => {
                metrics.orders.with_label_values(&["bid", outcome(&result)]).inc();
                let _ = reply.send(result);
            }
            Answer::Cancel(reply, result) => {
                let _ = reply.send(result);
            }
            Answer::Settle(reply, result) => {
                if result.is_ok() {
                    metrics.events.with_label_values(&["contract_settled"]).inc();
                }
                let _ = reply.send(result);
            }
        }
    }

    fn fail(self) {
        let error = || ApiError::unavailable("the order could not be committed; retry with the same idempotency key");
        match self {
            Answer::Offer(reply, _) => drop(reply.send(Err(error()))),
            Answer::Bid(reply, _) => drop(reply.send(Err(error()))),
            Answer::Cancel(reply, _) => drop(reply.send(Err(error()))),
            Answer::Settle(reply, _) => drop(reply.send(Err(error()))),
        }
    }
}

fn outcome<T>(result: &Result<Placed<T>, ApiError>) -> &'static str {
    match result {
        Ok(Placed::New(_)) => "accepted",
        Ok(Placed::Existing(_)) => "replayed",
        Err(_) => "refused",
    }
}

fn answer_all_unavailable(batch: Vec<Command>) {
    let error = || ApiError::unavailable("the order book is being rebuilt; retry");
    for command in batch {
        match command {
            Command::PlaceOffer(_, reply) => drop(reply.send(Err(error()))),
            Command::PlaceBid(_, reply) => drop(reply.send(Err(error()))),
            Command::Cancel { reply, .. } => drop(reply.send(Err(error()))),
            Command::Settle { reply, .. } => drop(reply.send(Err(error()))),
            Command::Tick => {}
        }
    }
}

/// Collects the effects of one batch.
struct Builder<'a> {
    reference: &'a Reference,
    now: DateTime<Utc>,
    writes: BatchWrites,
    /// (owner, key) → (order id, request hash), from the database and from this batch.
    seen_offers: HashMap<(Uuid, String), (Uuid, String)>,
    seen_bids: HashMap<(Uuid, String), (Uuid, String)>,
    /// Available balances of the buyers placing bids in this batch, locked.
    available: HashMap<Uuid, Decimal>,
    contracts_created: u64,
    /// Facts of the contracts being settled in this batch.
    contract_facts: HashMap<Uuid, settlement::ContractFacts>,
    /// Settlements stored before or earlier in this batch, by contract.
    settled: HashMap<Uuid, settlement::SettlementRow>,
}

impl<'a> Builder<'a> {
    fn new(reference: &'a Reference, now: DateTime<Utc>) -> Self {
        Builder {
            reference,
            now,
            writes: BatchWrites::default(),
            seen_offers: HashMap::new(),
            seen_bids: HashMap::new(),
            available: HashMap::new(),
            contracts_created: 0,
            contract_facts: HashMap::new(),
            settled: HashMap::new(),
        }
    }

    /// Settles a contract: pro-rata charge, refund, fee, levy, provider's pay; once.
    fn settle(
        &mut self,
        provider: Uuid,
        contract: Uuid,
        delivery: &suanli_sdk::NewDelivery,
        exchange_fee_bps: u32,
        hub_levy_accounts: &HashMap<String, Uuid>,
    ) -> Result<suanli_sdk::Settlement, ApiError> {
        let outcome = settlement::decide(
            self.contract_facts.get(&contract),
            self.settled.get(&contract),
            provider,
            delivery,
            exchange_fee_bps,
        )?;
        let (facts, contracted, amounts) = match outcome {
            settlement::Outcome::Repeat(first) => return Ok(first),
            settlement::Outcome::New { facts, contracted, amounts } => (facts, contracted, amounts),
        };
        let levy_account = *hub_levy_accounts
            .get(&facts.hub)
            .ok_or_else(|| ApiError::internal(format!("no levy account for hub {}", facts.hub)))?;
        let transaction_id = self.ledger("settlement", contract, vec![
            (ledger::contract_escrow_account(contract), -facts.notional),
            (ledger::participant_account_id(facts.buyer_id, kind::BUYER_AVAILABLE), amounts.refunded),
            (ledger::participant_account_id(facts.provider_id, kind::PROVIDER), amounts.provider_paid),
            (ledger::EXCHANGE_FEES_ACCOUNT, amounts.exchange_fee),
            (levy_account, amounts.hub_levy),
        ]);
        self.credit_available(facts.buyer_id, amounts.refunded);
        let (row, payload) =
            settlement::new_row(&facts, contracted, &amounts, delivery, exchange_fee_bps, transaction_id, self.now);
        self.writes.audit.push((provider.to_string(), "contract_settled", payload));
        let wire = row.to_wire();
        self.settled.insert(contract, row.clone());
        self.writes.settlements.push(row);
        Ok(wire)
    }

    fn place_offer(
        &mut self,
        engine: &mut Engine,
        policies: &mut dyn Policies,
        request: OfferRequest,
    ) -> Result<Placed<PlacedOffer>, ApiError> {
        let key = (request.spec.provider, request.idempotency_key.clone());
        if let Some((id, hash)) = self.seen_offers.get(&key) {
            return replay(*id, hash, &request.request_hash);
        }
        if request.spec.window.start_seconds() <= self.now.timestamp() {
            return Err(ApiError::unprocessable("window_started", "the window must start in the future"));
        }
        let outcome = engine.submit_offer(request.spec.clone(), self.now.timestamp(), policies);
        self.seen_offers.insert(key, (request.spec.id, request.request_hash.clone()));
        let spec = &request.spec;
        let row = OfferRow {
            id: spec.id,
            seq: outcome.state.seq as i64,
            provider_id: spec.provider,
            cluster: spec.cluster.clone(),
            hub: self.reference.hub_by_id(spec.hub).code.clone(),
            sku: self.reference.sku_by_id(spec.sku).code.clone(),
            quantity: spec.quantity as i32,
            window_start: request.window.start,
            window_end: request.window.end,
            ask_price: spec.ask_price,
            green_share: i16::from(spec.green_share),
            attributes: serde_json::Value::Object(request.attributes),
            status: outcome.state.status.as_str().to_owned(),
            remaining: outcome.state.remaining as i32,
            idempotency_key: request.idempotency_key,
            request_hash: request.request_hash,
            created_at: self.now,
            updated_at: self.now,
        };
        self.writes.audit.push((
            spec.provider.to_string(),
            "offer_accepted",
            json!({
                "offer_id": row.id, "seq": row.seq, "provider_id": row.provider_id, "cluster": row.cluster,
                "hub": row.hub, "sku": row.sku, "quantity": row.quantity,
                "window": {"start": row.window_start, "end": row.window_end},
                "ask_price": row.ask_price.normalize().to_string(), "green_share": row.green_share,
            }),
        ));
        let offer = row.to_wire();
        self.writes.new_offers.push(row);
        let contracts = outcome.fills.iter().map(|fill| self.fill(fill, None)).collect();
        Ok(Placed::New(PlacedOffer { offer, contracts }))
    }

    fn place_bid(
        &mut self,
        engine: &mut Engine,
        policies: &mut dyn Policies,
        request: BidRequest,
    ) -> Result<Placed<PlacedBid>, ApiError> {
        let buyer = request.spec.buyer;
        let key = (buyer, request.idempotency_key.clone());
        if let Some((id, hash)) = self.seen_bids.get(&key) {
            return replay(*id, hash, &request.request_hash);
        }
        if request.spec.expiry() <= self.now.timestamp() {
            return Err(ApiError::unprocessable("window_started", "the bid expired before it could be placed"));
        }
        let hold = request.hold();
        let available = self.available.get(&buyer).copied().unwrap_or_default();
        if available < hold {
            return Err(ApiError::unprocessable(
                "insufficient_funds",
                format!("the bid holds {hold} CNY; {available} CNY is available"),
            ));
        }
        self.available.insert(buyer, available - hold);
        self.ledger("bid_hold", request.spec.id, vec![
            (ledger::participant_account_id(buyer, kind::BUYER_AVAILABLE), -hold),
            (ledger::participant_account_id(buyer, kind::BUYER_HELD), hold),
        ]);

        let outcome = engine.submit_bid(request.spec.clone(), self.now.timestamp(), policies);
        self.seen_bids.insert(key, (request.spec.id, request.request_hash.clone()));
        let spec = &request.spec;
        let row = BidRow {
            id: spec.id,
            seq: outcome.state.seq as i64,
            buyer_id: buyer,
            skus: request.sku_codes,
            quantity: spec.quantity as i32,
            window_start: request.window.start,
            window_end: request.window.end,
            limit_price: spec.limit_price,
            hubs: request.hub_codes,
            requested_hubs: request.requested_hubs,
            data_origin: request.data_origin.clone(),
            max_latency_ms: request.max_latency_ms.map(|ms| ms as i32),
            min_green_share: i16::from(spec.min_green_share),
            data_class: spec.data_class.as_str().to_owned(),
            time_in_force: spec.time_in_force.as_str().to_owned(),
            expires_at: request.expires_at,
            min_fill: outcome.state.min_fill as i32,
            unit_hold: spec.unit_hold,
            status: outcome.state.status.as_str().to_owned(),
            remaining: outcome.state.remaining as i32,
            idempotency_key: request.idempotency_key,
            request_hash: request.request_hash,
            created_at: self.now,
            updated_at: self.now,
        };
        self.writes.audit.push((
            buyer.to_string(),
            "bid_accepted",
            json!({
                "bid_id": row.id, "seq": row.seq, "buyer_id": buyer, "skus": row.skus, "quantity": row.quantity,
                "window": {"start": row.window_start, "end": row.window_end},
                "limit_price": row.limit_price.normalize().to_string(), "hubs": row.hubs,
                "data_origin": row.data_origin, "min_green_share": row.min_green_share, "data_class": row.data_class,
                "time_in_force": row.time_in_force, "expires_at": row.expires_at, "min_fill": spec.min_fill,
                "hold": hold.to_string(),
            }),
        ));
        let bid_wire = row.to_wire();
        self.writes.new_bids.push(row);
        let contracts = outcome.fills.iter().map(|fill| self.fill(fill, request.data_origin.clone())).collect();
        if outcome.hold_released > Decimal::ZERO {
            self.release(buyer, spec.id, outcome.hold_released);
            self.writes.audit.push((
                buyer.to_string(),
                "bid_cancelled",
                json!({
                    "bid_id": spec.id, "reason": unfilled_reason(spec.time_in_force),
                    "unfilled": spec.quantity - outcome.fills.iter().map(|f| f.units).sum::<u32>(),
                    "hold_released": outcome.hold_released.to_string(),
                }),
            ));
        }
        let mut bid = bid_wire;
        if !bid.status.is_resting() {
            bid.held = Decimal::ZERO;
        }
        Ok(Placed::New(PlacedBid { bid, contracts }))
    }

    /// Turns a fill into a contract, its escrow funding and its audit entry.
    fn fill(&mut self, fill: &Fill, data_origin: Option<String>) -> suanli_sdk::Contract {
        let contract_id = Uuid::new_v4();
        let hours = fill.window.len();
        let row = ContractRow {
            id: contract_id,
            seq: 0,
            bid_id: fill.bid_id,
            offer_id: fill.offer_id,
            buyer_id: fill.buyer,
            provider_id: fill.provider,
            hub: self.reference.hub_by_id(fill.hub).code.clone(),
            cluster: fill.cluster.clone(),
            sku: self.reference.sku_by_id(fill.sku).code.clone(),
            data_origin,
            units: fill.units as i32,
            window_start: hour_start(fill.window.start),
            window_end: hour_start(fill.window.end),
            hours: hours as i32,
            unit_price: fill.unit_price,
            notional: fill.notional,
            levy_bps: fill.levy_bps as i32,
            maker: fill.maker.as_str().to_owned(),
            status: "active".into(),
            decisions: serde_json::to_value(&fill.decisions).unwrap_or_else(|_| json!([])),
            created_at: self.now,
        };
        self.ledger("fill", contract_id, vec![
            (ledger::participant_account_id(fill.buyer, kind::BUYER_HELD), -(fill.notional + fill.hold_released)),
            (ledger::contract_escrow_account(contract_id), fill.notional),
            (ledger::participant_account_id(fill.buyer, kind::BUYER_AVAILABLE), fill.hold_released),
        ]);
        self.credit_available(fill.buyer, fill.hold_released);
        let counterparty = fill.counterparty;
        match counterparty.side {
            Side::Bid => {
                self.writes.bid_updates.insert(
                    counterparty.id,
                    (counterparty.remaining as i32, counterparty.status.as_str(), counterparty.min_fill as i32),
                );
            }
            Side::Offer => {
                self.writes.offer_updates.insert(counterparty.id, (counterparty.remaining as i32, counterparty.status.as_str()));
            }
        }
        self.writes.audit.push((
            SYSTEM_ACTOR.to_owned(),
            "contract_created",
            json!({
                "contract_id": contract_id, "bid_id": row.bid_id, "offer_id": row.offer_id,
                "buyer_id": row.buyer_id, "provider_id": row.provider_id, "hub": row.hub, "cluster": row.cluster,
                "sku": row.sku, "units": row.units, "window": {"start": row.window_start, "end": row.window_end},
                "unit_price": row.unit_price.normalize().to_string(), "notional": row.notional.to_string(),
                "levy_bps": row.levy_bps, "maker": row.maker, "hold_released": fill.hold_released.to_string(),
            }),
        ));
        self.contracts_created += 1;
        let contract = row.to_wire();
        self.writes.contracts.push(row);
        contract
    }

    /// Records an order leaving the book (cancel or expiry) and releases what it held.
    fn removal(&mut self, removal: Removal, actor: String) {
        let state = removal.state;
        let (kind, side) = match (state.side, removal.reason) {
            (Side::Bid, RemovalReason::Cancelled) => ("bid_cancelled", "bid"),
            (Side::Bid, RemovalReason::Expired) => ("bid_expired", "bid"),
            (Side::Offer, RemovalReason::Cancelled) => ("offer_cancelled", "offer"),
            (Side::Offer, RemovalReason::Expired) => ("offer_expired", "offer"),
        };
        match state.side {
            Side::Bid => {
                self.writes.bid_updates.insert(state.id, (0, state.status.as_str(), state.min_fill as i32));
                if removal.hold_released > Decimal::ZERO {
                    self.release(removal.owner, state.id, removal.hold_released);
                }
            }
            Side::Offer => {
                self.writes.offer_updates.insert(state.id, (0, state.status.as_str()));
            }
        }
        self.writes.audit.push((
            actor,
            kind,
            json!({
                format!("{side}_id"): state.id, "seq": state.seq, "unfilled": removal.unfilled,
                "hold_released": removal.hold_released.to_string(),
            }),
        ));
    }

    fn release(&mut self, buyer: Uuid, order: Uuid, amount: Decimal) {
        self.ledger("hold_release", order, vec![
            (ledger::participant_account_id(buyer, kind::BUYER_HELD), -amount),
            (ledger::participant_account_id(buyer, kind::BUYER_AVAILABLE), amount),
        ]);
        self.credit_available(buyer, amount);
    }

    fn credit_available(&mut self, buyer: Uuid, amount: Decimal) {
        if let Some(balance) = self.available.get_mut(&buyer) {
            *balance += amount;
        }
    }

    fn ledger(&mut self, kind: &'static str, reference: Uuid, legs: Vec<(Uuid, Decimal)>) -> Uuid {
        let id = Uuid::new_v4();
        self.writes.ledger.push(LedgerTransaction { id, kind, reference: reference.to_string(), legs });
        id
    }
}

fn replay<T>(id: Uuid, stored_hash: &str, request_hash: &str) -> Result<Placed<T>, ApiError> {
    if stored_hash == request_hash {
        Ok(Placed::Existing(id))
    } else {
        Err(ApiError::conflict("idempotency_conflict", "this idempotency key was already used for a different order"))
    }
}

fn unfilled_reason(time_in_force: TimeInForce) -> &'static str {
    match time_in_force {
        TimeInForce::Fok => "fill_or_kill",
        TimeInForce::Ioc => "immediate_or_cancel",
        _ => "minimum_fill_unreachable",
    }
}

fn hour_start(hour: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(hour * 3600, 0).single().expect("hours within chrono's range")
}

fn hours_of(start: DateTime<Utc>, end: DateTime<Utc>) -> Hours {
    Hours { start: start.timestamp() / 3600, end: end.timestamp() / 3600 }
}

/// Rebuilds the engine from the resting orders in the database, in arrival order.
fn load_engine(connection: &mut PgConnection, reference: &Reference, config: ExchangeConfig) -> anyhow::Result<Engine> {
    let mut engine = Engine::new(config.engine);
    for (row, sold) in orders::resting_offers(connection)? {
        let spec = OfferSpec {
            id: row.id,
            provider: row.provider_id,
            hub: reference.hub_id(&row.hub).ok_or_else(|| anyhow::anyhow!("unknown hub {}", row.hub))?,
            cluster: row.cluster.clone(),
            sku: reference.sku_id(&row.sku).ok_or_else(|| anyhow::anyhow!("unknown sku {}", row.sku))?,
            quantity: row.quantity as u32,
            window: hours_of(row.window_start, row.window_end),
            ask_price: row.ask_price,
            green_share: row.green_share as u8,
            attributes: super::requests::attribute_pairs(row.attributes.as_object().unwrap_or(&Default::default())),
        };
        let sold: Vec<(Hours, u32)> = sold.iter().map(|(start, end, units)| (hours_of(*start, *end), *units as u32)).collect();
        engine.restore_offer(row.seq as u64, spec, &sold);
    }
    for row in orders::resting_bids(connection)? {
        let mut hubs = HubSet::default();
        for code in &row.hubs {
            hubs = hubs.with(reference.hub_id(code).ok_or_else(|| anyhow::anyhow!("unknown hub {code}"))?);
        }
        let skus = row
            .skus
            .iter()
            .map(|code| reference.sku_id(code).ok_or_else(|| anyhow::anyhow!("unknown sku {code}")))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let spec = BidSpec {
            id: row.id,
            buyer: row.buyer_id,
            skus,
            hubs,
            data_origin: row.data_origin.as_deref().and_then(|code| reference.hub_id(code)),
            quantity: row.quantity as u32,
            window: hours_of(row.window_start, row.window_end),
            limit_price: row.limit_price,
            min_green_share: row.min_green_share as u8,
            data_class: DataClass::parse(&row.data_class).unwrap_or_default(),
            time_in_force: TimeInForce::parse(&row.time_in_force).unwrap_or_default(),
            expires_at: row.expires_at.map(|at| at.timestamp()),
            min_fill: row.min_fill as u32,
            unit_hold: row.unit_hold,
        };
        engine.restore_bid(row.seq as u64, spec, row.remaining as u32, row.min_fill as u32);
    }
    engine.ensure_next_seq(orders::last_seq(connection)? as u64 + 1);
    Ok(engine)
}
