//! The regulator's reads: contracts with their settlements (paged and for export) and the
//! statistics of SPEC §8, all computed from the same records.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Numeric, Text, Timestamptz};
use rust_decimal::Decimal;
use suanli_sdk::{AuditedContract, Stats, StatsRow};

use super::orders::{ContractFilter, ContractRow};
use super::schema::{contracts, settlements};
use super::settlement::SettlementRow;

/// Contracts matching `filter` with their settlements: the one place contract filters are applied
/// (the parties' listing, the regulator's listing and the export). `newest_first` pages backwards
/// from `cursor` (a contract seq); otherwise forwards after it (exports run oldest first).
pub fn audited_contracts(
    connection: &mut PgConnection,
    filter: &ContractFilter,
    cursor: Option<i64>,
    newest_first: bool,
    limit: i64,
) -> QueryResult<Vec<(i64, AuditedContract)>> {
    let mut query = contracts::table
        .left_join(settlements::table)
        .select((
            ContractRow::as_select(),
            Option::<SettlementRow>::as_select(),
        ))
        .limit(limit)
        .into_boxed();
    query = if newest_first {
        query.order(contracts::seq.desc())
    } else {
        query.order(contracts::seq.asc())
    };
    if let Some(party) = filter.party {
        query = query.filter(
            contracts::buyer_id
                .eq(party)
                .or(contracts::provider_id.eq(party)),
        );
    }
    if let Some(hub) = &filter.hub {
        query = query.filter(contracts::hub.eq(hub.clone()));
    }
    if let Some(sku) = &filter.sku {
        query = query.filter(contracts::sku.eq(sku.clone()));
    }
    if let Some(from) = filter.from {
        query = query.filter(contracts::created_at.ge(from));
    }
    if let Some(to) = filter.to {
        query = query.filter(contracts::created_at.lt(to));
    }
    match (cursor, newest_first) {
        (Some(seq), true) => query = query.filter(contracts::seq.lt(seq)),
        (Some(seq), false) => query = query.filter(contracts::seq.gt(seq)),
        (None, _) => {}
    }
    let rows: Vec<(ContractRow, Option<SettlementRow>)> = query.load(connection)?;
    Ok(rows
        .into_iter()
        .map(|(contract, settlement)| {
            let seq = contract.seq;
            let audited = AuditedContract {
                data_origin: contract.data_origin.clone(),
                contract: contract.to_wire(),
                settlement: settlement.map(|row| row.to_wire()),
            };
            (seq, audited)
        })
        .collect())
}

/// Reads every contract matching `filter`, oldest first, in one consistent snapshot, `batch`
/// rows at a time, handing each batch to `sink`; stops early when `sink` returns false. Memory
/// stays bounded by one batch, whatever the total.
pub fn for_each_batch(
    connection: &mut PgConnection,
    filter: &ContractFilter,
    batch: i64,
    mut sink: impl FnMut(&[(i64, AuditedContract)]) -> bool,
) -> QueryResult<()> {
    connection
        .build_transaction()
        .read_only()
        .repeatable_read()
        .run(|connection| {
            let mut after = None;
            loop {
                let rows = audited_contracts(connection, filter, after, false, batch)?;
                let Some((last, _)) = rows.last() else {
                    return Ok(());
                };
                after = Some(*last);
                if !sink(&rows) {
                    return Ok(());
                }
            }
        })
}

#[derive(QueryableByName)]
struct GroupRow {
    #[diesel(sql_type = Text)]
    key: String,
    #[diesel(sql_type = BigInt)]
    contracts: i64,
    #[diesel(sql_type = BigInt)]
    unit_hours: i64,
    #[diesel(sql_type = Numeric)]
    value: Decimal,
    #[diesel(sql_type = BigInt)]
    settled: i64,
    #[diesel(sql_type = BigInt)]
    delivered_unit_hours: i64,
    #[diesel(sql_type = Numeric)]
    charged: Decimal,
}

#[derive(QueryableByName)]
struct Delivered {
    #[diesel(sql_type = BigInt)]
    unit_hours: i64,
    #[diesel(sql_type = Numeric)]
    green_unit_hours: Decimal,
}

