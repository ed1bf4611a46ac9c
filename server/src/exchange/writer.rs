//! The writer thread: gathers a batch, reads what it needs, matches it (policies run here, outside
//! any database transaction), writes all its effects in one transaction, and only then answers.
//!
//! A batch that fails to commit is never answered as a whole: the book is rebuilt from the
//! database and the batch's commands are applied again one by one, so a command that cannot be
//! written fails alone and every other command in its batch still commits.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::{SubsecRound, Utc};
use tokio::sync::mpsc;
use uuid::Uuid;

use super::effects::{BatchReads, Effects};
use super::feed::MarketFeed;
use super::policies::{ActivePolicies, ActivePolicy, HubPolicies};
use super::recovery::{compile_active, compile_stored, load_engine};
use super::{Command, ExchangeConfig, Outcome, Payload, Placed, Reply};
use crate::db::audit::SYSTEM_ACTOR;
use crate::db::reference::Reference;
use crate::db::{self, Failure, StoreError, orders, settlement, withdrawals};
use crate::error::ApiError;
use crate::market::Engine;
use crate::policy::{PolicyHost, PolicyKind, Registry};
use crate::telemetry::Metrics;

pub struct Writer {
    /// The connection that holds the database's writer lock; every batch commits through it, so
    /// a writer that lost the lock (its session ended) cannot commit anything.
    connection: db::Connection,
    registry: Arc<Registry>,
    host: Arc<PolicyHost>,
    /// Active policies found not compiled are sent here, to be compiled off the writer thread.
    compile_requests: std::sync::mpsc::Sender<(String, PolicyKind)>,
    /// When each missing policy was last handed to the compiler thread.
    compile_requested: HashMap<String, Instant>,
    /// The levy account of each hub, loaded on the first settlement.
    hub_levy_accounts: HashMap<String, Uuid>,
    database_url: String,
    engine: Engine,
    reference: Arc<Reference>,
    config: ExchangeConfig,
    metrics: Metrics,
    /// Set while the book may be ahead of the database (a batch is being applied, or failed).
    stale: bool,
    /// When rebuilding last failed: the expiry ticks alone do not reconnect again for a while
    /// (orders still do at once), so a writer whose database is gone does not hammer it.
    rebuild_failed_at: Option<Instant>,
    /// Where committed batches' market events go live.
    feed: MarketFeed,
    /// The id of the last market event published (or stored when the writer started): after a
    /// batch whose commit went unanswered, the writer publishes what was stored after it.
    published: i64,
    /// Cleared when the writer lock was lost: from then on every command is refused, and
    /// `/readyz` says `follower`.
    leading: Arc<AtomicBool>,
}

/// What the writer tells the rest of the process as it goes.
pub struct Outlets {
    /// Cleared when the writer lock is lost.
    pub leading: Arc<AtomicBool>,
    /// Each committed batch's market events.
    pub feed: MarketFeed,
}

/// Why a batch produced no answers.
#[derive(Debug, thiserror::Error)]
enum BatchError {
    #[error("the order book could not be rebuilt: {0}")]
    Rebuild(anyhow::Error),
    #[error("this process no longer holds the writer lock")]
    Deposed,
    #[error("database: {0}")]
    Database(#[from] StoreError),
}

impl BatchError {
    /// Whether one command's data may have caused it (a constraint, a value out of range), so
    /// that applying the batch in parts can isolate that command. A lost connection, a book that
    /// cannot be rebuilt or a lost lock is nobody's command: the whole batch is answered at once.
    fn may_be_one_commands_fault(&self) -> bool {
        match self {
            BatchError::Database(error) => matches!(
                db::failure(error),
                Failure::InsufficientFunds
                    | Failure::IdempotencyRace
                    | Failure::SerializationFailure
                    | Failure::Refused
            ),
            _ => false,
        }
    }

