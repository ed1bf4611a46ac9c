//! The market stream's events: written by the writer in each batch's transaction (trades, and
//! every price level the batch changed, re-aggregated from the resting orders), read back by a
//! subscriber that resumes after an event id.

use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Jsonb, Numeric, Text, Timestamptz};
use rust_decimal::Decimal;
use suanli_sdk::MarketTrade;

use super::orders::{BatchWrites, LevelDeltas};
use super::types::resting_sql;

/// A stored stream event: its id, `trade` or `book`, and its data as one line of JSON.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct StreamEvent {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub kind: String,
    #[diesel(sql_type = Text)]
    pub data: String,
}

/// The batch's last statement, inside its transaction (`db::orders::write`): records its market
/// events — its trades in the order they were made, then each price level (side, SKU, price) the
/// batch changed, as it stands after the batch (the batch's `levels` changes added to
/// `book_levels`; an order that never rested changed no level, so its price is not shown) — and
/// ends the batch with the database's `batch_end`: its audit entries appended to the chain, then
/// the matching lease checked (it fails the statement when `lease_token` no longer holds it).
/// Answers its events as [`Ended`] rows (in any order: sort them by id). Its text never
/// changes, whatever the batch holds.
pub fn end_statement<'a>(
    writes: &BatchWrites,
    levels: &LevelDeltas,
    audit: super::audit::Entries<'a>,
    lease_token: i64,
) -> super::prepared::Prepared<'a> {
    let now = audit.at;
    let mut levels: Vec<_> = levels
        .iter()
        .filter(|(_, change)| **change != (0, 0))
        .collect();
    // In key order, so that levels are locked in one order whoever else writes them.
    levels.sort_unstable_by(
        |((a_side, a_sku, a_price), _), ((b_side, b_sku, b_price), _)| {
            (a_side.as_str(), a_sku, a_price).cmp(&(b_side.as_str(), b_sku, b_price))
        },
    );
    let trades: Vec<serde_json::Value> = writes
        .contracts
        .iter()
        .map(|contract| {
            serde_json::to_value(MarketTrade {
                contract_id: contract.id,
                hub: contract.hub.clone(),
                cluster: contract.cluster.clone(),
                sku: contract.sku.clone(),
                units: contract.units as u32,
                hours: contract.hours as u32,
                window: suanli_sdk::Window {
                    start: contract.window_start,
                    end: contract.window_end,
                },
                unit_price: contract.unit_price.normalize(),
                notional: contract.notional.normalize(),
                maker: contract.maker.0,
                created_at: contract.created_at,
            })
            .unwrap_or_default()
        })
        .collect();
    let sides: Vec<&str> = levels
        .iter()
        .map(|((side, _, _), _)| side.as_str())
        .collect();
    let skus: Vec<String> = levels.iter().map(|((_, sku, _), _)| sku.clone()).collect();
    let prices: Vec<Decimal> = levels.iter().map(|((_, _, price), _)| *price).collect();
    let units: Vec<i64> = levels.iter().map(|(_, change)| change.0).collect();
    let orders: Vec<i64> = levels.iter().map(|(_, change)| change.1).collect();
    // `ended` is read once, as the preserved side of the last join, so `batch_end` runs exactly
    // once however many events there are (none included); the inserts, being data-modifying,
    // run to completion whatever the query reads of them.
    super::prepared::prepared(
        "WITH ended AS MATERIALIZED (SELECT batch_end($8, $7, $9, $10, $11, $12) AS last_seq), \
         changes AS ( \
             SELECT * FROM unnest($1::text[], $2::text[], $3::numeric[], $4::int8[], $5::int8[]) \
                 AS c(side, sku, price, units, orders)), \
         levels AS ( \
             INSERT INTO book_levels AS l (side, sku, price, units, orders) \
             SELECT side, sku, price, units, orders FROM changes \
             ON CONFLICT (side, sku, price) DO UPDATE \
                 SET units = l.units + EXCLUDED.units, orders = l.orders + EXCLUDED.orders \
             RETURNING side, sku, price, units, orders), \
         events AS ( \
             SELECT 0 AS part, n AS place, 'trade' AS kind, data \
             FROM unnest($6::jsonb[]) WITH ORDINALITY AS t(data, n) \
             UNION ALL \
             SELECT 1, row_number() OVER (ORDER BY side, sku, price), 'book', \
                    jsonb_build_object('side', side, 'sku', sku, 'price', trim_scale(price)::text, \
                                       'units', units, 'orders', orders) \
             FROM levels), \
         recorded AS ( \
             INSERT INTO market_events (kind, data, created_at) \
             SELECT kind, data, $7 FROM events ORDER BY part, place \
             RETURNING id, kind, data::text AS data) \
         SELECT r.id, r.kind, r.data FROM ended LEFT JOIN recorded r ON true",
    )
    .bind::<Array<Text>, _>(sides)
    .bind::<Array<Text>, _>(skus)
    .bind::<Array<Numeric>, _>(prices)
    .bind::<Array<BigInt>, _>(units)
    .bind::<Array<BigInt>, _>(orders)
    .bind::<Array<Jsonb>, _>(trades)
    .bind::<Timestamptz, _>(now)
    .bind::<BigInt, _>(lease_token)
    .bind::<Array<Text>, _>(audit.actors)
    .bind::<Array<Text>, _>(audit.kinds)
    .bind::<Array<Jsonb>, _>(audit.payloads)
    .bind::<Array<Text>, _>(audit.prefixes)
}

