//! The exchange's sequenced writer: one thread owns the matching engine and applies every order
//! command in arrival order, committing many commands per PostgreSQL transaction (group commit).
//!
//! An HTTP handler checks a request ([`requests`]), sends it here and waits; the answer comes only
//! after the batch holding the command has committed, so "accepted" always means durable.
//!
//! # Layout
//! - this module: the handle ([`Exchange`]), the commands, and back-pressure: a full queue
//!   answers 503 `queue_full` at once, a participant with too many commands waiting gets 429
//!   `too_many_in_flight`, a command older than its deadline is answered 503 `deadline_exceeded`
//!   and never applied, and a node that does not hold the matching lease answers 503
//!   `writer_unavailable` (its HTTP layer forwards order commands to the leader first);
//! - `writer`: the loop — gather a batch, read what it needs, match it (policies run here, outside
//!   any database transaction), write it in one transaction, answer; the fallback that re-runs a
//!   failed batch in halves so that only the failing command's sender hears of it; every batch
//!   commits under the fencing token of the matching lease it was opened with;
//! - [`lease`]: the lease keeper — which node leads, takeover, renewal, stepping down;
//! - `effects`: what a batch changes — rows, ledger transactions, typed audit events ([`events`]);
//! - `recovery`: the book rebuilt from the database (at start and after a failed batch);
//! - [`policies`]: the hubs' policies with fail-closed rules, decision records and budgets.

pub mod feed;
pub mod lease;
pub mod policies;
pub mod requests;

mod effects;
mod events;
mod recovery;
mod writer;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use suanli_sdk::{PlacedBid, PlacedOffer, Side};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

pub use policies::HubBudget;
pub use requests::{BidRequest, OfferRequest, WithdrawalRequest};

use crate::db::reference::Reference;
use crate::error::ApiError;
use crate::market::{EngineConfig, Seq};
use crate::policy::{PolicyHost, Registry};
use crate::telemetry::Metrics;

/// Limits of the writer.
#[derive(Debug, Clone, Copy)]
pub struct ExchangeConfig {
    /// The exchange's fee on settlements, basis points.
    pub exchange_fee_bps: u32,
    /// Commands that may wait for the writer; one more is refused with 503 `queue_full`.
    pub queue_max: usize,
    pub batch_commands_max: usize,
    pub engine: EngineConfig,
    pub expiry_tick_ms: u64,
    /// A command that waited longer than this for the writer is refused, never applied.
    pub command_deadline_ms: u64,
    /// `SUANLI_LEASE_TIMEOUT_S`: how long a dead holder of the matching lease keeps it.
    pub lease_timeout_s: u64,
    /// What each hub may spend on policy evaluations per order and per batch.
    pub hub_budget: HubBudget,
    /// Commands one participant may have waiting for the writer; one more is refused with 429.
    pub participant_in_flight_max: u32,
    /// The market stream's ring of events, its subscribers and its heartbeat.
    pub stream_buffer: usize,
    pub stream_subscribers_max: usize,
    pub stream_heartbeat_ms: u64,
}

/// The result of placing an order: new, or the original of a retried request.
#[derive(Debug)]
pub enum Placed<T> {
    New(T),
    /// The idempotency key was used before with the same request: this order id.
    Existing(Uuid),
}

/// What a command asks the writer to do.
#[derive(Debug, Clone)]
enum Payload {
    PlaceOffer(Box<OfferRequest>),
    PlaceBid(Box<BidRequest>),
    Cancel {
        owner: Uuid,
        side: Side,
        seq: Seq,
    },
    Settle {
        provider: Uuid,
        contract: Uuid,
        delivery: suanli_sdk::NewDelivery,
    },
    /// Suspends a participant and cancels its resting orders.
    Suspend {
        participant: Uuid,
        reason: String,
        actor: String,
    },
    /// What a bid would get now; nothing is written.
    Quote(Box<BidRequest>),
    /// Sets money aside for a payout.
    Withdraw(Box<WithdrawalRequest>),
    /// A batch with no command, so that expiries happen on time. A batch holding one also reads
    /// the active policies again.
    Tick,
    /// A hub's active policy changed (committed before this was sent): the batch holding this
    /// reads the active policies again, before any command queued after it.
    PoliciesChanged,
}

/// What a command's sender waits for.
enum Reply {
    Offer(oneshot::Sender<Result<Placed<PlacedOffer>, ApiError>>),
    Bid(oneshot::Sender<Result<Placed<PlacedBid>, ApiError>>),
    Cancel(oneshot::Sender<Result<(), ApiError>>),
    Settle(oneshot::Sender<Result<suanli_sdk::Settlement, ApiError>>),
    Suspend(oneshot::Sender<Result<u32, ApiError>>),
    Quote(oneshot::Sender<Result<suanli_sdk::Quote, ApiError>>),
    Withdraw(oneshot::Sender<Result<suanli_sdk::Withdrawal, ApiError>>),
    /// Answered once the command's batch is done.
    Done(oneshot::Sender<Result<(), ApiError>>),
    Nobody,
}

