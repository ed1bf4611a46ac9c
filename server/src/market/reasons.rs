//! Why an incoming bid's units did not trade, gathered while its candidates are examined.
//!
//! One reason per (code, hub), the first message kept; at most [`REASONS_MAX`] of them, so a bid
//! that saw hundreds of candidates still gets a short answer. A message is kept as the facts it
//! states and written out only when the reasons are answered: a bid that fills drops the reasons
//! its scan gathered, and then no message is ever written.

use rust_decimal::Decimal;

use super::HubId;

/// Most reasons one bid carries.
pub const REASONS_MAX: usize = 16;

/// What kept units from trading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ReasonCode {
    /// No resting offer of the bid's SKUs in its hubs covers its window (or none is left).
    NoOfferInWindow,
    /// Offers exist, but their asks (or the hub's quote) are above the bid's limit.
    PriceAboveLimit,
    /// Offers exist in hubs beyond the bid's `max_latency_ms`.
    LatencyExceeded,
    /// The offers' green share is below the bid's minimum.
    GreenShareBelow,
    /// A hub's compliance policy refused the pair (the policy's own reason in the message).
    ComplianceDenied,
    /// A hub's pricing policy would not quote the pair.
    PricingRejected,
    /// Offers cover the window but have no free units left in it.
    CapacitySoldOut,
    /// A hub's policy could not run (unavailable, fault, or its budget spent): no trade there.
    PolicyFault,
    /// Only the buyer's own offers were there (no self-trade).
    OwnOffer,
    /// A fill-or-kill bid could not fill completely.
    FokNotFilled,
    /// Fewer units than the bid's `min_fill` could trade.
    MinFillNotReached,
    /// The bid's window has started: what did not fill at once expires.
    WindowStarted,
    /// The engine examined as many candidates as it may for one order.
    CandidatesExhausted,
    /// The buyer's available money does not cover the bid's hold (quotes only).
    InsufficientFunds,
}

impl ReasonCode {
    /// The code as the API writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            ReasonCode::NoOfferInWindow => "no_offer_in_window",
            ReasonCode::PriceAboveLimit => "price_above_limit",
            ReasonCode::LatencyExceeded => "latency_exceeded",
            ReasonCode::GreenShareBelow => "green_share_below",
            ReasonCode::ComplianceDenied => "compliance_denied",
            ReasonCode::PricingRejected => "pricing_rejected",
            ReasonCode::CapacitySoldOut => "capacity_sold_out",
            ReasonCode::PolicyFault => "policy_fault",
            ReasonCode::OwnOffer => "own_offer",
            ReasonCode::FokNotFilled => "fok_not_filled",
            ReasonCode::MinFillNotReached => "min_fill_not_reached",
            ReasonCode::WindowStarted => "window_started",
            ReasonCode::CandidatesExhausted => "candidates_exhausted",
            ReasonCode::InsufficientFunds => "insufficient_funds",
        }
    }
}

/// One reason, in the engine's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    pub code: ReasonCode,
    /// The hub it concerns, if one.
    pub hub: Option<HubId>,
    pub message: String,
}

/// What a reason says, as the facts it states; written out by [`Message::into_text`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A sentence that states no figure.
    Fixed(&'static str),
    /// A policy's own reason, as the policy wrote it.
    Written(String),
    /// The compliance policy could not decide (the policy host's account of why).
    ComplianceFailed(String),
    /// The pricing policy could not quote (the policy host's account of why).
    PricingFailed(String),
    /// The next asks of a market are above the bid's limit.
    AskAboveLimit { ask: Decimal, limit: Decimal },
    /// A hub's pricing policy quoted above the bid's limit.
    QuoteAboveLimit { price: Decimal, limit: Decimal },
    /// A market's offers are less green than the bid asks.
    GreenShareBelow { offered: u8, minimum: u8 },
    /// Fewer units than the bid's quantity were on offer.
    PartlyOnOffer { fillable: u32, quantity: u32 },
    /// A fill-or-kill bid could not fill completely.
    FokNotFilled { fillable: u32, quantity: u32 },
    /// Fewer units than the minimum fill could trade.
    MinFillNotReached { fillable: u32, min_fill: u32 },
    /// The scan examined as many candidates as one order may.
    CandidatesExhausted { examined: usize },
}

