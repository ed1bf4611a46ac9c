//! Benchmark of what the hubs' policies add to matching one incoming bid: the engine quotes a bid
//! that crosses `N` offers of one hub (16 unless told) with real example policies active —
//! pricing (`west-green-pricing`) and compliance (`data-residency`) in the offers' hub, and
//! compliance (`data-residency`) in the bid's data-origin hub — through the same `HubPolicies` the
//! writer uses: inputs, canonical records, budgets and sandbox calls, 3 decisions a pair. Quoting
//! changes nothing, so the same bid is quoted again and again; median per bid and per pair over
//! 2,000 bids, for the policies as built (interface 0.3: one call per hub and stage) and, when
//! `target/policies/v02-<name>.wasm` exist (the same sources built with `wit = "0.2"`), for
//! those (one call a pair), and with no active policy at all.
//!
//! Then the other side: an incoming offer of `N` units that crosses `N` resting bids of one unit
//! each (a fresh book for every offer, built outside the timing), submitted through the same
//! policies: the offer's candidates are announced to them, so a 0.3 policy decides them in one
//! call per stage as well; and once more with the 0.3 policies asked pair by pair, as incoming
//! offers asked them before they announced their candidates.
//!
//! `scripts/build-policies && cargo run --release -p suanli-server --example order_policies [N]`

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use rust_decimal::Decimal;
use suanli_sdk::{ComputeClass, DataClass, Hub, Latency, Sku, Tier, TimeInForce};
use suanli_server::db::reference::Reference;
use suanli_server::exchange::policies::{ActivePolicies, ActivePolicy, HubBudget, HubPolicies};
use suanli_server::market::{
    BidSpec, BuiltInRules, Engine, EngineConfig, Hours, HubSet, OfferSpec, money,
};
use suanli_server::policy::{PolicyHost, PolicyKind, SandboxLimits};
use uuid::Uuid;

const NOW: i64 = 1_795_824_000;

