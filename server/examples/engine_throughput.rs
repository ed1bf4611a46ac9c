//! Benchmark of the matching engine alone: commands per second on one core, on a realistic mix.
//!
//! A book of about 100,000 resting orders (8 hubs, 6 SKUs; offers of one to four weeks and bids of
//! one hour to three days, overlapping over the coming month) takes a
//! stream of 1,000,000 commands: 55 % incoming bids (some crossing), 35 % incoming offers, 10 %
//! cancels. Run with `cargo run --release -p suanli-server --example engine_throughput`.

use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rust_decimal::Decimal;
use suanli_sdk::{DataClass, TimeInForce};
use suanli_server::market::{
    BidSpec, BuiltInRules, Engine, EngineConfig, Hours, HubSet, OfferSpec, Seq, money,
};
use uuid::Uuid;

const HUBS: u8 = 8;
const SKUS: u16 = 6;
const BASE_HOUR: i64 = 500_000;
const NOW: i64 = BASE_HOUR * 3600 - 1;

fn price(rng: &mut StdRng, low: i64, high: i64) -> Decimal {
    Decimal::new(rng.random_range(low * 100..high * 100), 2)
}

fn offer(rng: &mut StdRng, low: i64, high: i64) -> OfferSpec {
    // Providers list capacity in blocks of one to four weeks over the coming month.
    let start = BASE_HOUR + rng.random_range(0..336);
    OfferSpec {
        id: Uuid::from_u128(rng.random()),
        provider: Uuid::from_u128(rng.random_range(0..200)),
        hub: rng.random_range(0..HUBS),
        cluster: String::new(),
        sku: rng.random_range(0..SKUS),
        quantity: rng.random_range(1..64),
        window: Hours {
            start,
            end: start + rng.random_range(168..720),
        },
        ask_price: price(rng, low, high),
        green_share: rng.random_range(20..100),
        attributes: Vec::new(),
    }
}

fn bid(rng: &mut StdRng, low: i64, high: i64) -> BidSpec {
    // Buyers want one hour to three days, somewhere in the coming month.
    let start = BASE_HOUR + rng.random_range(0..648);
    let window = Hours {
        start,
        end: start + rng.random_range(1..72),
    };
    let limit_price = price(rng, low, high);
    let mut hubs = HubSet::default();
    for _ in 0..rng.random_range(1..4) {
        hubs = hubs.with(rng.random_range(0..HUBS));
    }
    let sku = rng.random_range(0..SKUS);
    BidSpec {
        id: Uuid::from_u128(rng.random()),
        buyer: Uuid::from_u128(1000 + rng.random_range(0..500)),
        skus: if rng.random_bool(0.3) {
            vec![sku, (sku + 1) % SKUS]
        } else {
            vec![sku]
        },
        hubs,
        data_origin: None,
        quantity: rng.random_range(1..16),
        window,
        limit_price,
        min_green_share: rng.random_range(0..40),
        data_class: DataClass::General,
        time_in_force: if rng.random_bool(0.2) {
            TimeInForce::Ioc
        } else {
            TimeInForce::Gtc
        },
        expires_at: None,
        min_fill: 1,
        unit_hold: money::unit_hold(limit_price, window.len()),
    }
}

fn main() {
    let mut rng = StdRng::seed_from_u64(7);
    let mut engine = Engine::new(EngineConfig {
        candidates_max: 256,
    });
    let mut resting: Vec<(Seq, Uuid)> = Vec::new();
    for _ in 0..50_000 {
        let spec = offer(&mut rng, 8, 12);
        let owner = spec.provider;
        resting.push((
            engine.submit_offer(spec, NOW, &mut BuiltInRules).state.seq,
            owner,
        ));
        let spec = bid(&mut rng, 4, 8);
        let owner = spec.buyer;
        resting.push((
            engine.submit_bid(spec, NOW, &mut BuiltInRules).state.seq,
            owner,
        ));
    }
    let (offers, bids) = engine.resting();
    println!("book: {offers} resting offers, {bids} resting bids");

    const COMMANDS: usize = 1_000_000;
    // Commands are made before the clock starts: only the engine is timed.
    enum Command {
        Bid(BidSpec),
        Offer(OfferSpec),
        Cancel(usize),
    }
    let commands: Vec<Command> = (0..COMMANDS)
        .map(|_| match rng.random_range(0..100) {
            0..55 => Command::Bid(bid(&mut rng, 4, 13)),
            55..90 => Command::Offer(offer(&mut rng, 7, 16)),
            _ => Command::Cancel(rng.random_range(0..usize::MAX)),
        })
        .collect();
    let mut fills = 0usize;
    let mut cancels = 0usize;
    let started = Instant::now();
    for command in commands {
        if let Command::Bid(spec) = command {
            let owner = spec.buyer;
            let outcome = engine.submit_bid(spec, NOW, &mut BuiltInRules);
            fills += outcome.fills.len();
            if outcome.state.status.is_resting() {
                resting.push((outcome.state.seq, owner));
            }
        } else if let Command::Offer(spec) = command {
            let owner = spec.provider;
            let outcome = engine.submit_offer(spec, NOW, &mut BuiltInRules);
            fills += outcome.fills.len();
            if outcome.state.status.is_resting() {
                resting.push((outcome.state.seq, owner));
            }
        } else if let Command::Cancel(pick) = command {
            if resting.is_empty() {
                continue;
            }
            let index = pick % resting.len();
            let (seq, owner) = resting.swap_remove(index);
            if engine.cancel(seq, owner).is_ok() {
                cancels += 1;
            }
        }
    }
    let elapsed = started.elapsed();
    let (offers, bids) = engine.resting();
    println!(
        "{COMMANDS} commands in {:.3} s: {:.0} commands/s on one core ({fills} fills, {cancels} cancels; \
         book now {offers} offers, {bids} bids)",
        elapsed.as_secs_f64(),
        COMMANDS as f64 / elapsed.as_secs_f64()
    );
}
