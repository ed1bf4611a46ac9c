//! Price history: candles and the price index equal a recomputation from the contracts, to the
//! last decimal, per hour and per day, per hub and across hubs, also while contracts are being
//! made.

use std::collections::BTreeMap;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use diesel::prelude::*;
use rust_decimal::{Decimal, RoundingStrategy};
use suanli_sdk::{Candle, CandleInterval, ParticipantKind};
use suanli_server::db::orders::ContractRow;
use suanli_tests::{TestExchange, new_bid, new_offer, window};

use crate::settlement::Lcg;

const SKU: &str = "ai.metax-c500";

/// Candles by (hub or "" for all hubs, interval, start).
type Candles = BTreeMap<(String, &'static str, DateTime<Utc>), Candle>;

/// One contract as the recomputation needs it.
#[derive(Debug, Clone)]
struct Traded {
    hub: String,
    unit_price: Decimal,
    unit_hours: i64,
    notional: Decimal,
    at: DateTime<Utc>,
}

/// The candles the contracts make, computed from scratch: (hub or "", interval, start) → candle.
fn recompute(trades: &[Traded]) -> Candles {
    let mut groups: BTreeMap<(String, &'static str, DateTime<Utc>), Vec<&Traded>> = BTreeMap::new();
    for trade in trades {
        for hub in [trade.hub.clone(), String::new()] {
            for (name, length) in [("1h", TimeDelta::hours(1)), ("1d", TimeDelta::days(1))] {
                let start = trade.at.duration_trunc(length).unwrap();
                groups
                    .entry((hub.clone(), name, start))
                    .or_default()
                    .push(trade);
            }
        }
    }
    groups
        .into_iter()
        .map(|(key, trades)| {
            let unit_hours: i64 = trades.iter().map(|t| t.unit_hours).sum();
            let weighted: Decimal = trades
                .iter()
                .map(|t| t.unit_price * Decimal::from(t.unit_hours))
                .sum();
            let candle = Candle {
                start: key.2,
                open: trades[0].unit_price.normalize(),
                high: trades
                    .iter()
                    .map(|t| t.unit_price)
                    .max()
                    .unwrap()
                    .normalize(),
                low: trades
                    .iter()
                    .map(|t| t.unit_price)
                    .min()
                    .unwrap()
                    .normalize(),
                close: trades.last().unwrap().unit_price.normalize(),
                vwap: (weighted / Decimal::from(unit_hours))
                    .round_dp_with_strategy(6, RoundingStrategy::MidpointNearestEven)
                    .normalize(),
                unit_hours: unit_hours as u64,
                notional: trades
                    .iter()
                    .map(|t| t.notional)
                    .sum::<Decimal>()
                    .normalize(),
                contracts: trades.len() as u64,
            };
            (key, candle)
        })
        .collect()
}

/// Every contract of the SKU in the order it was made.
fn contracts_made(connection: &mut PgConnection) -> Vec<Traded> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        hub: String,
        #[diesel(sql_type = diesel::sql_types::Numeric)]
        unit_price: Decimal,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        unit_hours: i64,
        #[diesel(sql_type = diesel::sql_types::Numeric)]
        notional: Decimal,
        #[diesel(sql_type = diesel::sql_types::Timestamptz)]
        created_at: DateTime<Utc>,
    }
    let rows: Vec<Row> = diesel::sql_query(
        "SELECT hub, unit_price, units::bigint * hours AS unit_hours, notional, created_at \
         FROM contracts WHERE sku = $1 ORDER BY seq",
    )
    .bind::<diesel::sql_types::Text, _>(SKU)
    .load(connection)
    .unwrap();
    rows.into_iter()
        .map(|row| Traded {
            hub: row.hub,
            unit_price: row.unit_price,
            unit_hours: row.unit_hours,
            notional: row.notional,
            at: row.created_at,
        })
        .collect()
}

/// The stored candles, read the way the API reads them, for every key of `expected`.
fn stored(connection: &mut PgConnection, expected: &Candles) -> Candles {
    let mut found = BTreeMap::new();
    for (hub, interval, start) in expected.keys() {
        let interval_value = CandleInterval::parse(interval).unwrap();
        let hub_filter = (!hub.is_empty()).then_some(hub.as_str());
        let end = *start + TimeDelta::seconds(interval_value.seconds());
        for candle in suanli_server::db::market::candles(
            connection,
            SKU,
            hub_filter,
            interval_value,
            *start,
            end,
            10,
        )
        .unwrap()
        {
            found.insert((hub.clone(), *interval, candle.start), candle);
        }
    }
    found
}