fn main() -> anyhow::Result<()> {
    let pairs: u32 = match std::env::args().nth(1) {
        Some(pairs) => pairs.parse()?,
        None => 16,
    };
    let reference = reference();
    // The exchange's fuel budget, but wall-time budgets far away: asked pair by pair, 64 pairs
    // come close to a hub's 5 ms for one order, and a stall of this machine would then skip the
    // last pairs (as the exchange does) instead of measuring them.
    let budget = HubBudget {
        order_wall_ms_max: 1_000,
        batch_wall_ms_max: 1_000,
        ..HubBudget::default()
    };
    let host = PolicyHost::new(SandboxLimits::default())?;
    let hour = NOW / 3600;
    let mut engine = Engine::new(EngineConfig::default());
    for index in 0..pairs {
        let offer = OfferSpec {
            id: Uuid::from_u128(1_000 + u128::from(index)),
            provider: Uuid::from_u128(1),
            hub: 0,
            cluster: "zhongwei".into(),
            sku: 0,
            quantity: 1,
            window: Hours {
                start: hour + 1,
                end: hour + 49,
            },
            ask_price: Decimal::new(1_000 + i64::from(index), 2),
            green_share: 60,
            attributes: vec![("qualification".into(), "level-3".into())],
        };
        engine.submit_offer(offer, NOW, &mut BuiltInRules);
    }
    let window = Hours {
        start: hour + 2,
        end: hour + 14,
    };
    let limit = Decimal::new(20, 0);
    let bid = BidSpec {
        id: Uuid::from_u128(9),
        buyer: Uuid::from_u128(2),
        skus: vec![0],
        hubs: HubSet::default().with(0),
        data_origin: Some(1),
        max_latency_ms: Some(20),
        quantity: pairs,
        window,
        limit_price: limit,
        min_green_share: 30,
        data_class: DataClass::General,
        time_in_force: TimeInForce::Gtc,
        expires_at: None,
        min_fill: 1,
        unit_hold: money::unit_hold(limit, window.len()),
    };

    let measure = |label: &str, active: Option<&ActivePolicies>| {
        let quote = || match active {
            Some(active) => {
                let mut policies = HubPolicies::new(&host, active, &reference, budget);
                policies.begin_order();
                let quote = engine.quote_bid(&bid, NOW, &mut policies);
                (quote, policies.decisions.len())
            }
            None => (engine.quote_bid(&bid, NOW, &mut BuiltInRules), 0),
        };
        for _ in 0..200 {
            quote();
        }
        let mut samples = Vec::with_capacity(2_000);
        let mut decisions = 0;
        for _ in 0..2_000 {
            let started = Instant::now();
            let (quote, made) = quote();
            samples.push(started.elapsed());
            assert_eq!(quote.unfilled, 0, "{:?}", quote.reasons);
            decisions = made;
        }
        samples.sort();
        let median = samples[samples.len() / 2].as_secs_f64() * 1e6;
        println!(
            "{label}: a bid crossing {pairs} offers, median {median:.1} µs per bid, {:.2} µs per pair \
             ({decisions} decisions), p99 {:.1} µs",
            median / f64::from(pairs),
            samples[samples.len() * 99 / 100].as_secs_f64() * 1e6,
        );
    };

    // An offer crossing `pairs` resting bids of one unit each, all for the same hours (the case
    // where every bid is announced at once and none is decided twice); a fresh book per offer.
    let offer = OfferSpec {
        id: Uuid::from_u128(8),
        provider: Uuid::from_u128(1),
        hub: 0,
        cluster: "zhongwei".into(),
        sku: 0,
        quantity: pairs,
        window: Hours {
            start: hour + 1,
            end: hour + 49,
        },
        ask_price: Decimal::new(10, 0),
        green_share: 60,
        attributes: vec![("qualification".into(), "level-3".into())],
    };
    let book_of_bids = || {
        let mut engine = Engine::new(EngineConfig::default());
        for index in 0..pairs {
            let resting = BidSpec {
                id: Uuid::from_u128(2_000 + u128::from(index)),
                quantity: 1,
                limit_price: limit - Decimal::new(i64::from(index), 2),
                ..bid.clone()
            };
            engine.submit_bid(resting, NOW, &mut BuiltInRules);
        }
        engine
    };
    let measure_offer = |label: &str, active: Option<&ActivePolicies>, one_pair_calls: bool| {
        let submit = |engine: &mut Engine| match active {
            Some(active) => {
                let mut policies = HubPolicies::new(&host, active, &reference, budget);
                if one_pair_calls {
                    policies = policies.one_pair_calls();
                }
                policies.begin_order();
                let outcome = engine.submit_offer(offer.clone(), NOW, &mut policies);
                (outcome, policies.decisions.len())
            }
            None => (
                engine.submit_offer(offer.clone(), NOW, &mut BuiltInRules),
                0,
            ),
        };
        for _ in 0..200 {
            submit(&mut book_of_bids());
        }
        let mut samples = Vec::with_capacity(2_000);
        let mut decisions = 0;
        for _ in 0..2_000 {
            let mut engine = book_of_bids();
            let started = Instant::now();
            let (outcome, made) = submit(&mut engine);
            samples.push(started.elapsed());
            assert_eq!(u32::try_from(outcome.fills.len()), Ok(pairs), "{outcome:?}");
            decisions = made;
        }
        samples.sort();
        let median = samples[samples.len() / 2].as_secs_f64() * 1e6;
        println!(
            "{label}: an offer crossing {pairs} bids, median {median:.1} µs per offer, {:.2} µs per \
             pair ({decisions} decisions), p99 {:.1} µs",
            median / f64::from(pairs),
            samples[samples.len() * 99 / 100].as_secs_f64() * 1e6,
        );
    };

    measure("no active policy", None);
    measure_offer("no active policy", None, false);
    for prefix in ["", "v02-"] {
        let compile = |kind, name: &str| -> anyhow::Result<Option<ActivePolicy>> {
            let path = format!("target/policies/{prefix}{name}.wasm");
            let Ok(bytes) = std::fs::read(&path) else {
                return Ok(None);
            };
            let (_, compiled) = host
                .prepare_upload(kind, &bytes)
                .map_err(|error| anyhow::anyhow!("{path}: {error}"))?;
            Ok(Some(ActivePolicy::Ready(Arc::clone(&compiled))))
        };
        let (Some(pricing), Some(compliance)) = (
            compile(PolicyKind::Pricing, "west-green-pricing")?,
            compile(PolicyKind::Compliance, "data-residency")?,
        ) else {
            println!("{prefix}: target/policies/{prefix}*.wasm not built; skipped");
            continue;
        };
        let version = match &pricing {
            ActivePolicy::Ready(compiled) => compiled.interface_version(),
            ActivePolicy::Unavailable { .. } => "?",
        };
        let active: ActivePolicies = [
            ((0, PolicyKind::Pricing), pricing),
            ((0, PolicyKind::Compliance), compliance.clone()),
            ((1, PolicyKind::Compliance), compliance),
        ]
        .into_iter()
        .collect();
        measure(&format!("interface {version}"), Some(&active));
        measure_offer(&format!("interface {version}"), Some(&active), false);
        if version == "0.3.0" {
            measure_offer("interface 0.3 asked pair by pair", Some(&active), true);
        }
    }
    Ok(())
}

/// Two hubs: Ningxia, where the offers are, and Beijing–Tianjin–Hebei, where the data comes
/// from, as the reference data seeds them.
fn reference() -> Reference {
    let hub = |code: &str, tier, region: &str, renewable_share, carbon_g_per_kwh, pue| Hub {
        code: code.into(),
        name: code.into(),
        name_zh: None,
        tier,
        region: region.into(),
        renewable_share,
        carbon_g_per_kwh,
        pue: Decimal::new(pue, 2),
        clusters: Vec::new(),
    };
    let mut ms = BTreeMap::new();
    ms.insert("bth".to_owned(), BTreeMap::from([("nx".to_owned(), 28)]));
    ms.insert("nx".to_owned(), BTreeMap::from([("bth".to_owned(), 28)]));
    Reference {
        hubs: vec![
            hub("nx", Tier::West, "west", 50, 480, 120),
            hub("bth", Tier::East, "north", 30, 650, 125),
        ],
        latency: Latency { ms },
        skus: vec![Sku {
            code: "ai.metax-c500".into(),
            class: ComputeClass::Intelligent,
            unit: "card-hour".into(),
            perf_fp16_tflops: None,
            name: "MetaX C500".into(),
        }],
    }
}
