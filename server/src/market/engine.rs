//! The matching engine: the book of resting offers and bids, and continuous matching of each
//! incoming order against it.
//!
//! Priority: an incoming bid takes eligible offers by quoted unit price (lowest first), then offer
//! arrival; an incoming offer takes resting bids by limit (highest first), then bid arrival. Each
//! pairing fills `min(bid remaining, offer units free over the bid's window)` for the bid's whole
//! window. At most `candidates_max` resting orders are examined per incoming order.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::hash::BuildHasherDefault;

use rust_decimal::Decimal;
use suanli_sdk::{OrderStatus, Side, TimeInForce};
use uuid::Uuid;

use super::capacity::{Capacity, SoldOut};
use super::money;
use super::policy::{Allowance, DecisionRecord, PairFacts, Policies, PriceDecision};
use super::reasons::{Message, Reason, ReasonCode, Reasons};
use super::{BidSpec, Hours, HubId, OfferSpec, OrderState, Seq, SkuId};

/// Limits of the engine.
#[derive(Debug, Clone, Copy)]
pub struct EngineConfig {
    /// Most resting orders examined for one incoming order.
    pub candidates_max: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            candidates_max: 256,
        }
    }
}

/// One pairing of a bid and an offer: what becomes a contract.
#[derive(Debug, Clone, PartialEq)]
pub struct Fill {
    pub bid: Seq,
    pub offer: Seq,
    pub bid_id: Uuid,
    pub offer_id: Uuid,
    pub buyer: Uuid,
    pub provider: Uuid,
    pub hub: HubId,
    pub cluster: String,
    pub sku: SkuId,
    /// The bid's data origin, whichever side rested first: the contract records it.
    pub data_origin: Option<HubId>,
    pub units: u32,
    /// The bid's window.
    pub window: Hours,
    pub unit_price: Decimal,
    pub levy_bps: u32,
    pub maker: Side,
    /// `unit_price × units × hours`, rounded half-even to the fen.
    pub notional: Decimal,
    /// The part of the bid's hold for these units that the notional does not use, released to
    /// the buyer: `unit_hold × units − notional`, never negative.
    pub hold_released: Decimal,
    pub decisions: Vec<DecisionRecord>,
    /// The resting counterparty's state after this fill.
    pub counterparty: OrderState,
}

/// What happened to an incoming bid.
#[derive(Debug, Clone, PartialEq)]
pub struct BidOutcome {
    pub state: OrderState,
    pub fills: Vec<Fill>,
    /// Hold released because the bid will not rest (IOC/FOK remainder, unreachable minimum).
    pub hold_released: Decimal,
    /// Why units stayed unfilled (empty when the bid filled).
    pub reasons: Vec<Reason>,
}

/// One fill a quote foresees.
#[derive(Debug, Clone, PartialEq)]
pub struct QuotedFill {
    pub hub: HubId,
    pub cluster: String,
    pub sku: SkuId,
    pub units: u32,
    pub unit_price: Decimal,
    pub notional: Decimal,
}

/// What an incoming bid would get now, with the book untouched.
#[derive(Debug, Clone, PartialEq)]
pub struct BidQuote {
    pub fills: Vec<QuotedFill>,
    pub unfilled: u32,
    pub reasons: Vec<Reason>,
}

/// The fills an incoming bid gets, decided before anything changes: shared by placing a bid and
/// quoting one, so that a quote is exactly what the bid would get.
struct BidPlan {
    planned: Vec<(Quote, u32)>,
    /// Units that will not fill now.
    unfilled: u32,
    all_or_nothing_fails: bool,
    /// Whether the unfilled units rest in the book.
    rests: bool,
    reasons: Reasons,
}

/// What happened to an incoming offer.
#[derive(Debug, Clone, PartialEq)]
pub struct OfferOutcome {
    pub state: OrderState,
    pub fills: Vec<Fill>,
}

/// Why an order left the book without filling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemovalReason {
    Cancelled,
    Expired,
}

/// An order taken out of the book by a cancel or by expiry.
#[derive(Debug, Clone, PartialEq)]
pub struct Removal {
    pub state: OrderState,
    pub reason: RemovalReason,
    pub owner: Uuid,
    /// Units that were still unfilled.
    pub unfilled: u32,
    /// For bids: the hold released (`unit_hold × unfilled`).
    pub hold_released: Decimal,
}

/// How many more offers of a market beyond the bid's limit are looked at for a
/// `price_above_limit` reason.
const PRICE_REASON_LOOKAHEAD: usize = 16;

/// The most candidate pairs announced to the policies at once ([`Policies::prepare`]); a few in
/// the unit tests, so that their books reach it.
const PREPARED_PAIRS_MAX: usize = if cfg!(test) { 3 } else { 64 };

/// The most announcements one incoming offer makes (each refusal makes it announce the pairs
/// after it again, with the units the refusal left them); then it says so, once, with an empty
/// announcement and asks about the rest without announcing them, so a run of refusals cannot
/// have the same pairs decided again and again.
const OFFER_ANNOUNCEMENTS_MAX: usize = 4;

/// What the offer index keeps beside each entry: enough to turn most candidates down without
/// reading the offer itself (a cache miss on a large book).
#[derive(Debug, Clone, Copy)]
struct OfferKey {
    window: Hours,
    green_share: u8,
    provider: Uuid,
    /// Some of the hours the offer has sold out (kept up to date after each fill).
    sold_out: SoldOut,
    /// Where the offer lives in [`OfferSlab`]: reached without a hash lookup.
    slot: u32,
}

/// The resting offers, each in a slot of one vector (slots are reused as offers leave), found by
/// order number through a map of slots. The price index keeps each offer's slot, so a candidate
/// is read with one memory access instead of a hash probe.
#[derive(Debug, Default)]
struct OfferSlab {
    slots: Vec<Option<RestingOffer>>,
    vacant: Vec<u32>,
    by_seq: SeqMap<u32>,
}

impl OfferSlab {
    fn len(&self) -> usize {
        self.by_seq.len()
    }

    fn contains_key(&self, seq: &Seq) -> bool {
        self.by_seq.contains_key(seq)
    }

    fn get(&self, seq: &Seq) -> Option<&RestingOffer> {
        self.slots[*self.by_seq.get(seq)? as usize].as_ref()
    }

    fn get_mut(&mut self, seq: &Seq) -> Option<&mut RestingOffer> {
        self.slots[*self.by_seq.get(seq)? as usize].as_mut()
    }

    fn in_slot(&self, slot: u32) -> &RestingOffer {
        self.slots[slot as usize]
            .as_ref()
            .expect("the price index names only occupied slots")
    }

    /// Stores a resting offer; returns its slot.
    fn insert(&mut self, seq: Seq, offer: RestingOffer) -> u32 {
        let slot = match self.vacant.pop() {
            Some(slot) => {
                self.slots[slot as usize] = Some(offer);
                slot
            }
            None => {
                let slot = u32::try_from(self.slots.len()).expect("fewer than 2^32 resting offers");
                self.slots.push(Some(offer));
                slot
            }
        };
        self.by_seq.insert(seq, slot);
        slot
    }

