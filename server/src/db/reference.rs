//! Reference data (hubs, clusters, latency, SKUs), seeded by a migration and loaded once at
//! start-up: it never changes while the exchange runs.

use std::collections::BTreeMap;

use diesel::prelude::*;
use rust_decimal::Decimal;
use suanli_sdk::{Cluster, ComputeClass, Hub, Latency, Sku, Tier};

use super::schema::{clusters, hub_latency, hubs, skus};
use crate::market::{HubId, SkuId};

/// Everything `GET /v1/hubs`, `/v1/hubs/latency` and `/v1/skus` serve, and what validation of
/// orders looks codes up in.
#[derive(Debug, Clone)]
pub struct Reference {
    pub hubs: Vec<Hub>,
    pub latency: Latency,
    pub skus: Vec<Sku>,
}

impl Reference {
    /// The hub with this code.
    pub fn hub(&self, code: &str) -> Option<&Hub> {
        self.hubs.iter().find(|hub| hub.code == code)
    }

    /// The hub a cluster belongs to.
    pub fn hub_of_cluster(&self, cluster: &str) -> Option<&Hub> {
        self.hubs
            .iter()
            .find(|hub| hub.clusters.iter().any(|c| c.code == cluster))
    }

    /// The SKU with this code.
    pub fn sku(&self, code: &str) -> Option<&Sku> {
        self.skus.iter().find(|sku| sku.code == code)
    }

    /// The engine's number for a hub (its index in `hubs`).
    pub fn hub_id(&self, code: &str) -> Option<HubId> {
        self.hubs
            .iter()
            .position(|hub| hub.code == code)
            .map(|index| index as HubId)
    }

    /// The hub with the engine's number `id`.
    pub fn hub_by_id(&self, id: HubId) -> &Hub {
        &self.hubs[usize::from(id)]
    }

    /// The engine's number for a SKU (its index in `skus`).
    pub fn sku_id(&self, code: &str) -> Option<SkuId> {
        self.skus
            .iter()
            .position(|sku| sku.code == code)
            .map(|index| index as SkuId)
    }

    /// The SKU with the engine's number `id`.
    pub fn sku_by_id(&self, id: SkuId) -> &Sku {
        &self.skus[usize::from(id)]
    }

    /// Round-trip latency between two hubs, ms.
    pub fn latency_ms(&self, from: &str, to: &str) -> Option<u32> {
        self.latency.ms.get(from)?.get(to).copied()
    }
}

/// A hub as stored: code, name, tier, region, renewable share, carbon, PUE, Chinese name.
type HubRow = (
    String,
    String,
    String,
    String,
    i16,
    i32,
    Decimal,
    Option<String>,
);

/// Reads the reference data from the database.
pub fn load(connection: &mut PgConnection) -> QueryResult<Reference> {
    let hub_rows: Vec<HubRow> = hubs::table
        .order(hubs::code)
        .select((
            hubs::code,
            hubs::name,
            hubs::tier,
            hubs::region,
            hubs::renewable_share,
            hubs::carbon_g_per_kwh,
            hubs::pue,
            hubs::name_zh,
        ))
        .load(connection)?;
    let cluster_rows: Vec<(String, String, String)> = clusters::table
        .order(clusters::code)
        .select((clusters::code, clusters::name, clusters::hub))
        .load(connection)?;
    let hubs = hub_rows
        .into_iter()
        .map(
            |(code, name, tier, region, renewable_share, carbon, pue, name_zh)| Hub {
                clusters: cluster_rows
                    .iter()
                    .filter(|(_, _, hub)| *hub == code)
                    .map(|(code, name, _)| Cluster {
                        code: code.clone(),
                        name: name.clone(),
                    })
                    .collect(),
                code,
                name,
                name_zh,
                tier: if tier == "east" {
                    Tier::East
                } else {
                    Tier::West
                },
                region,
                renewable_share: renewable_share.clamp(0, 100) as u8,
                carbon_g_per_kwh: carbon.max(0) as u32,
                pue: pue.normalize(),
            },
        )
        .collect();

    let latency_rows: Vec<(String, String, i32)> = hub_latency::table
        .select((hub_latency::from_hub, hub_latency::to_hub, hub_latency::ms))
        .load(connection)?;
    let mut ms: BTreeMap<String, BTreeMap<String, u32>> = BTreeMap::new();
    for (from, to, value) in latency_rows {
        ms.entry(from).or_default().insert(to, value.max(0) as u32);
    }

    let sku_rows: Vec<(String, String, String, String, Option<Decimal>)> = skus::table
        .order(skus::code)
        .select((
            skus::code,
            skus::name,
            skus::class,
            skus::unit,
            skus::perf_fp16_tflops,
        ))
        .load(connection)?;
    let skus = sku_rows
        .into_iter()
        .map(|(code, name, class, unit, perf)| Sku {
            code,
            class: match class.as_str() {
                "general" => ComputeClass::General,
                "intelligent" => ComputeClass::Intelligent,
                _ => ComputeClass::Supercomputing,
            },
            unit,
            perf_fp16_tflops: perf.map(|value| value.normalize()),
            name,
        })
        .collect();

    let reference = Reference {
        hubs,
        latency: Latency { ms },
        skus,
    };
    // The engine numbers hubs into a 64-bit set and SKUs into a u16.
    assert!(reference.hubs.len() <= 64 && reference.skus.len() <= usize::from(u16::MAX));
    Ok(reference)
}
