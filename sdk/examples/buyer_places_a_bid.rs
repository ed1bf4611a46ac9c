//! A buyer with data in Beijing bids for two cards within 20 ms, then waits for its contract.
//!
//! `SUANLI_API_KEY=sk_… cargo run -p suanli-sdk --example buyer_places_a_bid` against
//! `scripts/demo` (use the printed key of the buyer).

use chrono::{DurationRound, TimeDelta, Utc};
use suanli_sdk::{Client, NewBid, OrderStatus, Window};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("SUANLI_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".into());
    let buyer = Client::new(url)
        .login(&std::env::var("SUANLI_API_KEY")?)
        .await?;
    let start = Utc::now().duration_trunc(TimeDelta::hours(1))? + TimeDelta::hours(2);
    let bid = NewBid {
        skus: vec!["ai.metax-c500".into(), "ai.ascend-910b".into()],
        quantity: 2,
        window: Window {
            start,
            end: start + TimeDelta::hours(24),
        },
        limit_price: "14".parse()?,
        hubs: None,
        data_origin: Some("bth".into()),
        max_latency_ms: Some(20),
        min_green_share: None,
        data_class: None,
        time_in_force: None,
        expires_at: None,
        min_fill: None,
        idempotency_key: uuid::Uuid::new_v4().to_string(),
    };
    let placed = buyer.place_bid(&bid).await?;
    println!("bid {} holds {} CNY", placed.bid.id, placed.bid.held);
    // A resting bid fills when an offer arrives; look again until it has (at most a minute).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut current = placed.bid;
    while current.status != OrderStatus::Filled && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        current = buyer.bid(current.id).await?;
    }
    for contract in buyer
        .all_contracts(None, None)
        .await?
        .iter()
        .filter(|c| c.bid_id == current.id)
    {
        println!(
            "contract {}: {} × {} in {} at {} CNY/unit-hour",
            contract.id, contract.units, contract.sku, contract.hub, contract.unit_price
        );
    }
    Ok(())
}