/// A row [`end_statement`] answers: an event it recorded, or, for a batch that recorded none,
/// one row of nulls.
#[derive(Debug, QueryableByName)]
pub struct Ended {
    #[diesel(sql_type = diesel::sql_types::Nullable<BigInt>)]
    id: Option<i64>,
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    kind: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    data: Option<String>,
}

impl Ended {
    /// The event this row holds, if any.
    pub fn event(self) -> Option<StreamEvent> {
        Some(StreamEvent {
            id: self.id?,
            kind: self.kind?,
            data: self.data?,
        })
    }
}

/// Sets `book_levels` to the sums of the resting orders (and drops emptied levels), in one
/// transaction. The writer calls it when it takes over the book, so that whatever another process
/// wrote before it (an older version, a failed batch) the levels it changes from here are right.
/// Writes only while `lease_token` holds the matching lease (checked first, in the same
/// transaction: see `db::lease::holds`); false, with nothing written, otherwise.
pub fn rebuild_levels(connection: &mut PgConnection, lease_token: i64) -> QueryResult<bool> {
    let resting = resting_sql();
    connection.transaction(|connection| {
        if !super::lease::holds(connection, lease_token)? {
            return Ok(false);
        }
        diesel::sql_query("DELETE FROM book_levels").execute(connection)?;
        diesel::sql_query(format!(
            "INSERT INTO book_levels (side, sku, price, units, orders) \
             SELECT 'offer', sku, ask_price, sum(remaining), count(*) FROM offers \
             WHERE status IN ({resting}) GROUP BY sku, ask_price \
             UNION ALL \
             SELECT 'bid', s, limit_price, sum(remaining), count(*) FROM bids, unnest(skus) AS s \
             WHERE status IN ({resting}) GROUP BY s, limit_price"
        ))
        .execute(connection)?;
        Ok(true)
    })
}

/// At most `limit` events after `after`, oldest first.
pub fn after(
    connection: &mut PgConnection,
    after: i64,
    limit: i64,
) -> QueryResult<Vec<StreamEvent>> {
    super::prepared::prepared(
        "SELECT id, kind, data::text AS data FROM market_events WHERE id > $1 ORDER BY id LIMIT $2",
    )
    .bind::<BigInt, _>(after)
    .bind::<BigInt, _>(limit)
    .load(connection)
}

/// The id of the newest event (0 when there is none).
pub fn newest(connection: &mut PgConnection) -> QueryResult<i64> {
    use super::schema::market_events;
    use diesel::dsl::max;
    Ok(market_events::table
        .select(max(market_events::id))
        .first::<Option<i64>>(connection)?
        .unwrap_or(0))
}
