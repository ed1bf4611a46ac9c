//! The lease keeper: the thread that makes this node the leader (the one node that applies orders
//! and settlements) or a follower, through the matching lease in PostgreSQL (`db::lease`).
//!
//! - A follower tries to take the lease every tenth of `SUANLI_LEASE_TIMEOUT_S`; the lease runs
//!   for nine tenths of it from its last renewal, so a dead leader's lease is taken within the
//!   timeout. Having taken it, the node opens a writer (the book rebuilt from the database, read
//!   after the lease was taken) and leads.
//! - A leader renews every third of the lease. It steps down — stops its writer, whose queued
//!   commands are answered 503 `writer_unavailable` — when another node took the lease, when it
//!   could not renew before its lease ran out, or when one of its batches was refused by the
//!   fencing token (the writer says so). It may lead again later, with a new token.
//! - A follower remembers where the leader listens, for forwarding order commands to it, and
//!   feeds its own market stream subscribers from the database ([`spawn_follower_feed`]).
//!
//! Safety never rests on this thread's timing: every batch checks its token inside its own
//! transaction (the database's `batch_end`, see `db::lease`), so a paused leader that wakes up late commits nothing.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use uuid::Uuid;

use super::writer::{Outlets, Writer};
use super::{Command, ExchangeConfig, Payload, Reply, feed::MarketFeed};
use crate::db::{self, reference::Reference};
use crate::policy::{PolicyHost, Registry};
use crate::telemetry::Metrics;

/// Where the lease holder listens, as this node last read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leader {
    pub node: String,
    /// The base URL followers forward order commands to, e.g. `http://127.0.0.1:8080`.
    pub address: String,
}

/// What the keeper shares with the handle.
pub(super) struct Shared {
    /// The running writer's queue while this node leads.
    pub queue: RwLock<Option<mpsc::Sender<Command>>>,
    /// Set while this node's writer leads; cleared by the writer itself when a batch is fenced.
    pub leading: Arc<AtomicBool>,
    /// Set when a hub's active policy changed; the writer's next batch reads them again and
    /// clears it.
    pub policies_changed: Arc<AtomicBool>,
    /// Who held the lease at the last look (this node included).
    pub leader: RwLock<Option<Leader>>,
    /// When this node last took or renewed the lease (`None` while it does not lead): a node
    /// says it leads only while its last renewal is younger than the lease.
    pub renewed: Mutex<Option<Instant>>,
    pub lease_duration: Duration,
    pub feed: MarketFeed,
}

/// What opening a writer takes.
pub(super) struct Candidate {
    pub database_url: String,
    pub reference: Arc<Reference>,
    pub config: ExchangeConfig,
    pub metrics: Metrics,
    pub host: Arc<PolicyHost>,
    pub registry: Arc<Registry>,
}

/// A running writer, with its expiry ticker.
struct Running {
    token: i64,
    writer: std::thread::JoinHandle<()>,
    /// When the lease was last taken or renewed.
    renewed: Instant,
}

pub(super) struct Keeper {
    candidate: Candidate,
    shared: Arc<Shared>,
    /// This process, as the lease's `holder`: a new id every start.
    holder: Uuid,
    node: String,
    address: String,
    connection: Option<db::Connection>,
    running: Option<Running>,
    /// Failed tries in a row to reach the database: a follower tries less often meanwhile.
    failures: u32,
}

/// Stops the keeper; it gives the lease up on the way out.
pub struct KeeperHandle {
    /// Dropped to tell the keeper to stop.
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: std::thread::JoinHandle<()>,
}

impl KeeperHandle {
    /// Tells the keeper to stop (as [`KeeperHandle::resign`] does) without waiting for it.
    pub fn stop(&mut self) {
        self.stop.take();
    }

    /// Stops the writer (its queued commands are answered first), gives the lease up so another
    /// node takes it at once, and waits for both.
    pub fn resign(mut self) {
        self.stop();
        if self.thread.join().is_err() {
            tracing::error!("the lease keeper panicked");
        }
    }
}

impl Keeper {
    pub(super) fn new(
        candidate: Candidate,
        shared: Arc<Shared>,
        node: String,
        address: String,
    ) -> Self {
        Keeper {
            candidate,
            shared,
            holder: Uuid::new_v4(),
            node,
            address,
            connection: None,
            running: None,
            failures: 0,
        }
    }