    /// What the sender of a command in a failed batch is told.
    fn api_error(&self) -> ApiError {
        match self {
            BatchError::Rebuild(_) => {
                ApiError::unavailable("the order book is being rebuilt; retry")
            }
            BatchError::Deposed => ApiError::busy(
                "writer_unavailable",
                "another exchange process now applies orders for this database",
                5,
            ),
            BatchError::Database(error) if db::failure(error) == Failure::ConnectionLost => {
                ApiError::unavailable(
                    "the database connection was lost; retry with the same idempotency key",
                )
            }
            BatchError::Database(error) => ApiError::internal(format!("database: {error}")),
        }
    }
}

/// How long after a failed rebuild the expiry ticks alone try again.
const REBUILD_RETRY_AFTER: Duration = Duration::from_secs(5);

/// How long after a failed compile the writer asks for an active policy to be compiled again.
const COMPILE_RETRY_AFTER: Duration = Duration::from_secs(30);

impl Writer {
    /// Connects, takes the database's writer lock (`None` if another process holds it after
    /// `writer_lock_wait_ms`), compiles the active policies and rebuilds the book.
    pub fn open(
        database_url: &str,
        reference: Arc<Reference>,
        config: ExchangeConfig,
        metrics: Metrics,
        host: Arc<PolicyHost>,
        registry: Arc<Registry>,
        outlets: Outlets,
    ) -> anyhow::Result<Option<Self>> {
        let Outlets { leading, feed } = outlets;
        let mut connection = db::open(database_url)?;
        if !orders::take_writer_lock(
            &mut connection,
            Duration::from_millis(config.writer_lock_wait_ms),
        )? {
            return Ok(None);
        }
        compile_active(&mut connection, &host, &registry)?;
        let engine = load_engine(&mut connection, &reference, config)?;
        db::stream::rebuild_levels(&mut connection)?;
        let published = db::stream::newest(&mut connection)?;
        let (offers, bids) = engine.resting();
        tracing::info!(offers, bids, "order book rebuilt from the database");
        let compile_requests =
            spawn_compiler(database_url.to_owned(), host.clone(), registry.clone())?;
        Ok(Some(Writer {
            connection,
            registry,
            host,
            compile_requests,
            compile_requested: HashMap::new(),
            hub_levy_accounts: HashMap::new(),
            database_url: database_url.to_owned(),
            engine,
            reference,
            config,
            metrics,
            stale: false,
            rebuild_failed_at: None,
            leading,
            feed,
            published,
        }))
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
            let live = self.refuse_late(batch);
            if !live.is_empty() {
                self.process(live);
            }
        }
    }

    /// Answers the commands that waited longer than their deadline (503 `deadline_exceeded`,
    /// never applied: their senders may have given up) and returns the others.
    fn refuse_late(&self, batch: Vec<Command>) -> Vec<Command> {
        let deadline = Duration::from_millis(self.config.command_deadline_ms);
        let (live, late): (Vec<Command>, Vec<Command>) = batch
            .into_iter()
            .partition(|command| command.enqueued.elapsed() <= deadline);
        for command in late {
            self.metrics
                .events
                .with_label_values(&["command_deadline_exceeded"])
                .inc();
            let error = ApiError::busy(
                "deadline_exceeded",
                format!(
                    "the command waited more than {} ms for the matching engine; it was not applied",
                    deadline.as_millis()
                ),
                1,
            );
            command.reply.send_error(error, &self.metrics);
        }
        live
    }

    /// Applies a batch and answers it. If one command's data may have failed it, the book is
    /// rebuilt and the batch applied again in halves, down to the command that fails alone.
    fn process(&mut self, batch: Vec<Command>) {
        let started = Instant::now();
        let mut payloads = Vec::with_capacity(batch.len());
        let mut senders = Vec::with_capacity(batch.len());
        for command in batch {
            payloads.push(command.payload);
            senders.push((command.reply, command.enqueued, command.slot));
        }
        match self.attempt(&payloads) {
            Ok(outcomes) => {
                self.metrics.batch_commands.observe(payloads.len() as f64);
                self.metrics
                    .batch_seconds
                    .observe(started.elapsed().as_secs_f64());
                for ((reply, _, _slot), outcome) in senders.into_iter().zip(outcomes) {
                    reply.answer(outcome, &self.metrics);
                }
            }
            Err(error) => {
                let mut commands: Vec<Command> = payloads
                    .into_iter()
                    .zip(senders)
                    .filter(|(payload, _)| !matches!(payload, Payload::Tick))
                    .map(|(payload, (reply, enqueued, slot))| Command {
                        payload,
                        reply,
                        enqueued,
                        slot,
                    })
                    .collect();
                if commands.len() > 1 && error.may_be_one_commands_fault() {
                    tracing::warn!(%error, commands = commands.len(), "a batch failed; applying it in halves");
                    self.metrics
                        .events
                        .with_label_values(&["batch_split"])
                        .inc();
                    let second = commands.split_off(commands.len() / 2);
                    for half in [commands, second] {
                        let live = self.refuse_late(half);
                        if !live.is_empty() {
                            self.process(live);
                        }
                    }
                    return;
                }
                tracing::error!(%error, commands = commands.len(), "a batch failed");
                for command in commands {
                    command.reply.send_error(error.api_error(), &self.metrics);
                }
            }
        }
    }

