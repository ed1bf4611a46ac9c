//! The hubs' WebAssembly policies as matching sees them: [`HubPolicies`] implements the engine's
//! [`Policies`] trait by evaluating the active policy of each hub in the sandbox, keeping a
//! decision record for every evaluation and a fault record for every failure (which fails closed).

use std::collections::HashMap;
use std::sync::Arc;

use rust_decimal::Decimal;
use suanli_sdk::Side;

use crate::db::policies::FaultRecord;
use crate::db::reference::Reference;
use crate::market::{BuiltInRules, DecisionRecord, Decided, HubId, PairFacts, Policies, PriceDecision};
use crate::policy::input::{BidFacts, HubFacts, OfferFacts};
use crate::policy::{Compiled, Fault, PolicyHost, PolicyInput, PolicyKind, PolicyOutput};

/// The active policy of each (hub, kind).
pub type ActivePolicies = HashMap<(HubId, PolicyKind), Arc<Compiled>>;

/// Policies of the hubs for one batch of matching.
pub struct HubPolicies<'a> {
    pub host: &'a PolicyHost,
    pub active: &'a ActivePolicies,
    pub reference: &'a Reference,
    /// Faults seen so far, to be stored with the batch.
    pub faults: Vec<FaultRecord>,
}

impl HubPolicies<'_> {
    fn run(&mut self, hub: HubId, kind: PolicyKind, input: &PolicyInput) -> Option<(Result<PolicyOutput, Fault>, DecisionRecord)> {
        let policy = self.active.get(&(hub, kind))?;
        let evaluation = self.host.evaluate(policy, input);
        let hub_code = self.reference.hub_by_id(hub).code.clone();
        let canonical_input = input.canonical();
        let output = match &evaluation.output {
            Ok(output) => output.canonical(),
            Err(fault) => {
                self.faults.push(FaultRecord {
                    hub: hub_code.clone(),
                    kind: kind.as_str().into(),
                    digest: policy.digest.clone(),
                    class: fault.class().into(),
                    message: fault.to_string(),
                    input: canonical_input.clone(),
                });
                fault_json(fault)
            }
        };
        let record = DecisionRecord {
            policy_digest: policy.digest.clone(),
            kind: kind.as_str().into(),
            hub: hub_code,
            input: canonical_input,
            output,
            fuel_used: evaluation.fuel_used,
        };
        Some((evaluation.output, record))
    }
}

/// How a fault is written in a decision record's output.
pub fn fault_json(fault: &Fault) -> String {
    suanli_sdk::audit::canonical_json(&serde_json::json!({"fault": fault.class(), "message": fault.to_string()}))
}

impl Policies for HubPolicies<'_> {
    fn allow(&mut self, pair: &PairFacts<'_>) -> Decided<bool> {
        let input = policy_input(pair, self.reference);
        let mut hubs = vec![pair.offer.hub];
        if let Some(origin) = pair.bid.data_origin.filter(|origin| *origin != pair.offer.hub) {
            hubs.push(origin);
        }
        let mut records = Vec::new();
        for hub in hubs {
            let Some((output, record)) = self.run(hub, PolicyKind::Compliance, &input) else { continue };
            records.push(record);
            if !matches!(output, Ok(PolicyOutput::Allow)) {
                return Decided { decision: false, records };
            }
        }
        Decided { decision: true, records }
    }

    fn price(&mut self, pair: &PairFacts<'_>) -> Decided<PriceDecision> {
        let input = policy_input(pair, self.reference);
        let Some((output, record)) = self.run(pair.offer.hub, PolicyKind::Pricing, &input) else {
            return BuiltInRules.price(pair);
        };
        let decision = match output {
            Ok(PolicyOutput::Quote { unit_price, levy_bps }) => match unit_price.parse::<Decimal>() {
                Ok(unit_price) => PriceDecision::Quote { unit_price, levy_bps },
                Err(_) => PriceDecision::Reject { reason: "unparsable quote".into() },
            },
            Ok(PolicyOutput::Reject { reason }) => PriceDecision::Reject { reason },
            Ok(other) => PriceDecision::Reject { reason: format!("unexpected answer {other:?}") },
            Err(fault) => PriceDecision::Reject { reason: fault.to_string() },
        };
        Decided { decision, records: vec![record] }
    }

    fn quote_below_ask(&mut self, pair: &PairFacts<'_>, unit_price: Decimal) {
        if let Some(policy) = self.active.get(&(pair.offer.hub, PolicyKind::Pricing)) {
            self.faults.push(FaultRecord {
                hub: self.reference.hub_by_id(pair.offer.hub).code.clone(),
                kind: PolicyKind::Pricing.as_str().into(),
                digest: policy.digest.clone(),
                class: Fault::PriceBelowAsk.class().into(),
                message: format!("quoted {unit_price} below the ask {}", pair.offer.ask_price),
                input: policy_input(pair, self.reference).canonical(),
            });
        }
    }
}

fn hub_facts(reference: &Reference, hub: HubId) -> HubFacts {
    let hub = reference.hub_by_id(hub);
    HubFacts {
        code: hub.code.clone(),
        tier: match hub.tier {
            suanli_sdk::Tier::East => "east".into(),
            suanli_sdk::Tier::West => "west".into(),
        },
        region: hub.region.clone(),
        renewable_share: hub.renewable_share,
        carbon_g_per_kwh: hub.carbon_g_per_kwh,
        pue: hub.pue.to_string(),
    }
}

/// Everything a policy may know about a pair, from the pair and the reference data.
pub fn policy_input(pair: &PairFacts<'_>, reference: &Reference) -> PolicyInput {
    let (offer, bid) = (pair.offer, pair.bid);
    let offer_hub = hub_facts(reference, offer.hub);
    let origin_hub = bid.data_origin.map(|origin| hub_facts(reference, origin));
    let latency_ms = origin_hub.as_ref().and_then(|origin| reference.latency_ms(&origin.code, &offer_hub.code));
    let sku = reference.sku_by_id(offer.sku);
    PolicyInput {
        offer: OfferFacts {
            id: offer.id.to_string(),
            provider: offer.provider.to_string(),
            cluster: offer.cluster.clone(),
            hub: offer_hub.code.clone(),
            sku: sku.code.clone(),
            sku_class: serde_json::to_value(sku.class).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default(),
            quantity: offer.quantity,
            window_start: offer.window.start_seconds(),
            window_end: offer.window.end_seconds(),
            ask_price: offer.ask_price.normalize().to_string(),
            green_share: offer.green_share,
            attributes: offer.attributes.clone(),
        },
        bid: BidFacts {
            id: bid.id.to_string(),
            buyer: bid.buyer.to_string(),
            skus: bid.skus.iter().map(|sku| reference.sku_by_id(*sku).code.clone()).collect(),
            quantity: bid.quantity,
            window_start: bid.window.start_seconds(),
            window_end: bid.window.end_seconds(),
            limit_price: bid.limit_price.normalize().to_string(),
            data_origin: origin_hub.as_ref().map(|hub| hub.code.clone()),
            max_latency_ms: None,
            min_green_share: bid.min_green_share,
            data_class: bid.data_class.as_str().into(),
        },
        offer_hub,
        origin_hub,
        maker: match pair.maker {
            Side::Bid => "bid".into(),
            Side::Offer => "offer".into(),
        },
        hours: pair.hours,
        units: pair.units,
        latency_ms,
    }
}