    fn remove(&mut self, seq: &Seq) -> Option<RestingOffer> {
        let slot = self.by_seq.remove(seq)?;
        self.vacant.push(slot);
        self.slots[slot as usize].take()
    }

    fn iter(&self) -> impl Iterator<Item = (&Seq, &RestingOffer)> {
        self.by_seq
            .iter()
            .map(|(seq, slot)| (seq, self.in_slot(*slot)))
    }
}

impl std::ops::Index<&Seq> for OfferSlab {
    type Output = RestingOffer;

    fn index(&self, seq: &Seq) -> &RestingOffer {
        self.get(seq).expect("a resting offer")
    }
}

/// Hashes the engine's own order numbers (and its markets' SKU and hub numbers, small integers
/// from the reference data): one 64 × 64 → 128-bit multiplication per integer, its two halves
/// folded together, so every bit of the number reaches the low bits the table picks buckets by.
/// Order numbers are assigned by the engine; a participant can only choose which of theirs stay
/// resting (by cancelling the others), and no choice of numbers — multiples of a power of two,
/// say — crowds one group of buckets, as a plain multiplication would let it. A keyed hash (the
/// standard library's default) would cost time on every lookup for no more.
#[derive(Debug, Default, Clone, Copy)]
struct SeqHasher(u64);

impl std::hash::Hasher for SeqHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.write_u64(u64::from(*byte));
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.write_u64(u64::from(n));
    }

    fn write_u16(&mut self, n: u16) {
        self.write_u64(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        let product = u128::from(self.0 ^ n) * 0x9e37_79b9_7f4a_7c15_u128;
        self.0 = (product as u64) ^ ((product >> 64) as u64);
    }
}

/// The resting offers of one market in ask order, from the price index.
type OfferIndexIter<'a> = super::chunked::Iter<'a, (i64, Seq), OfferKey>;

/// The next entry of a market's offer index: (ask in millionths, order number) and what the index
/// keeps beside it (borrowed: the scan moves on without copying entries).
type Head<'a> = (&'a (i64, Seq), &'a OfferKey);

/// Where a bid's scan of the offers stands: its cursors into each market, the head of each, how
/// many candidates it examined, the bid's limit in millionths and quantity, the units quoted
/// below every ask still ahead (`covered`) and the quotes not yet counted so (`pending`: price in
/// millionths, units).
struct Lookahead<'s, 'a> {
    markets: &'s [(HubId, OfferIndexIter<'a>)],
    heads: &'s [Option<Head<'a>>],
    examined: usize,
    limit: i64,
    quantity: u64,
    covered: u64,
    pending: &'s BinaryHeap<Reverse<(i64, u32)>>,
}

/// One market's resting offers by (ask in micro-CNY, order number).
type OfferIndex = super::chunked::Chunked<(i64, Seq), OfferKey>;

/// One SKU's resting bids by (highest limit in micro-CNY first, order number).
type BidIndex = BTreeMap<(Reverse<i64>, Seq), BidKey>;

/// The engine's maps' hasher (see [`SeqHasher`]).
type Cheap = BuildHasherDefault<SeqHasher>;

/// A map keyed by order number.
type SeqMap<V> = HashMap<Seq, V, Cheap>;

/// What the bid index keeps beside each entry.
#[derive(Debug, Clone, Copy)]
struct BidKey {
    window: Hours,
    hubs: super::HubSet,
    min_green_share: u8,
    buyer: Uuid,
}

/// A price in whole micro-CNY, truncated toward zero: exact for prices with at most 6
/// fractional digits, and far cheaper to compare than a `Decimal`. Read from the decimal's own
/// integer and scale (no decimal arithmetic); a price beyond `i64` gives `i64::MAX`.
fn micros(price: Decimal) -> i64 {
    let (mantissa, scale) = (price.mantissa(), price.scale());
    // A decimal's integer is below 2^96 and its scale at most 28, so neither step overflows.
    let value = if scale <= 6 {
        mantissa * 10i128.pow(6 - scale)
    } else {
        mantissa / 10i128.pow(scale - 6)
    };
    i64::try_from(value).unwrap_or(i64::MAX)
}

#[derive(Debug, Clone)]
struct RestingOffer {
    spec: OfferSpec,
    capacity: Capacity,
}

#[derive(Debug, Clone)]
struct RestingBid {
    spec: BidSpec,
    remaining: u32,
    min_fill: u32,
}

/// Why a cancel was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelError {
    /// No resting order with that number (never existed, or already done).
    NotResting,
    /// The order belongs to someone else.
    NotOwner,
}

/// The book and the matching rules.
#[derive(Debug, Default)]
pub struct Engine {
    config: EngineConfig,
    next_seq: Seq,
    offers: OfferSlab,
    bids: SeqMap<RestingBid>,
    /// Resting offers by (SKU, hub), cheapest ask first (in micro-CNY), then arrival. The values
    /// repeat what eligibility needs, so most candidates are turned down without a lookup.
    offers_by_market: HashMap<(SkuId, HubId), OfferIndex, Cheap>,
    /// Resting bids by SKU, highest limit first (in micro-CNY), then arrival.
    bids_by_sku: HashMap<SkuId, BidIndex, Cheap>,
    /// When each resting order stops resting.
    expiries: Expiries,
    /// The buffers incoming orders' scans fill and empty, kept from one order to the next (out
    /// of the engine while an order borrows them: moving the box moves one pointer).
    spare: Option<Box<Spare>>,
}

