//! Quotes (what a bid would get, with nothing written or held), the reasons a bid's units did not
//! trade, and the hub operator's view of its own hub.

use suanli_sdk::{Client, DataClass, NewBid, ParticipantKind, TimeInForce};
use suanli_tests::{TestExchange, new_bid, new_offer, policy_component, window};

use crate::code_of;
use crate::policies::{operator, upload};

const SKU: &str = "ai.metax-c500";

async fn activate(client: &Client, hub: &str, kind: &str, policy: &str) -> String {
    let (status, stored) = upload(client, hub, kind, policy_component(policy)).await;
    assert_eq!(status, 201, "{stored}");
    let digest = stored["digest"].as_str().unwrap().to_owned();
    let response = client
        .request(
            reqwest::Method::POST,
            &format!("/v1/hubs/{hub}/policies/{digest}/activate"),
        )
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    digest
}

/// Reason codes with their hubs, as a test expects them.
type Codes<'a> = Vec<(&'a str, Option<&'a str>)>;

fn codes(reasons: &[suanli_sdk::Reason]) -> Codes<'_> {
    reasons
        .iter()
        .map(|reason| (reason.code.as_str(), reason.hub.as_deref()))
        .collect()
}

#[actix_web::test]
async fn a_quote_is_exactly_what_the_bid_then_gets_and_changes_nothing() {
    let exchange = TestExchange::start().await;
    let ningxia = operator(&exchange, "nx").await;
    activate(&ningxia, "nx", "pricing", "west-green-pricing").await;
    let (_, provider) = exchange
        .participant(ParticipantKind::Provider, "Provider")
        .await;
    let (_, buyer) = exchange.funded_buyer("Buyer", "10000").await;
    // Priced by Ningxia's policy (above the ask), and a plain offer in Inner Mongolia.
    provider
        .place_offer(&new_offer("zhongwei", SKU, 2, window(1, 10), "10"))
        .await
        .unwrap();
    provider
        .place_offer(&new_offer("helinger", SKU, 1, window(1, 10), "10.8"))
        .await
        .unwrap();
    let bid = new_bid(SKU, 4, window(2, 3), "12");

    let before = buyer.account().await.unwrap();
    let rows = |exchange: &TestExchange| {
        exchange.count(
            "SELECT (SELECT count(*) FROM bids) + (SELECT count(*) FROM policy_decisions) \
             + (SELECT count(*) FROM ledger_entries) + (SELECT count(*) FROM audit_log)",
        )
    };
    let written = rows(&exchange);
    let quote = buyer.quote(&bid).await.unwrap();
    assert_eq!(buyer.account().await.unwrap(), before, "nothing is held");
    assert_eq!(rows(&exchange), written, "nothing is written");
    assert_eq!(quote.fills.len(), 2, "{quote:?}");
    assert_eq!(quote.unfilled_units, 1);
    assert_eq!(quote.hold.to_string(), "144", "12 × 3 hours × 4 units");
    assert_eq!(
        quote.total_notional,
        quote.fills.iter().map(|fill| fill.notional).sum()
    );
    assert!(
        quote.fills[0].unit_price > "10".parse().unwrap(),
        "the hub's policy priced it: {quote:?}"
    );
    assert_eq!(codes(&quote.reasons), vec![("no_offer_in_window", None)]);

    // The bid placed right after gets exactly the quote.
    let placed = buyer.place_bid(&bid).await.unwrap();
    let got: Vec<_> = placed
        .contracts
        .iter()
        .map(|c| {
            (
                c.hub.clone(),
                c.cluster.clone(),
                c.sku.clone(),
                c.units,
                c.unit_price,
                c.notional,
            )
        })
        .collect();
    let quoted: Vec<_> = quote
        .fills
        .iter()
        .map(|f| {
            (
                f.hub.clone(),
                f.cluster.clone(),
                f.sku.clone(),
                f.units,
                f.unit_price,
                f.notional,
            )
        })
        .collect();
    assert_eq!(got, quoted);
    assert_eq!(placed.bid.remaining, quote.unfilled_units);
    assert_eq!(placed.reasons, quote.reasons);
    assert_eq!(placed.bid.reasons, quote.reasons);

    // A quote is a buyer's; a bid body that is wrong is refused as a bid would be.
    let (_, provider_client) = exchange
        .participant(ParticipantKind::Provider, "Another provider")
        .await;
    assert_eq!(
        code_of(provider_client.quote(&bid).await),
        (403, "forbidden".into())
    );
    let mut unknown = bid.clone();
    unknown.hubs = Some(vec!["nxx".into()]);
    let refused = buyer.quote(&unknown).await.unwrap_err();
    assert_eq!(refused.code(), Some("unknown_hub"));
    assert!(refused.to_string().contains("did you mean"), "{refused}");
    // Money the buyer lacks is a reason, not an error.
    let mut big = bid.clone();
    big.quantity = 1000;
    let quote = buyer.quote(&big).await.unwrap();
    assert_eq!(quote.reasons[0].code, "insufficient_funds");
}