/// The contracts a statistic counts: those `filter` selects (`$1` to `$5`).
const FILTERED: &str = "($1::timestamptz IS NULL OR c.created_at >= $1) AND ($2::timestamptz IS NULL OR c.created_at < $2) \
     AND ($3::text IS NULL OR c.hub = $3) AND ($4::text IS NULL OR c.sku = $4) \
     AND ($5::uuid IS NULL OR c.buyer_id = $5 OR c.provider_id = $5)";

/// `query` with `filter` bound as [`FILTERED`]'s parameters.
fn filtered<'a>(
    query: String,
    filter: &'a ContractFilter,
) -> diesel::query_builder::BoxedSqlQuery<'a, diesel::pg::Pg, diesel::query_builder::SqlQuery> {
    diesel::sql_query(query)
        .into_boxed()
        .bind::<Nullable<Timestamptz>, _>(filter.from)
        .bind::<Nullable<Timestamptz>, _>(filter.to)
        .bind::<Nullable<Text>, _>(filter.hub.as_deref())
        .bind::<Nullable<Text>, _>(filter.sku.as_deref())
        .bind::<Nullable<diesel::sql_types::Uuid>, _>(filter.party)
}

fn grouped(
    connection: &mut PgConnection,
    key: &str,
    join: &str,
    condition: &str,
    filter: &ContractFilter,
) -> QueryResult<Vec<StatsRow>> {
    let query = format!(
        "SELECT {key} AS key, count(*) AS contracts, coalesce(sum(c.units::bigint * c.hours), 0)::bigint AS unit_hours, \
         coalesce(sum(c.notional), 0) AS value, count(st.contract_id) AS settled, \
         coalesce(sum(st.delivered_unit_hours), 0)::bigint AS delivered_unit_hours, \
         coalesce(sum(st.charged), 0) AS charged \
         FROM contracts c LEFT JOIN settlements st ON st.contract_id = c.id {join} \
         WHERE {FILTERED} {condition} \
         GROUP BY 1 ORDER BY 1"
    );
    let rows: Vec<GroupRow> = filtered(query, filter).load(connection)?;
    Ok(rows
        .into_iter()
        .map(|row| StatsRow {
            key: row.key,
            contracts: row.contracts as u64,
            unit_hours: row.unit_hours as u64,
            value: row.value.normalize(),
            settled_contracts: row.settled as u64,
            delivered_unit_hours: row.delivered_unit_hours as u64,
            charged: row.charged.normalize(),
        })
        .collect())
}

/// Volume and value by hub, SKU and class; east→west flows; the green share of what was
/// delivered; for the contracts `filter` selects (made in `[from, to)`, in a hub, of a SKU, with
/// a participant), as the listing and the export select them.
pub fn stats(connection: &mut PgConnection, filter: &ContractFilter) -> QueryResult<Stats> {
    let by_hub = grouped(connection, "c.hub", "", "", filter)?;
    let by_sku = grouped(connection, "c.sku", "", "", filter)?;
    let by_class = grouped(
        connection,
        "s.class",
        "JOIN skus s ON s.code = c.sku",
        "",
        filter,
    )?;
    let east_to_west = grouped(
        connection,
        "c.data_origin || '→' || c.hub",
        "JOIN hubs origin ON origin.code = c.data_origin JOIN hubs compute ON compute.code = c.hub",
        "AND origin.tier = 'east' AND compute.tier = 'west'",
        filter,
    )?;
    let delivered: Delivered = filtered(
        format!(
            "SELECT coalesce(sum(s.delivered_unit_hours), 0)::bigint AS unit_hours, \
             coalesce(sum(s.delivered_unit_hours * o.green_share), 0) / 100.0 AS green_unit_hours \
             FROM settlements s JOIN contracts c ON c.id = s.contract_id JOIN offers o ON o.id = c.offer_id \
             WHERE {FILTERED}"
        ),
        filter,
    )
    .get_result(connection)?;
    let green_share_of_delivered = if delivered.unit_hours == 0 {
        Decimal::ZERO
    } else {
        (delivered.green_unit_hours * Decimal::from(100) / Decimal::from(delivered.unit_hours))
            .round_dp(2)
            .normalize()
    };
    Ok(Stats {
        from: filter.from,
        to: filter.to,
        by_hub,
        by_sku,
        by_class,
        east_to_west,
        delivered_unit_hours: delivered.unit_hours as u64,
        green_share_of_delivered,
    })
}