#[actix_web::test]
async fn candles_and_the_index_equal_a_recomputation_from_the_contracts() {
    let exchange = TestExchange::start().await;
    let (_, provider) = exchange
        .participant(ParticipantKind::Provider, "Provider")
        .await;
    let mut buyers = Vec::new();
    for n in 0..3 {
        buyers.push(
            exchange
                .funded_buyer(&format!("Buyer {n}"), "100000")
                .await
                .1,
        );
    }
    let mut random = Lcg(20261129);
    for cluster in [
        "zhongwei", "helinger", "qingyang", "zhongwei", "guian", "helinger",
    ] {
        let ask = Decimal::new(800 + random.below(300) as i64, 2);
        provider
            .place_offer(&new_offer(
                cluster,
                SKU,
                2 + random.below(4) as u32,
                window(0, 8),
                &ask.to_string(),
            ))
            .await
            .unwrap();
    }

    // Bids made while a reader checks, in one snapshot, that the candles equal the contracts.
    let reader_url = exchange.database_url.clone();
    let reading = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let still = reading.clone();
    let reader = std::thread::spawn(move || {
        let mut checks = 0;
        while still.load(std::sync::atomic::Ordering::SeqCst) || checks == 0 {
            let mut connection = PgConnection::establish(&reader_url).unwrap();
            connection
                .build_transaction()
                .repeatable_read()
                .read_only()
                .run::<_, diesel::result::Error, _>(|connection| {
                    let expected = recompute(&contracts_made(connection));
                    assert_eq!(stored(connection, &expected), expected);
                    Ok(())
                })
                .unwrap();
            checks += 1;
        }
        checks
    });
    for n in 0..24u64 {
        let limit = Decimal::new(900 + random.below(500) as i64, 2);
        let bid = new_bid(
            SKU,
            1 + random.below(3) as u32,
            window(0, 1 + random.below(4) as i64),
            &limit.to_string(),
        );
        buyers[(n % 3) as usize].place_bid(&bid).await.unwrap();
    }
    reading.store(false, std::sync::atomic::Ordering::SeqCst);
    assert!(reader.join().unwrap() > 0);

    let trades = contracts_made(&mut exchange.sql());
    assert!(
        trades.len() >= 5,
        "a workload that trades: {}",
        trades.len()
    );
    let expected = recompute(&trades);

    // Through the API: each hub and all hubs, hourly and daily.
    let now = Utc::now();
    for ((hub, interval, start), candle) in &expected {
        let got = exchange
            .anonymous
            .candles(
                SKU,
                (!hub.is_empty()).then_some(hub.as_str()),
                CandleInterval::parse(interval).unwrap(),
                Some(*start),
                Some(now + TimeDelta::days(1)),
            )
            .await
            .unwrap();
        assert_eq!(got, vec![candle.clone()], "{hub:?} {interval}");
    }
    // A hub with no contract has no candle; the range is bounded; bad input is a 400.
    assert!(
        exchange
            .anonymous
            .candles(SKU, Some("yrd"), CandleInterval::Hour, None, None)
            .await
            .unwrap()
            .is_empty()
    );
    for query in [
        "interval=1h",
        "sku=ai.metax-c500&interval=5m",
        "sku=ai.metax-c50&interval=1h",
        "sku=ai.metax-c500&from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z",
    ] {
        let response = exchange
            .anonymous
            .request(reqwest::Method::GET, &format!("/v1/market/candles?{query}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 400, "{query}");
    }

    // The index: every contract here is of the last 24 hours, so both figures are the overall
    // unit-hour-weighted price, nationally and per hub.
    let index = exchange.anonymous.market_index(SKU).await.unwrap();
    let national = &expected[&(
        String::new(),
        "1d",
        trades[0].at.duration_trunc(TimeDelta::days(1)).unwrap(),
    )];
    if trades
        .iter()
        .all(|t| t.at.duration_trunc(TimeDelta::days(1)).unwrap() == national.start)
    {
        assert_eq!(index.national.last_24h, Some(national.vwap));
        assert_eq!(index.national.last_7d, Some(national.vwap));
        assert_eq!(index.national.unit_hours_24h, national.unit_hours);
    }
    let hubs: Vec<&str> = index
        .hubs
        .iter()
        .map(|row| row.hub.as_deref().unwrap())
        .collect();
    let mut traded: Vec<&str> = trades.iter().map(|t| t.hub.as_str()).collect();
    traded.sort_unstable();
    traded.dedup();
    assert_eq!(hubs, traded);
    for row in &index.hubs {
        let hub_trades: Vec<&Traded> = trades
            .iter()
            .filter(|t| Some(t.hub.as_str()) == row.hub.as_deref())
            .collect();
        let unit_hours: i64 = hub_trades.iter().map(|t| t.unit_hours).sum();
        let weighted: Decimal = hub_trades
            .iter()
            .map(|t| t.unit_price * Decimal::from(t.unit_hours))
            .sum();
        let vwap = (weighted / Decimal::from(unit_hours))
            .round_dp_with_strategy(6, RoundingStrategy::MidpointNearestEven)
            .normalize();
        assert_eq!(
            (row.last_7d, row.unit_hours_7d),
            (Some(vwap), unit_hours as u64)
        );
    }
}

#[actix_web::test]
async fn candles_span_hours_and_days_and_keep_open_and_close_in_trade_order() {
    // The writer's rollup, fed contracts spread over three days (as a long-running exchange
    // would), against a recomputation.
    let exchange = TestExchange::start().await;
    let mut connection = exchange.sql();
    let mut random = Lcg(7);
    let base = Utc::now().duration_trunc(TimeDelta::days(1)).unwrap() - TimeDelta::days(2);
    let mut rows = Vec::new();
    let mut trades = Vec::new();
    let mut at = base;
    for _ in 0..120 {
        at += TimeDelta::minutes(10 + random.below(50) as i64);
        let hub = ["nx", "nmg", "gs"][random.below(3) as usize];
        let unit_price = Decimal::new(700 + random.below(700) as i64, 2);
        let (units, hours) = (1 + random.below(4) as i32, 1 + random.below(6) as i32);
        let notional = (unit_price * Decimal::from(units * hours)).round_dp(2);
        trades.push(Traded {
            hub: hub.to_owned(),
            unit_price,
            unit_hours: i64::from(units * hours),
            notional,
            at,
        });
        rows.push(ContractRow {
            id: uuid::Uuid::new_v4(),
            seq: 0,
            bid_id: uuid::Uuid::new_v4(),
            offer_id: uuid::Uuid::new_v4(),
            buyer_id: uuid::Uuid::new_v4(),
            provider_id: uuid::Uuid::new_v4(),
            hub: hub.to_owned(),
            cluster: "zhongwei".into(),
            sku: SKU.into(),
            data_origin: None,
            units,
            window_start: at,
            window_end: at,
            hours,
            unit_price,
            notional,
            levy_bps: 0,
            maker: suanli_sdk::Side::Offer.into(),
            status: suanli_server::db::types::StoredContractStatus(
                suanli_sdk::ContractStatus::Active,
            ),
            decisions: serde_json::json!([]),
            created_at: at,
        });
    }
    // In batches of uneven size, as the writer commits them.
    let mut rest = rows.as_slice();
    while !rest.is_empty() {
        let take = (1 + random.below(9) as usize).min(rest.len());
        suanli_server::db::market::record_trades(&mut connection, &rest[..take]).unwrap();
        rest = &rest[take..];
    }
    let expected = recompute(&trades);
    assert!(
        expected
            .keys()
            .filter(|(_, interval, _)| *interval == "1d")
            .count()
            >= 6
    );
    assert_eq!(stored(&mut connection, &expected), expected);
    // One request returns a whole range, oldest first.
    let hours = suanli_server::db::market::candles(
        &mut connection,
        SKU,
        None,
        CandleInterval::Hour,
        base,
        at + TimeDelta::hours(1),
        1000,
    )
    .unwrap();
    let expected_hours: Vec<Candle> = expected
        .iter()
        .filter(|((hub, interval, _), _)| hub.is_empty() && *interval == "1h")
        .map(|(_, candle)| candle.clone())
        .collect();
    assert_eq!(hours, expected_hours);
}