#[actix_web::test]
async fn unfilled_units_say_why_and_compliance_denials_are_audited_once_per_order() {
    let exchange = TestExchange::start().await;
    let beijing = operator(&exchange, "bth").await;
    let digest = activate(&beijing, "bth", "compliance", "data-residency").await;
    let ningxia = operator(&exchange, "nx").await;
    let (_, provider) = exchange
        .participant(ParticipantKind::Provider, "Provider")
        .await;
    let (_, buyer) = exchange.funded_buyer("Beijing lab", "100000").await;
    let (_, regulator) = exchange
        .participant(ParticipantKind::Regulator, "Regulator")
        .await;
    for _ in 0..3 {
        provider
            .place_offer(&new_offer("zhongwei", SKU, 1, window(1, 10), "7"))
            .await
            .unwrap();
    }

    // Core data from Beijing may not go west: the bid rests, crossed, and says why.
    let mut core = new_bid(SKU, 1, window(2, 2), "9");
    core.data_origin = Some("bth".into());
    core.data_class = Some(DataClass::Core);
    let placed = buyer.place_bid(&core).await.unwrap();
    assert!(placed.contracts.is_empty());
    assert_eq!(
        codes(&placed.reasons),
        vec![("compliance_denied", Some("bth"))]
    );
    assert!(
        placed.reasons[0]
            .message
            .contains("may not be processed in nx"),
        "the policy's own reason: {:?}",
        placed.reasons
    );
    let stored = buyer.bid(placed.bid.id).await.unwrap();
    assert_eq!(stored.reasons, placed.reasons);
    // One audit entry for the order, however many pairs were refused.
    let log = regulator.audit_log(0, 500).await.unwrap();
    let denials: Vec<_> = log
        .items
        .iter()
        .filter(|entry| entry.kind == "compliance_denied")
        .collect();
    assert_eq!(denials.len(), 1, "{denials:?}");
    assert_eq!(denials[0].payload["order_id"], placed.bid.id.to_string());
    assert_eq!(denials[0].payload["denials"][0]["pairs"], 3);
    assert_eq!(denials[0].payload["denials"][0]["policy_digest"], digest);

    // The hub operator sees its hub's decisions; another hub's operator may not.
    let decisions = beijing
        .hub_decisions("bth", Some("compliance"), Some("denied"), None, 100)
        .await
        .unwrap();
    assert_eq!(decisions.items.len(), 3);
    assert!(decisions.items.iter().all(|d| d.bid_id == placed.bid.id));
    assert_eq!(decisions.items[0].output["decision"], "deny");
    assert!(
        beijing
            .hub_decisions("bth", None, Some("allowed"), None, 100)
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert_eq!(
        code_of(ningxia.hub_decisions("bth", None, None, None, 10).await),
        (403, "forbidden".into())
    );
    assert_eq!(
        regulator
            .hub_decisions("bth", None, None, None, 2)
            .await
            .unwrap()
            .items
            .len(),
        2
    );
    assert_eq!(
        code_of(
            beijing
                .hub_decisions("bth", None, Some("maybe"), None, 10)
                .await
        ),
        (400, "invalid_outcome".into())
    );

    // Price, green share, latency, FOK: each unfilled bid names its reason and hub.
    let cases: Vec<(NewBid, Codes)> = vec![
        (
            new_bid(SKU, 1, window(2, 2), "6.5"),
            vec![("price_above_limit", Some("nx"))],
        ),
        (
            NewBid {
                min_green_share: Some(90),
                ..new_bid(SKU, 1, window(2, 2), "9")
            },
            vec![("green_share_below", Some("nx"))],
        ),
        (
            NewBid {
                data_origin: Some("bth".into()),
                max_latency_ms: Some(10),
                ..new_bid(SKU, 1, window(2, 2), "9")
            },
            vec![
                ("no_offer_in_window", None),
                ("latency_exceeded", Some("nx")),
            ],
        ),
        (
            NewBid {
                time_in_force: Some(TimeInForce::Fok),
                ..new_bid(SKU, 5, window(2, 2), "9")
            },
            vec![("no_offer_in_window", None), ("fok_not_filled", None)],
        ),
        (
            new_bid(SKU, 1, window(12, 2), "9"),
            vec![("no_offer_in_window", Some("nx"))],
        ),
    ];
    for (bid, expected) in cases {
        let quote = buyer.quote(&bid).await.unwrap();
        assert_eq!(codes(&quote.reasons), expected, "{bid:?}");
        let placed = buyer.place_bid(&bid).await.unwrap();
        assert!(placed.contracts.is_empty());
        assert_eq!(placed.reasons, quote.reasons, "{bid:?}");
    }

    // The hub's own contracts: its operator sees them (and no other hub's operator).
    let placed = buyer
        .place_bid(&new_bid(SKU, 1, window(2, 2), "7"))
        .await
        .unwrap();
    assert_eq!(placed.contracts.len(), 1);
    assert!(placed.reasons.is_empty() && placed.bid.reasons.is_empty());
    let contracts = ningxia
        .hub_contracts("nx", None, None, None, 100)
        .await
        .unwrap();
    assert_eq!(contracts.items.len(), 1);
    assert_eq!(contracts.items[0].id, placed.contracts[0].id);
    assert!(
        beijing
            .hub_contracts("bth", None, None, None, 100)
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert_eq!(
        code_of(beijing.hub_contracts("nx", None, None, None, 100).await),
        (403, "forbidden".into())
    );
    assert_eq!(
        code_of(ningxia.hub_faults("nowhere", None, 10).await),
        (404, "not_found".into())
    );
    assert!(
        ningxia
            .hub_faults("nx", None, 10)
            .await
            .unwrap()
            .items
            .is_empty()
    );
}