/// What a command came to, before it is sent back.
enum Outcome {
    Offer(Result<Placed<PlacedOffer>, ApiError>),
    Bid(Result<Placed<PlacedBid>, ApiError>),
    Cancel(Result<(), ApiError>),
    Settle(Result<suanli_sdk::Settlement, ApiError>),
    /// How many resting orders the suspension cancelled.
    Suspend(Result<u32, ApiError>),
    Quote(Result<suanli_sdk::Quote, ApiError>),
    Withdraw(Result<suanli_sdk::Withdrawal, ApiError>),
    Nothing,
}

struct Command {
    payload: Payload,
    reply: Reply,
    enqueued: Instant,
    /// The sender's place among its participant's waiting commands, given back when the command
    /// is answered (not when a caller stops waiting: it is still in the queue).
    slot: Option<Slot>,
}

impl ExchangeConfig {
    /// How long the matching lease runs from its last renewal: nine tenths of
    /// `SUANLI_LEASE_TIMEOUT_S`, so that with followers trying every tenth of it, a dead leader's
    /// lease is taken within the timeout.
    pub fn lease_duration(&self) -> Duration {
        Duration::from_millis(self.lease_timeout_s.max(1) * 900)
    }

    /// How often the leader renews the lease: three times per lease.
    pub fn lease_renew_every(&self) -> Duration {
        self.lease_duration() / 3
    }

    /// How often a follower tries to take the lease.
    pub fn lease_poll_every(&self) -> Duration {
        Duration::from_millis(self.lease_timeout_s.max(1) * 100)
    }
}

/// Whether this node applies orders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriterRole {
    /// This node holds the matching lease and applies orders and settlements.
    Leader,
    /// Another node holds it (or nobody, for a moment): this one serves reads and forwards order
    /// commands to the leader.
    Follower,
}

/// Where an order command goes from this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// This node leads: its own writer.
    Here,
    /// Forward to the leader at this base URL.
    Leader(String),
    /// Nobody leads right now (a takeover is under way): 503, retry.
    Nobody,
}

impl WriterRole {
    pub fn as_str(self) -> &'static str {
        match self {
            WriterRole::Leader => "leader",
            WriterRole::Follower => "follower",
        }
    }
}

/// A handle on the writer; cheap to clone.
#[derive(Clone)]
pub struct Exchange {
    /// The writer's queue while this node leads, whether it leads, and who does.
    shared: Arc<lease::Shared>,
    command_deadline: Duration,
    /// Commands each participant has waiting for the writer.
    in_flight: Arc<Mutex<HashMap<Uuid, u32>>>,
    in_flight_max: u32,
    /// Where the writer publishes the market stream's events after each commit.
    feed: feed::MarketFeed,
    /// What a writer is made of, until the node joins ([`Exchange::join`]).
    candidate: Arc<lease::Pending>,
    /// The lease keeper, once the node joined.
    keeper: Arc<Mutex<Option<lease::KeeperHandle>>>,
}

/// One participant's place in the writer's queue, given back when its command is answered.
struct Slot {
    in_flight: Arc<Mutex<HashMap<Uuid, u32>>>,
    participant: Uuid,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut in_flight = self
            .in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(count) = in_flight.get_mut(&self.participant) {
            *count -= 1;
            if *count == 0 {
                in_flight.remove(&self.participant);
            }
        }
    }
}

impl Exchange {
    /// The handle of a node that does not lead yet: nothing is applied until it [`join`]s.
    ///
    /// [`join`]: Exchange::join
    pub fn start(
        database_url: &str,
        reference: Arc<Reference>,
        config: ExchangeConfig,
        metrics: Metrics,
        host: Arc<PolicyHost>,
        registry: Arc<Registry>,
    ) -> anyhow::Result<Self> {
        let feed = feed::MarketFeed::new(
            config.stream_buffer,
            config.stream_subscribers_max,
            Duration::from_millis(config.stream_heartbeat_ms.max(1)),
        );
        Ok(Exchange {
            shared: Arc::new(lease::Shared {
                queue: RwLock::new(None),
                leading: Arc::new(AtomicBool::new(false)),
                policies_changed: Arc::new(AtomicBool::new(false)),
                leader: RwLock::new(None),
                renewed: Mutex::new(None),
                lease_duration: config.lease_duration(),
                feed: feed.clone(),
            }),
            command_deadline: Duration::from_millis(config.command_deadline_ms),
            in_flight: Default::default(),
            in_flight_max: config.participant_in_flight_max.max(1),
            feed,
            candidate: Arc::new(Mutex::new(Some(lease::Candidate {
                database_url: database_url.to_owned(),
                reference,
                config,
                metrics,
                host,
                registry,
            }))),
            keeper: Default::default(),
        })
    }

