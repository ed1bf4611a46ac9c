//! Price history: candles kept with the contracts they summarise, and the price index read from
//! them. The writer sends [`trades_statement`] with each batch's writes; the public endpoints read
//! [`candles`] and [`index`], each costing what it returns.

use std::collections::HashMap;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Numeric, Text, Timestamptz};
use rust_decimal::Decimal;
use suanli_sdk::{Candle, CandleInterval, IndexRow, MarketIndex};

use super::orders::ContractRow;
use super::schema::market_candles;

/// Where a candle belongs: SKU, hub ('' for all hubs), interval, start.
type CandleKey = (String, String, CandleInterval, DateTime<Utc>);

/// What a batch adds to one candle.
#[derive(Debug, Clone)]
struct CandleDelta {
    open: Decimal,
    high: Decimal,
    low: Decimal,
    close: Decimal,
    price_unit_hours: Decimal,
    unit_hours: i64,
    notional: Decimal,
    contracts: i64,
}

/// The start of the interval holding `at`.
pub fn interval_start(interval: CandleInterval, at: DateTime<Utc>) -> DateTime<Utc> {
    let length = match interval {
        CandleInterval::Hour => TimeDelta::hours(1),
        CandleInterval::Day => TimeDelta::days(1),
    };
    at.duration_trunc(length).unwrap_or(at)
}

/// Adds a batch's new contracts (in the order they were made) to their candles: per SKU, per hub
/// and across hubs, hourly and daily. One statement whose text never changes. Batches are applied
/// one after another by the one writer, so a batch's last contract is a candle's newest.
pub fn record_trades(connection: &mut PgConnection, contracts: &[ContractRow]) -> QueryResult<()> {
    match trades_statement(contracts) {
        Some(statement) => statement.execute(connection).map(drop),
        None => Ok(()),
    }
}

/// The statement of [`record_trades`], for the writer's batch (sent with its other writes).
pub fn trades_statement(contracts: &[ContractRow]) -> Option<super::prepared::Prepared<'static>> {
    if contracts.is_empty() {
        return None;
    }
    let mut order: Vec<CandleKey> = Vec::new();
    let mut deltas: HashMap<CandleKey, CandleDelta> = HashMap::new();
    for contract in contracts {
        let unit_hours = i64::from(contract.units) * i64::from(contract.hours);
        let price = contract.unit_price;
        for hub in [contract.hub.as_str(), ""] {
            for interval in [CandleInterval::Hour, CandleInterval::Day] {
                let key = (
                    contract.sku.clone(),
                    hub.to_owned(),
                    interval,
                    interval_start(interval, contract.created_at),
                );
                match deltas.get_mut(&key) {
                    Some(delta) => {
                        delta.high = delta.high.max(price);
                        delta.low = delta.low.min(price);
                        delta.close = price;
                        delta.price_unit_hours += price * Decimal::from(unit_hours);
                        delta.unit_hours += unit_hours;
                        delta.notional += contract.notional;
                        delta.contracts += 1;
                    }
                    None => {
                        order.push(key.clone());
                        deltas.insert(
                            key,
                            CandleDelta {
                                open: price,
                                high: price,
                                low: price,
                                close: price,
                                price_unit_hours: price * Decimal::from(unit_hours),
                                unit_hours,
                                notional: contract.notional,
                                contracts: 1,
                            },
                        );
                    }
                }
            }
        }
    }
    let mut columns = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    // In key order, so that candles are locked in one order whoever else writes them (each
    // candle's figures are already summed above, in the order its contracts were made).
    order.sort_unstable_by(|a, b| {
        (&a.0, &a.1, a.2.as_str(), a.3).cmp(&(&b.0, &b.1, b.2.as_str(), b.3))
    });
    for key in order {
        let delta = &deltas[&key];
        columns.2.push(key.2.as_str());
        columns.3.push(key.3);
        columns.0.push(key.0);
        columns.1.push(key.1);
        columns.4.push(delta.open);
        columns.5.push(delta.high);
        columns.6.push(delta.low);
        columns.7.push(delta.close);
        columns.8.push(delta.price_unit_hours);
        columns.9.push(delta.unit_hours);
        columns.10.push(delta.notional);
        columns.11.push(delta.contracts);
    }
    super::prepared::prepared(
        "INSERT INTO market_candles AS m (sku, hub, interval, start, open, high, low, close, \
           price_unit_hours, unit_hours, notional, contracts) \
         SELECT * FROM unnest($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
         ON CONFLICT (sku, hub, interval, start) DO UPDATE SET \
           high = greatest(m.high, excluded.high), low = least(m.low, excluded.low), \
           close = excluded.close, price_unit_hours = m.price_unit_hours + excluded.price_unit_hours, \
           unit_hours = m.unit_hours + excluded.unit_hours, notional = m.notional + excluded.notional, \
           contracts = m.contracts + excluded.contracts",
    )
    .bind::<Array<Text>, _>(columns.0)
    .bind::<Array<Text>, _>(columns.1)
    .bind::<Array<Text>, _>(columns.2)
    .bind::<Array<Timestamptz>, _>(columns.3)
    .bind::<Array<Numeric>, _>(columns.4)
    .bind::<Array<Numeric>, _>(columns.5)
    .bind::<Array<Numeric>, _>(columns.6)
    .bind::<Array<Numeric>, _>(columns.7)
    .bind::<Array<Numeric>, _>(columns.8)
    .bind::<Array<BigInt>, _>(columns.9)
    .bind::<Array<Numeric>, _>(columns.10)
    .bind::<Array<BigInt>, _>(columns.11)
    .into()
}

