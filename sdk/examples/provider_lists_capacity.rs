//! A provider lists a week of MetaX C500 cards in Ningxia and shows what it has on offer.
//!
//! `SUANLI_API_KEY=sk_… cargo run -p suanli-sdk --example provider_lists_capacity` against
//! `scripts/demo` (use the printed key of a provider).

use chrono::{DurationRound, TimeDelta, Utc};
use suanli_sdk::{Client, NewOffer, Window};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("SUANLI_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".into());
    let provider = Client::new(url)
        .login(&std::env::var("SUANLI_API_KEY")?)
        .await?;
    let start = Utc::now().duration_trunc(TimeDelta::hours(1))? + TimeDelta::hours(1);
    let offer = NewOffer {
        cluster: "zhongwei".into(),
        sku: "ai.metax-c500".into(),
        quantity: 8,
        window: Window {
            start,
            end: start + TimeDelta::days(7),
        },
        ask_price: "10.5".parse()?,
        green_share: 70,
        attributes: Some(
            serde_json::json!({"qualification": "level-3"})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        ),
        // One key per logical request: retrying with it can never list the capacity twice.
        idempotency_key: uuid::Uuid::new_v4().to_string(),
    };
    let placed = provider.place_offer(&offer).await?;
    println!(
        "offer {} is {:?}; {} contracts at once",
        placed.offer.id,
        placed.offer.status,
        placed.contracts.len()
    );
    for offer in provider.all_offers(None).await? {
        println!(
            "{}  {} {} × {}  ask {}  {:?}",
            offer.id, offer.hub, offer.sku, offer.quantity, offer.ask_price, offer.status
        );
    }
    Ok(())
}