/// The buffers an incoming order's scan fills and empties, kept in the engine between orders (and
/// emptied before each use) so that a warm engine allocates little beyond what it answers with (fills, reasons written out) and what
/// comes to rest; an incoming offer that announces its pairs to policies still copies its
/// capacity for each announcement.
/// Those that hold cursors into the book are kept with their lifetimes erased ([`recycle`]).
#[derive(Default)]
struct Spare {
    markets: Vec<(HubId, OfferIndexIter<'static>)>,
    heads: Vec<Option<Head<'static>>>,
    quotes: Vec<Quote>,
    pending: BinaryHeap<Reverse<(i64, u32)>>,
    planned: Vec<(Quote, u32)>,
    reasons: Reasons,
    /// An incoming bid's walks ahead (see [`Engine::announce`]), and the pairs an incoming order
    /// announces (also [`Engine::announce_bids`]).
    ahead_markets: Vec<(HubId, OfferIndexIter<'static>)>,
    ahead_heads: Vec<Option<Head<'static>>>,
    unheard: Reasons,
    pairs: Vec<PairFacts<'static>>,
    /// An incoming offer's candidate bids.
    candidates: Vec<Seq>,
}

impl std::fmt::Debug for Spare {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("Spare")
    }
}

/// An empty vector of `U` in `vector`'s allocation when `T` and `U` have the same layout (the
/// standard library collects a vector's own iterator in place), else a new empty one: how the
/// scan's buffers of cursors, which borrow the book, are kept from one order to the next.
fn recycle<T, U>(mut vector: Vec<T>) -> Vec<U> {
    vector.clear();
    vector
        .into_iter()
        .map(|_| unreachable!("the vector was emptied"))
        .collect()
}

/// When resting orders stop resting: order numbers grouped by the second (Unix seconds) they
/// expire at. Nearly every order expires on an hour (an offer when its window ends, a bid when
/// its window starts), so the map holds about one group per hour of the horizon and putting an
/// order in it is a short descent and a push. An order that leaves the book early stays in its
/// group (its number is skipped when the group falls due), until there are more of those than
/// orders resting when the next order comes to rest: then they are swept out, so that each order
/// put in finds the groups holding at most twice the resting orders and a few more.
#[derive(Debug, Default)]
struct Expiries {
    groups: BTreeMap<i64, Vec<Seq>>,
    /// Numbers in the groups, those of orders that left early included.
    entries: usize,
}

/// How many numbers of orders that left early the expiries keep beyond the resting orders'.
const EXPIRIES_SLACK: usize = 1024;

impl Expiries {
    /// Notes that the order `seq` stops resting at `at`; sweeps out the orders that left early
    /// (those `rests` does not know) when they outnumber the `resting` ones.
    fn insert(&mut self, at: i64, seq: Seq, resting: usize, rests: impl Fn(Seq) -> bool) {
        self.groups.entry(at).or_default().push(seq);
        self.entries += 1;
        if self.entries > 2 * resting + EXPIRIES_SLACK {
            self.groups.retain(|_, group| {
                group.retain(|seq| rests(*seq));
                !group.is_empty()
            });
            self.entries = self.groups.values().map(Vec::len).sum();
        }
    }

    /// Takes out the numbers due at `now` (expiring at `now` or before), by expiry and then
    /// number; among them are orders that have already left.
    fn take_due(&mut self, now: i64) -> Vec<Seq> {
        let mut due = Vec::new();
        while let Some(entry) = self.groups.first_entry() {
            if *entry.key() > now {
                break;
            }
            let mut group = entry.remove();
            group.sort_unstable();
            self.entries -= group.len();
            due.append(&mut group);
        }
        due
    }
}

impl Engine {
    /// An empty book.
    pub fn new(config: EngineConfig) -> Self {
        Engine {
            config,
            next_seq: 1,
            ..Default::default()
        }
    }

    /// The number the next order will get.
    pub fn next_seq(&self) -> Seq {
        self.next_seq
    }

    /// Makes the next order number at least `seq` (start-up recovery: numbers are never reused).
    pub fn ensure_next_seq(&mut self, seq: Seq) {
        self.next_seq = self.next_seq.max(seq);
    }

    /// Resting offers and bids.
    pub fn resting(&self) -> (usize, usize) {
        (self.offers.len(), self.bids.len())
    }

    /// Puts a stored resting offer back, with what was already sold (start-up recovery).
    pub fn restore_offer(&mut self, seq: Seq, spec: OfferSpec, sold: &[(Hours, u32)]) {
        let mut capacity = Capacity::new(spec.quantity, spec.window);
        for (range, units) in sold {
            capacity.take(*range, *units);
        }
        self.next_seq = self.next_seq.max(seq + 1);
        self.rest_offer(seq, RestingOffer { spec, capacity });
    }

    /// Puts a stored resting bid back (start-up recovery).
    pub fn restore_bid(&mut self, seq: Seq, spec: BidSpec, remaining: u32, min_fill: u32) {
        self.next_seq = self.next_seq.max(seq + 1);
        self.rest_bid(
            seq,
            RestingBid {
                spec,
                remaining,
                min_fill,
            },
        );
    }

    /// Takes every order whose time is up at `now` (Unix seconds) out of the book.
    pub fn expire(&mut self, now: i64) -> Vec<Removal> {
        let mut removals = Vec::new();
        for seq in self.expiries.take_due(now) {
            if let Some(removal) = self.remove(seq, RemovalReason::Expired) {
                removals.push(removal);
            }
        }
        removals
    }

    /// Which side the resting order `seq` is on, if it rests.
    pub fn side_of(&self, seq: Seq) -> Option<Side> {
        if self.offers.contains_key(&seq) {
            Some(Side::Offer)
        } else if self.bids.contains_key(&seq) {
            Some(Side::Bid)
        } else {
            None
        }
    }

    /// The resting orders of `owner`, oldest first (a scan of the book: for rare acts such as a
    /// suspension).
    pub fn resting_orders_of(&self, owner: Uuid) -> Vec<Seq> {
        let offers = self
            .offers
            .iter()
            .filter(|(_, offer)| offer.spec.provider == owner)
            .map(|(seq, _)| *seq);
        let bids = self
            .bids
            .iter()
            .filter(|(_, bid)| bid.spec.buyer == owner)
            .map(|(seq, _)| *seq);
        let mut orders: Vec<Seq> = offers.chain(bids).collect();
        orders.sort_unstable();
        orders
    }

    /// Cancels the unfilled part of a resting order owned by `owner`.
    pub fn cancel(&mut self, seq: Seq, owner: Uuid) -> Result<Removal, CancelError> {
        let actual_owner = match (self.offers.get(&seq), self.bids.get(&seq)) {
            (Some(offer), _) => offer.spec.provider,
            (_, Some(bid)) => bid.spec.buyer,
            _ => return Err(CancelError::NotResting),
        };
        if actual_owner != owner {
            return Err(CancelError::NotOwner);
        }
        Ok(self
            .remove(seq, RemovalReason::Cancelled)
            .expect("the order rests"))
    }

    /// What `spec` would get if it arrived at `now`: its fills and why the rest would not
    /// trade. Nothing changes; the policies are asked exactly as for [`Engine::submit_bid`].
    pub fn quote_bid(&self, spec: &BidSpec, now: i64, policies: &mut dyn Policies) -> BidQuote {
        let mut plan = self.plan_bid(spec, now, policies, &mut Spare::default());
        let hours = spec.window.len();
        let fills = plan
            .planned
            .iter()
            .map(|(quote, units)| {
                let offer = &self.offers[&quote.offer].spec;
                QuotedFill {
                    hub: offer.hub,
                    cluster: offer.cluster.clone(),
                    sku: offer.sku,
                    units: *units,
                    unit_price: quote.unit_price,
                    notional: money::notional(quote.unit_price, *units, hours),
                }
            })
            .collect();
        BidQuote {
            fills,
            unfilled: plan.unfilled,
            reasons: plan.reasons.take_vec(),
        }
    }