impl Message {
    /// The sentence, written out: a figure's sentence by its own `format!`, which sizes the
    /// string from its pieces (writing through `Display` would grow it from empty).
    pub fn into_text(self) -> String {
        match self {
            Message::Fixed(text) => text.to_owned(),
            Message::Written(text) => text,
            Message::ComplianceFailed(why) => {
                format!("the compliance policy could not decide: {why}")
            }
            Message::PricingFailed(why) => format!("the pricing policy could not quote: {why}"),
            Message::AskAboveLimit { ask, limit } => format!(
                "an ask here is {} CNY, above the limit {}",
                ask.normalize(),
                limit.normalize()
            ),
            Message::QuoteAboveLimit { price, limit } => format!(
                "the hub prices it at {} CNY, above the limit {}",
                price.normalize(),
                limit.normalize()
            ),
            Message::GreenShareBelow { offered, minimum } => format!(
                "offers here have a green share of {offered}%, below the minimum {minimum}%"
            ),
            Message::PartlyOnOffer { fillable, quantity } => {
                format!("only {fillable} of {quantity} units were on offer")
            }
            Message::FokNotFilled { fillable, quantity } => format!(
                "fill-or-kill: only {fillable} of {quantity} units could trade, so none did"
            ),
            Message::MinFillNotReached { fillable, min_fill } => {
                format!("only {fillable} units could trade, fewer than the minimum fill {min_fill}")
            }
            Message::CandidatesExhausted { examined } => {
                format!("{examined} offers were examined, the most one order may; narrow the bid")
            }
        }
    }
}

/// The reasons gathered for one bid: the reasons, and beside them which (code, hub) pairs they
/// hold as one bit each (a word per code, a bit per hub below 63; bit 63 stands for no hub and
/// every hub from 63 up, and then the list decides), so that the check for a reason already
/// there, made for every candidate turned down (dozens per bid), is one load and one test.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reasons {
    kept: Vec<(ReasonCode, Option<HubId>, Message)>,
    seen: [u64; CODES],
}

/// Words in [`Reasons::seen`]: one per code, and room for a few more codes (a code past them
/// is looked up in the list).
const CODES: usize = 16;

impl Reasons {
    /// Notes a reason unless one with the same code and hub is already there (or the list is
    /// full). Inlined: most calls are a reason already there, answered from its bit without a
    /// call.
    #[inline]
    pub fn note(&mut self, code: ReasonCode, hub: Option<HubId>, message: Message) {
        let bit = hub.filter(|hub| *hub < 63).map_or(63, u32::from);
        if bit != 63
            && self
                .seen
                .get(code as usize)
                .is_some_and(|word| word & (1 << bit) != 0)
        {
            return;
        }
        self.note_new(code, hub, bit, message);
    }

    /// [`Reasons::note`] for a (code, hub) not known from its bit alone.
    #[inline(never)]
    fn note_new(&mut self, code: ReasonCode, hub: Option<HubId>, bit: u32, message: Message) {
        let listed = || {
            self.kept
                .iter()
                .any(|(kept, kept_hub, _)| *kept == code && *kept_hub == hub)
        };
        // The bit decides, unless it is the shared one or the code has no word: then the list.
        let known = match self
            .seen
            .get(code as usize)
            .map(|word| word & (1 << bit) != 0)
        {
            Some(false) => false,
            Some(true) if bit != 63 => true,
            _ => listed(),
        };
        if known || self.kept.len() >= REASONS_MAX {
            return;
        }
        if let Some(word) = self.seen.get_mut(code as usize) {
            *word |= 1 << bit;
        }
        self.kept.push((code, hub, message));
    }

    pub fn is_empty(&self) -> bool {
        self.kept.is_empty()
    }

    pub fn clear(&mut self) {
        self.kept.clear();
        self.seen = [0; CODES];
    }

