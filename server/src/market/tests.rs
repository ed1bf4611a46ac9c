//! The rules of SPEC §5, table by table, and properties over random command sequences.

use std::collections::HashMap;
use std::str::FromStr;

use proptest::prelude::*;
use rust_decimal::Decimal;
use suanli_sdk::{DataClass, OrderStatus, Side, TimeInForce};
use uuid::Uuid;

use super::*;

const NOW: i64 = 1_000 * 3600;

fn d(text: &str) -> Decimal {
    Decimal::from_str(text).unwrap()
}

fn party(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn offer(
    provider: u128,
    hub: HubId,
    sku: SkuId,
    quantity: u32,
    window: (i64, i64),
    ask: &str,
) -> OfferSpec {
    OfferSpec {
        id: Uuid::new_v4(),
        provider: party(provider),
        hub,
        cluster: format!("cluster-{hub}"),
        sku,
        quantity,
        window: Hours {
            start: window.0,
            end: window.1,
        },
        ask_price: d(ask),
        green_share: 50,
        attributes: Vec::new(),
    }
}

fn bid(
    buyer: u128,
    skus: &[SkuId],
    hubs: &[HubId],
    quantity: u32,
    window: (i64, i64),
    limit: &str,
) -> BidSpec {
    let window = Hours {
        start: window.0,
        end: window.1,
    };
    BidSpec {
        id: Uuid::new_v4(),
        buyer: party(buyer),
        skus: skus.to_vec(),
        hubs: hubs
            .iter()
            .fold(HubSet::default(), |set, hub| set.with(*hub)),
        data_origin: None,
        max_latency_ms: None,
        quantity,
        window,
        limit_price: d(limit),
        min_green_share: 0,
        data_class: DataClass::General,
        time_in_force: TimeInForce::Gtc,
        expires_at: None,
        min_fill: 1,
        unit_hold: money::unit_hold(d(limit), window.len()),
    }
}

fn engine() -> Engine {
    Engine::new(EngineConfig::default())
}

/// (units, unit price, offer seq) of each fill.
fn fills_of(fills: &[Fill]) -> Vec<(u32, Decimal, Seq)> {
    fills
        .iter()
        .map(|fill| (fill.units, fill.unit_price, fill.offer))
        .collect()
}

const H: (i64, i64) = (1010, 1020);

#[test]
fn an_incoming_bid_takes_the_cheapest_offers_first_then_the_earliest() {
    let mut engine = engine();
    let a = engine
        .submit_offer(offer(1, 0, 0, 5, H, "10"), NOW, &mut BuiltInRules)
        .state
        .seq;
    let b = engine
        .submit_offer(offer(2, 0, 0, 5, H, "9"), NOW, &mut BuiltInRules)
        .state
        .seq;
    let c = engine
        .submit_offer(offer(3, 1, 0, 5, H, "9"), NOW, &mut BuiltInRules)
        .state
        .seq;
    let outcome = engine.submit_bid(bid(9, &[0], &[0, 1], 12, H, "11"), NOW, &mut BuiltInRules);
    assert_eq!(
        fills_of(&outcome.fills),
        [(5, d("9"), b), (5, d("9"), c), (2, d("10"), a)]
    );
    assert_eq!(outcome.state.status, OrderStatus::Filled);
    assert_eq!(outcome.fills[0].maker, Side::Offer);
    // 9 × 5 units × 10 hours.
    assert_eq!(outcome.fills[0].notional, d("450"));
    // Held 11 × 10 per unit; 2 per unit-hour comes back.
    assert_eq!(outcome.fills[0].hold_released, d("100"));
    assert_eq!(outcome.fills[2].counterparty.remaining, 3);
    assert_eq!(
        outcome.fills[2].counterparty.status,
        OrderStatus::PartiallyFilled
    );
}

#[test]
fn pairs_that_break_a_rule_do_not_trade() {
    let base_bid = || bid(9, &[0], &[0], 1, H, "10");
    let cases: Vec<(&str, OfferSpec, BidSpec)> = vec![
        ("sku not accepted", offer(1, 0, 1, 1, H, "5"), base_bid()),
        ("hub not allowed", offer(1, 2, 0, 1, H, "5"), base_bid()),
        (
            "window not contained",
            offer(1, 0, 0, 1, (1011, 1020), "5"),
            base_bid(),
        ),
        (
            "ask above limit",
            offer(1, 0, 0, 1, H, "10.000001"),
            base_bid(),
        ),
        (
            "green share too low",
            offer(1, 0, 0, 1, H, "5"),
            BidSpec {
                min_green_share: 51,
                ..base_bid()
            },
        ),
        ("self-trade", offer(9, 0, 0, 1, H, "5"), base_bid()),
    ];
    for (rule, offer, bid) in cases {
        // Both arrival orders.
        let mut engine = self::engine();
        engine.submit_offer(offer.clone(), NOW, &mut BuiltInRules);
        assert!(
            engine
                .submit_bid(bid.clone(), NOW, &mut BuiltInRules)
                .fills
                .is_empty(),
            "{rule}: bid second"
        );
        let mut engine = self::engine();
        engine.submit_bid(bid, NOW, &mut BuiltInRules);
        assert!(
            engine
                .submit_offer(offer, NOW, &mut BuiltInRules)
                .fills
                .is_empty(),
            "{rule}: offer second"
        );
    }
}

#[test]
fn the_maker_sets_the_price_under_the_built_in_rule() {
    let mut engine = engine();
    engine.submit_bid(bid(9, &[0], &[0], 2, H, "12"), NOW, &mut BuiltInRules);
    let outcome = engine.submit_offer(offer(1, 0, 0, 2, H, "8"), NOW, &mut BuiltInRules);
    assert_eq!(outcome.fills[0].unit_price, d("12"));
    assert_eq!(outcome.fills[0].maker, Side::Bid);
    assert_eq!(outcome.state.status, OrderStatus::Filled);
}

#[test]
fn an_incoming_offer_takes_the_highest_bids_first_then_the_earliest() {
    let mut engine = engine();
    let low = engine
        .submit_bid(bid(7, &[0], &[0], 2, H, "10"), NOW, &mut BuiltInRules)
        .state
        .seq;
    let high = engine
        .submit_bid(bid(8, &[0], &[0], 2, H, "12"), NOW, &mut BuiltInRules)
        .state
        .seq;
    let high_later = engine
        .submit_bid(bid(9, &[0], &[0], 2, H, "12"), NOW, &mut BuiltInRules)
        .state
        .seq;
    let outcome = engine.submit_offer(offer(1, 0, 0, 5, H, "9"), NOW, &mut BuiltInRules);
    let order: Vec<(Seq, u32)> = outcome
        .fills
        .iter()
        .map(|fill| (fill.bid, fill.units))
        .collect();
    assert_eq!(order, [(high, 2), (high_later, 2), (low, 1)]);
    assert_eq!(
        outcome.fills[2].counterparty.status,
        OrderStatus::PartiallyFilled
    );
}

/// Built-in answers (but a refusal for bids of the limit `deny`), and a record of the pairs
/// announced and asked about: (bid, units).
#[derive(Default)]
struct Recording {
    deny: Option<Decimal>,
    announced: Vec<Vec<(Uuid, u32)>>,
    asked: Vec<(Uuid, u32)>,
}

impl Policies for Recording {
    fn allow(&mut self, pair: &PairFacts<'_>) -> Decided<Allowance> {
        self.asked.push((pair.bid.id, pair.units));
        if self.deny == Some(pair.bid.limit_price) {
            return Decided::built_in(Allowance::Denied {
                hub: pair.offer.hub,
                reason: "no".into(),
            });
        }
        BuiltInRules.allow(pair)
    }

    fn price(&mut self, pair: &PairFacts<'_>) -> Decided<PriceDecision> {
        BuiltInRules.price(pair)
    }

    fn prepares(&self) -> bool {
        true
    }

    fn prepare(&mut self, pairs: &[PairFacts<'_>]) {
        self.announced
            .push(pairs.iter().map(|pair| (pair.bid.id, pair.units)).collect());
    }
}

/// Rests `bids` (quantity, window, limit) in a fresh book, then submits an offer of `quantity`
/// units over [`H`] through `policies`: its fills as (bid, units), checked against the same
/// offer under the built-in rules asked pair by pair when `policies` refuse nothing.
fn offer_through(
    bids: &[(u32, (i64, i64), &str)],
    quantity: u32,
    policies: &mut Recording,
) -> (Vec<Uuid>, Vec<(Uuid, u32)>) {
    let (mut announcing, mut plain) = (engine(), engine());
    let mut ids = Vec::new();
    for (n, (units, window, limit)) in (10..).zip(bids) {
        let bid = bid(n, &[0], &[0], *units, *window, limit);
        ids.push(bid.id);
        announcing.submit_bid(bid.clone(), NOW, &mut BuiltInRules);
        plain.submit_bid(bid, NOW, &mut BuiltInRules);
    }
    let offer = offer(1, 0, 0, quantity, H, "9");
    let outcome = announcing.submit_offer(offer.clone(), NOW, policies);
    if policies.deny.is_none() {
        assert_eq!(outcome, plain.submit_offer(offer, NOW, &mut BuiltInRules));
    }
    let fills = outcome.fills.iter().map(|fill| (fill.bid_id, fill.units));
    (ids, fills.collect())
}

#[test]
fn an_incoming_offer_announces_the_bids_it_would_fill_if_each_traded() {
    let bids = [(3, H, "20"), (3, H, "19"), (3, H, "18"), (1, H, "17")];
    // Five units: the first bid would take three and the second the two left, so two are
    // announced (fewer than the most at once) and asked about as announced.
    let mut recording = Recording::default();
    let (ids, fills) = offer_through(&bids, 5, &mut recording);
    assert_eq!(recording.announced, [vec![(ids[0], 3), (ids[1], 2)]]);
    assert_eq!(recording.asked, [(ids[0], 3), (ids[1], 2)]);
    assert_eq!(fills, [(ids[0], 3), (ids[1], 2)]);

    // The first bid refused: the candidates after it are announced again, the second with the
    // three units the refusal left it and the third with the two after that.
    let mut recording = Recording {
        deny: Some(d("20")),
        ..Recording::default()
    };
    let (ids, fills) = offer_through(&bids, 5, &mut recording);
    assert_eq!(
        recording.announced,
        [
            vec![(ids[0], 3), (ids[1], 2)],
            vec![(ids[1], 3), (ids[2], 2)]
        ]
    );
    assert_eq!(recording.asked, [(ids[0], 3), (ids[1], 3), (ids[2], 2)]);
    assert_eq!(fills, [(ids[1], 3), (ids[2], 2)]);

    // One unit and three bids for the same hour: only the first could trade.
    let hour = (H.0, H.0 + 1);
    let bids = [(1, hour, "20"), (1, hour, "19"), (1, hour, "18")];
    let mut recording = Recording::default();
    let (ids, fills) = offer_through(&bids, 1, &mut recording);
    assert_eq!(recording.announced, [vec![(ids[0], 1)]]);
    assert_eq!(recording.asked, [(ids[0], 1)]);
    assert_eq!(fills, [(ids[0], 1)]);

    // Fifteen bids of one unit: four announcements of three pairs (the most at once here), then
    // an empty one, and the last three bids are asked about without announcing them.
    let limits: Vec<String> = (0..15).map(|n| format!("{}", 30 - n)).collect();
    let bids: Vec<_> = limits.iter().map(|limit| (1, H, limit.as_str())).collect();
    let mut recording = Recording::default();
    let (ids, fills) = offer_through(&bids, 15, &mut recording);
    let sizes: Vec<usize> = recording.announced.iter().map(Vec::len).collect();
    assert_eq!(sizes, [3, 3, 3, 3, 0]);
    let announced: Vec<(Uuid, u32)> = recording.announced.concat();
    let every: Vec<(Uuid, u32)> = ids.iter().map(|id| (*id, 1)).collect();
    assert_eq!(announced, every[..12]);
    assert_eq!(recording.asked, every);
    assert_eq!(fills, every);

    // A refusal after the last announcement announces nothing more.
    let mut recording = Recording {
        deny: Some(d("17")),
        ..Recording::default()
    };
    let (ids, fills) = offer_through(&bids, 15, &mut recording);
    let sizes: Vec<usize> = recording.announced.iter().map(Vec::len).collect();
    assert_eq!(sizes, [3, 3, 3, 3, 0]);
    let every: Vec<(Uuid, u32)> = ids.iter().map(|id| (*id, 1)).collect();
    assert_eq!(recording.asked, every);
    let filled: Vec<(Uuid, u32)> = [&every[..13], &every[14..]].concat();
    assert_eq!(fills, filled);
}

#[test]
fn capacity_is_counted_per_hour() {
    let mut engine = engine();
    engine.submit_offer(offer(1, 0, 0, 4, (1000, 1100), "5"), NOW, &mut BuiltInRules);
    let morning = engine.submit_bid(
        bid(8, &[0], &[0], 4, (1010, 1020), "5"),
        NOW,
        &mut BuiltInRules,
    );
    let evening = engine.submit_bid(
        bid(9, &[0], &[0], 4, (1020, 1030), "5"),
        NOW,
        &mut BuiltInRules,
    );
    let overlap = engine.submit_bid(
        bid(9, &[0], &[0], 4, (1015, 1025), "5"),
        NOW,
        &mut BuiltInRules,
    );
    assert_eq!(morning.fills[0].units, 4);
    assert_eq!(evening.fills[0].units, 4);
    assert!(overlap.fills.is_empty());
    assert_eq!(
        evening.fills[0].counterparty.status,
        OrderStatus::PartiallyFilled
    );
    assert_eq!(evening.fills[0].counterparty.remaining, 0);
}

#[test]
fn time_in_force_and_minimum_fill() {
    struct Case {
        rule: &'static str,
        tif: TimeInForce,
        min_fill: u32,
        expect_filled: u32,
        expect_status: OrderStatus,
        expect_released_units: u32,
    }
    let cases = [
        Case {
            rule: "GTC rests the rest",
            tif: TimeInForce::Gtc,
            min_fill: 1,
            expect_filled: 3,
            expect_status: OrderStatus::PartiallyFilled,
            expect_released_units: 0,
        },
        Case {
            rule: "IOC cancels the rest",
            tif: TimeInForce::Ioc,
            min_fill: 1,
            expect_filled: 3,
            expect_status: OrderStatus::Cancelled,
            expect_released_units: 2,
        },
        Case {
            rule: "FOK that cannot fill does nothing",
            tif: TimeInForce::Fok,
            min_fill: 1,
            expect_filled: 0,
            expect_status: OrderStatus::Cancelled,
            expect_released_units: 5,
        },
        Case {
            rule: "minimum out of reach: GTC rests whole",
            tif: TimeInForce::Gtc,
            min_fill: 4,
            expect_filled: 0,
            expect_status: OrderStatus::Open,
            expect_released_units: 0,
        },
        Case {
            rule: "minimum out of reach: IOC cancels",
            tif: TimeInForce::Ioc,
            min_fill: 4,
            expect_filled: 0,
            expect_status: OrderStatus::Cancelled,
            expect_released_units: 5,
        },
        Case {
            rule: "minimum reached",
            tif: TimeInForce::Ioc,
            min_fill: 3,
            expect_filled: 3,
            expect_status: OrderStatus::Cancelled,
            expect_released_units: 2,
        },
    ];
    for case in cases {
        let mut engine = engine();
        engine.submit_offer(offer(1, 0, 0, 2, H, "5"), NOW, &mut BuiltInRules);
        engine.submit_offer(offer(2, 0, 0, 1, H, "6"), NOW, &mut BuiltInRules);
        let spec = BidSpec {
            time_in_force: case.tif,
            min_fill: case.min_fill,
            ..bid(9, &[0], &[0], 5, H, "10")
        };
        let unit_hold = spec.unit_hold;
        let outcome = engine.submit_bid(spec, NOW, &mut BuiltInRules);
        let filled: u32 = outcome.fills.iter().map(|fill| fill.units).sum();
        assert_eq!(filled, case.expect_filled, "{}", case.rule);
        assert_eq!(outcome.state.status, case.expect_status, "{}", case.rule);
        assert_eq!(
            outcome.hold_released,
            unit_hold * Decimal::from(case.expect_released_units),
            "{}",
            case.rule
        );
        let rests = engine.resting().1 == 1;
        assert_eq!(rests, case.expect_status.is_resting(), "{}", case.rule);
    }
}

#[test]
fn fok_that_can_fill_fills_completely() {
    let mut engine = engine();
    engine.submit_offer(offer(1, 0, 0, 2, H, "5"), NOW, &mut BuiltInRules);
    engine.submit_offer(offer(2, 0, 0, 3, H, "6"), NOW, &mut BuiltInRules);
    let spec = BidSpec {
        time_in_force: TimeInForce::Fok,
        ..bid(9, &[0], &[0], 5, H, "10")
    };
    let outcome = engine.submit_bid(spec, NOW, &mut BuiltInRules);
    assert_eq!(outcome.state.status, OrderStatus::Filled);
    assert_eq!(outcome.fills.len(), 2);
}

#[test]
fn a_resting_minimum_holds_until_the_first_fill_then_drops_to_one() {
    let mut engine = engine();
    let spec = BidSpec {
        min_fill: 3,
        ..bid(9, &[0], &[0], 5, H, "10")
    };
    engine.submit_bid(spec, NOW, &mut BuiltInRules);
    assert!(
        engine
            .submit_offer(offer(1, 0, 0, 2, H, "5"), NOW, &mut BuiltInRules)
            .fills
            .is_empty()
    );
    let big = engine.submit_offer(offer(2, 0, 0, 4, H, "5"), NOW, &mut BuiltInRules);
    assert_eq!(big.fills[0].units, 4);
    assert_eq!(big.fills[0].counterparty.min_fill, 1);
    // The small offer from before is now behind; a new incoming one fills the last unit.
    let last = engine.submit_offer(offer(3, 0, 0, 1, H, "5"), NOW, &mut BuiltInRules);
    assert_eq!(last.fills[0].counterparty.status, OrderStatus::Filled);
}

#[test]
fn orders_expire_when_their_time_is_up() {
    let mut engine = engine();
    let early = engine
        .submit_bid(
            bid(9, &[0], &[0], 1, (1001, 1002), "10"),
            NOW,
            &mut BuiltInRules,
        )
        .state
        .seq;
    let spec = BidSpec {
        time_in_force: TimeInForce::Gtd,
        expires_at: Some(NOW + 60),
        ..bid(9, &[0], &[0], 1, H, "10")
    };
    let gtd = engine.submit_bid(spec, NOW, &mut BuiltInRules).state.seq;
    let offer_seq = engine
        .submit_offer(
            offer(1, 3, 0, 1, (1000, 1005), "50"),
            NOW,
            &mut BuiltInRules,
        )
        .state
        .seq;
    assert!(engine.expire(NOW + 59).is_empty());
    let expired: Vec<Seq> = engine
        .expire(NOW + 60)
        .iter()
        .map(|removal| removal.state.seq)
        .collect();
    assert_eq!(expired, [gtd]);
    let expired: Vec<Seq> = engine
        .expire(1001 * 3600)
        .iter()
        .map(|removal| removal.state.seq)
        .collect();
    assert_eq!(expired, [early]);
    let removals = engine.expire(1005 * 3600);
    assert_eq!(removals.len(), 1);
    assert_eq!(
        (removals[0].state.seq, removals[0].state.status),
        (offer_seq, OrderStatus::Expired)
    );
    assert_eq!(engine.resting(), (0, 0));
}

#[test]
fn only_the_owner_cancels_and_the_hold_comes_back() {
    let mut engine = engine();
    let spec = bid(9, &[0], &[0], 3, H, "10");
    let unit_hold = spec.unit_hold;
    let seq = engine.submit_bid(spec, NOW, &mut BuiltInRules).state.seq;
    assert_eq!(
        engine.cancel(seq, party(8)),
        Err(engine::CancelError::NotOwner)
    );
    let removal = engine.cancel(seq, party(9)).unwrap();
    assert_eq!(removal.hold_released, unit_hold * Decimal::from(3));
    assert_eq!(removal.state.status, OrderStatus::Cancelled);
    assert_eq!(
        engine.cancel(seq, party(9)),
        Err(engine::CancelError::NotResting)
    );
}

#[test]
fn the_number_of_candidates_examined_is_bounded() {
    let mut engine = Engine::new(EngineConfig { candidates_max: 2 });
    // Two cheap offers the buyer itself made (self-trade) use up the budget.
    engine.submit_offer(offer(9, 0, 0, 1, H, "1"), NOW, &mut BuiltInRules);
    engine.submit_offer(offer(9, 0, 0, 1, H, "2"), NOW, &mut BuiltInRules);
    engine.submit_offer(offer(1, 0, 0, 1, H, "3"), NOW, &mut BuiltInRules);
    assert!(
        engine
            .submit_bid(bid(9, &[0], &[0], 1, H, "10"), NOW, &mut BuiltInRules)
            .fills
            .is_empty()
    );
    let mut engine = Engine::new(EngineConfig { candidates_max: 3 });
    engine.submit_offer(offer(9, 0, 0, 1, H, "1"), NOW, &mut BuiltInRules);
    engine.submit_offer(offer(9, 0, 0, 1, H, "2"), NOW, &mut BuiltInRules);
    engine.submit_offer(offer(1, 0, 0, 1, H, "3"), NOW, &mut BuiltInRules);
    assert_eq!(
        engine
            .submit_bid(bid(9, &[0], &[0], 1, H, "10"), NOW, &mut BuiltInRules)
            .fills
            .len(),
        1
    );
}

/// A pricing policy that quotes a fixed price and remembers faults.
struct FixedPrice {
    price: Decimal,
    faults: Vec<Decimal>,
    deny_hub: Option<HubId>,
}

impl Policies for FixedPrice {
    fn allow(&mut self, pair: &PairFacts<'_>) -> Decided<Allowance> {
        Decided::built_in(if Some(pair.offer.hub) == self.deny_hub {
            Allowance::Denied {
                hub: pair.offer.hub,
                reason: "not here".into(),
            }
        } else {
            Allowance::Allowed
        })
    }

    fn price(&mut self, _pair: &PairFacts<'_>) -> Decided<PriceDecision> {
        Decided::built_in(PriceDecision::Quote {
            unit_price: self.price,
            levy_bps: 150,
        })
    }

    fn quote_below_ask(&mut self, _pair: &PairFacts<'_>, unit_price: Decimal) {
        self.faults.push(unit_price);
    }
}

#[test]
fn quotes_outside_the_band_do_not_trade_and_below_the_ask_is_a_fault() {
    let cases = [
        ("7", true, false),
        ("5", true, false),
        ("10", true, false),
        ("4.99", false, true),
        ("10.01", false, false),
    ];
    for (price, trades, fault) in cases {
        let mut policies = FixedPrice {
            price: d(price),
            faults: Vec::new(),
            deny_hub: None,
        };
        let mut engine = engine();
        engine.submit_offer(offer(1, 0, 0, 1, H, "5"), NOW, &mut policies);
        let outcome = engine.submit_bid(bid(9, &[0], &[0], 1, H, "10"), NOW, &mut policies);
        assert_eq!(!outcome.fills.is_empty(), trades, "{price}");
        assert_eq!(!policies.faults.is_empty(), fault, "{price}");
        if trades {
            assert_eq!(
                (outcome.fills[0].unit_price, outcome.fills[0].levy_bps),
                (d(price), 150)
            );
        }
    }
}

#[test]
fn quoted_prices_not_asks_decide_the_order_and_compliance_can_deny() {
    // Hub 1's policy denies everything: the cheaper offer there is passed over.
    let mut policies = FixedPrice {
        price: d("8"),
        faults: Vec::new(),
        deny_hub: Some(1),
    };
    let mut engine = engine();
    engine.submit_offer(offer(1, 1, 0, 1, H, "5"), NOW, &mut policies);
    let allowed = engine
        .submit_offer(offer(2, 0, 0, 1, H, "6"), NOW, &mut policies)
        .state
        .seq;
    let outcome = engine.submit_bid(bid(9, &[0], &[0, 1], 2, H, "10"), NOW, &mut policies);
    assert_eq!(fills_of(&outcome.fills), [(1, d("8"), allowed)]);
}

// ---------------------------------------------------------------------------------------------
// Properties over random command sequences.

#[derive(Debug, Clone)]
enum Command {
    Offer {
        provider: u8,
        hub: u8,
        sku: u8,
        quantity: u32,
        start: i64,
        length: i64,
        ask: u32,
    },
    Bid {
        buyer: u8,
        skus: Vec<u8>,
        hubs: u8,
        quantity: u32,
        start: i64,
        length: i64,
        limit: u32,
        tif: u8,
        min_fill: u32,
    },
    Cancel {
        index: usize,
        owner: u8,
    },
    Advance {
        seconds: i64,
    },
}

fn command() -> impl Strategy<Value = Command> {
    prop_oneof![
        (0..4u8, 0..3u8, 0..2u8, 1..6u32, 0..6i64, 1..8i64, 1..20u32).prop_map(
            |(provider, hub, sku, quantity, start, length, ask)| Command::Offer {
                provider,
                hub,
                sku,
                quantity,
                start,
                length,
                ask
            }
        ),
        (
            0..4u8,
            proptest::collection::vec(0..2u8, 1..3),
            1..8u8,
            1..6u32,
            0..6i64,
            1..4i64,
            1..20u32,
            0..4u8,
            1..3u32
        )
            .prop_map(
                |(buyer, skus, hubs, quantity, start, length, limit, tif, min_fill)| Command::Bid {
                    buyer,
                    skus,
                    hubs,
                    quantity,
                    start,
                    length,
                    limit,
                    tif,
                    min_fill
                }
            ),
        (0..40usize, 0..4u8).prop_map(|(index, owner)| Command::Cancel { index, owner }),
        (0..7200i64).prop_map(|seconds| Command::Advance { seconds }),
    ]
}

/// A crowded book: many small offers in one SKU, then bids wanting several of them each (the
/// case where an incoming bid's candidates are announced to the policies many at a time).
fn crowded() -> impl Strategy<Value = Vec<Command>> {
    let offers = proptest::collection::vec(
        (0..4u8, 0..3u8, 1..3u32, 0..3i64, 1..20u32).prop_map(
            |(provider, hub, quantity, start, ask)| Command::Offer {
                provider,
                hub,
                sku: 0,
                quantity,
                start,
                length: 4,
                ask,
            },
        ),
        8..30,
    );
    let bids = proptest::collection::vec(
        (0..4u8, 0..8u8, 2..16u32, 0..4i64, 1..4i64, 5..24u32, 0..4u8).prop_map(
            |(buyer, hubs, quantity, start, length, limit, tif)| Command::Bid {
                buyer,
                skus: vec![0],
                hubs,
                quantity,
                start,
                length,
                limit,
                tif,
                min_fill: 1,
            },
        ),
        1..8,
    );
    (offers, bids).prop_map(|(mut offers, bids)| {
        offers.extend(bids);
        offers
    })
}

/// Everything observable from running `commands`, plus the ledger a buyer-side model keeps.
#[derive(Debug, PartialEq)]
struct Run {
    fills: Vec<(Seq, Seq, u32, Decimal, Hours)>,
    statuses: Vec<(Seq, OrderStatus, u32)>,
}

fn run(commands: &[Command], check: bool) -> Run {
    run_with(commands, check, &mut BuiltInRules, 8)
}

fn run_with(
    commands: &[Command],
    check: bool,
    policies: &mut dyn Policies,
    candidates_max: usize,
) -> Run {
    const BASE_HOUR: i64 = 2000;
    let mut engine = Engine::new(EngineConfig { candidates_max });
    let mut now = BASE_HOUR * 3600 - 3600;
    let mut orders: Vec<(Seq, Uuid)> = Vec::new();
    let mut offers: HashMap<Seq, OfferSpec> = HashMap::new();
    let mut bids: HashMap<Seq, BidSpec> = HashMap::new();
    let mut sold: HashMap<(Seq, i64), u32> = HashMap::new();
    // The ledger: each buyer's available and held money, contract escrow, and money that came in.
    let mut available: HashMap<Uuid, Decimal> = HashMap::new();
    let mut held: HashMap<Uuid, Decimal> = HashMap::new();
    let mut resting_hold: HashMap<Seq, (Uuid, Decimal, u32)> = HashMap::new();
    let mut escrow = Decimal::ZERO;
    let deposit = Decimal::from(5_000);
    let mut external = Decimal::ZERO;
    let mut result = Run {
        fills: Vec::new(),
        statuses: Vec::new(),
    };

    let settle_fills = |fills: &[Fill],
                        held: &mut HashMap<Uuid, Decimal>,
                        available: &mut HashMap<Uuid, Decimal>,
                        resting_hold: &mut HashMap<Seq, (Uuid, Decimal, u32)>,
                        escrow: &mut Decimal,
                        result: &mut Run| {
        for fill in fills {
            *held.get_mut(&fill.buyer).unwrap() -= fill.notional + fill.hold_released;
            *available.get_mut(&fill.buyer).unwrap() += fill.hold_released;
            *escrow += fill.notional;
            if let Some(entry) = resting_hold.get_mut(&fill.bid) {
                entry.2 -= fill.units;
            }
            result.fills.push((
                fill.bid,
                fill.offer,
                fill.units,
                fill.unit_price,
                fill.window,
            ));
        }
    };

    for command in commands {
        match command {
            Command::Offer {
                provider,
                hub,
                sku,
                quantity,
                start,
                length,
                ask,
            } => {
                let spec = OfferSpec {
                    id: Uuid::from_u128(orders.len() as u128 + 1000),
                    provider: party(u128::from(*provider)),
                    hub: *hub,
                    cluster: String::new(),
                    sku: SkuId::from(*sku),
                    quantity: *quantity,
                    window: Hours {
                        start: BASE_HOUR + start,
                        end: BASE_HOUR + start + length + 4,
                    },
                    ask_price: Decimal::from(*ask),
                    green_share: 50,
                    attributes: Vec::new(),
                };
                let outcome = engine.submit_offer(spec.clone(), now, policies);
                settle_fills(
                    &outcome.fills,
                    &mut held,
                    &mut available,
                    &mut resting_hold,
                    &mut escrow,
                    &mut result,
                );
                offers.insert(outcome.state.seq, spec);
                orders.push((outcome.state.seq, party(u128::from(*provider))));
                result.statuses.push((
                    outcome.state.seq,
                    outcome.state.status,
                    outcome.state.remaining,
                ));
                for fill in &outcome.fills {
                    let bid = &bids[&fill.bid];
                    if check {
                        assert!(
                            offers[&fill.offer].ask_price <= fill.unit_price
                                && fill.unit_price <= bid.limit_price
                        );
                    }
                    if fill.counterparty.status == OrderStatus::Filled {
                        resting_hold.remove(&fill.bid);
                    }
                }
            }
            Command::Bid {
                buyer,
                skus,
                hubs,
                quantity,
                start,
                length,
                limit,
                tif,
                min_fill,
            } => {
                let buyer_id = party(100 + u128::from(*buyer));
                let window = Hours {
                    start: BASE_HOUR + 1 + start,
                    end: BASE_HOUR + 1 + start + length,
                };
                let limit_price = Decimal::from(*limit) / Decimal::from(3);
                let limit_price = limit_price.round_dp(6);
                let tif = [
                    TimeInForce::Gtc,
                    TimeInForce::Ioc,
                    TimeInForce::Fok,
                    TimeInForce::Gtd,
                ][usize::from(*tif)];
                let spec = BidSpec {
                    id: Uuid::from_u128(orders.len() as u128 + 1000),
                    buyer: buyer_id,
                    skus: skus.iter().map(|sku| SkuId::from(*sku)).collect(),
                    hubs: HubSet(u64::from(*hubs)),
                    data_origin: None,
                    max_latency_ms: None,
                    quantity: *quantity,
                    window,
                    limit_price,
                    min_green_share: 0,
                    data_class: DataClass::General,
                    time_in_force: tif,
                    expires_at: (tif == TimeInForce::Gtd).then_some(now + 1800),
                    min_fill: (*min_fill).min(*quantity),
                    unit_hold: money::unit_hold(limit_price, window.len()),
                };
                if spec.expiry() <= now {
                    continue;
                }
                // The exchange refuses a bid the buyer cannot cover, before matching.
                let hold = spec.unit_hold * Decimal::from(spec.quantity);
                let buyer_available = available.entry(buyer_id).or_insert_with(|| {
                    external -= deposit;
                    deposit
                });
                if *buyer_available < hold {
                    continue;
                }
                *buyer_available -= hold;
                *held.entry(buyer_id).or_default() += hold;
                let outcome = engine.submit_bid(spec.clone(), now, policies);
                let seq = outcome.state.seq;
                bids.insert(seq, spec.clone());
                resting_hold.insert(seq, (buyer_id, spec.unit_hold, spec.quantity));
                settle_fills(
                    &outcome.fills,
                    &mut held,
                    &mut available,
                    &mut resting_hold,
                    &mut escrow,
                    &mut result,
                );
                *held.get_mut(&buyer_id).unwrap() -= outcome.hold_released;
                *available.get_mut(&buyer_id).unwrap() += outcome.hold_released;
                if !outcome.state.status.is_resting() {
                    resting_hold.remove(&seq);
                }
                for fill in &outcome.fills {
                    if check {
                        assert!(
                            offers[&fill.offer].ask_price <= fill.unit_price
                                && fill.unit_price <= spec.limit_price
                        );
                    }
                }
                orders.push((seq, buyer_id));
                result
                    .statuses
                    .push((seq, outcome.state.status, outcome.state.remaining));
            }
            Command::Cancel { index, owner } => {
                let Some(&(seq, real_owner)) = orders.get(*index % orders.len().max(1)) else {
                    continue;
                };
                let owner = if *owner == 0 { party(999) } else { real_owner };
                if let Ok(removal) = engine.cancel(seq, owner) {
                    assert_eq!(removal.owner, real_owner);
                    if let Some((buyer, _, _)) = resting_hold.remove(&seq) {
                        *held.get_mut(&buyer).unwrap() -= removal.hold_released;
                        *available.get_mut(&buyer).unwrap() += removal.hold_released;
                    }
                    result
                        .statuses
                        .push((seq, removal.state.status, removal.unfilled));
                }
            }
            Command::Advance { seconds } => {
                now += seconds;
                for removal in engine.expire(now) {
                    if let Some((buyer, _, _)) = resting_hold.remove(&removal.state.seq) {
                        *held.get_mut(&buyer).unwrap() -= removal.hold_released;
                        *available.get_mut(&buyer).unwrap() += removal.hold_released;
                    }
                    result.statuses.push((
                        removal.state.seq,
                        removal.state.status,
                        removal.unfilled,
                    ));
                }
            }
        }

        if check {
            // Capacity is never oversold, for any offer and hour.
            sold.clear();
            for (_, offer_seq, units, _, window) in &result.fills {
                for hour in window.start..window.end {
                    *sold.entry((*offer_seq, hour)).or_default() += units;
                }
            }
            for ((offer_seq, hour), units) in &sold {
                let offer = &offers[offer_seq];
                assert!(offer.window.start <= *hour && *hour < offer.window.end);
                assert!(
                    *units <= offer.quantity,
                    "offer {offer_seq} oversold at hour {hour}"
                );
            }
            // No balance is negative; the ledger sums to zero; holds equal open exposure.
            assert!(
                available
                    .values()
                    .chain(held.values())
                    .all(|amount| *amount >= Decimal::ZERO)
            );
            let total: Decimal = available
                .values()
                .chain(held.values())
                .copied()
                .sum::<Decimal>()
                + escrow
                + external;
            assert_eq!(total, Decimal::ZERO);
            let mut exposure: HashMap<Uuid, Decimal> = HashMap::new();
            for (buyer, unit_hold, remaining) in resting_hold.values() {
                *exposure.entry(*buyer).or_default() += *unit_hold * Decimal::from(*remaining);
            }
            for (buyer, amount) in &held {
                assert_eq!(
                    *amount,
                    exposure.get(buyer).copied().unwrap_or_default(),
                    "held of {buyer}"
                );
            }
        }
    }
    result
}

/// Policies that deny some pairs and price each by its own facts, and that check, when they ask
/// to hear of pairs ahead, that the engine asks about exactly the pairs announced, in order, with
/// the units announced. An incoming bid asks about every pair it announced before it announces
/// more; an incoming offer may announce again after a refusal, and once it announced nothing
/// (an empty list) asks without announcing.
#[derive(Default)]
struct Judging {
    announce: bool,
    /// (bid, offer, units) announced and not yet asked about.
    announced: std::collections::VecDeque<(Uuid, Uuid, u32)>,
    /// Whether the pairs announced last are an incoming offer's.
    offer_announced: bool,
    /// Whether the last announcement was empty: the order asks without announcing.
    stopped: bool,
    violations: Vec<String>,
}

impl Judging {
    fn asked(&mut self, pair: &PairFacts<'_>) {
        if !self.announce || self.stopped {
            return;
        }
        let key = (pair.bid.id, pair.offer.id, pair.units);
        match self.announced.front() {
            Some(front) if *front == key => {}
            other => self
                .violations
                .push(format!("asked {key:?}, announced {other:?}")),
        }
    }

    /// Done with the pair at the front (refused, or priced).
    fn answered(&mut self) {
        if self.announce {
            self.announced.pop_front();
        }
    }

    /// Whether every pair announced for an incoming bid was asked about.
    fn all_bid_pairs_asked(&self) -> bool {
        self.offer_announced || self.announced.is_empty()
    }
}

impl Policies for Judging {
    fn allow(&mut self, pair: &PairFacts<'_>) -> Decided<Allowance> {
        self.asked(pair);
        let denied = (pair.bid.id.as_u128() + pair.offer.id.as_u128()).is_multiple_of(5);
        if denied {
            self.answered();
        }
        Decided::built_in(if denied {
            Allowance::Denied {
                hub: pair.offer.hub,
                reason: "no".into(),
            }
        } else {
            Allowance::Allowed
        })
    }

    fn price(&mut self, pair: &PairFacts<'_>) -> Decided<PriceDecision> {
        self.answered();
        let markup = Decimal::from(pair.offer.id.as_u128() % 3 + u128::from(pair.units % 2));
        Decided::built_in(PriceDecision::Quote {
            unit_price: pair.offer.ask_price + markup,
            levy_bps: 0,
        })
    }

    fn prepares(&self) -> bool {
        self.announce
    }

    fn prepare(&mut self, pairs: &[PairFacts<'_>]) {
        if !self.all_bid_pairs_asked() {
            self.violations
                .push(format!("announced again with {:?} unasked", self.announced));
        }
        self.offer_announced = pairs.first().is_some_and(|pair| pair.maker == Side::Bid);
        self.stopped = pairs.is_empty();
        self.announced = pairs
            .iter()
            .map(|pair| (pair.bid.id, pair.offer.id, pair.units))
            .collect();
    }
}

/// Resting bids first, then offers large enough to fill several of them each (an incoming
/// offer's candidates announced many at a time, and fills leaving later bids fewer units).
fn crowded_bids() -> impl Strategy<Value = Vec<Command>> {
    let bids = proptest::collection::vec(
        (0..4u8, 1..8u8, 1..4u32, 0..3i64, 1..4i64, 5..24u32).prop_map(
            |(buyer, hubs, quantity, start, length, limit)| Command::Bid {
                buyer,
                skus: vec![0],
                hubs,
                quantity,
                start,
                length,
                limit,
                tif: 0,
                min_fill: 1,
            },
        ),
        8..30,
    );
    let offers = proptest::collection::vec(
        (0..4u8, 0..3u8, 2..8u32, 1..12u32).prop_map(|(provider, hub, quantity, ask)| {
            Command::Offer {
                provider,
                hub,
                sku: 0,
                quantity,
                start: 0,
                length: 8,
                ask,
            }
        }),
        1..8,
    );
    (bids, offers).prop_map(|(mut bids, offers)| {
        bids.extend(offers);
        bids
    })
}

/// Runs `commands` with policies that hear of pairs ahead and with policies that do not: the same
/// fills and statuses, and every pair asked about announced as [`Judging`] checks.
fn announcing_changes_nothing(
    commands: &[Command],
    candidates_max: usize,
) -> Result<(), TestCaseError> {
    let mut announcing = Judging {
        announce: true,
        ..Judging::default()
    };
    let announced = run_with(commands, false, &mut announcing, candidates_max);
    let plain = run_with(commands, false, &mut Judging::default(), candidates_max);
    prop_assert_eq!(announced, plain);
    prop_assert!(
        announcing.violations.is_empty(),
        "{:?}",
        announcing.violations
    );
    prop_assert!(
        announcing.all_bid_pairs_asked(),
        "never asked: {:?}",
        announcing.announced
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn announcing_candidates_ahead_changes_nothing_and_every_announced_pair_is_asked(
        commands in proptest::collection::vec(command(), 1..60)
    ) {
        announcing_changes_nothing(&commands, 8)?;
    }

    #[test]
    fn announcing_many_candidates_of_a_crowded_book_changes_nothing(commands in crowded()) {
        announcing_changes_nothing(&commands, 64)?;
    }

    #[test]
    fn announcing_an_incoming_offers_candidates_changes_nothing(commands in crowded_bids()) {
        announcing_changes_nothing(&commands, 64)?;
    }

    #[test]
    fn random_commands_keep_every_invariant(commands in proptest::collection::vec(command(), 1..60)) {
        run(&commands, true);
    }

    #[test]
    fn replaying_the_same_commands_gives_the_same_contracts(commands in proptest::collection::vec(command(), 1..60)) {
        prop_assert_eq!(run(&commands, false), run(&commands, false));
    }
}

#[test]
fn a_hub_set_lists_its_hubs_in_index_order() {
    let set = HubSet::default().with(63).with(0).with(5);
    assert_eq!(set.iter().collect::<Vec<_>>(), [0, 5, 63]);
    assert_eq!(HubSet::default().iter().count(), 0);
    assert_eq!(HubSet(u64::MAX).iter().count(), 64);
}