    /// Reads, matches and writes one batch; the outcomes in command order.
    fn attempt(&mut self, payloads: &[Payload]) -> Result<Vec<Outcome>, BatchError> {
        if !self.leading.load(Ordering::SeqCst) {
            return Err(BatchError::Deposed);
        }
        if self.stale {
            let ticks_only = payloads
                .iter()
                .all(|payload| matches!(payload, Payload::Tick));
            if ticks_only
                && self
                    .rebuild_failed_at
                    .is_some_and(|failed| failed.elapsed() < REBUILD_RETRY_AFTER)
            {
                return Ok(payloads.iter().map(|_| Outcome::Nothing).collect());
            }
            if let Err(error) = self.rebuild() {
                self.rebuild_failed_at = Some(Instant::now());
                return Err(error);
            }
            self.rebuild_failed_at = None;
        }
        // Until this batch commits, memory may run ahead of the database (or the connection may
        // have gone): any error leaves `stale` set, and the next batch reconnects and rebuilds.
        self.stale = true;
        // Microseconds: what PostgreSQL keeps, so answers equal later reads.
        let now = Utc::now().trunc_subsecs(6);
        let active = self.active_policies()?;
        let reads = self.read_batch(payloads)?;

        let Writer {
            connection,
            engine,
            reference,
            host,
            config,
            metrics,
            hub_levy_accounts,
            stale,
            feed,
            published,
            ..
        } = self;
        let mut policies = HubPolicies::new(host, &active, reference, config.hub_budget);
        let mut effects = Effects::new(reference, now, reads);
        for removal in engine.expire(now.timestamp()) {
            effects.removal(removal, SYSTEM_ACTOR.to_owned());
        }
        let mut outcomes = Vec::with_capacity(payloads.len());
        for payload in payloads {
            let outcome = match payload {
                Payload::PlaceOffer(request) => {
                    Outcome::Offer(effects.place_offer(engine, &mut policies, request))
                }
                Payload::PlaceBid(request) => {
                    Outcome::Bid(effects.place_bid(engine, &mut policies, request))
                }
                Payload::Cancel { owner, side, seq } => {
                    Outcome::Cancel(match engine.side_of(*seq) {
                        Some(resting) if resting == *side => match engine.cancel(*seq, *owner) {
                            Ok(removal) => {
                                effects.removal(removal, owner.to_string());
                                Ok(())
                            }
                            Err(_) => Err(ApiError::conflict(
                                "order_not_open",
                                "the order is no longer resting",
                            )),
                        },
                        _ => Err(ApiError::conflict(
                            "order_not_open",
                            "the order is no longer resting",
                        )),
                    })
                }
                Payload::Settle {
                    provider,
                    contract,
                    delivery,
                } => Outcome::Settle(effects.settle(
                    *provider,
                    *contract,
                    delivery,
                    config.exchange_fee_bps,
                    hub_levy_accounts,
                )),
                Payload::Suspend {
                    participant,
                    reason,
                    actor,
                } => Outcome::Suspend(Ok(effects.suspend(engine, *participant, reason, actor))),
                Payload::Quote(request) => Outcome::Quote(
                    policies.quoting(|policies| effects.quote(engine, policies, request)),
                ),
                Payload::Withdraw(request) => Outcome::Withdraw(effects.withdraw(request)),
                Payload::Tick => Outcome::Nothing,
            };
            outcomes.push(outcome);
        }
        for fault in &policies.faults {
            metrics
                .policy_faults
                .with_label_values(&[fault.class.as_str()])
                .inc();
        }
        effects.writes.faults = policies.faults;
        effects.writes.decisions = policies.decisions;
        let events = orders::write_batch(connection, &effects.writes, now)?;
        *stale = false;
        if let Some(last) = events.last() {
            *published = last.id;
        }
        feed.publish(events);
        metrics.contracts.inc_by(effects.contracts_created);
        Ok(outcomes)
    }

