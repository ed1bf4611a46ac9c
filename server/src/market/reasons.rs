//! Why an incoming bid's units did not trade, gathered while its candidates are examined.
//!
//! One reason per (code, hub), the first message kept; at most [`REASONS_MAX`] of them, so a bid
//! that saw hundreds of candidates still gets a short answer.

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

/// The reasons gathered for one bid: the reasons, and beside them which (code, hub) pairs they
/// hold as one bit each (a word per code, a bit per hub below 63; bit 63 stands for no hub and
/// every hub from 63 up, and then the list decides), so that the check for a reason already
/// there, made for every candidate turned down (dozens per bid), is one load and one test.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reasons {
    kept: Vec<Reason>,
    seen: [u64; CODES],
}

/// Words in [`Reasons::seen`]: one per code, and room for a few more codes (a code past them
/// is looked up in the list).
const CODES: usize = 16;

impl Reasons {
    /// Notes a reason unless one with the same code and hub is already there (or the list is
    /// full). The message is built only when it is kept. Inlined: most calls are a reason already
    /// there, answered from its bit without a call.
    #[inline]
    pub fn note(&mut self, code: ReasonCode, hub: Option<HubId>, message: impl FnOnce() -> String) {
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
    fn note_new(
        &mut self,
        code: ReasonCode,
        hub: Option<HubId>,
        bit: u32,
        message: impl FnOnce() -> String,
    ) {
        let listed = || {
            self.kept
                .iter()
                .any(|reason| reason.code == code && reason.hub == hub)
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
        self.kept.push(Reason {
            code,
            hub,
            message: message(),
        });
    }

    pub fn is_empty(&self) -> bool {
        self.kept.is_empty()
    }

    pub fn clear(&mut self) {
        self.kept.clear();
        self.seen = [0; CODES];
    }

    /// The reasons, in the order they were first seen.
    pub fn into_vec(self) -> Vec<Reason> {
        self.kept
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_reason_per_code_and_hub_and_a_bounded_list() {
        let mut reasons = Reasons::default();
        reasons.note(ReasonCode::PriceAboveLimit, Some(1), || "first".into());
        reasons.note(ReasonCode::PriceAboveLimit, Some(1), || "second".into());
        reasons.note(ReasonCode::PriceAboveLimit, Some(2), || "other hub".into());
        let kept = reasons.clone().into_vec();
        assert_eq!(kept.len(), 2);
        assert_eq!(kept[0].message, "first");
        // No hub, and hubs from 63 up, share a bit: the list tells them apart.
        reasons.note(ReasonCode::PriceAboveLimit, None, || "no hub".into());
        reasons.note(ReasonCode::PriceAboveLimit, Some(200), || "hub 200".into());
        reasons.note(ReasonCode::PriceAboveLimit, Some(63), || "hub 63".into());
        reasons.note(ReasonCode::PriceAboveLimit, Some(200), || {
            "hub 200 again".into()
        });
        reasons.note(ReasonCode::PriceAboveLimit, None, || "no hub again".into());
        let messages: Vec<String> = reasons
            .clone()
            .into_vec()
            .into_iter()
            .map(|reason| reason.message)
            .collect();
        assert_eq!(
            messages,
            ["first", "other hub", "no hub", "hub 200", "hub 63"]
        );
        for hub in 0..40 {
            reasons.note(ReasonCode::CapacitySoldOut, Some(hub), || "sold out".into());
        }
        assert_eq!(reasons.into_vec().len(), REASONS_MAX);
    }
}