    /// The reasons, in the order they were first seen, their messages written out; leaves
    /// these reasons empty, their list's room kept for the next order.
    pub fn take_vec(&mut self) -> Vec<Reason> {
        self.seen = [0; CODES];
        self.kept
            .drain(..)
            .map(|(code, hub, message)| Reason {
                code,
                hub,
                message: message.into_text(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_reason_per_code_and_hub_and_a_bounded_list() {
        fn note(reasons: &mut Reasons, code: ReasonCode, hub: Option<HubId>, text: &'static str) {
            reasons.note(code, hub, Message::Fixed(text));
        }
        use ReasonCode::{CapacitySoldOut, PriceAboveLimit};
        let mut reasons = Reasons::default();
        note(&mut reasons, PriceAboveLimit, Some(1), "first");
        note(&mut reasons, PriceAboveLimit, Some(1), "second");
        note(&mut reasons, PriceAboveLimit, Some(2), "other hub");
        let kept = reasons.clone().take_vec();
        assert_eq!(kept.len(), 2);
        assert_eq!(kept[0].message, "first");
        // No hub, and hubs from 63 up, share a bit: the list tells them apart.
        note(&mut reasons, PriceAboveLimit, None, "no hub");
        note(&mut reasons, PriceAboveLimit, Some(200), "hub 200");
        note(&mut reasons, PriceAboveLimit, Some(63), "hub 63");
        note(&mut reasons, PriceAboveLimit, Some(200), "hub 200 again");
        note(&mut reasons, PriceAboveLimit, None, "no hub again");
        let messages: Vec<String> = reasons
            .clone()
            .take_vec()
            .into_iter()
            .map(|reason| reason.message)
            .collect();
        assert_eq!(
            messages,
            ["first", "other hub", "no hub", "hub 200", "hub 63"]
        );
        for hub in 0..40 {
            note(&mut reasons, CapacitySoldOut, Some(hub), "sold out");
        }
        assert_eq!(reasons.take_vec().len(), REASONS_MAX);
        // Taking them forgets them, bits included: the next order's reasons start afresh.
        assert!(reasons.is_empty());
        note(&mut reasons, CapacitySoldOut, Some(1), "sold out again");
        let again = reasons.take_vec();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].message, "sold out again");
    }

    #[test]
    fn messages_are_written_out_with_their_figures_when_answered() {
        let cases = [
            (
                ReasonCode::PriceAboveLimit,
                Some(3),
                Message::AskAboveLimit {
                    ask: Decimal::new(9_500_000, 6),
                    limit: Decimal::new(800, 2),
                },
                "an ask here is 9.5 CNY, above the limit 8",
            ),
            (
                ReasonCode::GreenShareBelow,
                Some(3),
                Message::GreenShareBelow {
                    offered: 20,
                    minimum: 35,
                },
                "offers here have a green share of 20%, below the minimum 35%",
            ),
            (
                ReasonCode::NoOfferInWindow,
                None,
                Message::PartlyOnOffer {
                    fillable: 2,
                    quantity: 5,
                },
                "only 2 of 5 units were on offer",
            ),
            (
                ReasonCode::ComplianceDenied,
                Some(4),
                Message::Written("data may not leave the region".into()),
                "data may not leave the region",
            ),
            (
                ReasonCode::PolicyFault,
                Some(5),
                Message::PricingFailed("its fuel ran out".into()),
                "the pricing policy could not quote: its fuel ran out",
            ),
        ];
        let mut reasons = Reasons::default();
        for (code, hub, message, _) in cases.clone() {
            reasons.note(code, hub, message);
        }
        let written: Vec<(ReasonCode, Option<HubId>, String)> = reasons
            .take_vec()
            .into_iter()
            .map(|reason| (reason.code, reason.hub, reason.message))
            .collect();
        let expected: Vec<(ReasonCode, Option<HubId>, String)> = cases
            .into_iter()
            .map(|(code, hub, _, text)| (code, hub, text.to_owned()))
            .collect();
        assert_eq!(written, expected);
    }
}