    /// The active policy of every hub, as compiled in this process. One that is not compiled is
    /// `Unavailable` (its pairs fail closed) and is handed to the compiler thread, once.
    fn active_policies(&mut self) -> Result<ActivePolicies, BatchError> {
        let mut active = ActivePolicies::new();
        let rows = crate::db::policies::active(&mut self.connection)?;
        // The active policies stay compiled, whatever else the registry drops.
        self.registry
            .pin(rows.iter().map(|(_, _, digest)| digest.clone()).collect());
        for (hub, kind, digest) in rows {
            let (Some(hub_id), Some(kind)) =
                (self.reference.hub_id(&hub), PolicyKind::parse(&kind))
            else {
                continue;
            };
            let policy = match self.registry.get(&digest) {
                Some(compiled) if compiled.kind == kind => ActivePolicy::Ready(compiled),
                _ => {
                    let due = self
                        .compile_requested
                        .get(&digest)
                        .is_none_or(|at| at.elapsed() >= COMPILE_RETRY_AFTER);
                    if due {
                        tracing::warn!(%hub, %digest, "an active policy is not compiled here yet: its pairs fail closed");
                        self.compile_requested
                            .insert(digest.clone(), Instant::now());
                        let _ = self.compile_requests.send((digest.clone(), kind));
                    }
                    ActivePolicy::Unavailable { digest }
                }
            };
            active.insert((hub_id, kind), policy);
        }
        Ok(active)
    }

    /// What the batch needs from the database: earlier orders under its idempotency keys, its
    /// buyers' available money, the contracts it settles. Read without locks: only this writer
    /// places orders, holds and settlements, and money that arrives meanwhile only adds.
    fn read_batch(&mut self, payloads: &[Payload]) -> Result<BatchReads, BatchError> {
        let mut offer_keys = Vec::new();
        let mut bid_keys = Vec::new();
        let mut quoting = Vec::new();
        let mut withdrawal_keys = Vec::new();
        let mut withdrawing_buyers = Vec::new();
        let mut withdrawal_accounts = Vec::new();
        let mut settling = Vec::new();
        for payload in payloads {
            match payload {
                Payload::PlaceOffer(request) => {
                    offer_keys.push((request.spec.provider, request.idempotency_key.clone()))
                }
                Payload::PlaceBid(request) => {
                    bid_keys.push((request.spec.buyer, request.idempotency_key.clone()))
                }
                Payload::Quote(request) => quoting.push(request.spec.buyer),
                Payload::Withdraw(request) => {
                    withdrawal_keys.push((request.participant, request.idempotency_key.clone()));
                    if request.buyer {
                        withdrawing_buyers.push(request.participant);
                    } else {
                        withdrawal_accounts.push(request.account);
                    }
                }
                Payload::Settle { contract, .. } => settling.push(*contract),
                Payload::Cancel { .. } | Payload::Suspend { .. } | Payload::Tick => {}
            }
        }
        let connection = &mut self.connection;
        let mut reads = BatchReads {
            seen_offers: orders::existing_offers(connection, &offer_keys)?,
            seen_bids: orders::existing_bids(connection, &bid_keys)?,
            ..BatchReads::default()
        };
        let buyers: Vec<Uuid> = bid_keys
            .iter()
            .map(|(buyer, _)| *buyer)
            .chain(quoting.iter().copied())
            .chain(withdrawing_buyers.iter().copied())
            .collect();
        if !buyers.is_empty() {
            reads.available = orders::available_balances(connection, &buyers)?;
        }
        if !withdrawal_keys.is_empty() {
            reads.seen_withdrawals = withdrawals::seen(connection, &withdrawal_keys)?;
            reads.balances = withdrawals::balances(connection, &withdrawal_accounts)?;
        }
        // A token checked just before a suspension may still bring an order here: refuse it.
        let placers: Vec<Uuid> = offer_keys
            .iter()
            .map(|(provider, _)| *provider)
            .chain(buyers.iter().copied())
            .chain(withdrawal_keys.iter().map(|(participant, _)| *participant))
            .collect();
        if !placers.is_empty() {
            reads.suspended = crate::db::participants::suspended_among(connection, &placers)?;
        }
        if !settling.is_empty() {
            reads.contract_facts = settlement::contract_facts(connection, &settling)?;
            reads.settled = settlement::existing(connection, &settling)?;
            if self.hub_levy_accounts.is_empty() {
                self.hub_levy_accounts = settlement::hub_levy_accounts(connection)?;
            }
        }
        Ok(reads)
    }

