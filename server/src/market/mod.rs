//! The market: orders, the book and continuous matching. Pure: no I/O, no clock reads, no actix,
//! no diesel, no wasmtime. Time and policy decisions are inputs, so the same commands with the
//! same policies always give the same contracts.
//!
//! # Layout
//! - [`engine`]: the [`Engine`] that holds the book and matches incoming orders.
//! - [`capacity`]: an offer's units sold hour by hour.
//! - [`policy`]: the narrow interface through which hubs price and screen pairs
//!   ([`Policies`]), and the built-in rules used when a hub has no policy.
//! - [`money`]: rounding to the fen, holds and notionals.

pub mod capacity;
mod chunked;
pub mod engine;
pub mod money;
pub mod policy;
pub mod reasons;

#[cfg(test)]
mod tests;

pub use engine::{
    BidOutcome, BidQuote, Engine, EngineConfig, Fill, OfferOutcome, QuotedFill, Removal,
    RemovalReason,
};
pub use policy::{
    Allowance, BuiltInRules, Decided, DecisionRecord, PairFacts, Policies, PriceDecision,
};
pub use reasons::{Reason, ReasonCode, Reasons};

use rust_decimal::Decimal;
use suanli_sdk::{DataClass, OrderStatus, Side, TimeInForce};
use uuid::Uuid;

/// The engine's arrival number of an order: strictly increasing, also its time priority.
pub type Seq = u64;

/// A hub, as an index into the exchange's list of hubs (at most 64, so a set fits a `u64`).
pub type HubId = u8;

/// A SKU, as an index into the exchange's list of SKUs.
pub type SkuId = u16;

/// A set of hubs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HubSet(pub u64);

impl HubSet {
    /// Whether `hub` is in the set.
    pub fn contains(self, hub: HubId) -> bool {
        self.0 & (1 << hub) != 0
    }

    /// The set with `hub` added.
    pub fn with(self, hub: HubId) -> Self {
        HubSet(self.0 | (1 << hub))
    }

    /// The hubs in the set, in index order (one step per hub in the set, not per possible hub).
    pub fn iter(self) -> impl Iterator<Item = HubId> {
        let mut rest = self.0;
        std::iter::from_fn(move || {
            let hub = HubId::try_from(rest.trailing_zeros())
                .ok()
                .filter(|hub| *hub < 64)?;
            rest &= rest - 1;
            Some(hub)
        })
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// Whole hours `[start, end)`, counted from the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Hours {
    pub start: i64,
    pub end: i64,
}

impl Hours {
    /// Whether `inner` lies inside `self`.
    pub fn contains(self, inner: Hours) -> bool {
        self.start <= inner.start && inner.end <= self.end
    }

    /// The number of hours.
    pub fn len(self) -> u32 {
        (self.end - self.start) as u32
    }

    /// Whether the range is empty.
    pub fn is_empty(self) -> bool {
        self.end <= self.start
    }

    /// The first second of the range, Unix seconds.
    pub fn start_seconds(self) -> i64 {
        self.start * 3600
    }

    /// The second after the range, Unix seconds.
    pub fn end_seconds(self) -> i64 {
        self.end * 3600
    }
}

/// An offer as the engine knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct OfferSpec {
    pub id: Uuid,
    pub provider: Uuid,
    pub hub: HubId,
    pub cluster: String,
    pub sku: SkuId,
    pub quantity: u32,
    pub window: Hours,
    pub ask_price: Decimal,
    pub green_share: u8,
    /// The offer's free-form attributes as text pairs, for policies (matching ignores them).
    pub attributes: Vec<(String, String)>,
}

/// A bid as the engine knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct BidSpec {
    pub id: Uuid,
    pub buyer: Uuid,
    pub skus: Vec<SkuId>,
    /// Where the work may run, latency bound already applied.
    pub hubs: HubSet,
    pub data_origin: Option<HubId>,
    /// The round-trip bound from the data origin the buyer asked for (already applied to `hubs`;
    /// kept for policies).
    pub max_latency_ms: Option<u32>,
    pub quantity: u32,
    pub window: Hours,
    pub limit_price: Decimal,
    pub min_green_share: u8,
    pub data_class: DataClass,
    pub time_in_force: TimeInForce,
    /// GTD expiry, Unix seconds.
    pub expires_at: Option<i64>,
    pub min_fill: u32,
    /// Money held per unit: `limit × hours` rounded up to the fen (see [`money::unit_hold`]).
    pub unit_hold: Decimal,
}

impl BidSpec {
    /// When the bid stops resting, Unix seconds: its window's start, or its GTD expiry if sooner.
    pub fn expiry(&self) -> i64 {
        let start = self.window.start_seconds();
        self.expires_at.map_or(start, |at| at.min(start))
    }
}

/// A resting order's state after a command touched it, for storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderState {
    pub seq: Seq,
    pub id: Uuid,
    pub side: Side,
    pub remaining: u32,
    pub status: OrderStatus,
    /// For bids: the minimum fill of the resting remainder.
    pub min_fill: u32,
}