    /// Plans an incoming bid: which offers it takes, and why the rest does not trade.
    /// `spare` lends the buffers; the plan's own (`planned`, `reasons`) go back to it once used.
    fn plan_bid(
        &self,
        spec: &BidSpec,
        now: i64,
        policies: &mut dyn Policies,
        spare: &mut Spare,
    ) -> BidPlan {
        let mut reasons = std::mem::take(&mut spare.reasons);
        let mut quotes = std::mem::take(&mut spare.quotes);
        self.quote_offers_for(spec, now, policies, &mut reasons, &mut quotes, spare);
        quotes.sort_by_key(|quote| (quote.unit_price, quote.offer));

        // Plan first: FOK and the minimum fill are all-or-nothing.
        let mut planned = std::mem::take(&mut spare.planned);
        let mut wanted = spec.quantity;
        for quote in quotes.drain(..) {
            if wanted == 0 {
                break;
            }
            let units = quote.units.min(wanted);
            wanted -= units;
            planned.push((quote, units));
        }
        spare.quotes = quotes;
        let fillable = spec.quantity - wanted;
        let fok_fails = spec.time_in_force == TimeInForce::Fok && wanted > 0;
        let min_fill_fails = fillable < spec.min_fill.max(1);
        let all_or_nothing_fails = fok_fails || min_fill_fails;
        if all_or_nothing_fails {
            planned.clear();
        }
        let unfilled = if all_or_nothing_fails {
            spec.quantity
        } else {
            wanted
        };
        // A bid expires when its window starts: one for the current hour fills at once or not at all.
        let keeps = matches!(spec.time_in_force, TimeInForce::Gtc | TimeInForce::Gtd);
        let window_started = spec.expiry() <= now;
        let rests = unfilled > 0 && keeps && !window_started;
        if unfilled == 0 {
            reasons.clear();
        } else {
            if reasons.is_empty() {
                let message = if fillable == 0 {
                    Message::Fixed("no resting offer of these SKUs in these hubs covers the window")
                } else {
                    Message::PartlyOnOffer {
                        fillable,
                        quantity: spec.quantity,
                    }
                };
                reasons.note(ReasonCode::NoOfferInWindow, None, message);
            }
            if fok_fails {
                let message = Message::FokNotFilled {
                    fillable,
                    quantity: spec.quantity,
                };
                reasons.note(ReasonCode::FokNotFilled, None, message);
            } else if min_fill_fails && fillable > 0 {
                let message = Message::MinFillNotReached {
                    fillable,
                    min_fill: spec.min_fill,
                };
                reasons.note(ReasonCode::MinFillNotReached, None, message);
            }
            if keeps && window_started {
                let message = Message::Fixed(
                    "the window has started: units that did not fill at once expire",
                );
                reasons.note(ReasonCode::WindowStarted, None, message);
            }
        }
        BidPlan {
            planned,
            unfilled,
            all_or_nothing_fails,
            rests,
            reasons,
        }
    }

    /// Matches an incoming bid at `now` and rests what is left (GTC/GTD).
    pub fn submit_bid(
        &mut self,
        spec: BidSpec,
        now: i64,
        policies: &mut dyn Policies,
    ) -> BidOutcome {
        let seq = self.take_seq();
        let hours = spec.window.len();
        let mut spare = self.spare.take().unwrap_or_default();
        let BidPlan {
            mut planned,
            unfilled,
            all_or_nothing_fails,
            rests,
            mut reasons,
        } = self.plan_bid(&spec, now, policies, &mut spare);

        let mut fills = Vec::with_capacity(planned.len());
        for (quote, units) in planned.drain(..) {
            let offer = self
                .offers
                .get_mut(&quote.offer)
                .expect("quoted offers rest");
            offer.capacity.take(spec.window, units);
            let notional = money::notional(quote.unit_price, units, hours);
            let counterparty = offer_state(quote.offer, offer);
            fills.push(Fill {
                bid: seq,
                offer: quote.offer,
                bid_id: spec.id,
                offer_id: offer.spec.id,
                buyer: spec.buyer,
                provider: offer.spec.provider,
                hub: offer.spec.hub,
                cluster: offer.spec.cluster.clone(),
                sku: offer.spec.sku,
                data_origin: spec.data_origin,
                units,
                window: spec.window,
                unit_price: quote.unit_price,
                levy_bps: quote.levy_bps,
                maker: Side::Offer,
                notional,
                hold_released: spec.unit_hold * Decimal::from(units) - notional,
                decisions: quote.decisions,
                counterparty,
            });
            if counterparty.status == OrderStatus::Filled {
                self.remove_offer_from_book(quote.offer);
            } else {
                self.refresh_sold_out(quote.offer);
            }
        }

        let filled: u32 = fills.iter().map(|fill| fill.units).sum();
        let remaining = spec.quantity - filled;
        debug_assert_eq!(remaining, unfilled);
        let keeps = matches!(spec.time_in_force, TimeInForce::Gtc | TimeInForce::Gtd);
        let window_started = spec.expiry() <= now;
        let status = match (remaining, rests, filled) {
            (0, _, _) => OrderStatus::Filled,
            (_, true, 0) => OrderStatus::Open,
            (_, true, _) => OrderStatus::PartiallyFilled,
            (_, false, _) if keeps && window_started && !all_or_nothing_fails => {
                OrderStatus::Expired
            }
            (_, false, _) => OrderStatus::Cancelled,
        };
        let min_fill = if filled > 0 { 1 } else { spec.min_fill };
        let state = OrderState {
            seq,
            id: spec.id,
            side: Side::Bid,
            remaining: if rests { remaining } else { 0 },
            status,
            min_fill,
        };
        let hold_released = if rests {
            Decimal::ZERO
        } else {
            spec.unit_hold * Decimal::from(remaining)
        };
        if rests {
            self.rest_bid(
                seq,
                RestingBid {
                    spec,
                    remaining,
                    min_fill,
                },
            );
        }
        let answered = reasons.take_vec();
        spare.planned = planned;
        spare.reasons = reasons;
        self.spare = Some(spare);
        BidOutcome {
            state,
            fills,
            hold_released,
            reasons: answered,
        }
    }

    /// The cheapest ask at most `bid.limit_price` among resting offers of the bid's SKUs in
    /// `hubs` that would suit the bid (window, green share, someone else's, free units): the
    /// offers it could have had without its latency bound. Examines at most `candidates_max`
    /// offers per market.
    pub fn cheapest_offer_in(
        &self,
        bid: &BidSpec,
        hubs: super::HubSet,
    ) -> Option<(HubId, Decimal)> {
        let limit = micros(bid.limit_price);
        bid.skus
            .iter()
            .flat_map(|sku| hubs.iter().map(move |hub| (*sku, hub)))
            .filter_map(|market| {
                let book = self.offers_by_market.get(&market)?;
                book.iter()
                    .take(self.config.candidates_max)
                    .take_while(|((ask, _), _)| *ask <= limit)
                    .find(|(_, key)| {
                        key.window.contains(bid.window)
                            && key.green_share >= bid.min_green_share
                            && key.provider != bid.buyer
                            && !key.sold_out.blocks(key.window.start, bid.window)
                            && self.offers.in_slot(key.slot).capacity.free(bid.window) > 0
                    })
                    .map(|(_, key)| (market.1, self.offers.in_slot(key.slot).spec.ask_price))
            })
            .min_by(|a, b| a.1.cmp(&b.1))
    }

