//! What a policy sees and says, in the host's own serde types: their canonical JSON is what the
//! decision records keep and what a replay feeds back in.

use serde::{Deserialize, Serialize};

use super::Fault;
use super::wit;

/// A hub's reference figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HubFacts {
    pub code: String,
    pub tier: String,
    pub region: String,
    pub renewable_share: u8,
    pub carbon_g_per_kwh: u32,
    pub pue: String,
}

/// The offer of a pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfferFacts {
    pub id: String,
    pub provider: String,
    pub cluster: String,
    pub hub: String,
    pub sku: String,
    pub sku_class: String,
    pub quantity: u32,
    pub window_start: i64,
    pub window_end: i64,
    pub ask_price: String,
    pub green_share: u8,
    pub attributes: Vec<(String, String)>,
}

/// The bid of a pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BidFacts {
    pub id: String,
    pub buyer: String,
    pub skus: Vec<String>,
    pub quantity: u32,
    pub window_start: i64,
    pub window_end: i64,
    pub limit_price: String,
    pub data_origin: Option<String>,
    pub max_latency_ms: Option<u32>,
    pub min_green_share: u8,
    pub data_class: String,
}

/// Everything a policy may know about one candidate pair (the WIT `match-input`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyInput {
    pub offer: OfferFacts,
    pub bid: BidFacts,
    pub offer_hub: HubFacts,
    pub origin_hub: Option<HubFacts>,
    /// Which side rested first.
    pub maker: suanli_sdk::Side,
    pub hours: u32,
    pub units: u32,
    pub latency_ms: Option<u32>,
}

/// A policy's answer, checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum PolicyOutput {
    Quote { unit_price: String, levy_bps: u32 },
    Reject { reason: String },
    Allow,
    Deny { code: String, message: String },
}

fn hub_to_wit(hub: &HubFacts) -> wit::HubFacts {
    wit::HubFacts {
        code: hub.code.clone(),
        tier: hub.tier.clone(),
        region: hub.region.clone(),
        renewable_share: hub.renewable_share,
        carbon_g_per_kwh: hub.carbon_g_per_kwh,
        pue: hub.pue.clone(),
    }
}

impl PolicyInput {
    /// The canonical JSON text: the bytes a decision record keeps.
    pub fn canonical(&self) -> String {
        suanli_sdk::audit::canonical_json(&serde_json::to_value(self).unwrap_or_default())
    }

    /// The WIT record handed to the guest.
    pub fn to_wit(&self) -> wit::MatchInput {
        wit::MatchInput {
            offer: wit::OfferFacts {
                id: self.offer.id.clone(),
                provider: self.offer.provider.clone(),
                cluster: self.offer.cluster.clone(),
                hub: self.offer.hub.clone(),
                sku: self.offer.sku.clone(),
                sku_class: self.offer.sku_class.clone(),
                quantity: self.offer.quantity,
                window_start: self.offer.window_start,
                window_end: self.offer.window_end,
                ask_price: self.offer.ask_price.clone(),
                green_share: self.offer.green_share,
                attributes: self.offer.attributes.clone(),
            },
            bid: wit::BidFacts {
                id: self.bid.id.clone(),
                buyer: self.bid.buyer.clone(),
                skus: self.bid.skus.clone(),
                quantity: self.bid.quantity,
                window_start: self.bid.window_start,
                window_end: self.bid.window_end,
                limit_price: self.bid.limit_price.clone(),
                data_origin: self.bid.data_origin.clone(),
                max_latency_ms: self.bid.max_latency_ms,
                min_green_share: self.bid.min_green_share,
                data_class: self.bid.data_class.clone(),
            },
            offer_hub: hub_to_wit(&self.offer_hub),
            origin_hub: self.origin_hub.as_ref().map(hub_to_wit),
            maker: match self.maker {
                suanli_sdk::Side::Bid => wit::Side::Bid,
                suanli_sdk::Side::Offer => wit::Side::Offer,
            },
            hours: self.hours,
            units: self.units,
            latency_ms: self.latency_ms,
        }
    }
}

impl PolicyOutput {
    /// Checks a pricing answer: size, and a unit price that is a positive decimal with at most 6
    /// fractional digits and a levy of at most 100 %.
    pub fn from_pricing(
        answer: Result<wit::Quote, wit::Rejection>,
        output_bytes_max: usize,
    ) -> Result<Self, Fault> {
        match answer {
            Ok(quote) => {
                if quote.unit_price.len() > output_bytes_max {
                    return Err(Fault::OversizedOutput(output_bytes_max));
                }
                let price: rust_decimal::Decimal = quote.unit_price.parse().map_err(|_| {
                    Fault::BadOutput(format!(
                        "unit price {:?} is not a decimal",
                        truncate(&quote.unit_price)
                    ))
                })?;
                let price = price.normalize();
                if price <= rust_decimal::Decimal::ZERO
                    || price.scale() > 6
                    || quote.levy_bps > 10_000
                {
                    return Err(Fault::BadOutput(format!(
                        "quote {} with levy {} bps is out of range",
                        price, quote.levy_bps
                    )));
                }
                Ok(PolicyOutput::Quote {
                    unit_price: price.to_string(),
                    levy_bps: quote.levy_bps,
                })
            }
            Err(rejection) if rejection.reason.len() > output_bytes_max => {
                Err(Fault::OversizedOutput(output_bytes_max))
            }
            Err(rejection) => Ok(PolicyOutput::Reject {
                reason: rejection.reason,
            }),
        }
    }

    /// Checks a compliance answer's size.
    pub fn from_compliance(
        answer: Result<(), wit::Denial>,
        output_bytes_max: usize,
    ) -> Result<Self, Fault> {
        match answer {
            Ok(()) => Ok(PolicyOutput::Allow),
            Err(denial) if denial.code.len() + denial.message.len() > output_bytes_max => {
                Err(Fault::OversizedOutput(output_bytes_max))
            }
            Err(denial) => Ok(PolicyOutput::Deny {
                code: denial.code,
                message: denial.message,
            }),
        }
    }

    /// The canonical JSON text a decision record keeps.
    pub fn canonical(&self) -> String {
        suanli_sdk::audit::canonical_json(&serde_json::to_value(self).unwrap_or_default())
    }
}

fn truncate(text: &str) -> String {
    text.chars().take(40).collect()
}
