//! The writer thread: gathers a batch, reads what it needs, matches it (policies run here, outside
//! any database transaction), hands all its effects to the committer thread, which writes them in
//! one transaction, and answers the batch only once it committed.
//!
//! Pipelined: while batch N commits, batch N+1 gathers commands for up to half a commit
//! ([`Writer::gather`]) and is then read and matched (the engine already holds N's changes); N+1
//! goes to the committer only after N committed, so batches commit one at a time
//! and in order, and answers leave in order. N+1's reads may or may not see N (it commits
//! meanwhile): what N changed is laid over them ([`Pending`]) unless they already include it.
//!
//! A batch that fails to commit is never answered as a whole: the book is rebuilt from the
//! database (the batch matched behind it is matched again) and the batch's commands are applied
//! again in halves, so a command that cannot be written fails alone and every other command in
//! its batch still commits.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, SubsecRound, Utc};
use rust_decimal::Decimal;
use tokio::sync::mpsc;
use uuid::Uuid;

use super::effects::{BatchReads, Effects};
use super::feed::MarketFeed;
use super::policies::{ActivePolicies, ActivePolicy, HubPolicies};
use super::recovery::{compile_active, compile_stored, load_engine};
use super::{Command, ExchangeConfig, Outcome, Payload, Placed, Reply};
use crate::db::audit::SYSTEM_ACTOR;
use crate::db::ledger::{self, kind};
use crate::db::orders::BatchWrites;
use crate::db::reference::Reference;
use crate::db::settlement::SettlementRow;
use crate::db::stream::StreamEvent;
use crate::db::withdrawals::WithdrawalRow;
use crate::db::{self, Failure, StoreError, orders, settlement, withdrawals};
use crate::error::ApiError;
use crate::market::Engine;
use crate::policy::{PolicyHost, PolicyKind, Registry};
use crate::telemetry::Metrics;

pub struct Writer {
    /// The connection every batch commits through; each batch's transaction checks `lease_token`
    /// before it commits (the database's `batch_end`, `db::stream::end_statement`), so a writer whose node lost the matching lease
    /// cannot commit anything. With the committer while a batch commits; `None` after a commit
    /// that panicked.
    connection: Option<db::Connection>,
    /// The fencing token of the matching lease this writer was opened under.
    lease_token: i64,
    /// How long PostgreSQL lets this writer's sessions sit inside a transaction: the lease's
    /// duration, so a paused writer's locks go with its lease.
    idle_transaction_ms: i64,
    /// The connection batches are read through, while the batch before may be committing.
    reader: db::Connection,
    /// Where batches are sent to commit, and where their results come back.
    commits: std::sync::mpsc::SyncSender<Job>,
    committed: mpsc::UnboundedReceiver<Done>,
    /// The batch committing now, if any.
    in_flight: Option<InFlight>,
    /// How long the last batch that committed took, from its hand-over to the committer until
    /// the committer had written it: twice as long as the next batch may gather commands before
    /// it is matched ([`Writer::gather`]).
    commit_time: Duration,
    /// Batches read and matched so far.
    prepared: u64,
    /// Waits for a command or a commit, whichever comes first (and for the end of a gathering).
    runtime: tokio::runtime::Runtime,
    registry: Arc<Registry>,
    host: Arc<PolicyHost>,
    /// Active policies found not compiled are sent here, to be compiled off the writer thread.
    compile_requests: std::sync::mpsc::Sender<(String, PolicyKind)>,
    /// When each missing policy was last handed to the compiler thread.
    compile_requested: HashMap<String, Instant>,
    /// The active policies as last read, (hub, kind, digest); `None` until read, and after a
    /// rebuild. Read again only for a batch that holds a tick or a `PoliciesChanged`, or that
    /// starts after `policies_changed` was set.
    active_rows: Option<Vec<(String, String, String)>>,
    /// Set by whoever changed an active policy; taken (cleared) by the next batch, which reads
    /// them again. Checked after the batch's commands were taken from the queue, so a command
    /// queued after it was set always sees the change.
    policies_changed: Arc<AtomicBool>,
    /// The levy account of each hub, loaded on the first settlement.
    hub_levy_accounts: HashMap<String, Uuid>,
    database_url: String,
    engine: Engine,
    reference: Arc<Reference>,
    config: ExchangeConfig,
    metrics: Metrics,
    /// Set when the book may hold what will never be committed (a batch failed, or its reads
    /// did): the book is rebuilt before the next batch, once no batch is committing.
    stale: bool,
    /// When rebuilding last failed: the expiry ticks alone do not reconnect again for a while
    /// (orders still do at once), so a writer whose database is gone does not hammer it.
    rebuild_failed_at: Option<Instant>,
    /// Where committed batches' market events go live.
    feed: MarketFeed,
    /// The id of the last market event published (or stored when the writer started): after a
    /// batch whose commit went unanswered, the writer publishes what was stored after it.
    published: i64,
    /// Cleared when the matching lease was lost (a batch was fenced off, or the node stepped
    /// down): from then on every command is refused, and `/readyz` says `follower`.
    leading: Arc<AtomicBool>,
}