    /// Joins the exchange's nodes as `node`, reachable at `address` (a base URL): takes the
    /// matching lease if it is free and leads at once (compiling the active policies and
    /// rebuilding the book), and starts the lease keeper, which from then on takes the lease when
    /// the leader dies and steps down when it is lost. A second call does nothing.
    pub fn join(&self, node: &str, address: &str) -> anyhow::Result<()> {
        let Some(candidate) = self
            .candidate
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
        else {
            return Ok(());
        };
        lease::spawn_follower_feed(candidate.database_url.clone(), self.shared.clone())?;
        let keeper = lease::Keeper::new(
            candidate,
            self.shared.clone(),
            node.to_owned(),
            address.to_owned(),
        )
        .spawn()?;
        if self.role() == WriterRole::Follower {
            tracing::warn!(
                leader = ?lease::read(&self.shared.leader).as_ref().map(|leader| &leader.node),
                "another node holds the matching lease: this one serves reads and forwards orders"
            );
        }
        *self
            .keeper
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(keeper);
        Ok(())
    }

    /// Stops applying orders (queued commands are answered first) and gives the matching lease
    /// up, so another node takes it at once: a clean shutdown.
    pub fn resign(&self) {
        let keeper = self
            .keeper
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(keeper) = keeper {
            keeper.resign();
        }
    }

    /// Like [`Exchange::resign`], without waiting: the lease keeper stops the writer and gives
    /// the lease up on its own thread ([`Exchange::resign`] then waits for it).
    pub fn stop_leading(&self) {
        if let Some(keeper) = self
            .keeper
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_mut()
        {
            keeper.stop();
        }
    }

    /// The market stream's live feed.
    pub fn feed(&self) -> &feed::MarketFeed {
        &self.feed
    }

    /// Whether this node applies orders.
    pub fn role(&self) -> WriterRole {
        let renewed = lease::lock(&self.shared.renewed)
            .is_some_and(|renewed| renewed.elapsed() < self.shared.lease_duration);
        if renewed
            && self.shared.leading.load(Ordering::SeqCst)
            && lease::read(&self.shared.queue).is_some()
        {
            WriterRole::Leader
        } else {
            WriterRole::Follower
        }
    }

    /// The advertised URL of the node that holds the matching lease, as last seen.
    pub fn leader_address(&self) -> Option<String> {
        lease::read(&self.shared.leader)
            .as_ref()
            .map(|leader| leader.address.clone())
    }

    /// Where an order command goes from this node.
    pub fn route(&self) -> Route {
        if self.role() == WriterRole::Leader {
            return Route::Here;
        }
        match lease::read(&self.shared.leader).as_ref() {
            Some(leader) => Route::Leader(leader.address.clone()),
            None => Route::Nobody,
        }
    }

    /// Takes a place in the queue for `participant`, or refuses (429) when it already has
    /// `participant_in_flight_max` commands waiting: one participant cannot fill everyone's queue.
    fn slot(&self, participant: Uuid) -> Result<Slot, ApiError> {
        let mut in_flight = self
            .in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = in_flight.entry(participant).or_insert(0);
        if *count >= self.in_flight_max {
            return Err(ApiError {
                retry_after_s: Some(1),
                ..ApiError::too_many_requests(
                    "too_many_in_flight",
                    format!(
                        "at most {} of your commands may wait for the matching engine at once",
                        self.in_flight_max
                    ),
                )
            });
        }
        *count += 1;
        Ok(Slot {
            in_flight: self.in_flight.clone(),
            participant,
        })
    }

    /// Places an offer; answers once it (and any contracts) are committed.
    pub async fn place_offer(
        &self,
        request: OfferRequest,
    ) -> Result<Placed<PlacedOffer>, ApiError> {
        let slot = Some(self.slot(request.spec.provider)?);
        let (reply, answer) = oneshot::channel();
        self.send(
            Payload::PlaceOffer(Box::new(request)),
            Reply::Offer(reply),
            slot,
        )?;
        answer.await.map_err(|_| stopped())?
    }

    /// Places a bid; answers once it, its hold and any contracts are committed.
    pub async fn place_bid(&self, request: BidRequest) -> Result<Placed<PlacedBid>, ApiError> {
        let slot = Some(self.slot(request.spec.buyer)?);
        let (reply, answer) = oneshot::channel();
        self.send(
            Payload::PlaceBid(Box::new(request)),
            Reply::Bid(reply),
            slot,
        )?;
        answer.await.map_err(|_| stopped())?
    }

