//! The audit events the sequenced writer appends, as types: each names its kind and carries its
//! payload's fields, so a payload's shape is decided here once and not by hand at each use.

use chrono::{DateTime, Utc};
use serde::Serialize;
use suanli_sdk::{DataClass, Side, TimeInForce};
use uuid::Uuid;

/// A delivery window in an audit payload.
#[derive(Debug, Clone, Serialize)]
pub struct WindowFields {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// One audit event of the order path.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum AuditEvent {
    OfferAccepted {
        offer_id: Uuid,
        seq: i64,
        provider_id: Uuid,
        cluster: String,
        hub: String,
        sku: String,
        quantity: i32,
        window: WindowFields,
        ask_price: String,
        green_share: i16,
    },
    BidAccepted {
        bid_id: Uuid,
        seq: i64,
        buyer_id: Uuid,
        skus: Vec<String>,
        quantity: i32,
        window: WindowFields,
        limit_price: String,
        /// The hubs the buyer named (`None`: every hub).
        requested_hubs: Option<Vec<String>>,
        /// Where the bid may run: the hubs named, less those beyond `max_latency_ms` of
        /// `data_origin`.
        hubs: Vec<String>,
        data_origin: Option<String>,
        max_latency_ms: Option<u32>,
        min_green_share: i16,
        data_class: DataClass,
        time_in_force: TimeInForce,
        expires_at: Option<DateTime<Utc>>,
        min_fill: u32,
        hold: String,
    },
    /// The unfilled rest of an incoming bid that does not rest (IOC, FOK, unreachable minimum;
    /// or `expired`: a window of the current hour, which fills at once or not at all).
    BidUnfilled {
        bid_id: Uuid,
        reason: &'static str,
        expired: bool,
        unfilled: u32,
        hold_released: String,
    },
    /// A resting bid leaving the book: `cancelled` by its owner, or `expired`.
    BidRemoved {
        bid_id: Uuid,
        seq: i64,
        unfilled: u32,
        hold_released: String,
        expired: bool,
    },
    /// A resting offer leaving the book: `cancelled` by its owner, or `expired`.
    OfferRemoved {
        offer_id: Uuid,
        seq: i64,
        unfilled: u32,
        hold_released: String,
        expired: bool,
    },
    ContractCreated {
        contract_id: Uuid,
        bid_id: Uuid,
        offer_id: Uuid,
        buyer_id: Uuid,
        provider_id: Uuid,
        hub: String,
        cluster: String,
        sku: String,
        units: i32,
        window: WindowFields,
        unit_price: String,
        notional: String,
        levy_bps: i32,
        // Neither the hold the fill released nor the bid's data origin: both parties read this
        // entry in the contract's proof, and with the notional the released hold would tell the
        // provider the bid's limit. The chain still holds both: the origin in `bid_accepted`, and
        // the release is `ceil_fen(limit × hours) × units − notional`, from `bid_accepted`'s
        // limit and window and this entry's units and notional.
        maker: Side,
    },
    ParticipantSuspended {
        participant_id: Uuid,
        reason: String,
        orders_cancelled: u32,
    },
    ContractSettled {
        contract_id: Uuid,
        delivered_unit_hours: u64,
        contracted_unit_hours: u64,
        charged: String,
        refunded: String,
        provider_paid: String,
        exchange_fee: String,
        hub_levy: String,
        transaction_id: Uuid,
    },
    /// Compliance policies refused pairs of one incoming order: one entry per order, one line per
    /// (hub, policy), however many candidates were refused.
    ComplianceDenied {
        order_id: Uuid,
        side: &'static str,
        denials: Vec<DenialFields>,
    },
    /// Money set aside for a payout: from the participant's available account to
    /// `payouts_pending`.
    WithdrawalRequested {
        withdrawal_id: Uuid,
        participant_id: Uuid,
        amount: String,
        currency: &'static str,
        destination: String,
        transaction_id: Uuid,
    },
}

/// One hub's compliance refusals of an incoming order.
#[derive(Debug, Clone, Serialize)]
pub struct DenialFields {
    pub hub: String,
    pub policy_digest: String,
    /// Candidate pairs refused.
    pub pairs: u32,
    /// The policy's own reason, from the first refusal.
    pub reason: String,
}

impl AuditEvent {
    /// The entry's `kind` in the audit log.
    pub fn kind(&self) -> &'static str {
        match self {
            AuditEvent::OfferAccepted { .. } => "offer_accepted",
            AuditEvent::BidAccepted { .. } => "bid_accepted",
            AuditEvent::BidUnfilled { expired: false, .. } => "bid_cancelled",
            AuditEvent::BidUnfilled { expired: true, .. } => "bid_expired",
            AuditEvent::BidRemoved { expired: false, .. } => "bid_cancelled",
            AuditEvent::BidRemoved { expired: true, .. } => "bid_expired",
            AuditEvent::OfferRemoved { expired: false, .. } => "offer_cancelled",
            AuditEvent::OfferRemoved { expired: true, .. } => "offer_expired",
            AuditEvent::ContractCreated { .. } => "contract_created",
            AuditEvent::ContractSettled { .. } => "contract_settled",
            AuditEvent::ParticipantSuspended { .. } => "participant_suspended",
            AuditEvent::ComplianceDenied { .. } => "compliance_denied",
            AuditEvent::WithdrawalRequested { .. } => "withdrawal_requested",
        }
    }

    /// The entry's payload.
    pub fn payload(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(self).unwrap_or(serde_json::Value::Null);
        // Whether a removal was an expiry is in the kind, not repeated in the payload.
        if let Some(fields) = value.as_object_mut()
            && matches!(
                self,
                AuditEvent::BidRemoved { .. }
                    | AuditEvent::OfferRemoved { .. }
                    | AuditEvent::BidUnfilled { .. }
            )
        {
            fields.remove("expired");
        }
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_removal_names_its_reason_in_the_kind_not_the_payload() {
        let removal = |expired| AuditEvent::BidRemoved {
            bid_id: Uuid::nil(),
            seq: 7,
            unfilled: 2,
            hold_released: "48".into(),
            expired,
        };
        assert_eq!(removal(true).kind(), "bid_expired");
        assert_eq!(removal(false).kind(), "bid_cancelled");
        assert_eq!(
            removal(true).payload(),
            serde_json::json!({"bid_id": Uuid::nil(), "seq": 7, "unfilled": 2, "hold_released": "48"})
        );
        let offer = AuditEvent::OfferRemoved {
            offer_id: Uuid::nil(),
            seq: 1,
            unfilled: 0,
            hold_released: "0".into(),
            expired: true,
        };
        assert_eq!(
            (offer.kind(), offer.payload()["offer_id"].as_str()),
            ("offer_expired", Some(Uuid::nil().to_string().as_str()))
        );
    }
}
