//! The reference data: hubs, their latency, SKUs.

use crate::*;

/// `suanli hubs latency`: the round-trip latency between hubs.
pub(crate) async fn latency(anonymous: &Client, json: bool) -> anyhow::Result<()> {
    let latency = anonymous.hub_latency().await?;
    if json {
        return print_json(&latency);
    }
    let codes: Vec<&String> = latency.ms.keys().collect();
    let mut table = Table::from_header(
        std::iter::once("ms".to_owned())
            .chain(codes.iter().map(|code| (*code).clone()))
            .collect(),
    );
    for from in &codes {
        let row = &latency.ms[*from];
        table.push(
            std::iter::once((*from).clone())
                .chain(codes.iter().map(|to| {
                    row.get(*to)
                        .map_or_else(|| "-".to_owned(), |ms| ms.to_string())
                }))
                .collect(),
        );
    }
    table.print();
    Ok(())
}

/// `suanli hubs`.
pub(crate) async fn hubs(anonymous: &Client, json: bool) -> anyhow::Result<()> {
    let hubs = anonymous.hubs().await?;
    if json {
        return print_json(&hubs);
    }
    let mut table = Table::new([
        "code",
        "name",
        "tier",
        "renewable %",
        "gCO2/kWh",
        "PUE",
        "clusters",
    ]);
    for hub in &hubs {
        let clusters: Vec<&str> = hub.clusters.iter().map(|c| c.code.as_str()).collect();
        table.row([
            hub.code.clone(),
            hub.name.clone(),
            format!("{:?}", hub.tier).to_lowercase(),
            hub.renewable_share.to_string(),
            hub.carbon_g_per_kwh.to_string(),
            hub.pue.to_string(),
            clusters.join(" "),
        ]);
    }
    table.print();
    Ok(())
}

/// `suanli skus`.
pub(crate) async fn skus(anonymous: &Client, json: bool) -> anyhow::Result<()> {
    let skus = anonymous.skus().await?;
    if json {
        return print_json(&skus);
    }
    let mut table = Table::new(["code", "class", "unit", "FP16 TFLOPS", "name"]);
    for sku in &skus {
        table.row([
            sku.code.clone(),
            format!("{:?}", sku.class).to_lowercase(),
            sku.unit.clone(),
            sku.perf_fp16_tflops
                .map(|p| p.to_string())
                .unwrap_or_else(|| "-".into()),
            sku.name.clone(),
        ]);
    }
    table.print();
    Ok(())
}
