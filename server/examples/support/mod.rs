//! The order mix the engine's benchmarks share (`examples/engine_throughput.rs` and
//! `benches/engine.rs`): a book of about 100,000 resting orders over 8 hubs and 6 SKUs (offers of
//! one to four weeks, bids of one hour to three days, overlapping over the coming month), and a
//! stream of commands: 55 % incoming bids (some crossing), 35 % incoming offers, 10 % cancels.

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
/// The engine's clock for every command: just before the first hour any window may start.
pub const NOW: i64 = BASE_HOUR * 3600 - 1;

/// One command of the mix.
pub enum Command {
    Bid(BidSpec),
    Offer(OfferSpec),
    /// Cancels a resting order picked by this number.
    Cancel(usize),
}

/// The engine, and the resting orders it was given (for cancels).
pub struct Book {
    pub engine: Engine,
    /// Resting orders and their owners.
    resting: Vec<(Seq, Uuid)>,
}

/// The stream of incoming commands (the generator that made the starting book, continued).
pub struct Commands {
    rng: StdRng,
}

/// What a run of commands did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub fills: usize,
    pub cancels: usize,
}

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
        max_latency_ms: None,
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

/// The starting book: 50,000 offers (asks 8–12 CNY) and 50,000 bids (limits 4–8 CNY), which do
/// not cross each other; and the commands that follow.
pub fn start(seed: u64) -> (Book, Commands) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut engine = Engine::new(EngineConfig {
        candidates_max: 256,
    });
    let mut resting = Vec::new();
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
    (Book { engine, resting }, Commands { rng })
}

impl Commands {
    /// The next command: bids with limits 4–13 CNY, offers with asks 7–16 CNY, and cancels.
    pub fn next_command(&mut self) -> Command {
        match self.rng.random_range(0..100) {
            0..55 => Command::Bid(bid(&mut self.rng, 4, 13)),
            55..90 => Command::Offer(offer(&mut self.rng, 7, 16)),
            _ => Command::Cancel(self.rng.random_range(0..usize::MAX)),
        }
    }
}

impl Book {
    /// Applies one command to the book.
    pub fn apply(&mut self, command: Command, tally: &mut Tally) {
        let (owner, fills, state) = match command {
            Command::Bid(spec) => {
                let owner = spec.buyer;
                let outcome = self.engine.submit_bid(spec, NOW, &mut BuiltInRules);
                (owner, outcome.fills.len(), outcome.state)
            }
            Command::Offer(spec) => {
                let owner = spec.provider;
                let outcome = self.engine.submit_offer(spec, NOW, &mut BuiltInRules);
                (owner, outcome.fills.len(), outcome.state)
            }
            Command::Cancel(pick) => {
                if self.resting.is_empty() {
                    return;
                }
                let index = pick % self.resting.len();
                let (seq, owner) = self.resting.swap_remove(index);
                if self.engine.cancel(seq, owner).is_ok() {
                    tally.cancels += 1;
                }
                return;
            }
        };
        tally.fills += fills;
        if state.status.is_resting() {
            self.resting.push((state.seq, owner));
        }
    }
}