    /// One try to lead now (so that a lone node leads before it serves), then the thread that
    /// keeps trying, renewing and stepping down.
    pub(super) fn spawn(mut self) -> anyhow::Result<KeeperHandle> {
        self.campaign();
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("suanli-lease".into())
            .spawn(move || self.keep(stopped))?;
        Ok(KeeperHandle {
            stop: Some(stop),
            thread,
        })
    }

    fn keep(mut self, stopped: std::sync::mpsc::Receiver<()>) {
        loop {
            let pause = if self.running.is_some() {
                self.candidate.config.lease_renew_every()
            } else {
                // Up to ten times less often while the database cannot be reached.
                self.candidate.config.lease_poll_every() * (1 + self.failures.min(9))
            };
            match stopped.recv_timeout(pause) {
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                _ => break,
            }
            if self.running.is_some() {
                self.renew();
            } else {
                self.campaign();
            }
        }
        if let Some(token) = self.step_down("this node is shutting down") {
            let holder = self.holder;
            let released = self
                .connection()
                .and_then(|connection| Ok(db::lease::release(connection, holder, token)?));
            match released {
                Ok(()) => tracing::info!(token, "the matching lease was given up"),
                Err(error) => tracing::warn!(%error, "the matching lease could not be given up"),
            }
        }
    }

    /// The keeper's own connection, opened again after a failure.
    fn connection(&mut self) -> anyhow::Result<&mut db::Connection> {
        let opened = self.connection.is_some();
        let connection = keeper_connection(&mut self.connection, &self.candidate);
        if !opened {
            self.failures = if connection.is_ok() {
                0
            } else {
                self.failures.saturating_add(1)
            };
        }
        connection
    }

    /// Takes the lease if it is free, and leads; otherwise notes who leads.
    fn campaign(&mut self) {
        let duration_ms = self.candidate.config.lease_duration().as_millis() as i64;
        let (holder, node, address) = (self.holder, self.node.clone(), self.address.clone());
        let taken = self.connection().and_then(|connection| {
            Ok(db::lease::acquire(
                connection,
                holder,
                &node,
                &address,
                duration_ms,
            )?)
        });
        let token = match taken {
            Ok(Some(token)) => token,
            Ok(None) => {
                self.note_leader();
                return;
            }
            Err(error) => {
                tracing::debug!(%error, "the matching lease could not be read");
                self.connection = None;
                return;
            }
        };
        let renewed = Instant::now();
        *lock(&self.shared.renewed) = Some(renewed);
        match self.open_while_renewing(token) {
            Ok((writer, lost)) => {
                tracing::warn!(token, node = %self.node, "this node took the matching lease and leads");
                self.candidate
                    .metrics
                    .events
                    .with_label_values(&["lease_taken"])
                    .inc();
                *write(&self.shared.leader) = Some(Leader {
                    node: self.node.clone(),
                    address: self.address.clone(),
                });
                // Renewed on the side while the writer opened.
                let renewed = lock(&self.shared.renewed).unwrap_or(renewed);
                self.running = Some(Running {
                    token,
                    writer,
                    renewed,
                });
                if lost {
                    self.step_down("another node took the matching lease while this one opened");
                }
            }
            Err(error) => {
                *lock(&self.shared.renewed) = None;
                tracing::error!(%error, "the writer could not start; giving the lease up");
                if let Ok(connection) = self.connection() {
                    let _ = db::lease::release(connection, holder, token);
                }
            }
        }
    }

    /// Reads who holds the lease now, for forwarding.
    fn note_leader(&mut self) {
        let current = self
            .connection()
            .and_then(|connection| Ok(db::lease::current(connection)?));
        match current {
            Ok(lease) => {
                let held = lease.is_held();
                *write(&self.shared.leader) = held.then_some(Leader {
                    node: lease.node,
                    address: lease.address,
                });
            }
            Err(_) => self.connection = None,
        }
    }