    /// Matches an incoming offer at `now` against resting bids and rests what is left.
    pub fn submit_offer(
        &mut self,
        spec: OfferSpec,
        now: i64,
        policies: &mut dyn Policies,
    ) -> OfferOutcome {
        let seq = self.take_seq();
        let mut offer = RestingOffer {
            capacity: Capacity::new(spec.quantity, spec.window),
            spec,
        };
        let ask = micros(offer.spec.ask_price);
        let mut spare = self.spare.take().unwrap_or_default();
        let mut candidates = std::mem::take(&mut spare.candidates);
        candidates.clear();
        candidates.extend(
            self.bids_by_sku
                .get(&offer.spec.sku)
                .into_iter()
                .flatten()
                .take_while(|((Reverse(limit), _), _)| *limit >= ask)
                .take(self.config.candidates_max)
                .filter(|(_, key)| {
                    key.hubs.contains(offer.spec.hub)
                        && offer.spec.window.contains(key.window)
                        && offer.spec.green_share >= key.min_green_share
                        && offer.spec.provider != key.buyer
                })
                .map(|((_, seq), _)| *seq),
        );

        let mut fills = Vec::new();
        let mut prepares = policies.prepares();
        // Candidates before this position were announced to the policies (or passed over).
        let mut announced_to = 0;
        let mut announcements_left = OFFER_ANNOUNCEMENTS_MAX;
        for (position, &bid_seq) in candidates.iter().enumerate() {
            if offer.capacity.sold_out() {
                break;
            }
            let Some((bid, units)) = self.bid_units(&offer.spec, &offer.capacity, bid_seq, now)
            else {
                continue;
            };
            if prepares && position >= announced_to {
                if announcements_left == 0 {
                    // Enough announcements for one offer: the rest are asked without.
                    policies.prepare(&[]);
                    prepares = false;
                } else {
                    announcements_left -= 1;
                    announced_to = position
                        + self.announce_bids(
                            &offer,
                            &candidates[position..],
                            now,
                            policies,
                            &mut spare.pairs,
                        );
                }
            }
            let facts = PairFacts {
                offer: &offer.spec,
                bid: &bid.spec,
                maker: Side::Bid,
                hours: bid.spec.window.len(),
                units,
            };
            let Ok(quote) = quote_pair(&facts, policies) else {
                // The units announced for this pair stay with the offer: the pairs after it are
                // announced again with what they can now have.
                announced_to = announced_to.min(position + 1);
                continue;
            };

            let bid = self.bids.get_mut(&bid_seq).expect("candidate bids rest");
            offer.capacity.take(bid.spec.window, units);
            bid.remaining -= units;
            bid.min_fill = 1;
            let status = if bid.remaining == 0 {
                OrderStatus::Filled
            } else {
                OrderStatus::PartiallyFilled
            };
            let counterparty = OrderState {
                seq: bid_seq,
                id: bid.spec.id,
                side: Side::Bid,
                remaining: bid.remaining,
                status,
                min_fill: 1,
            };
            let notional = money::notional(quote.unit_price, units, bid.spec.window.len());
            fills.push(Fill {
                bid: bid_seq,
                offer: seq,
                bid_id: bid.spec.id,
                offer_id: offer.spec.id,
                buyer: bid.spec.buyer,
                provider: offer.spec.provider,
                hub: offer.spec.hub,
                cluster: offer.spec.cluster.clone(),
                sku: offer.spec.sku,
                data_origin: bid.spec.data_origin,
                units,
                window: bid.spec.window,
                unit_price: quote.unit_price,
                levy_bps: quote.levy_bps,
                maker: Side::Bid,
                notional,
                hold_released: bid.spec.unit_hold * Decimal::from(units) - notional,
                decisions: quote.decisions,
                counterparty,
            });
            if status == OrderStatus::Filled {
                self.remove_bid_from_book(bid_seq);
            }
        }

        spare.candidates = candidates;
        self.spare = Some(spare);
        let state = offer_state(seq, &offer);
        if state.status != OrderStatus::Filled {
            self.rest_offer(seq, offer);
        }
        OfferOutcome { state, fills }
    }

