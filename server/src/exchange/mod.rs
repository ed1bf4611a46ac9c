//! The exchange's sequenced writer: one thread owns the matching engine and applies every order
//! command in arrival order, committing many commands per PostgreSQL transaction (group commit).
//!
//! An HTTP handler checks a request ([`requests`]), sends it here and waits; the answer comes only
//! after the batch holding the command has committed, so "accepted" always means durable. On
//! start the book is rebuilt from the database; if a batch fails to commit, its callers are told
//! to retry and the book is rebuilt again, so memory never runs ahead of the database.

pub mod requests;
pub mod policies;
mod writer;

use std::sync::Arc;

use suanli_sdk::{PlacedBid, PlacedOffer, Side};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

pub use requests::{BidRequest, OfferRequest};

use crate::db::reference::Reference;
use crate::error::ApiError;
use crate::market::{EngineConfig, Seq};
use crate::telemetry::Metrics;

/// Limits of the writer.
#[derive(Debug, Clone, Copy)]
pub struct ExchangeConfig {
    /// The exchange's fee on settlements, basis points.
    pub exchange_fee_bps: u32,
    pub queue_max: usize,
    pub batch_commands_max: usize,
    pub engine: EngineConfig,
    pub expiry_tick_ms: u64,
}

/// The result of placing an order: new, or the original of a retried request.
#[derive(Debug)]
pub enum Placed<T> {
    New(T),
    /// The idempotency key was used before with the same request: this order id.
    Existing(Uuid),
}

enum Command {
    PlaceOffer(Box<OfferRequest>, oneshot::Sender<Result<Placed<PlacedOffer>, ApiError>>),
    PlaceBid(Box<BidRequest>, oneshot::Sender<Result<Placed<PlacedBid>, ApiError>>),
    Cancel { owner: Uuid, side: Side, seq: Seq, reply: oneshot::Sender<Result<(), ApiError>> },
    Settle {
        provider: Uuid,
        contract: Uuid,
        delivery: suanli_sdk::NewDelivery,
        reply: oneshot::Sender<Result<suanli_sdk::Settlement, ApiError>>,
    },
    /// Runs a batch with no command, so that expiries happen on time.
    Tick,
}

/// A handle on the writer; cheap to clone.
#[derive(Clone)]
pub struct Exchange {
    sender: mpsc::Sender<Command>,
}

impl Exchange {
    /// Rebuilds the book from the database at `database_url` and starts the writer thread and
    /// the expiry ticker.
    pub fn start(
        database_url: &str,
        reference: Arc<Reference>,
        config: ExchangeConfig,
        metrics: Metrics,
        host: Arc<crate::policy::PolicyHost>,
    ) -> anyhow::Result<Self> {
        let (sender, receiver) = mpsc::channel(config.queue_max.max(1));
        let writer = writer::Writer::open(database_url, reference, config, metrics, host)?;
        std::thread::Builder::new().name("suanli-writer".into()).spawn(move || writer.run(receiver))?;
        // The ticker holds only a weak handle, so the writer stops once the server drops the last
        // real one.
        let ticker = sender.downgrade();
        std::thread::Builder::new().name("suanli-expiry".into()).spawn(move || {
            let period = std::time::Duration::from_millis(config.expiry_tick_ms.max(10));
            loop {
                std::thread::sleep(period);
                let Some(sender) = ticker.upgrade() else { return };
                if let Err(mpsc::error::TrySendError::Closed(_)) = sender.try_send(Command::Tick) {
                    return;
                }
            }
        })?;
        Ok(Exchange { sender })
    }

    /// Places an offer; answers once it (and any contracts) are committed.
    pub async fn place_offer(&self, request: OfferRequest) -> Result<Placed<PlacedOffer>, ApiError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::PlaceOffer(Box::new(request), reply)).await?;
        answer.await.map_err(|_| stopped())?
    }

    /// Places a bid; answers once it, its hold and any contracts are committed.
    pub async fn place_bid(&self, request: BidRequest) -> Result<Placed<PlacedBid>, ApiError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::PlaceBid(Box::new(request), reply)).await?;
        answer.await.map_err(|_| stopped())?
    }

    /// Cancels the unfilled part of the resting order `seq` owned by `owner`.
    pub async fn cancel(&self, owner: Uuid, side: Side, seq: Seq) -> Result<(), ApiError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Cancel { owner, side, seq, reply }).await?;
        answer.await.map_err(|_| stopped())?
    }

    /// Settles a contract after its provider reported delivery; answers once committed.
    pub async fn settle(
        &self,
        provider: Uuid,
        contract: Uuid,
        delivery: suanli_sdk::NewDelivery,
    ) -> Result<suanli_sdk::Settlement, ApiError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Settle { provider, contract, delivery, reply }).await?;
        answer.await.map_err(|_| stopped())?
    }

    async fn send(&self, command: Command) -> Result<(), ApiError> {
        self.sender.send(command).await.map_err(|_| stopped())
    }
}

fn stopped() -> ApiError {
    ApiError::unavailable("the matching engine is not running")
}