    /// Opens a writer under `token` (compiling the active policies and rebuilding the book, which
    /// may take seconds) while renewing the lease on the side, so that a slow start does not lose
    /// it. Also answers whether the lease was lost meanwhile.
    fn open_while_renewing(
        &mut self,
        token: i64,
    ) -> anyhow::Result<(std::thread::JoinHandle<()>, bool)> {
        let Keeper {
            candidate,
            shared,
            connection,
            holder,
            ..
        } = self;
        let (candidate, holder) = (&*candidate, *holder);
        let opening = AtomicBool::new(true);
        let lost = AtomicBool::new(false);
        std::thread::scope(|scope| {
            let renewer = scope.spawn(|| {
                let every = candidate.config.lease_renew_every();
                let duration = candidate.config.lease_duration().as_millis() as i64;
                loop {
                    std::thread::park_timeout(every);
                    if !opening.load(Ordering::SeqCst) {
                        return;
                    }
                    let renewed = keeper_connection(connection, candidate).and_then(|connection| {
                        Ok(db::lease::renew(connection, holder, token, duration)?)
                    });
                    match renewed {
                        Ok(true) => *lock(&shared.renewed) = Some(Instant::now()),
                        Ok(false) => {
                            lost.store(true, Ordering::SeqCst);
                            return;
                        }
                        Err(_) => *connection = None,
                    }
                }
            });
            let opened = open_writer(candidate, shared, token);
            opening.store(false, Ordering::SeqCst);
            renewer.thread().unpark();
            if renewer.join().is_err() {
                tracing::error!("the lease renewer panicked");
            }
            opened.map(|writer| (writer, lost.load(Ordering::SeqCst)))
        })
    }

    /// Renews the lease; steps down when that is no longer possible.
    fn renew(&mut self) {
        let Some(running) = &self.running else { return };
        let token = running.token;
        if !self.shared.leading.load(Ordering::SeqCst) {
            self.step_down("a batch was refused by the fencing token");
            return;
        }
        let duration = self.candidate.config.lease_duration();
        let holder = self.holder;
        let renewed = self.connection().and_then(|connection| {
            Ok(db::lease::renew(
                connection,
                holder,
                token,
                duration.as_millis() as i64,
            )?)
        });
        match renewed {
            Ok(true) => {
                let now = Instant::now();
                *lock(&self.shared.renewed) = Some(now);
                if let Some(running) = &mut self.running {
                    running.renewed = now;
                }
            }
            Ok(false) => {
                self.step_down("another node took the matching lease");
            }
            Err(error) => {
                self.connection = None;
                let since = self
                    .running
                    .as_ref()
                    .map_or(Duration::ZERO, |running| running.renewed.elapsed());
                tracing::warn!(%error, ?since, "the matching lease could not be renewed");
                if since >= duration {
                    self.step_down("the matching lease ran out before it could be renewed");
                }
            }
        }
    }

    /// Stops leading: no new command reaches the writer, whose queued commands are answered
    /// `writer_unavailable`; this node's market stream subscribers go on, fed by the follower feed.
    /// Returns the token given up, if this node led.
    fn step_down(&mut self, why: &str) -> Option<i64> {
        let running = self.running.take()?;
        tracing::warn!(
            token = running.token,
            why,
            "this node stops applying orders"
        );
        self.shared.leading.store(false, Ordering::SeqCst);
        *lock(&self.shared.renewed) = None;
        *write(&self.shared.leader) = None;
        drop(write(&self.shared.queue).take());
        // Its queued commands are answered 503 first; a batch committing now finishes (or is
        // fenced off) first.
        if running.writer.join().is_err() {
            tracing::error!("the writer thread panicked");
        }
        self.candidate
            .metrics
            .events
            .with_label_values(&["lease_lost"])
            .inc();
        Some(running.token)
    }
}

/// How often a follower reads the market events the leader committed, for its own subscribers.
const FOLLOWER_FEED_EVERY: Duration = Duration::from_millis(100);

/// Events read at once by the follower feed (it reads on at once after a full page).
const FOLLOWER_FEED_PAGE: i64 = 500;

