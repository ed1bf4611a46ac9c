//! The narrow interface between matching and the hubs' policies.
//!
//! The engine asks [`Policies`] two questions about each candidate pair: may it trade
//! ([`Policies::allow`], compliance of the offer's hub and of the data-origin hub), and at what
//! unit price ([`Policies::price`], the offer hub's pricing). Each answer carries the records of
//! the evaluations that produced it, so contracts keep them for replay.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use suanli_sdk::Side;

use super::{BidSpec, HubId, OfferSpec};

/// Everything known about a candidate pair.
#[derive(Debug, Clone, Copy)]
pub struct PairFacts<'a> {
    pub offer: &'a OfferSpec,
    pub bid: &'a BidSpec,
    /// Which side rested first.
    pub maker: Side,
    /// Hours of the bid's window.
    pub hours: u32,
    /// Units that would trade.
    pub units: u32,
}

/// A pricing answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PriceDecision {
    /// The unit price (CNY per unit-hour) and the hub's levy in basis points.
    Quote { unit_price: Decimal, levy_bps: u32 },
    /// No trade, with the policy's reason.
    Reject { reason: String },
    /// No trade: the policy could not run or answered wrongly (a fault, recorded as such).
    Failed { message: String },
}

/// A compliance answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Allowance {
    Allowed,
    /// `hub`'s compliance policy refused the pair, with its own reason.
    Denied {
        hub: HubId,
        reason: String,
    },
    /// `hub`'s compliance policy could not run: the pair does not trade (fail closed).
    Failed {
        hub: HubId,
        message: String,
    },
}

/// One policy evaluation, kept with the contract it contributed to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionRecord {
    /// SHA-256 of the policy module, lowercase hex.
    pub policy_digest: String,
    /// `pricing` or `compliance`.
    pub kind: String,
    pub hub: String,
    /// The canonical input bytes, as a UTF-8 string.
    pub input: String,
    /// The policy's output, canonical JSON.
    pub output: String,
    pub fuel_used: u64,
}

/// An answer with the evaluations behind it.
#[derive(Debug, Clone, PartialEq)]
pub struct Decided<T> {
    pub decision: T,
    pub records: Vec<DecisionRecord>,
}

impl<T> Decided<T> {
    /// An answer from built-in rules: no evaluation behind it.
    pub fn built_in(decision: T) -> Self {
        Decided {
            decision,
            records: Vec::new(),
        }
    }
}

/// The hubs' policies as matching sees them.
pub trait Policies {
    /// Whether the pair may trade at all.
    fn allow(&mut self, pair: &PairFacts<'_>) -> Decided<Allowance>;

    /// The unit price the offer's hub quotes for the pair.
    fn price(&mut self, pair: &PairFacts<'_>) -> Decided<PriceDecision>;

    /// A quote the exchange refused because it broke the rules (below the ask): a policy fault.
    fn quote_below_ask(&mut self, _pair: &PairFacts<'_>, _unit_price: Decimal) {}

    /// Whether these policies want to hear of pairs before they are asked about them
    /// ([`Policies::prepare`]).
    fn prepares(&self) -> bool {
        false
    }

    /// The pairs the engine will ask about next, in the order it will ask (an incoming order's
    /// candidates): the policies may decide them all at once, and answer [`Policies::allow`] and
    /// [`Policies::price`] from what they found. The answers must be those one-by-one asking
    /// would give. For an incoming bid the engine asks about every pair announced, with the
    /// facts announced, before it announces more. An incoming offer announces its pairs as if
    /// each traded, and asks in that order; after a refusal it announces the pairs after it
    /// again, some of them with more `units` than before or newly able to trade (an answer found
    /// for other facts must not be given), and after a few announcements it announces nothing,
    /// once (an empty list: what was decided ahead still answers the same facts), and asks
    /// about its remaining pairs without announcing them.
    fn prepare(&mut self, _pairs: &[PairFacts<'_>]) {}
}

/// The rules of a hub with no active policies: everything is allowed, and the price is the
/// maker's (the ask of a resting offer, the limit of a resting bid).
#[derive(Debug, Clone, Copy, Default)]
pub struct BuiltInRules;

impl Policies for BuiltInRules {
    fn allow(&mut self, _pair: &PairFacts<'_>) -> Decided<Allowance> {
        Decided::built_in(Allowance::Allowed)
    }

    fn price(&mut self, pair: &PairFacts<'_>) -> Decided<PriceDecision> {
        let unit_price = match pair.maker {
            Side::Offer => pair.offer.ask_price,
            Side::Bid => pair.bid.limit_price,
        };
        Decided::built_in(PriceDecision::Quote {
            unit_price,
            levy_bps: 0,
        })
    }
}
