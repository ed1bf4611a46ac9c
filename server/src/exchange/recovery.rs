//! Recovery: the book rebuilt from the resting orders in the database, in arrival order (at start
//! and after a failed batch), and the active policies compiled before the writer serves.

use crate::db::Connection;
use chrono::{DateTime, Utc};

use super::ExchangeConfig;
use crate::db::orders;
use crate::db::reference::Reference;
use crate::market::{BidSpec, Engine, Hours, HubSet, OfferSpec};
use crate::policy::{PolicyHost, PolicyKind, Registry};

pub fn hours_of(start: DateTime<Utc>, end: DateTime<Utc>) -> Hours {
    Hours {
        start: start.timestamp() / 3600,
        end: end.timestamp() / 3600,
    }
}

/// Rebuilds the engine from the resting orders in the database, in arrival order.
pub fn load_engine(
    connection: &mut Connection,
    reference: &Reference,
    config: ExchangeConfig,
) -> anyhow::Result<Engine> {
    let mut engine = Engine::new(config.engine);
    let mut after = 0;
    loop {
        let page = orders::resting_offers_after(connection, after, REBUILD_PAGE_ROWS)?;
        let Some(last) = page.last() else {
            break;
        };
        after = last.row.seq;
        restore_offers(&mut engine, reference, page)?;
    }
    let mut after = 0;
    loop {
        let page = orders::resting_bids_after(connection, after, REBUILD_PAGE_ROWS)?;
        let Some(last) = page.last() else {
            break;
        };
        after = last.seq;
        restore_bids(&mut engine, reference, page)?;
    }
    engine.ensure_next_seq(orders::last_seq(connection)? as u64 + 1);
    Ok(engine)
}

/// Rows read at a time while the book is rebuilt.
const REBUILD_PAGE_ROWS: i64 = 10_000;

fn restore_offers(
    engine: &mut Engine,
    reference: &Reference,
    page: Vec<orders::RestingOffer>,
) -> anyhow::Result<()> {
    for orders::RestingOffer { row, sold } in page {
        let spec = OfferSpec {
            id: row.id,
            provider: row.provider_id,
            hub: reference
                .hub_id(&row.hub)
                .ok_or_else(|| anyhow::anyhow!("unknown hub {}", row.hub))?,
            cluster: row.cluster.clone(),
            sku: reference
                .sku_id(&row.sku)
                .ok_or_else(|| anyhow::anyhow!("unknown sku {}", row.sku))?,
            quantity: row.quantity as u32,
            window: hours_of(row.window_start, row.window_end),
            ask_price: row.ask_price,
            green_share: row.green_share as u8,
            attributes: super::requests::attribute_pairs(
                row.attributes.as_object().unwrap_or(&Default::default()),
            ),
        };
        let sold: Vec<(Hours, u32)> = sold
            .iter()
            .map(|sold| (hours_of(sold.start, sold.end), sold.units as u32))
            .collect();
        engine.restore_offer(row.seq as u64, spec, &sold);
    }
    Ok(())
}

fn restore_bids(
    engine: &mut Engine,
    reference: &Reference,
    page: Vec<orders::BidRow>,
) -> anyhow::Result<()> {
    for row in page {
        let mut hubs = HubSet::default();
        for code in &row.hubs {
            hubs = hubs.with(
                reference
                    .hub_id(code)
                    .ok_or_else(|| anyhow::anyhow!("unknown hub {code}"))?,
            );
        }
        let skus = row
            .skus
            .iter()
            .map(|code| {
                reference
                    .sku_id(code)
                    .ok_or_else(|| anyhow::anyhow!("unknown sku {code}"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let spec = BidSpec {
            id: row.id,
            buyer: row.buyer_id,
            skus,
            hubs,
            data_origin: row
                .data_origin
                .as_deref()
                .and_then(|code| reference.hub_id(code)),
            max_latency_ms: row.max_latency_ms.and_then(|ms| u32::try_from(ms).ok()),
            quantity: row.quantity as u32,
            window: hours_of(row.window_start, row.window_end),
            limit_price: row.limit_price,
            min_green_share: row.min_green_share as u8,
            data_class: row.data_class.0,
            time_in_force: row.time_in_force.0,
            expires_at: row.expires_at.map(|at| at.timestamp()),
            min_fill: row.min_fill as u32,
            unit_hold: row.unit_hold,
        };
        engine.restore_bid(
            row.seq as u64,
            spec,
            row.remaining as u32,
            row.min_fill as u32,
        );
    }
    Ok(())
}

/// Compiles every active policy not compiled yet (start-up, before the writer serves), and then
/// keeps them compiled in `registry`. A policy that does not compile stays out: the writer then
/// treats it as unavailable and its hub's pairs fail closed.
pub fn compile_active(
    connection: &mut Connection,
    host: &std::sync::Arc<PolicyHost>,
    registry: &Registry,
) -> anyhow::Result<()> {
    for (hub, kind, digest) in crate::db::policies::active(connection)? {
        if registry.get(&digest).is_some() {
            continue;
        }
        let Some(kind) = PolicyKind::parse(&kind) else {
            continue;
        };
        compile_stored(connection, host, registry, &digest, kind).unwrap_or_else(|error| {
            tracing::error!(%hub, %digest, %error, "an active policy does not compile: its hub's pairs fail closed");
        });
    }
    Ok(())
}

/// Loads a stored module and compiles it into `registry`.
pub fn compile_stored(
    connection: &mut Connection,
    host: &std::sync::Arc<PolicyHost>,
    registry: &Registry,
    digest: &str,
    kind: PolicyKind,
) -> anyhow::Result<()> {
    let stored = crate::db::policies::module(connection, digest)?
        .ok_or_else(|| anyhow::anyhow!("no stored module {digest}"))?;
    registry.insert(host.compile(kind, &stored.bytes)?);
    Ok(())
}