    /// Quotes every eligible resting offer for `bid`, examining at most `candidates_max` of them
    /// in ask order across all the (SKU, hub) markets the bid accepts.
    fn quote_offers_for(
        &self,
        bid: &BidSpec,
        now: i64,
        policies: &mut dyn Policies,
        reasons: &mut Reasons,
        quotes: &mut Vec<Quote>,
        spare: &mut Spare,
    ) {
        let mut markets: Vec<(HubId, OfferIndexIter<'_>)> =
            recycle(std::mem::take(&mut spare.markets));
        for (index, sku) in bid.skus.iter().enumerate() {
            // A SKU named twice must not make an offer a candidate twice.
            if bid.skus[..index].contains(sku) {
                continue;
            }
            markets.extend(bid.hubs.iter().filter_map(|hub| {
                self.offers_by_market
                    .get(&(*sku, hub))
                    .map(|book| (hub, book.iter()))
            }));
        }
        let mut heads: Vec<Option<Head<'_>>> = recycle(std::mem::take(&mut spare.heads));
        heads.extend(markets.iter_mut().map(|(_, market)| market.next()));
        let limit = micros(bid.limit_price);
        let mut examined = 0;
        // How many of the pairs announced to the policies are still to be asked about.
        let mut announced_left = 0usize;
        let prepares = policies.prepares();
        // Units already quoted strictly below the ask about to be examined: no later candidate can
        // beat them (a quote is never below its own ask), so once they cover the bid, stop.
        let mut covered: u64 = 0;
        let mut pending = std::mem::take(&mut spare.pending);
        pending.clear();
        while examined < self.config.candidates_max {
            // The next candidate: its ask is the lowest still ahead.
            let Some((best, (&(ask, offer_seq), key))) = cheapest_head(&heads) else {
                break;
            };
            while let Some(Reverse((price, units))) = pending.peek().copied() {
                if price >= ask {
                    break;
                }
                pending.pop();
                covered += u64::from(units);
            }
            if covered >= u64::from(bid.quantity) {
                break;
            }
            if ask > limit {
                // Nothing cheaper remains in that market; a quote is never below the ask.
                let next = markets[best]
                    .1
                    .by_ref()
                    .take(PRICE_REASON_LOOKAHEAD)
                    .map(|((_, seq), key)| (*seq, *key));
                self.note_price_above_limit(
                    bid,
                    std::iter::once((offer_seq, *key)).chain(next),
                    reasons,
                );
                heads[best] = None;
                continue;
            }
            let hub = markets[best].0;
            heads[best] = markets[best].1.next();
            examined += 1;
            let Some((offer, units)) = self.candidate_units(bid, offer_seq, hub, key, now, reasons)
            else {
                continue;
            };
            let facts = PairFacts {
                offer: &offer.spec,
                bid,
                maker: Side::Offer,
                hours: bid.window.len(),
                units,
            };
            if prepares && announced_left == 0 {
                let ahead = Lookahead {
                    markets: &markets,
                    heads: &heads,
                    examined,
                    limit,
                    quantity: u64::from(bid.quantity),
                    covered,
                    pending: &pending,
                };
                announced_left = self.announce(bid, now, facts, ahead, policies, spare);
            }
            announced_left = announced_left.saturating_sub(1);
            match quote_pair(&facts, policies) {
                Ok(mut quote) => {
                    quote.offer = offer_seq;
                    quote.units = units;
                    pending.push(Reverse((micros(quote.unit_price), units)));
                    quotes.push(quote);
                }
                Err(refusal) => {
                    reasons.note(refusal.code, Some(refusal.hub), refusal.message);
                }
            }
        }
        if examined >= self.config.candidates_max {
            let message = Message::CandidatesExhausted { examined };
            reasons.note(ReasonCode::CandidatesExhausted, None, message);
        }
        spare.markets = recycle(markets);
        spare.heads = recycle(heads);
        spare.pending = pending;
    }

    /// Tells the policies which pairs this scan will ask about next, starting with `first`, so
    /// that they can decide them in one call per hub: the scan walked ahead on copies of its
    /// cursors, taking each candidate it would reach whatever the quotes turn out to be, at most
    /// [`PREPARED_PAIRS_MAX`]. The scan stops before a candidate only once the units quoted below
    /// that candidate's ask cover the bid; a pair's units are the offer's free units capped by
    /// the bid, whatever the other pairs decide, and a quote is never below its own ask, so the
    /// walk goes on while even every announced pair quoting below the next ask would not cover
    /// the bid. The scan therefore asks about every pair announced. Returns how many there are.
    fn announce<'a>(
        &'a self,
        bid: &'a BidSpec,
        now: i64,
        first: PairFacts<'a>,
        ahead: Lookahead<'_, 'a>,
        policies: &mut dyn Policies,
        spare: &mut Spare,
    ) -> usize {
        let mut pairs: Vec<PairFacts<'a>> = recycle(std::mem::take(&mut spare.pairs));
        pairs.push(first);
        let mut announced_units = u64::from(first.units);
        let mut markets: Vec<(HubId, OfferIndexIter<'a>)> =
            recycle(std::mem::take(&mut spare.ahead_markets));
        markets.extend_from_slice(ahead.markets);
        let mut heads: Vec<Option<Head<'a>>> = recycle(std::mem::take(&mut spare.ahead_heads));
        heads.extend_from_slice(ahead.heads);
        let mut examined = ahead.examined;
        // What the walk ahead finds out about refused candidates the scan notes itself.
        let mut unheard = std::mem::take(&mut spare.unheard);
        unheard.clear();
        while pairs.len() < PREPARED_PAIRS_MAX && examined < self.config.candidates_max {
            let Some((best, (&(ask, offer_seq), key))) = cheapest_head(&heads) else {
                break;
            };
            // Where the scan could stop before this head: once the units quoted below its ask
            // cover the bid. Those are at most the units covered already, the pending quotes
            // below it, and every announced pair's units (a quote is never below its own ask,
            // but may be below this one).
            let pending_below: u64 = ahead
                .pending
                .iter()
                .filter(|Reverse((price, _))| *price < ask)
                .map(|Reverse((_, units))| u64::from(*units))
                .sum();
            if ahead.covered + pending_below + announced_units >= ahead.quantity {
                break;
            }
            if ask > ahead.limit {
                heads[best] = None;
                continue;
            }
            let hub = markets[best].0;
            heads[best] = markets[best].1.next();
            examined += 1;
            if let Some((offer, units)) =
                self.candidate_units(bid, offer_seq, hub, key, now, &mut unheard)
            {
                announced_units += u64::from(units);
                pairs.push(PairFacts {
                    offer: &offer.spec,
                    bid,
                    maker: Side::Offer,
                    hours: bid.window.len(),
                    units,
                });
            }
        }
        policies.prepare(&pairs);
        let announced = pairs.len();
        spare.pairs = recycle(pairs);
        spare.ahead_markets = recycle(markets);
        spare.ahead_heads = recycle(heads);
        spare.unheard = unheard;
        announced
    }

    /// The resting bid `seq` and the units the incoming offer (`spec`, with `capacity` free) can
    /// give it, if it can trade with the offer at all (eligible, live, enough free units for its
    /// minimum fill).
    fn bid_units(
        &self,
        spec: &OfferSpec,
        capacity: &Capacity,
        seq: Seq,
        now: i64,
    ) -> Option<(&RestingBid, u32)> {
        let bid = &self.bids[&seq];
        if !pair_is_eligible(spec, &bid.spec, now) || bid.spec.expiry() <= now {
            return None;
        }
        let units = capacity.free(bid.spec.window).min(bid.remaining);
        (units > 0 && units >= bid.min_fill).then_some((bid, units))
    }

    /// Tells the policies which pairs an incoming offer will ask about next, as the scan would
    /// ask if every pair traded: the `candidates` (resting bids in limit order, the first of them
    /// the one about to be asked) walked on a copy of the offer's capacity, each taking the units
    /// it would trade, until the copy is sold out or [`PREPARED_PAIRS_MAX`] pairs are announced;
    /// a bid the earlier ones would leave without enough units is passed over. The scan itself
    /// asks in that order; a refusal leaves units to later pairs, so after one the scan announces
    /// the candidates after it again (at most [`OFFER_ANNOUNCEMENTS_MAX`] announcements in all).
    /// Returns how many candidates the announcement covers.
    fn announce_bids(
        &self,
        offer: &RestingOffer,
        candidates: &[Seq],
        now: i64,
        policies: &mut dyn Policies,
        spare_pairs: &mut Vec<PairFacts<'static>>,
    ) -> usize {
        let mut capacity = offer.capacity.clone();
        let mut pairs: Vec<PairFacts<'_>> = recycle(std::mem::take(spare_pairs));
        let mut covered = 0;
        for &seq in candidates {
            if pairs.len() == PREPARED_PAIRS_MAX || capacity.sold_out() {
                break;
            }
            covered += 1;
            let Some((bid, units)) = self.bid_units(&offer.spec, &capacity, seq, now) else {
                continue;
            };
            capacity.take(bid.spec.window, units);
            pairs.push(PairFacts {
                offer: &offer.spec,
                bid: &bid.spec,
                maker: Side::Bid,
                hours: bid.spec.window.len(),
                units,
            });
        }
        policies.prepare(&pairs);
        *spare_pairs = recycle(pairs);
        covered
    }

    /// Says that the bid's limit is below the asks of a market, if one of the offers there (the
    /// next few in ask order) would suit the bid but for its price.
    fn note_price_above_limit(
        &self,
        bid: &BidSpec,
        mut offers: impl Iterator<Item = (Seq, OfferKey)>,
        reasons: &mut Reasons,
    ) {
        let suits = |key: &OfferKey| {
            key.window.contains(bid.window)
                && key.green_share >= bid.min_green_share
                && key.provider != bid.buyer
        };
        if let Some((seq, _)) = offers.find(|(_, key)| suits(key)) {
            let offer = &self.offers[&seq].spec;
            let message = Message::AskAboveLimit {
                ask: offer.ask_price,
                limit: bid.limit_price,
            };
            reasons.note(ReasonCode::PriceAboveLimit, Some(offer.hub), message);
        }
    }

    /// The resting offer `seq` of `hub` (within the bid's price) and the units it can give the
    /// incoming `bid`, or `None` with the reason noted: window, green share, self-trade,
    /// eligibility, capacity. What the index keeps (`key`) is checked before the offer is read;
    /// inlined into the scan, since most candidates go no further than that.
    #[inline(always)]
    fn candidate_units(
        &self,
        bid: &BidSpec,
        seq: Seq,
        hub: HubId,
        key: &OfferKey,
        now: i64,
        reasons: &mut Reasons,
    ) -> Option<(&RestingOffer, u32)> {
        let hub = Some(hub);
        if !key.window.contains(bid.window) || key.window.end_seconds() <= now {
            let message = Message::Fixed("no offer here covers the window");
            reasons.note(ReasonCode::NoOfferInWindow, hub, message);
            return None;
        }
        if key.green_share < bid.min_green_share {
            let message = Message::GreenShareBelow {
                offered: key.green_share,
                minimum: bid.min_green_share,
            };
            reasons.note(ReasonCode::GreenShareBelow, hub, message);
            return None;
        }
        if key.provider == bid.buyer {
            let message = Message::Fixed("the offer here is your own (no self-trade)");
            reasons.note(ReasonCode::OwnOffer, hub, message);
            return None;
        }
        if key.sold_out.blocks(key.window.start, bid.window) {
            note_sold_out(reasons, hub);
            return None;
        }
        self.offer_units(bid, seq, hub, key, now, reasons)
    }

    /// [`Engine::candidate_units`] once the index entry passed: the offer read, its free units.
    #[inline(never)]
    fn offer_units(
        &self,
        bid: &BidSpec,
        seq: Seq,
        hub: Option<HubId>,
        key: &OfferKey,
        now: i64,
        reasons: &mut Reasons,
    ) -> Option<(&RestingOffer, u32)> {
        let offer = self.offers.in_slot(key.slot);
        debug_assert_eq!(offer.spec.id, self.offers[&seq].spec.id);
        // The incoming bid is live by definition (one for the current hour trades now). The
        // index entry holds the offer's own window, green share and provider, and the scan reads
        // only the markets of the bid's SKUs and hubs: what the entry passed, the offer passes.
        debug_assert!(pair_is_eligible(&offer.spec, bid, now));
        let units = offer.capacity.free(bid.window).min(bid.quantity);
        if units == 0 {
            note_sold_out(reasons, hub);
            return None;
        }
        Some((offer, units))
    }

    fn take_seq(&mut self) -> Seq {
        let seq = self.next_seq;
        self.next_seq += 1;
        seq
    }

    fn rest_offer(&mut self, seq: Seq, offer: RestingOffer) {
        let mut key = OfferKey {
            window: offer.spec.window,
            green_share: offer.spec.green_share,
            provider: offer.spec.provider,
            sold_out: offer.capacity.sold_out_summary(),
            slot: 0,
        };
        let market = (offer.spec.sku, offer.spec.hub);
        let ask = micros(offer.spec.ask_price);
        let at = offer.spec.window.end_seconds();
        key.slot = self.offers.insert(seq, offer);
        self.note_expiry(at, seq);
        self.offers_by_market
            .entry(market)
            .or_default()
            .insert((ask, seq), key);
    }

    fn rest_bid(&mut self, seq: Seq, bid: RestingBid) {
        let key = BidKey {
            window: bid.spec.window,
            hubs: bid.spec.hubs,
            min_green_share: bid.spec.min_green_share,
            buyer: bid.spec.buyer,
        };
        for sku in &bid.spec.skus {
            self.bids_by_sku
                .entry(*sku)
                .or_default()
                .insert((Reverse(micros(bid.spec.limit_price)), seq), key);
        }
        let at = bid.spec.expiry();
        self.bids.insert(seq, bid);
        self.note_expiry(at, seq);
    }

    /// Notes when the order `seq`, resting from now on, stops resting.
    fn note_expiry(&mut self, at: i64, seq: Seq) {
        let (offers, bids) = (&self.offers, &self.bids);
        self.expiries
            .insert(at, seq, offers.len() + bids.len(), |seq| {
                offers.contains_key(&seq) || bids.contains_key(&seq)
            });
    }

    /// Brings the price index's summary of a resting offer's sold-out hours up to date.
    fn refresh_sold_out(&mut self, seq: Seq) {
        let Some(offer) = self.offers.get(&seq) else {
            return;
        };
        let summary = offer.capacity.sold_out_summary();
        if let Some(key) = self
            .offers_by_market
            .get_mut(&(offer.spec.sku, offer.spec.hub))
            .and_then(|book| book.get_mut(&(micros(offer.spec.ask_price), seq)))
        {
            key.sold_out = summary;
        }
    }

    fn remove_offer_from_book(&mut self, seq: Seq) -> Option<RestingOffer> {
        let offer = self.offers.remove(&seq)?;
        let market = (offer.spec.sku, offer.spec.hub);
        if let Some(book) = self.offers_by_market.get_mut(&market) {
            book.remove(&(micros(offer.spec.ask_price), seq));
            if book.is_empty() {
                self.offers_by_market.remove(&market);
            }
        }
        Some(offer)
    }

    fn remove_bid_from_book(&mut self, seq: Seq) -> Option<RestingBid> {
        let bid = self.bids.remove(&seq)?;
        for sku in &bid.spec.skus {
            if let Some(book) = self.bids_by_sku.get_mut(sku) {
                book.remove(&(Reverse(micros(bid.spec.limit_price)), seq));
                if book.is_empty() {
                    self.bids_by_sku.remove(sku);
                }
            }
        }
        Some(bid)
    }

    fn remove(&mut self, seq: Seq, reason: RemovalReason) -> Option<Removal> {
        let status = match reason {
            RemovalReason::Cancelled => OrderStatus::Cancelled,
            RemovalReason::Expired => OrderStatus::Expired,
        };
        if let Some(offer) = self.remove_offer_from_book(seq) {
            let state = OrderState {
                status,
                remaining: 0,
                ..offer_state(seq, &offer)
            };
            return Some(Removal {
                state,
                reason,
                owner: offer.spec.provider,
                unfilled: offer.capacity.free_everywhere(),
                hold_released: Decimal::ZERO,
            });
        }
        let bid = self.remove_bid_from_book(seq)?;
        Some(Removal {
            state: OrderState {
                seq,
                id: bid.spec.id,
                side: Side::Bid,
                remaining: 0,
                status,
                min_fill: bid.min_fill,
            },
            reason,
            owner: bid.spec.buyer,
            unfilled: bid.remaining,
            hold_released: bid.spec.unit_hold * Decimal::from(bid.remaining),
        })
    }
}

/// A pair's quote, once inside the band.
#[derive(Debug)]
struct Quote {
    offer: Seq,
    units: u32,
    unit_price: Decimal,
    levy_bps: u32,
    decisions: Vec<DecisionRecord>,
}

/// Notes that a market's candidates had no unit free over the bid's window.
fn note_sold_out(reasons: &mut Reasons, hub: Option<HubId>) {
    let message = Message::Fixed("offers here are sold out for the window");
    reasons.note(ReasonCode::CapacitySoldOut, hub, message);
}

/// The cheapest head across a bid's markets (ask, then order number), with its market's index:
/// what the scan examines next. Few markets: a linear scan is enough.
fn cheapest_head<'a>(heads: &[Option<Head<'a>>]) -> Option<(usize, Head<'a>)> {
    let mut cheapest: Option<(usize, Head<'a>)> = None;
    for (index, head) in heads.iter().enumerate() {
        if let Some(head) = head
            && cheapest.is_none_or(|(_, best)| head.0 < best.0)
        {
            cheapest = Some((index, *head));
        }
    }
    cheapest
}

/// The rules of SPEC §5 that need no policy: hub, window, green share, self-trade, and an offer
/// whose window has not ended. (A resting bid's own expiry is checked where bids rest.)
fn pair_is_eligible(offer: &OfferSpec, bid: &BidSpec, now: i64) -> bool {
    bid.skus.contains(&offer.sku)
        && bid.hubs.contains(offer.hub)
        && offer.window.contains(bid.window)
        && offer.green_share >= bid.min_green_share
        && offer.provider != bid.buyer
        && offer.window.end_seconds() > now
}

/// Why a pair did not trade.
struct Refusal {
    code: ReasonCode,
    hub: HubId,
    message: Message,
}

/// Asks compliance, then pricing; keeps the quote only inside `ask ≤ price ≤ limit`.
fn quote_pair(facts: &PairFacts<'_>, policies: &mut dyn Policies) -> Result<Quote, Refusal> {
    let hub = facts.offer.hub;
    let allowed = policies.allow(facts);
    match allowed.decision {
        Allowance::Allowed => {}
        Allowance::Denied { hub, reason } => {
            return Err(Refusal {
                code: ReasonCode::ComplianceDenied,
                hub,
                message: Message::Written(reason),
            });
        }
        Allowance::Failed { hub, message } => {
            return Err(Refusal {
                code: ReasonCode::PolicyFault,
                hub,
                message: Message::ComplianceFailed(message),
            });
        }
    }
    let priced = policies.price(facts);
    let (unit_price, levy_bps) = match priced.decision {
        PriceDecision::Quote {
            unit_price,
            levy_bps,
        } => (unit_price, levy_bps),
        PriceDecision::Reject { reason } => {
            return Err(Refusal {
                code: ReasonCode::PricingRejected,
                hub,
                message: Message::Written(reason),
            });
        }
        PriceDecision::Failed { message } => {
            return Err(Refusal {
                code: ReasonCode::PolicyFault,
                hub,
                message: Message::PricingFailed(message),
            });
        }
    };
    if unit_price < facts.offer.ask_price {
        policies.quote_below_ask(facts, unit_price);
        return Err(Refusal {
            code: ReasonCode::PolicyFault,
            hub,
            message: Message::Fixed("the pricing policy quoted below the ask"),
        });
    }
    if unit_price > facts.bid.limit_price {
        return Err(Refusal {
            code: ReasonCode::PriceAboveLimit,
            hub,
            message: Message::QuoteAboveLimit {
                price: unit_price,
                limit: facts.bid.limit_price,
            },
        });
    }
    let mut decisions = allowed.records;
    decisions.extend(priced.records);
    Ok(Quote {
        offer: 0,
        units: 0,
        unit_price,
        levy_bps,
        decisions,
    })
}

fn offer_state(seq: Seq, offer: &RestingOffer) -> OrderState {
    let status = if offer.capacity.sold_out() {
        OrderStatus::Filled
    } else if offer.capacity.any_sold() {
        OrderStatus::PartiallyFilled
    } else {
        OrderStatus::Open
    };
    OrderState {
        seq,
        id: offer.spec.id,
        side: Side::Offer,
        remaining: offer.capacity.free_everywhere(),
        status,
        min_fill: 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiries_fall_due_by_time_then_number_and_skip_nothing_due() {
        let mut expiries = Expiries::default();
        for (at, seq) in [(7200, 9), (3600, 4), (7200, 2), (3605, 1), (3600, 3)] {
            expiries.insert(at, seq, 5, |_| true);
        }
        assert_eq!(expiries.take_due(3599), Vec::<Seq>::new());
        assert_eq!(expiries.take_due(3604), [3, 4]);
        assert_eq!(expiries.take_due(7200), [1, 2, 9]);
        assert_eq!(expiries.entries, 0);
    }

    #[test]
    fn orders_that_left_early_never_outnumber_the_resting_ones_in_the_expiries() {
        // A participant placing and cancelling orders far ahead, again and again, while one rests.
        let mut engine = Engine::new(EngineConfig { candidates_max: 16 });
        let provider = Uuid::from_u128(1);
        let offer = |id: u128| OfferSpec {
            id: Uuid::from_u128(id),
            provider,
            hub: 0,
            cluster: String::new(),
            sku: 0,
            quantity: 1,
            window: Hours {
                start: 1_000_000,
                end: 1_000_000 + i64::try_from(id % 5_000).expect("small") + 1,
            },
            ask_price: Decimal::TEN,
            green_share: 50,
            attributes: Vec::new(),
        };
        let kept = engine.submit_offer(offer(0), 0, &mut super::super::BuiltInRules);
        for id in 1..20_000 {
            let seq = engine
                .submit_offer(offer(id), 0, &mut super::super::BuiltInRules)
                .state
                .seq;
            engine.cancel(seq, provider).expect("it rests");
            assert!(engine.expiries.entries <= 2 * 2 + EXPIRIES_SLACK);
        }
        assert_eq!(engine.resting(), (1, 0));
        let expired = engine.expire(1_005_001 * 3600);
        assert_eq!(
            expired
                .iter()
                .map(|removal| removal.state.seq)
                .collect::<Vec<_>>(),
            [kept.state.seq]
        );
        assert_eq!(engine.expiries.entries, 0);
    }

    proptest::proptest! {
        /// The price read from the decimal's integer and scale is the decimal computation's:
        /// `price × 10^6`, truncated toward zero, `i64::MAX` beyond `i64`.
        #[test]
        fn micros_are_the_price_times_a_million_truncated(
            mantissa in -(1i64 << 62)..(1i64 << 62),
            scale in 0u32..=20,
        ) {
            use rust_decimal::prelude::ToPrimitive;
            let price = Decimal::new(mantissa, scale);
            let expected = price
                .checked_mul(Decimal::from(1_000_000))
                .and_then(|value| value.trunc().to_i64())
                .unwrap_or(i64::MAX);
            proptest::prop_assert_eq!(micros(price), expected);
        }
    }
}
