//! The market stream's events: written by the writer in each batch's transaction (trades, and
//! every price level the batch changed, re-aggregated from the resting orders), read back by a
//! subscriber that resumes after an event id.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Jsonb, Text, Timestamptz, Uuid as SqlUuid};
use suanli_sdk::MarketTrade;
use uuid::Uuid;

use super::orders::BatchWrites;
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

/// Records the events of a batch, inside its transaction: its trades in the order they were made,
/// then each price level (side, SKU, price) the batch changed, as it stands after the batch: the
/// levels of new orders that rest, and of resting orders that were filled, cancelled or expired.
/// (An order that never rested changed no level: its price is not shown.) One statement whose
/// text never changes; none when the batch changed nothing.
pub fn record(
    connection: &mut PgConnection,
    writes: &BatchWrites,
    now: DateTime<Utc>,
) -> QueryResult<Vec<StreamEvent>> {
    let offers: Vec<Uuid> = writes
        .new_offers
        .iter()
        .filter(|offer| offer.status.0.is_resting())
        .map(|offer| offer.id)
        .chain(writes.offer_updates.keys().copied())
        .collect();
    let bids: Vec<Uuid> = writes
        .new_bids
        .iter()
        .filter(|bid| bid.status.0.is_resting())
        .map(|bid| bid.id)
        .chain(writes.bid_updates.keys().copied())
        .collect();
    if offers.is_empty() && bids.is_empty() && writes.contracts.is_empty() {
        return Ok(Vec::new());
    }
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
    let resting = resting_sql();
    let mut events: Vec<StreamEvent> = diesel::sql_query(format!(
        "WITH touched_offers AS ( \
             SELECT DISTINCT sku, ask_price AS price FROM offers WHERE id = ANY($1)), \
         touched_bids AS ( \
             SELECT DISTINCT s AS sku, limit_price AS price FROM bids, unnest(skus) AS s WHERE id = ANY($2)), \
         levels AS ( \
             SELECT 'offer' AS side, t.sku, t.price, \
                    coalesce(sum(o.remaining), 0)::bigint AS units, count(o.id) AS orders \
             FROM touched_offers t LEFT JOIN offers o \
               ON o.sku = t.sku AND o.ask_price = t.price AND o.status IN ({resting}) \
             GROUP BY t.sku, t.price \
             UNION ALL \
             SELECT 'bid', t.sku, t.price, \
                    coalesce(sum(b.remaining), 0)::bigint, count(b.id) \
             FROM touched_bids t LEFT JOIN bids b \
               ON b.limit_price = t.price AND t.sku = ANY(b.skus) AND b.status IN ({resting}) \
             GROUP BY t.sku, t.price), \
         events AS ( \
             SELECT 0 AS part, n AS place, 'trade' AS kind, data \
             FROM unnest($3::jsonb[]) WITH ORDINALITY AS t(data, n) \
             UNION ALL \
             SELECT 1, row_number() OVER (ORDER BY side, sku, price), 'book', \
                    jsonb_build_object('side', side, 'sku', sku, 'price', trim_scale(price)::text, \
                                       'units', units, 'orders', orders) \
             FROM levels) \
         INSERT INTO market_events (kind, data, created_at) \
         SELECT kind, data, $4 FROM events ORDER BY part, place \
         RETURNING id, kind, data::text AS data",
    ))
    .bind::<Array<SqlUuid>, _>(&offers)
    .bind::<Array<SqlUuid>, _>(&bids)
    .bind::<Array<Jsonb>, _>(&trades)
    .bind::<Timestamptz, _>(now)
    .load(connection)?;
    events.sort_by_key(|event| event.id);
    Ok(events)
}

/// At most `limit` events after `after`, oldest first.
pub fn after(
    connection: &mut PgConnection,
    after: i64,
    limit: i64,
) -> QueryResult<Vec<StreamEvent>> {
    diesel::sql_query(
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