/// The market stream on a follower: every [`FOLLOWER_FEED_EVERY`], the events stored after the
/// last one this node's feed published are read from the database and published, so subscribers
/// of any node see every trade and book change, a fraction of a second later than the leader's
/// own. While the node leads, its writer publishes and this thread only waits. Ends with the
/// feed (shutdown).
pub(super) fn spawn_follower_feed(database_url: String, shared: Arc<Shared>) -> anyhow::Result<()> {
    std::thread::Builder::new()
        .name("suanli-follower-feed".into())
        .spawn(move || {
            let mut connection: Option<db::Connection> = None;
            let mut caught_up = true;
            while !shared.feed.is_closed() {
                // A full page read: read on at once until caught up.
                if caught_up {
                    std::thread::sleep(FOLLOWER_FEED_EVERY);
                }
                caught_up = true;
                if shared.feed.is_closed() {
                    return;
                }
                if shared.leading.load(Ordering::SeqCst) {
                    connection = None;
                    continue;
                }
                if connection.is_none() {
                    connection = db::open(&database_url).ok().and_then(|mut open| {
                        db::name_session(&mut open, "suanli-follower-feed")
                            .ok()
                            .map(|()| open)
                    });
                }
                let Some(open) = connection.as_mut() else {
                    std::thread::sleep(Duration::from_secs(1));
                    continue;
                };
                let read = match shared.feed.last_published() {
                    Some(last) => db::stream::after(open, last, FOLLOWER_FEED_PAGE).map(Some),
                    None => db::stream::newest(open).map(|newest| {
                        shared.feed.start_at(newest);
                        None
                    }),
                };
                match read {
                    // A leader taking over meanwhile publishes these too: the feed sends each
                    // event once.
                    Ok(Some(events)) if !shared.leading.load(Ordering::SeqCst) => {
                        caught_up = (events.len() as i64) < FOLLOWER_FEED_PAGE;
                        shared.feed.publish(events);
                    }
                    Ok(_) => {}
                    Err(_) => connection = None,
                }
            }
        })?;
    Ok(())
}

/// The expiry ticker: a command-less batch every `tick_ms`, so expiries happen on time. It holds
/// only a weak handle, so it ends with the writer's queue.
fn spawn_ticker(ticker: mpsc::WeakSender<Command>, tick_ms: u64) -> anyhow::Result<()> {
    std::thread::Builder::new()
        .name("suanli-expiry".into())
        .spawn(move || {
            let period = Duration::from_millis(tick_ms.max(10));
            loop {
                std::thread::sleep(period);
                let Some(sender) = ticker.upgrade() else {
                    return;
                };
                let tick = Command {
                    payload: Payload::Tick,
                    reply: Reply::Nobody,
                    enqueued: Instant::now(),
                    slot: None,
                };
                if let Err(mpsc::error::TrySendError::Closed(_)) = sender.try_send(tick) {
                    return;
                }
            }
        })?;
    Ok(())
}

/// Opens a writer under `token` and starts its thread and its expiry ticker.
fn open_writer(
    candidate: &Candidate,
    shared: &Shared,
    token: i64,
) -> anyhow::Result<std::thread::JoinHandle<()>> {
    let writer = Writer::open(
        &candidate.database_url,
        token,
        candidate.reference.clone(),
        candidate.config,
        candidate.metrics.clone(),
        candidate.host.clone(),
        candidate.registry.clone(),
        Outlets {
            leading: shared.leading.clone(),
            policies_changed: shared.policies_changed.clone(),
            feed: shared.feed.clone(),
        },
    )?;
    let (sender, receiver) = mpsc::channel(candidate.config.queue_max.max(1));
    let thread = std::thread::Builder::new()
        .name("suanli-writer".into())
        .spawn(move || writer.run(receiver))?;
    spawn_ticker(sender.downgrade(), candidate.config.expiry_tick_ms)?;
    *write(&shared.queue) = Some(sender);
    shared.leading.store(true, Ordering::SeqCst);
    Ok(thread)
}

/// The keeper's connection in `slot`, opened if there is none.
fn keeper_connection<'a>(
    slot: &'a mut Option<db::Connection>,
    candidate: &Candidate,
) -> anyhow::Result<&'a mut db::Connection> {
    if slot.is_none() {
        let mut connection = db::open(&candidate.database_url)?;
        db::name_session(&mut connection, "suanli-lease")?;
        // Taking the lease waits behind a batch that holds the lease row (never for long; a
        // renewal never waits for one).
        let wait = candidate.config.lease_renew_every().as_millis() as i64;
        db::lease::wait_for_locks_at_most(&mut connection, wait.max(100))?;
        *slot = Some(connection);
    }
    Ok(slot.as_mut().expect("opened above"))
}

/// A mutex guard, whatever a panicking holder left (the values are replaced whole).
pub(super) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A write guard, whatever a panicking holder left (the values are replaced whole).
pub(super) fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A read guard, whatever a panicking holder left.
pub(super) fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The handle's slot for the keeper, until the node joins.
pub(super) type Pending = Mutex<Option<Candidate>>;