    /// Rebuilds the book from the database, reconnecting (and taking the writer lock again) if
    /// the connection was lost.
    fn rebuild(&mut self) -> Result<(), BatchError> {
        if crate::db::ping(&mut self.connection).is_err() {
            // The old session (and its lock) goes with the old connection, dropped here; the new
            // session waits a while for the lock, which the old one may still hold on the server.
            self.connection = db::open(&self.database_url).map_err(BatchError::Rebuild)?;
            let wait = Duration::from_millis(self.config.writer_lock_wait_ms);
            if !orders::take_writer_lock(&mut self.connection, wait)? {
                tracing::error!(
                    "the writer lock was taken by another process: this process stops applying orders"
                );
                self.leading.store(false, Ordering::SeqCst);
                return Err(BatchError::Deposed);
            }
        }
        self.engine = load_engine(&mut self.connection, &self.reference, self.config)
            .map_err(BatchError::Rebuild)?;
        db::stream::rebuild_levels(&mut self.connection)?;
        // A commit whose answer was lost may have stored events nobody was sent.
        let unpublished = db::stream::after(&mut self.connection, self.published, i64::MAX)?;
        if let Some(last) = unpublished.last() {
            tracing::warn!(
                events = unpublished.len(),
                "publishing market events of a batch whose commit went unanswered"
            );
            self.published = last.id;
        }
        self.feed.publish(unpublished);
        self.stale = false;
        Ok(())
    }
}

/// A thread that compiles active policies the writer found not compiled (after another process
/// activated them, or when start-up could not), so the writer never compiles.
fn spawn_compiler(
    database_url: String,
    host: Arc<PolicyHost>,
    registry: Arc<Registry>,
) -> anyhow::Result<std::sync::mpsc::Sender<(String, PolicyKind)>> {
    let (sender, receiver) = std::sync::mpsc::channel::<(String, PolicyKind)>();
    std::thread::Builder::new().name("suanli-policy-compiler".into()).spawn(move || {
        for (digest, kind) in receiver {
            let compiled = db::open(&database_url)
                .and_then(|mut connection| compile_stored(&mut connection, &host, &registry, &digest, kind));
            match compiled {
                Ok(()) => tracing::info!(%digest, "active policy compiled"),
                Err(error) => tracing::error!(%digest, %error, "an active policy does not compile: its hub's pairs fail closed"),
            }
        }
    })?;
    Ok(sender)
}

impl Reply {
    fn answer(self, outcome: Outcome, metrics: &Metrics) {
        match (self, outcome) {
            (Reply::Offer(reply), Outcome::Offer(result)) => {
                metrics
                    .orders
                    .with_label_values(&["offer", order_outcome(&result)])
                    .inc();
                let _ = reply.send(result);
            }
            (Reply::Bid(reply), Outcome::Bid(result)) => {
                metrics
                    .orders
                    .with_label_values(&["bid", order_outcome(&result)])
                    .inc();
                let _ = reply.send(result);
            }
            (Reply::Cancel(reply), Outcome::Cancel(result)) => {
                let _ = reply.send(result);
            }
            (Reply::Settle(reply), Outcome::Settle(result)) => {
                if result.is_ok() {
                    metrics
                        .events
                        .with_label_values(&["contract_settled"])
                        .inc();
                }
                let _ = reply.send(result);
            }
            (Reply::Suspend(reply), Outcome::Suspend(result)) => {
                let _ = reply.send(result);
            }
            (Reply::Quote(reply), Outcome::Quote(result)) => {
                let _ = reply.send(result);
            }
            (Reply::Withdraw(reply), Outcome::Withdraw(result)) => {
                if result.is_ok() {
                    metrics
                        .events
                        .with_label_values(&["withdrawal_requested"])
                        .inc();
                }
                let _ = reply.send(result);
            }
            (Reply::Nobody, _) => {}
            (reply, _) => reply.send_error(
                ApiError::internal("a command's outcome does not match its reply"),
                metrics,
            ),
        }
    }

    /// Answers with an error, whatever was asked.
    fn send_error(self, error: ApiError, metrics: &Metrics) {
        match self {
            Reply::Offer(reply) => {
                metrics
                    .orders
                    .with_label_values(&["offer", "refused"])
                    .inc();
                let _ = reply.send(Err(error));
            }
            Reply::Bid(reply) => {
                metrics.orders.with_label_values(&["bid", "refused"]).inc();
                let _ = reply.send(Err(error));
            }
            Reply::Cancel(reply) => drop(reply.send(Err(error))),
            Reply::Settle(reply) => drop(reply.send(Err(error))),
            Reply::Suspend(reply) => drop(reply.send(Err(error))),
            Reply::Quote(reply) => drop(reply.send(Err(error))),
            Reply::Withdraw(reply) => drop(reply.send(Err(error))),
            Reply::Nobody => {}
        }
    }
}

fn order_outcome<T>(result: &Result<Placed<T>, ApiError>) -> &'static str {
    match result {
        Ok(Placed::New(_)) => "accepted",
        Ok(Placed::Existing(_)) => "replayed",
        Err(_) => "refused",
    }
}