#[derive(Queryable)]
struct CandleRow {
    start: DateTime<Utc>,
    open: Decimal,
    high: Decimal,
    low: Decimal,
    close: Decimal,
    price_unit_hours: Decimal,
    unit_hours: i64,
    notional: Decimal,
    contracts: i64,
}

/// The unit-hour-weighted average price, half-even to 6 decimals.
fn weighted(price_unit_hours: Decimal, unit_hours: i64) -> Option<Decimal> {
    (unit_hours > 0).then(|| {
        (price_unit_hours / Decimal::from(unit_hours))
            .round_dp_with_strategy(6, rust_decimal::RoundingStrategy::MidpointNearestEven)
            .normalize()
    })
}

/// The candles of `sku` in `hub` (`None`: all hubs) with a start in `[from, to)`, oldest first, at
/// most `limit` of them. Intervals with no contract have no candle.
pub fn candles(
    connection: &mut PgConnection,
    sku: &str,
    hub: Option<&str>,
    interval: CandleInterval,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    limit: i64,
) -> QueryResult<Vec<Candle>> {
    let rows: Vec<CandleRow> = market_candles::table
        .filter(
            market_candles::sku
                .eq(sku)
                .and(market_candles::hub.eq(hub.unwrap_or("")))
                .and(market_candles::interval.eq(interval.as_str()))
                .and(market_candles::start.ge(from))
                .and(market_candles::start.lt(to)),
        )
        .order(market_candles::start.asc())
        .limit(limit)
        .select((
            market_candles::start,
            market_candles::open,
            market_candles::high,
            market_candles::low,
            market_candles::close,
            market_candles::price_unit_hours,
            market_candles::unit_hours,
            market_candles::notional,
            market_candles::contracts,
        ))
        .load(connection)?;
    Ok(rows
        .into_iter()
        .map(|row| Candle {
            start: row.start,
            open: row.open.normalize(),
            high: row.high.normalize(),
            low: row.low.normalize(),
            close: row.close.normalize(),
            vwap: weighted(row.price_unit_hours, row.unit_hours).unwrap_or_default(),
            unit_hours: row.unit_hours.max(0) as u64,
            notional: row.notional.normalize(),
            contracts: row.contracts.max(0) as u64,
        })
        .collect())
}

/// The price index of `sku` as of `now`: per hub and nationally, the unit-hour-weighted average
/// price over the hourly candles of the last 24 and 168 hours (the current hour included). Reads
/// at most 168 candles per hub.
pub fn index(
    connection: &mut PgConnection,
    sku: &str,
    now: DateTime<Utc>,
) -> QueryResult<MarketIndex> {
    let this_hour = interval_start(CandleInterval::Hour, now);
    let day_from = this_hour - TimeDelta::hours(23);
    let week_from = this_hour - TimeDelta::hours(167);
    let rows: Vec<(String, DateTime<Utc>, Decimal, i64)> = market_candles::table
        .filter(
            market_candles::sku
                .eq(sku)
                .and(market_candles::interval.eq(CandleInterval::Hour.as_str()))
                .and(market_candles::start.ge(week_from)),
        )
        .select((
            market_candles::hub,
            market_candles::start,
            market_candles::price_unit_hours,
            market_candles::unit_hours,
        ))
        .load(connection)?;
    // Per hub ('' is national): (Σ price × unit-hours, unit-hours) for the day and for the week.
    let mut sums: HashMap<String, [(Decimal, i64); 2]> = HashMap::new();
    for (hub, start, price_unit_hours, unit_hours) in rows {
        let entry = sums.entry(hub).or_default();
        entry[1].0 += price_unit_hours;
        entry[1].1 += unit_hours;
        if start >= day_from {
            entry[0].0 += price_unit_hours;
            entry[0].1 += unit_hours;
        }
    }
    let row = |hub: Option<String>, sums: [(Decimal, i64); 2]| IndexRow {
        hub,
        last_24h: weighted(sums[0].0, sums[0].1),
        unit_hours_24h: sums[0].1.max(0) as u64,
        last_7d: weighted(sums[1].0, sums[1].1),
        unit_hours_7d: sums[1].1.max(0) as u64,
    };
    let national = row(None, sums.remove("").unwrap_or_default());
    let mut hubs: Vec<IndexRow> = sums
        .into_iter()
        .map(|(hub, sums)| row(Some(hub), sums))
        .collect();
    hubs.sort_by(|a, b| a.hub.cmp(&b.hub));
    Ok(MarketIndex {
        sku: sku.to_owned(),
        as_of: now,
        national,
        hubs,
    })
}