/// What the writer tells the rest of the process as it goes.
pub struct Outlets {
    /// Cleared when the matching lease is lost.
    pub leading: Arc<AtomicBool>,
    /// Set when a hub's active policy changed (`Exchange::note_policies_changed`).
    pub policies_changed: Arc<AtomicBool>,
    /// Each committed batch's market events.
    pub feed: MarketFeed,
}

/// Why a batch produced no answers.
#[derive(Debug, thiserror::Error)]
enum BatchError {
    #[error("the order book could not be rebuilt: {0}")]
    Rebuild(anyhow::Error),
    #[error("this node no longer holds the matching lease")]
    Deposed,
    #[error("database: {0}")]
    Database(#[from] StoreError),
    #[error("the commit failed inside the exchange: {0}")]
    Commit(String),
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
                "this node no longer applies orders (another node holds the matching lease); \
                 retry with the same idempotency key",
                1,
            ),
            BatchError::Database(error) if db::failure(error) == Failure::ConnectionLost => {
                ApiError::unavailable(
                    "the database connection was lost; retry with the same idempotency key",
                )
            }
            BatchError::Database(error) => ApiError::internal(format!("database: {error}")),
            BatchError::Commit(error) => ApiError::internal(error.clone()),
        }
    }
}

/// The `application_name` of the session every batch commits through.
pub const WRITER_SESSION: &str = "suanli-writer";

/// How long after a failed rebuild the expiry ticks alone try again.
const REBUILD_RETRY_AFTER: Duration = Duration::from_secs(5);

/// When the committer's session first plans its statements again (then after twice as many
/// batches each time): see `db::orders::forget_plans`.
const REPLAN_FIRST_AFTER_BATCHES: u64 = 64;

/// How long after a failed compile the writer asks for an active policy to be compiled again.
const COMPILE_RETRY_AFTER: Duration = Duration::from_secs(30);

impl Writer {
    /// Connects, compiles the active policies and rebuilds the book, for a node that has just
    /// taken the matching lease with `lease_token` (read after the lease was taken, the book
    /// includes every batch the previous holder committed).
    #[allow(clippy::too_many_arguments)]
    pub fn open(
        database_url: &str,
        lease_token: i64,
        reference: Arc<Reference>,
        config: ExchangeConfig,
        metrics: Metrics,
        host: Arc<PolicyHost>,
        registry: Arc<Registry>,
        outlets: Outlets,
    ) -> anyhow::Result<Self> {
        let Outlets {
            leading,
            policies_changed,
            feed,
        } = outlets;
        let idle_transaction_ms = config.lease_duration().as_millis() as i64;
        let mut connection = db::open_for_writer(database_url, Some(WRITER_SESSION))?;
        db::lease::end_idle_transactions_after(&mut connection, idle_transaction_ms)?;
        compile_active(&mut connection, &host, &registry)?;
        let engine = load_engine(&mut connection, &reference, config)?;
        if !db::stream::rebuild_levels(&mut connection, lease_token)? {
            anyhow::bail!("the matching lease was taken by another node while this one opened");
        }
        // Subscribers on this node have had every event up to what the feed published (as a
        // follower, from the database); what the previous leader committed since goes out now.
        let published = match feed.last_published() {
            Some(last) => {
                let unpublished = db::stream::after(&mut connection, last, i64::MAX)?;
                let newest = unpublished.last().map_or(last, |event| event.id);
                feed.publish(unpublished);
                newest
            }
            None => db::stream::newest(&mut connection)?,
        };
        feed.start_at(published);
        let (offers, bids) = engine.resting();
        tracing::info!(offers, bids, "order book rebuilt from the database");
        let compile_requests =
            spawn_compiler(database_url.to_owned(), host.clone(), registry.clone())?;
        let reader = db::open_for_writer(database_url, None)?;
        let (commits, committed) = spawn_committer()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()?;
        Ok(Writer {
            connection: Some(connection),
            lease_token,
            idle_transaction_ms,
            reader,
            commits,
            committed,
            in_flight: None,
            commit_time: Duration::ZERO,
            prepared: 0,
            runtime,
            registry,
            host,
            compile_requests,
            compile_requested: HashMap::new(),
            active_rows: None,
            policies_changed,
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
        })
    }