    /// Cancels the unfilled part of the resting order `seq` owned by `owner`.
    pub async fn cancel(&self, owner: Uuid, side: Side, seq: Seq) -> Result<(), ApiError> {
        let slot = Some(self.slot(owner)?);
        let (reply, answer) = oneshot::channel();
        self.send(
            Payload::Cancel { owner, side, seq },
            Reply::Cancel(reply),
            slot,
        )?;
        answer.await.map_err(|_| stopped())?
    }

    /// Settles a contract after its provider reported delivery; answers once committed.
    pub async fn settle(
        &self,
        provider: Uuid,
        contract: Uuid,
        delivery: suanli_sdk::NewDelivery,
    ) -> Result<suanli_sdk::Settlement, ApiError> {
        let slot = Some(self.slot(provider)?);
        let (reply, answer) = oneshot::channel();
        self.send(
            Payload::Settle {
                provider,
                contract,
                delivery,
            },
            Reply::Settle(reply),
            slot,
        )?;
        answer.await.map_err(|_| stopped())?
    }

    /// What `request` would get against the current book, with the active policies; nothing is
    /// written or held. Quotes wait in the same queue as orders, so they see the book in order.
    pub async fn quote(&self, request: BidRequest) -> Result<suanli_sdk::Quote, ApiError> {
        let slot = Some(self.slot(request.spec.buyer)?);
        let (reply, answer) = oneshot::channel();
        self.send(Payload::Quote(Box::new(request)), Reply::Quote(reply), slot)?;
        answer.await.map_err(|_| stopped())?
    }

    /// Sets a withdrawal's money aside; answers once committed.
    pub async fn withdraw(
        &self,
        request: WithdrawalRequest,
    ) -> Result<suanli_sdk::Withdrawal, ApiError> {
        let slot = Some(self.slot(request.participant)?);
        let (reply, answer) = oneshot::channel();
        self.send(
            Payload::Withdraw(Box::new(request)),
            Reply::Withdraw(reply),
            slot,
        )?;
        answer.await.map_err(|_| stopped())?
    }

    /// Suspends a participant: marks it suspended and cancels its resting orders (releasing their
    /// holds), in one transaction; answers how many orders it cancelled.
    pub async fn suspend(
        &self,
        participant: Uuid,
        reason: String,
        actor: String,
    ) -> Result<u32, ApiError> {
        let (reply, answer) = oneshot::channel();
        self.send(
            Payload::Suspend {
                participant,
                reason,
                actor,
            },
            Reply::Suspend(reply),
            None,
        )?;
        answer.await.map_err(|_| stopped())?
    }

    /// Tells this node's writer that a hub's active policy changed (the change is committed):
    /// its next batch reads the active policies again, whatever the queue holds. The writer reads
    /// them otherwise only when it (re)builds the book and for a batch holding an expiry tick,
    /// never per batch of orders.
    pub fn note_policies_changed(&self) {
        self.shared.policies_changed.store(true, Ordering::SeqCst);
    }

    /// [`Exchange::note_policies_changed`], then a `PoliciesChanged` notice through the queue:
    /// answers once a batch holding it has committed under this node's matching lease, so the
    /// writer has read the active policies again and every command queued after this answer — an
    /// order placed next, say — is judged by the new policy, on whichever node leads later (a new
    /// leader takes the lease after that commit, and reads the active policies when it starts).
    pub async fn policies_changed(&self) -> Result<(), ApiError> {
        self.note_policies_changed();
        let (reply, answer) = oneshot::channel();
        self.send(Payload::PoliciesChanged, Reply::Done(reply), None)?;
        answer.await.map_err(|_| stopped())?
    }

    /// Queues a command, or refuses it at once: nobody waits for room in the queue.
    fn send(&self, payload: Payload, reply: Reply, slot: Option<Slot>) -> Result<(), ApiError> {
        let queue = lease::read(&self.shared.queue);
        let Some(sender) = queue
            .as_ref()
            .filter(|_| self.shared.leading.load(Ordering::SeqCst))
        else {
            return Err(ApiError::busy(
                "writer_unavailable",
                "this node does not apply orders now (another node holds the matching lease, or a \
                 takeover is under way); retry with the same idempotency key",
                1,
            ));
        };
        sender
            .try_send(Command {
                payload,
                reply,
                enqueued: Instant::now(),
                slot,
            })
            .map_err(|error| match error {
                mpsc::error::TrySendError::Full(_) => ApiError::busy(
                    "queue_full",
                    "the matching engine's queue is full; retry with the same idempotency key",
                    1,
                ),
                mpsc::error::TrySendError::Closed(_) => stopped(),
            })
    }

    /// How long a command may wait for the writer before it is refused.
    pub fn command_deadline(&self) -> Duration {
        self.command_deadline
    }
}

fn stopped() -> ApiError {
    ApiError::unavailable("the matching engine is not running")
}