    /// Serves commands until every sender is gone.
    pub fn run(mut self, mut receiver: mpsc::Receiver<Command>) {
        loop {
            let first = match self.next(&mut receiver) {
                Next::Command(command) => command,
                Next::Committed(done) => {
                    if let Err((error, commands)) = self.complete(done) {
                        self.recover(error, commands);
                    }
                    continue;
                }
                Next::Closed => break,
            };
            let mut batch = vec![first];
            self.gather(&mut receiver, &mut batch);
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
        self.drain();
    }

    /// The next command, or the result of the batch committing now if that comes first.
    fn next(&mut self, receiver: &mut mpsc::Receiver<Command>) -> Next {
        if self.in_flight.is_none() {
            return receiver.blocking_recv().map_or(Next::Closed, Next::Command);
        }
        let committed = &mut self.committed;
        self.runtime.block_on(async {
            tokio::select! {
                biased;
                command = receiver.recv() => command.map_or(Next::Closed, Next::Command),
                done = committed.recv() => Next::Committed(done.unwrap_or_else(Done::lost)),
            }
        })
    }

    /// While a batch commits, lets the next one (`batch`, begun with the command that arrived
    /// first) gather the commands that arrive until half the last commit's time has passed since
    /// the committing batch was handed over, so that it is not cut at its first command and is
    /// still matched, as a rule, before that commit ends. Bigger batches share each commit's
    /// fixed cost (a WAL flush, the round trips, the audit head) among more commands. Stops at
    /// once when the commit is answered (and answers it), or when the batch is full; with no
    /// batch committing, it does not wait at all. The time gathered counts toward each
    /// command's deadline, as any wait in the queue does.
    fn gather(&mut self, receiver: &mut mpsc::Receiver<Command>, batch: &mut Vec<Command>) {
        let Some(flight) = &self.in_flight else {
            return;
        };
        let until = tokio::time::Instant::from_std(flight.submitted + self.commit_time / 2);
        let max = self.config.batch_commands_max;
        let committed = &mut self.committed;
        let done = self.runtime.block_on(async {
            let deadline = tokio::time::sleep_until(until);
            tokio::pin!(deadline);
            while batch.len() < max {
                tokio::select! {
                    biased;
                    done = committed.recv() => return Some(done.unwrap_or_else(Done::lost)),
                    command = receiver.recv() => match command {
                        Some(command) => batch.push(command),
                        // Every sender is gone: the loop finds that out next.
                        None => return None,
                    },
                    () = &mut deadline => return None,
                }
            }
            None
        });
        if let Some(done) = done
            && let Err((error, commands)) = self.complete(done)
        {
            self.recover(error, commands);
        }
    }

    /// Waits for the batch committing now (and whatever its failure makes the writer apply again).
    fn drain(&mut self) {
        while self.in_flight.is_some() {
            if let Err((error, commands)) = self.finish() {
                self.recover(error, commands);
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

    /// Matches a batch while the batch before it commits, then sends it to commit once that one
    /// has. If the batch before failed, this one was matched on a book that will be rebuilt: it
    /// is matched again after the failed one was dealt with.
    fn process(&mut self, batch: Vec<Command>) {
        // After a failure the book is rebuilt, which waits for the batch committing now.
        while self.stale && self.in_flight.is_some() {
            if let Err((error, commands)) = self.finish() {
                self.recover(error, commands);
            }
        }
        let started = Instant::now();
        let (payloads, senders): (Vec<Payload>, Vec<Sender>) = batch
            .into_iter()
            .map(|command| {
                (
                    command.payload,
                    Sender {
                        reply: command.reply,
                        enqueued: command.enqueued,
                        slot: command.slot,
                    },
                )
            })
            .unzip();
        let prepared = self.prepare(&payloads);
        if prepared.is_ok() {
            self.metrics
                .events
                .with_label_values(&["batch_matched"])
                .inc();
        }
        if let Err((error, commands)) = self.finish() {
            drop(prepared);
            self.stale = true;
            self.recover(error, commands);
            let again = self.refuse_late(commands_of(payloads, senders));
            if !again.is_empty() {
                self.process(again);
            }
            return;
        }
        match prepared {
            Ok(prepared) => self.submit(prepared, payloads, senders, started),
            Err(error) => self.recover(error, commands_of(payloads, senders)),
        }
    }

    /// Deals with a batch that produced no answers: if one command's data may have failed it,
    /// the batch is applied again in halves, down to the command that fails alone; otherwise
    /// every command in it is answered with the error.
    fn recover(&mut self, error: BatchError, commands: Vec<Command>) {
        let mut commands: Vec<Command> = commands
            .into_iter()
            .filter(|command| !matches!(command.payload, Payload::Tick))
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

    /// Hands a matched batch to the committer.
    fn submit(
        &mut self,
        prepared: Prepared,
        payloads: Vec<Payload>,
        senders: Vec<Sender>,
        started: Instant,
    ) {
        let Some(writes) = prepared.writes else {
            for (sender, outcome) in senders.into_iter().zip(prepared.outcomes) {
                sender.reply.answer(outcome, &self.metrics);
            }
            return;
        };
        let Some(connection) = self.connection.take() else {
            self.stale = true;
            let error = BatchError::Commit("no connection to commit through".into());
            self.recover(error, commands_of(payloads, senders));
            return;
        };
        let pending = Pending::of(&writes);
        let job = Job {
            connection,
            writes,
            now: prepared.now,
            lease_token: self.lease_token,
        };
        if let Err(std::sync::mpsc::SendError(job)) = self.commits.send(job) {
            // The committer thread is gone (it never is, short of a bug): keep the connection
            // and start another.
            self.connection = Some(job.connection);
            self.stale = true;
            self.restart_committer();
            let error = BatchError::Commit("the committer thread is gone".into());
            self.recover(error, commands_of(payloads, senders));
            return;
        }
        self.in_flight = Some(InFlight {
            payloads,
            senders,
            outcomes: prepared.outcomes,
            contracts_created: prepared.contracts_created,
            pending,
            started,
            submitted: Instant::now(),
        });
    }

    /// Starts a new committer thread in place of one that is gone (short of a bug, never).
    fn restart_committer(&mut self) {
        match spawn_committer() {
            Ok((commits, committed)) => {
                tracing::error!("the committer thread was gone: started another");
                (self.commits, self.committed) = (commits, committed);
            }
            Err(error) => {
                tracing::error!(%error, "the committer thread could not be started again")
            }
        }
    }

    /// Waits until the batch committing now has committed (or failed) and answers it.
    fn finish(&mut self) -> Result<(), (BatchError, Vec<Command>)> {
        if self.in_flight.is_none() {
            return Ok(());
        }
        let done = self.committed.blocking_recv().unwrap_or_else(Done::lost);
        self.complete(done)
    }

    /// Answers the batch committing now with its commit's result; on failure, hands back its
    /// commands unanswered.
    fn complete(&mut self, done: Done) -> Result<(), (BatchError, Vec<Command>)> {
        let Some(flight) = self.in_flight.take() else {
            return Ok(());
        };
        let done_at = done.at;
        self.connection = done.connection;
        if done.lost {
            self.restart_committer();
        }
        let events = match done.result {
            Ok(events) => events,
            Err(BatchError::Deposed) => {
                tracing::error!(
                    lease_token = self.lease_token,
                    "a batch was refused by the matching lease's fencing token: another node leads; \
                     this one stops applying orders"
                );
                self.metrics
                    .events
                    .with_label_values(&["batch_fenced"])
                    .inc();
                self.leading.store(false, Ordering::SeqCst);
                self.stale = true;
                return Err((
                    BatchError::Deposed,
                    commands_of(flight.payloads, flight.senders),
                ));
            }
            Err(error) => {
                // The book holds what was not written: rebuilt before the next batch.
                self.stale = true;
                return Err((error, commands_of(flight.payloads, flight.senders)));
            }
        };
        self.metrics
            .events
            .with_label_values(&["batch_committed"])
            .inc();
        if let Some(last) = events.last() {
            self.published = last.id;
        }
        self.feed.publish(events);
        self.metrics.contracts.inc_by(flight.contracts_created);
        self.metrics
            .batch_commands
            .observe(flight.payloads.len() as f64);
        self.metrics
            .batch_seconds
            .observe(flight.started.elapsed().as_secs_f64());
        self.commit_time = done_at.saturating_duration_since(flight.submitted);
        self.metrics
            .batch_commit_seconds
            .observe(self.commit_time.as_secs_f64());
        for (sender, outcome) in flight.senders.into_iter().zip(flight.outcomes) {
            sender.reply.answer(outcome, &self.metrics);
        }
        Ok(())
    }

    /// Reads and matches one batch: its effects, to be written, and the outcomes in command order.
    /// Runs while the batch before may be committing.
    fn prepare(&mut self, payloads: &[Payload]) -> Result<Prepared, BatchError> {
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
                return Ok(Prepared {
                    writes: None,
                    outcomes: payloads.iter().map(|_| Outcome::Nothing).collect(),
                    contracts_created: 0,
                    now: Utc::now().trunc_subsecs(6),
                });
            }
            if let Err(error) = self.rebuild() {
                self.rebuild_failed_at = Some(Instant::now());
                return Err(error);
            }
            self.rebuild_failed_at = None;
        }
        // The reader plans again as the committer does (see `db::orders::forget_plans`).
        self.prepared += 1;
        if self.prepared >= REPLAN_FIRST_AFTER_BATCHES
            && self.prepared.is_power_of_two()
            && let Err(error) = orders::forget_plans(&mut self.reader)
        {
            self.stale = true;
            return Err(error.into());
        }
        // A read that fails may mean the connection went: the next batch reconnects first.
        // A failed read below leaves the book stale, and a rebuild reads them again anyway.
        let policies_may_have_changed = self.policies_changed.swap(false, Ordering::SeqCst)
            || payloads
                .iter()
                .any(|payload| matches!(payload, Payload::Tick | Payload::PoliciesChanged));
        let reads = self
            .active_policies(policies_may_have_changed)
            .and_then(|active| Ok((active, self.read_batch(payloads)?)));
        let (active, reads) = match reads {
            Ok(reads) => reads,
            Err(error) => {
                self.stale = true;
                return Err(error);
            }
        };
        // Microseconds: what PostgreSQL keeps, so answers equal later reads.
        let now = Utc::now().trunc_subsecs(6);

        let Writer {
            engine,
            reference,
            host,
            config,
            metrics,
            hub_levy_accounts,
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
                Payload::Tick | Payload::PoliciesChanged => Outcome::Nothing,
            };
            outcomes.push(outcome);
        }
        for fault in &policies.faults {
            metrics
                .policy_faults
                .with_label_values(&[fault.class.as_str()])
                .inc();
        }
        let calls = policies.calls;
        for (call, decisions) in [("batch", calls.batched), ("single", calls.single)] {
            metrics
                .policy_decisions
                .with_label_values(&[call])
                .inc_by(decisions);
        }
        metrics.policy_batch_calls.inc_by(calls.batches);
        effects.writes.faults = policies.faults;
        effects.writes.decisions = policies.decisions;
        Ok(Prepared {
            writes: Some(effects.writes),
            outcomes,
            contracts_created: effects.contracts_created,
            now,
        })
    }

    /// The active policy of every hub, as compiled in this process; read from the database again
    /// when `read_again` (or never read since the last rebuild). One that is not compiled is
    /// `Unavailable` (its pairs fail closed) and is handed to the compiler thread, once; it is
    /// looked for again in every batch, so it runs as soon as it is compiled.
    fn active_policies(&mut self, read_again: bool) -> Result<ActivePolicies, BatchError> {
        let mut active = ActivePolicies::new();
        let rows = match self.active_rows.take() {
            Some(rows) if !read_again => rows,
            _ => {
                let rows = crate::db::policies::active(&mut self.reader)?;
                // The active policies stay compiled, whatever else the registry drops.
                self.registry
                    .pin(rows.iter().map(|(_, _, digest)| digest.clone()).collect());
                rows
            }
        };
        for (hub, kind, digest) in &rows {
            let (Some(hub_id), Some(kind)) = (self.reference.hub_id(hub), PolicyKind::parse(kind))
            else {
                continue;
            };
            let policy = match self.registry.get(digest) {
                Some(compiled) if compiled.kind == kind => ActivePolicy::Ready(compiled),
                _ => {
                    let due = self
                        .compile_requested
                        .get(digest)
                        .is_none_or(|at| at.elapsed() >= COMPILE_RETRY_AFTER);
                    if due {
                        tracing::warn!(%hub, %digest, "an active policy is not compiled here yet: its pairs fail closed");
                        self.compile_requested
                            .insert(digest.clone(), Instant::now());
                        let _ = self.compile_requests.send((digest.clone(), kind));
                    }
                    ActivePolicy::Unavailable {
                        digest: digest.clone(),
                    }
                }
            };
            active.insert((hub_id, kind), policy);
        }
        self.active_rows = Some(rows);
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
                Payload::Cancel { .. }
                | Payload::Suspend { .. }
                | Payload::Tick
                | Payload::PoliciesChanged => {}
            }
        }
        let pending = self.in_flight.as_ref().map(|flight| &flight.pending);
        let connection = &mut self.reader;
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
        let available_account =
            |buyer: Uuid| ledger::participant_account_id(buyer, kind::BUYER_AVAILABLE);
        let accounts: Vec<Uuid> = buyers
            .iter()
            .map(|buyer| available_account(*buyer))
            .chain(withdrawal_accounts.iter().copied())
            .collect();
        let (mut balances, includes_pending) =
            ledger::balances_as_of(connection, &accounts, pending.and_then(|p| p.marker))?;
        if let Some(pending) = pending
            && !includes_pending
        {
            for (account, balance) in &mut balances {
                *balance += pending.deltas.get(account).copied().unwrap_or_default();
            }
        }
        for buyer in &buyers {
            if let Some(balance) = balances.get(&available_account(*buyer)) {
                reads.available.insert(*buyer, *balance);
            }
        }
        for account in &withdrawal_accounts {
            if let Some(balance) = balances.get(account) {
                reads.balances.insert(*account, *balance);
            }
        }
        if !withdrawal_keys.is_empty() {
            reads.seen_withdrawals = withdrawals::seen(connection, &withdrawal_keys)?;
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
        if let Some(pending) = pending {
            pending.lay_over(&mut reads);
        }
        Ok(reads)
    }

    /// Rebuilds the book from the database, reconnecting if the connection was lost.
    fn rebuild(&mut self) -> Result<(), BatchError> {
        if self.in_flight.is_some() {
            // Never: `process` lets the committing batch finish first (the book must include it).
            return Err(BatchError::Commit(
                "the book cannot be rebuilt while a batch commits".into(),
            ));
        }
        let alive = match self.connection.as_mut() {
            Some(connection) => crate::db::ping(connection).is_ok(),
            None => false,
        };
        if !alive {
            // The new session commits under the same fencing token: if another node took the
            // lease meanwhile, its first batch is refused.
            self.connection = None;
            let mut connection = db::open_for_writer(&self.database_url, Some(WRITER_SESSION))
                .map_err(BatchError::Rebuild)?;
            db::lease::end_idle_transactions_after(&mut connection, self.idle_transaction_ms)?;
            self.connection = Some(connection);
        }
        if crate::db::ping(&mut self.reader).is_err() {
            self.reader =
                db::open_for_writer(&self.database_url, None).map_err(BatchError::Rebuild)?;
        }
        let connection = self
            .connection
            .as_mut()
            .expect("the connection was opened above");
        // The active policies are read again with the book.
        self.active_rows = None;
        self.engine =
            load_engine(connection, &self.reference, self.config).map_err(BatchError::Rebuild)?;
        if !db::stream::rebuild_levels(connection, self.lease_token)? {
            tracing::error!(
                lease_token = self.lease_token,
                "another node holds the matching lease: this one stops applying orders"
            );
            self.leading.store(false, Ordering::SeqCst);
            return Err(BatchError::Deposed);
        }
        // A commit whose answer was lost may have stored events nobody was sent.
        let unpublished = db::stream::after(connection, self.published, i64::MAX)?;
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

/// A command's sender, kept while its batch commits.
struct Sender {
    reply: Reply,
    enqueued: Instant,
    slot: Option<super::Slot>,
}

/// Commands again from their parts.
fn commands_of(payloads: Vec<Payload>, senders: Vec<Sender>) -> Vec<Command> {
    payloads
        .into_iter()
        .zip(senders)
        .map(|(payload, sender)| Command {
            payload,
            reply: sender.reply,
            enqueued: sender.enqueued,
            slot: sender.slot,
        })
        .collect()
}

/// What the writer waits for.
enum Next {
    Command(Command),
    Committed(Done),
    /// Every sender is gone.
    Closed,
}

/// A matched batch, ready to be written.
struct Prepared {
    /// `None`: nothing to write (ticks while the database is unreachable).
    writes: Option<BatchWrites>,
    outcomes: Vec<Outcome>,
    contracts_created: u64,
    now: DateTime<Utc>,
}

/// The batch committing now.
struct InFlight {
    payloads: Vec<Payload>,
    senders: Vec<Sender>,
    outcomes: Vec<Outcome>,
    contracts_created: u64,
    pending: Pending,
    started: Instant,
    /// When it was handed to the committer.
    submitted: Instant,
}

/// What the batch committing now changed that the next batch's reads must see: exactly what it
/// writes, laid over reads that may have been taken before it committed.
#[derive(Default)]
struct Pending {
    seen_offers: HashMap<(Uuid, String), (Uuid, String)>,
    seen_bids: HashMap<(Uuid, String), (Uuid, String)>,
    seen_withdrawals: HashMap<(Uuid, String), WithdrawalRow>,
    settled: HashMap<Uuid, SettlementRow>,
    suspended: HashSet<Uuid>,
    /// What the batch moves in each account's balance.
    deltas: HashMap<Uuid, Decimal>,
    /// One of the batch's ledger transactions: committed iff the whole batch is.
    marker: Option<Uuid>,
}

impl Pending {
    fn of(writes: &BatchWrites) -> Self {
        let mut pending = Pending {
            marker: writes.ledger.first().map(|transaction| transaction.id),
            suspended: writes
                .suspensions
                .iter()
                .map(|(participant, _)| *participant)
                .collect(),
            ..Pending::default()
        };
        for offer in &writes.new_offers {
            pending.seen_offers.insert(
                (offer.provider_id, offer.idempotency_key.clone()),
                (offer.id, offer.request_hash.clone()),
            );
        }
        for bid in &writes.new_bids {
            pending.seen_bids.insert(
                (bid.buyer_id, bid.idempotency_key.clone()),
                (bid.id, bid.request_hash.clone()),
            );
        }
        for withdrawal in &writes.withdrawals {
            pending.seen_withdrawals.insert(
                (
                    withdrawal.participant_id,
                    withdrawal.idempotency_key.clone(),
                ),
                withdrawal.clone(),
            );
        }
        for settlement in &writes.settlements {
            pending
                .settled
                .insert(settlement.contract_id, settlement.clone());
        }
        for transaction in &writes.ledger {
            for (account, amount) in &transaction.legs {
                *pending.deltas.entry(*account).or_default() += *amount;
            }
        }
        pending
    }

    /// Adds what the batch wrote to reads that may not include it (adding what they do include
    /// changes nothing: the same key, the same row). Balances are adjusted by the caller, who
    /// knows whether they include the batch.
    fn lay_over(&self, reads: &mut BatchReads) {
        let known = |seen: &HashMap<(Uuid, String), (Uuid, String)>,
                     into: &mut HashMap<(Uuid, String), (Uuid, String)>| {
            for (key, order) in seen {
                into.entry(key.clone()).or_insert_with(|| order.clone());
            }
        };
        known(&self.seen_offers, &mut reads.seen_offers);
        known(&self.seen_bids, &mut reads.seen_bids);
        for (key, row) in &self.seen_withdrawals {
            reads
                .seen_withdrawals
                .entry(key.clone())
                .or_insert_with(|| row.clone());
        }
        for (contract, row) in &self.settled {
            reads
                .settled
                .entry(*contract)
                .or_insert_with(|| row.clone());
        }
        reads.suspended.extend(self.suspended.iter().copied());
    }
}

/// A batch for the committer: the lock connection travels with it.
struct Job {
    connection: db::Connection,
    writes: BatchWrites,
    now: DateTime<Utc>,
    /// Checked inside the batch's transaction, before it commits.
    lease_token: i64,
}

/// A batch's commit: the connection back (`None` if the commit panicked), and the market
/// events it stored.
struct Done {
    connection: Option<db::Connection>,
    result: Result<Vec<StreamEvent>, BatchError>,
    /// The committer thread ended without answering.
    lost: bool,
    /// When the committer was done with the batch.
    at: Instant,
}

impl Done {
    /// The committer thread ended without answering (it never does, short of a bug).
    fn lost() -> Self {
        Done {
            connection: None,
            result: Err(BatchError::Commit("the committer thread is gone".into())),
            lost: true,
            at: Instant::now(),
        }
    }
}

/// The thread that writes each batch in one transaction, one batch at a time, while the writer
/// matches the next. A panic while writing (a bug) fails the batch and drops its connection,
/// rolling back what it wrote, instead of ending the thread.
fn spawn_committer() -> anyhow::Result<(
    std::sync::mpsc::SyncSender<Job>,
    mpsc::UnboundedReceiver<Done>,
)> {
    let (jobs, received) = std::sync::mpsc::sync_channel::<Job>(1);
    let (done, committed) = mpsc::unbounded_channel::<Done>();
    std::thread::Builder::new()
        .name("suanli-committer".into())
        .spawn(move || {
            for (batches, job) in (1_u64..).zip(received) {
                let Job {
                    mut connection,
                    writes,
                    now,
                    lease_token,
                } = job;
                let written = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    // Each time the writer has committed twice as many batches, its session
                    // plans again (`forget_plans`): the tables may have doubled since.
                    if batches >= REPLAN_FIRST_AFTER_BATCHES && batches.is_power_of_two() {
                        orders::forget_plans(&mut connection)?;
                    }
                    orders::write_batch(&mut connection, &writes, now, lease_token)
                }));
                let answer = match written {
                    Ok(result) => Done {
                        connection: Some(connection),
                        result: match result {
                            Ok(Some(events)) => Ok(events),
                            Ok(None) => Err(BatchError::Deposed),
                            Err(error) => Err(BatchError::Database(error)),
                        },
                        lost: false,
                        at: Instant::now(),
                    },
                    Err(_) => Done {
                        connection: None,
                        result: Err(BatchError::Commit("writing the batch panicked".into())),
                        lost: false,
                        at: Instant::now(),
                    },
                };
                if done.send(answer).is_err() {
                    return;
                }
            }
        })?;
    Ok((jobs, committed))
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
            (Reply::Done(reply), Outcome::Nothing) => {
                let _ = reply.send(Ok(()));
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
            Reply::Done(reply) => drop(reply.send(Err(error))),
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
