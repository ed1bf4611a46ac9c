//! Offers, bids, holds, matching and contracts through the API.

use rust_decimal::Decimal;
use suanli_sdk::{OrderStatus, ParticipantKind, Side, TimeInForce};
use suanli_tests::{TestExchange, new_bid, new_offer, window};

use crate::code_of;

const SKU: &str = "ai.ascend-910b";

fn d(text: &str) -> Decimal {
    text.parse().unwrap()
}

#[actix_web::test]
async fn a_bid_is_filled_from_two_offers_at_their_asks() {
    let exchange = TestExchange::start().await;
    let (gansu, gansu_client) = exchange
        .participant(ParticipantKind::Provider, "Gansu Telecom")
        .await;
    let (ningxia, ningxia_client) = exchange
        .participant(ParticipantKind::Provider, "Ningxia Cloud")
        .await;
    let (buyer, buyer_client) = exchange.funded_buyer("Model Lab", "10000").await;
    let (_, regulator) = exchange
        .participant(ParticipantKind::Regulator, "Regulator")
        .await;
    let (_, stranger) = exchange
        .participant(ParticipantKind::Buyer, "Stranger")
        .await;
    let hours = window(2, 10);

    let cheap = gansu_client
        .place_offer(&new_offer("qingyang", SKU, 3, window(1, 24), "10"))
        .await
        .unwrap();
    assert!(cheap.contracts.is_empty());
    assert_eq!(
        (cheap.offer.status, cheap.offer.hub.as_str()),
        (OrderStatus::Open, "gs")
    );
    let dear = ningxia_client
        .place_offer(&new_offer("zhongwei", SKU, 3, window(1, 24), "11.5"))
        .await
        .unwrap();

    let placed = buyer_client
        .place_bid(&new_bid(SKU, 5, hours, "12"))
        .await
        .unwrap();
    assert_eq!(placed.bid.status, OrderStatus::Filled);
    assert_eq!(placed.bid.remaining, 0);
    let fills: Vec<(u32, String, String)> = placed
        .contracts
        .iter()
        .map(|c| (c.units, c.unit_price.to_string(), c.hub.clone()))
        .collect();
    assert_eq!(
        fills,
        [
            (3, "10".into(), "gs".into()),
            (2, "11.5".into(), "nx".into())
        ]
    );
    let first = &placed.contracts[0];
    assert_eq!(
        (first.buyer_id, first.provider_id, first.offer_id),
        (buyer.participant.id, gansu.participant.id, cheap.offer.id)
    );
    assert_eq!(
        (first.notional.to_string(), first.hours, first.maker),
        ("300".to_owned(), 10, Side::Offer)
    );
    assert_eq!(placed.contracts[1].notional.to_string(), "230");
    assert_eq!(placed.contracts[1].provider_id, ningxia.participant.id);

    // The buyer paid 530 into escrow; the rest of the 600 hold came back.
    let account = buyer_client.account().await.unwrap();
    assert_eq!(
        (account.available.to_string(), account.held.to_string()),
        ("9470".into(), "0".into())
    );

    let dear_now = ningxia_client.offer(dear.offer.id).await.unwrap();
    assert_eq!(
        (dear_now.status, dear_now.remaining),
        (OrderStatus::PartiallyFilled, 1)
    );

    // Parties and regulators read the contract; nobody else learns it exists.
    for client in [&buyer_client, &gansu_client, &regulator] {
        assert_eq!(client.contract(first.id).await.unwrap(), *first);
    }
    assert_eq!(code_of(stranger.contract(first.id).await).0, 404);
    assert_eq!(code_of(ningxia_client.contract(first.id).await).0, 404);
    assert_eq!(code_of(stranger.bid(placed.bid.id).await).0, 404);
    assert_eq!(
        buyer_client
            .contracts(None, None, None, 10)
            .await
            .unwrap()
            .items
            .len(),
        2
    );
    assert_eq!(
        gansu_client
            .contracts(None, None, None, 10)
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    assert_eq!(
        stranger
            .contracts(None, None, None, 10)
            .await
            .unwrap()
            .items
            .len(),
        0
    );
    assert_eq!(
        regulator
            .contracts(Some("nx"), None, None, 10)
            .await
            .unwrap()
            .items
            .len(),
        1
    );

    // The public sees the trades, without participant ids.
    let trades = exchange
        .anonymous
        .request(reqwest::Method::GET, "/v1/market/trades?sku=ai.ascend-910b")
        .send()
        .await
        .unwrap();
    let text = trades.text().await.unwrap();
    assert!(
        [
            buyer.participant.id,
            gansu.participant.id,
            ningxia.participant.id
        ]
        .iter()
        .all(|id| !text.contains(&id.to_string()))
            && !text.contains("buyer_id")
            && !text.contains("provider_id")
            && !text.contains("decisions"),
        "{text}"
    );
    // Each trade is its contract without the participant ids and decisions, newest first.
    let trades = exchange
        .anonymous
        .market_trades(Some(SKU), None, 10)
        .await
        .unwrap();
    let public: Vec<_> = placed
        .contracts
        .iter()
        .rev()
        .map(|contract| {
            (
                contract.id,
                contract.bid_id,
                contract.offer_id,
                contract.hours,
                contract.notional,
                contract.levy_bps,
                contract.maker,
                contract.status,
                contract.created_at,
            )
        })
        .collect();
    let seen: Vec<_> = trades
        .iter()
        .map(|trade| {
            (
                trade.id,
                trade.bid_id,
                trade.offer_id,
                trade.hours,
                trade.notional,
                trade.levy_bps,
                trade.maker,
                trade.status,
                trade.created_at,
            )
        })
        .collect();
    assert_eq!(seen, public);

    // Every step is in the audit log.
    for kind in ["offer_accepted", "bid_accepted", "contract_created"] {
        assert!(
            exchange.count(&format!(
                "SELECT count(*) FROM audit_log WHERE kind = '{kind}'"
            )) >= 1,
            "{kind}"
        );
    }
    assert!(regulator.audit_verify().await.unwrap().ok);
}

#[actix_web::test]
async fn a_resting_bid_is_filled_by_a_later_offer_at_its_limit() {
    let exchange = TestExchange::start().await;
    let (_, provider) = exchange
        .participant(ParticipantKind::Provider, "Provider")
        .await;
    let (_, buyer) = exchange.funded_buyer("Buyer", "1000").await;
    let bid = buyer
        .place_bid(&new_bid(SKU, 4, window(3, 2), "20.5"))
        .await
        .unwrap();
    assert_eq!(
        (bid.bid.status, bid.bid.held.to_string()),
        (OrderStatus::Open, "164".into())
    );
    let account = buyer.account().await.unwrap();
    assert_eq!(
        (account.available.to_string(), account.held.to_string()),
        ("836".into(), "164".into())
    );
    let book = exchange
        .anonymous
        .market_book(Some(SKU), None)
        .await
        .unwrap();
    assert_eq!(
        (
            book.bids.len(),
            book.bids[0].units,
            book.bids[0].price.to_string()
        ),
        (1, 4, "20.5".into())
    );

    let offer = provider
        .place_offer(&new_offer("helinger", SKU, 3, window(1, 12), "15"))
        .await
        .unwrap();
    assert_eq!(offer.contracts.len(), 1);
    assert_eq!(
        (
            offer.contracts[0].unit_price.to_string(),
            offer.contracts[0].maker
        ),
        ("20.5".into(), Side::Bid)
    );
    assert_eq!(offer.contracts[0].units, 3);
    let bid_now = buyer.bid(bid.bid.id).await.unwrap();
    assert_eq!(
        (bid_now.status, bid_now.remaining, bid_now.held.to_string()),
        (OrderStatus::PartiallyFilled, 1, "41".into())
    );
    let account = buyer.account().await.unwrap();
    assert_eq!(
        (account.available.to_string(), account.held.to_string()),
        ("836".into(), "41".into())
    );

    // Cancelling releases the rest of the hold; a second cancel finds nothing to cancel.
    let cancelled = buyer.cancel_bid(bid.bid.id).await.unwrap();
    assert_eq!(
        (cancelled.status, cancelled.remaining),
        (OrderStatus::Cancelled, 0)
    );
    let account = buyer.account().await.unwrap();
    assert_eq!(
        (account.available.to_string(), account.held.to_string()),
        ("877".into(), "0".into())
    );
    assert_eq!(
        code_of(buyer.cancel_bid(bid.bid.id).await),
        (409, "order_not_open".into())
    );
    assert_eq!(
        exchange.count("SELECT count(*) FROM audit_log WHERE kind = 'bid_cancelled'"),
        1
    );
}

#[actix_web::test]
async fn fill_or_kill_that_cannot_fill_leaves_nothing_behind() {
    let exchange = TestExchange::start().await;
    let (_, provider) = exchange
        .participant(ParticipantKind::Provider, "Provider")
        .await;
    let (_, buyer) = exchange.funded_buyer("Buyer", "1000").await;
    provider
        .place_offer(&new_offer("guian", SKU, 2, window(1, 5), "10"))
        .await
        .unwrap();
    let mut fok = new_bid(SKU, 3, window(1, 5), "12");
    fok.time_in_force = Some(TimeInForce::Fok);
    let placed = buyer.place_bid(&fok).await.unwrap();
    assert_eq!(
        (
            placed.bid.status,
            placed.bid.remaining,
            placed.contracts.len()
        ),
        (OrderStatus::Cancelled, 0, 0)
    );
    let account = buyer.account().await.unwrap();
    assert_eq!(
        (account.available.to_string(), account.held.to_string()),
        ("1000".into(), "0".into())
    );
    let book = exchange
        .anonymous
        .market_book(Some(SKU), None)
        .await
        .unwrap();
    assert!(book.bids.is_empty());
    assert_eq!(book.offers[0].units, 2, "the offer is untouched");
    assert_eq!(exchange.count("SELECT count(*) FROM contracts"), 0);

    // IOC takes what it can and cancels the rest.
    let mut ioc = new_bid(SKU, 3, window(1, 5), "12");
    ioc.time_in_force = Some(TimeInForce::Ioc);
    let placed = buyer.place_bid(&ioc).await.unwrap();
    assert_eq!(
        (placed.bid.status, placed.contracts[0].units),
        (OrderStatus::Cancelled, 2)
    );
    let account = buyer.account().await.unwrap();
    assert_eq!(
        (account.available.to_string(), account.held.to_string()),
        ("900".into(), "0".into())
    );
}

#[actix_web::test]
async fn concurrent_bids_never_spend_the_same_money_twice() {
    let exchange = TestExchange::start().await;
    // Each bid holds 3 units × 2 hours × 2.50 = 15 CNY: 1000 CNY covers 66 of them, 64 race.
    // With 500 CNY, exactly 33 are accepted.
    let (_, buyer) = exchange.funded_buyer("Buyer", "500").await;
    let attempts = (0..64).map(|_| {
        let buyer = buyer.clone();
        async move { buyer.place_bid(&new_bid(SKU, 3, window(4, 2), "2.5")).await }
    });
    let results = futures_util::future::join_all(attempts).await;
    let accepted = results.iter().filter(|result| result.is_ok()).count();
    assert_eq!(accepted, 33);
    for result in results.into_iter().filter(|result| result.is_err()) {
        assert_eq!(code_of(result), (422, "insufficient_funds".into()));
    }
    let account = buyer.account().await.unwrap();
    assert_eq!(
        (account.available.to_string(), account.held.to_string()),
        ("5".into(), "495".into())
    );
    assert_eq!(exchange.count("SELECT count(*) FROM bids"), 33);
}

#[actix_web::test]
async fn a_retried_order_is_placed_once_and_a_changed_one_is_refused() {
    let exchange = TestExchange::start().await;
    let (_, provider) = exchange
        .participant(ParticipantKind::Provider, "Provider")
        .await;
    let (_, buyer) = exchange.funded_buyer("Buyer", "1000").await;
    provider
        .place_offer(&new_offer("tianfu", SKU, 1, window(1, 5), "10"))
        .await
        .unwrap();
    let bid = new_bid(SKU, 2, window(1, 5), "12");
    let first = buyer.place_bid(&bid).await.unwrap();
    let again = buyer.place_bid(&bid).await.unwrap();
    assert_eq!(again.bid.id, first.bid.id);
    assert_eq!(
        again.contracts, first.contracts,
        "the original effects come back"
    );
    // The same limit written with trailing zeros is the same order.
    let mut zeros = bid.clone();
    zeros.limit_price = "12.00".parse().unwrap();
    assert_eq!(buyer.place_bid(&zeros).await.unwrap().bid.id, first.bid.id);
    let mut changed = bid.clone();
    changed.quantity = 3;
    assert_eq!(
        code_of(buyer.place_bid(&changed).await),
        (409, "idempotency_conflict".into())
    );
    assert_eq!(exchange.count("SELECT count(*) FROM bids"), 1);
    assert_eq!(exchange.count("SELECT count(*) FROM contracts"), 1);
    let account = buyer.account().await.unwrap();
    // 50 paid, 60 still held for the resting unit.
    assert_eq!(
        (account.available.to_string(), account.held.to_string()),
        ("890".into(), "60".into())
    );

    let offer = new_offer("tianfu", SKU, 1, window(1, 5), "10");
    let first = provider.place_offer(&offer).await.unwrap();
    assert_eq!(
        provider.place_offer(&offer).await.unwrap().offer.id,
        first.offer.id
    );
    let mut zeros = offer.clone();
    zeros.ask_price = "10.000".parse().unwrap();
    assert_eq!(
        provider.place_offer(&zeros).await.unwrap().offer.id,
        first.offer.id
    );
}

#[actix_web::test]
async fn orders_that_break_the_rules_are_refused_and_change_nothing() {
    let exchange = TestExchange::start().await;
    let (_, provider) = exchange
        .participant(ParticipantKind::Provider, "Provider")
        .await;
    let (_, buyer) = exchange.funded_buyer("Buyer", "100").await;
    let good_offer = || new_offer("wuhu", SKU, 1, window(1, 5), "10");
    let good_bid = || new_bid(SKU, 1, window(1, 5), "10");
    let mut misaligned = window(1, 5);
    misaligned.start += chrono::TimeDelta::minutes(30);

    let offers: Vec<(&str, suanli_sdk::NewOffer, u16, &str)> = vec![
        (
            "unknown cluster",
            suanli_sdk::NewOffer {
                cluster: "atlantis".into(),
                ..good_offer()
            },
            400,
            "unknown_cluster",
        ),
        (
            "unknown sku",
            suanli_sdk::NewOffer {
                sku: "quantum".into(),
                ..good_offer()
            },
            400,
            "unknown_sku",
        ),
        (
            "zero quantity",
            suanli_sdk::NewOffer {
                quantity: 0,
                ..good_offer()
            },
            400,
            "invalid_quantity",
        ),
        (
            "zero price",
            suanli_sdk::NewOffer {
                ask_price: d("0"),
                ..good_offer()
            },
            400,
            "invalid_price",
        ),
        (
            "7 decimals",
            suanli_sdk::NewOffer {
                ask_price: d("1.0000001"),
                ..good_offer()
            },
            400,
            "invalid_price",
        ),
        (
            "not on the hour",
            suanli_sdk::NewOffer {
                window: misaligned,
                ..good_offer()
            },
            400,
            "invalid_window",
        ),
        (
            "in the past",
            suanli_sdk::NewOffer {
                window: window(-2, 5),
                ..good_offer()
            },
            422,
            "window_started",
        ),
        (
            "too long",
            suanli_sdk::NewOffer {
                window: window(1, 2161),
                ..good_offer()
            },
            422,
            "window_too_long",
        ),
        (
            "backwards",
            suanli_sdk::NewOffer {
                window: suanli_sdk::Window {
                    start: window(5, 1).start,
                    end: window(2, 1).start,
                },
                ..good_offer()
            },
            400,
            "invalid_window",
        ),
        (
            "green share",
            suanli_sdk::NewOffer {
                green_share: 101,
                ..good_offer()
            },
            400,
            "invalid_field",
        ),
    ];
    for (rule, offer, status, code) in offers {
        assert_eq!(
            code_of(provider.place_offer(&offer).await),
            (status, code.into()),
            "{rule}"
        );
    }
    let bids: Vec<(&str, suanli_sdk::NewBid, u16, &str)> = vec![
        (
            "no skus",
            suanli_sdk::NewBid {
                skus: vec![],
                ..good_bid()
            },
            400,
            "invalid_field",
        ),
        (
            "unknown hub",
            suanli_sdk::NewBid {
                hubs: Some(vec!["atlantis".into()]),
                ..good_bid()
            },
            400,
            "unknown_hub",
        ),
        (
            "GTD without expiry",
            suanli_sdk::NewBid {
                time_in_force: Some(TimeInForce::Gtd),
                ..good_bid()
            },
            400,
            "invalid_field",
        ),
        (
            "expiry on GTC",
            suanli_sdk::NewBid {
                expires_at: Some(window(1, 1).start),
                ..good_bid()
            },
            400,
            "invalid_field",
        ),
        (
            "latency without origin",
            suanli_sdk::NewBid {
                max_latency_ms: Some(10),
                ..good_bid()
            },
            400,
            "invalid_field",
        ),
        (
            "no hub close enough",
            suanli_sdk::NewBid {
                data_origin: Some("gba".into()),
                hubs: Some(vec!["nmg".into()]),
                max_latency_ms: Some(10),
                ..good_bid()
            },
            422,
            "no_eligible_hub",
        ),
        (
            "min fill above quantity",
            suanli_sdk::NewBid {
                min_fill: Some(2),
                ..good_bid()
            },
            400,
            "invalid_field",
        ),
        (
            "more than the money",
            suanli_sdk::NewBid {
                quantity: 3,
                ..good_bid()
            },
            422,
            "insufficient_funds",
        ),
    ];
    for (rule, bid, status, code) in bids {
        assert_eq!(
            code_of(buyer.place_bid(&bid).await),
            (status, code.into()),
            "{rule}"
        );
    }
    // Wrong roles.
    assert_eq!(code_of(buyer.place_offer(&good_offer()).await).0, 403);
    assert_eq!(code_of(provider.place_bid(&good_bid()).await).0, 403);
    // A JSON number for a price.
    let response = buyer
        .request(reqwest::Method::POST, "/v1/bids")
        .json(&serde_json::json!({"skus": [SKU], "quantity": 1, "window": window(1, 5), "limit_price": 10, "idempotency_key": "k"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(
        exchange.count("SELECT count(*) FROM offers") + exchange.count("SELECT count(*) FROM bids"),
        0
    );
    assert_eq!(buyer.account().await.unwrap().available.to_string(), "100");
}

#[actix_web::test]
async fn a_latency_bound_keeps_a_bid_near_its_data() {
    let exchange = TestExchange::start().await;
    let (_, provider) = exchange
        .participant(ParticipantKind::Provider, "Provider")
        .await;
    let (_, buyer) = exchange.funded_buyer("Buyer", "1000").await;
    // From Gansu: Ningxia is 6 ms away, Inner Mongolia 12, Guizhou 16.
    provider
        .place_offer(&new_offer("guian", SKU, 1, window(1, 5), "5"))
        .await
        .unwrap();
    provider
        .place_offer(&new_offer("zhongwei", SKU, 1, window(1, 5), "9"))
        .await
        .unwrap();
    let mut bid = new_bid(SKU, 1, window(1, 5), "10");
    bid.data_origin = Some("gs".into());
    bid.max_latency_ms = Some(10);
    let placed = buyer.place_bid(&bid).await.unwrap();
    assert_eq!(placed.bid.hubs, ["gs", "nx"]);
    assert_eq!(placed.contracts[0].hub, "nx");
}

#[actix_web::test]
async fn order_lists_page_through_the_callers_own_orders() {
    let exchange = TestExchange::start().await;
    let (_, buyer) = exchange.funded_buyer("Buyer", "1000").await;
    let (_, other) = exchange.funded_buyer("Other", "1000").await;
    let (_, regulator) = exchange
        .participant(ParticipantKind::Regulator, "Regulator")
        .await;
    let mut placed = Vec::new();
    for _ in 0..5 {
        placed.push(
            buyer
                .place_bid(&new_bid(SKU, 1, window(3, 1), "1"))
                .await
                .unwrap()
                .bid
                .id,
        );
    }
    other
        .place_bid(&new_bid(SKU, 1, window(3, 1), "1"))
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = buyer.bids(None, cursor.as_deref(), 2).await.unwrap();
        seen.extend(page.items.iter().map(|bid| bid.id));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    placed.reverse();
    assert_eq!(seen, placed, "newest first, own bids only");
    // The sdk's lazy list reads the same pages as they are needed.
    let mut lazily = buyer.bids_paged(None, 2);
    let mut first_three = Vec::new();
    for _ in 0..3 {
        first_three.push(lazily.next().await.unwrap().unwrap().id);
    }
    assert_eq!(first_three, placed[..3]);
    let rest = lazily.collect().await.unwrap();
    assert_eq!(
        rest.iter().map(|bid| bid.id).collect::<Vec<_>>(),
        placed[3..]
    );
    assert_eq!(
        regulator
            .bids(Some(OrderStatus::Open), None, 100)
            .await
            .unwrap()
            .items
            .len(),
        6
    );
    assert_eq!(
        buyer
            .bids(Some(OrderStatus::Filled), None, 100)
            .await
            .unwrap()
            .items
            .len(),
        0
    );
    let bad = buyer
        .request(reqwest::Method::GET, "/v1/bids?cursor=abc")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}

#[actix_web::test]
async fn the_book_survives_a_restart_and_keeps_matching() {
    let exchange = TestExchange::start().await;
    let (_, provider) = exchange
        .participant(ParticipantKind::Provider, "Provider")
        .await;
    let (buyer, buyer_client) = exchange.funded_buyer("Buyer", "1000").await;
    let provider_key = provider.bearer_token().unwrap().to_owned();
    let buyer_key = buyer_client.bearer_token().unwrap().to_owned();
    let offer = provider
        .place_offer(&new_offer("shaoguan", SKU, 4, window(1, 10), "7"))
        .await
        .unwrap();
    let bid = buyer_client
        .place_bid(&new_bid(SKU, 3, window(2, 2), "7"))
        .await
        .unwrap();
    assert_eq!(bid.contracts[0].units, 3);
    let resting_bid = buyer_client
        .place_bid(&new_bid("ai.nvidia-h20", 2, window(2, 2), "6"))
        .await
        .unwrap();
    let book_before = exchange.anonymous.market_book(None, None).await.unwrap();

    let exchange = exchange.restart().await;
    let provider = exchange.anonymous.with_token(provider_key);
    let buyer_client = exchange.anonymous.with_token(buyer_key);
    assert_eq!(
        exchange.anonymous.market_book(None, None).await.unwrap(),
        book_before
    );
    // The offer has 1 unit left in hours 2-3 and 4 elsewhere: a bid for 2 units in hours 2-3
    // gets 1; the restored resting bid fills from a new H20 offer.
    let second = buyer_client
        .place_bid(&new_bid(SKU, 2, window(2, 2), "8"))
        .await
        .unwrap();
    assert_eq!(
        (
            second.contracts.len(),
            second.contracts[0].units,
            second.contracts[0].offer_id
        ),
        (1, 1, offer.offer.id)
    );
    let h20 = provider
        .place_offer(&new_offer(
            "shaoguan",
            "ai.nvidia-h20",
            5,
            window(1, 10),
            "6",
        ))
        .await
        .unwrap();
    assert_eq!(h20.contracts[0].bid_id, resting_bid.bid.id);
    assert_eq!(h20.contracts[0].buyer_id, buyer.participant.id);
}

#[actix_web::test]
async fn a_gtd_bid_expires_on_time_and_its_hold_comes_back() {
    let exchange = TestExchange::start_with(|config| config.expiry_tick_ms = 100).await;
    let (_, buyer) = exchange.funded_buyer("Buyer", "1000").await;
    let mut gtd = new_bid(SKU, 2, window(3, 2), "10");
    gtd.time_in_force = Some(TimeInForce::Gtd);
    // Far enough ahead that the bid is placed before it expires on a loaded machine (one second
    // was not always: CI once answered `expiry_passed`).
    gtd.expires_at = Some(chrono::Utc::now() + chrono::TimeDelta::seconds(5));
    let placed = buyer.place_bid(&gtd).await.unwrap();
    assert_eq!(buyer.account().await.unwrap().held.to_string(), "40");

    // Poll, with a deadline, until the expiry ticker has taken the bid out of the book.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut bid = buyer.bid(placed.bid.id).await.unwrap();
    while bid.status != OrderStatus::Expired && std::time::Instant::now() < deadline {
        bid = buyer.bid(placed.bid.id).await.unwrap();
    }
    assert_eq!((bid.status, bid.remaining), (OrderStatus::Expired, 0));
    let account = buyer.account().await.unwrap();
    assert_eq!(
        (account.available.to_string(), account.held.to_string()),
        ("1000".into(), "0".into())
    );
    assert_eq!(
        exchange.count("SELECT count(*) FROM audit_log WHERE kind = 'bid_expired'"),
        1
    );
    // A retry of the placement after the expiry (the answer was lost, say) gets the original bid
    // back, as it is now, rather than `expiry_passed`: the key was used (SPEC §4).
    let retried = buyer.place_bid(&gtd).await.unwrap();
    assert_eq!(
        (retried.bid.id, retried.bid.status),
        (placed.bid.id, OrderStatus::Expired)
    );
    // A new bid with the same past expiry is still refused.
    gtd.idempotency_key = "another".into();
    assert_eq!(
        code_of(buyer.place_bid(&gtd).await),
        (422, "expiry_passed".into())
    );
    assert_eq!(buyer.account().await.unwrap().held.to_string(), "0");
    // An offer arriving now finds nothing to fill.
    let (_, provider) = exchange
        .participant(ParticipantKind::Provider, "Provider")
        .await;
    let offer = provider
        .place_offer(&new_offer("guian", SKU, 2, window(1, 10), "5"))
        .await
        .unwrap();
    assert!(offer.contracts.is_empty());
}

#[actix_web::test]
async fn the_book_aggregates_bids_by_limit_with_the_union_of_their_hubs() {
    let exchange = TestExchange::start().await;
    let (_, buyer) = exchange.funded_buyer("Buyer", "10000").await;
    for (quantity, limit, hubs) in [
        (2, "9", &["nx"][..]),
        (3, "9", &["gs", "nx"]),
        (1, "8", &["bth"]),
    ] {
        let mut bid = new_bid(SKU, quantity, window(3, 2), limit);
        bid.hubs = Some(hubs.iter().map(|hub| (*hub).to_owned()).collect());
        buyer.place_bid(&bid).await.unwrap();
    }
    let levels = |book: suanli_sdk::MarketBook| -> Vec<(String, u64, u64, Vec<String>)> {
        book.bids
            .into_iter()
            .map(|level| {
                (
                    level.price.to_string(),
                    level.units,
                    level.orders,
                    level.hubs,
                )
            })
            .collect()
    };
    let strings = |hubs: &[&str]| hubs.iter().map(|hub| (*hub).to_owned()).collect::<Vec<_>>();
    assert_eq!(
        levels(
            exchange
                .anonymous
                .market_book(Some(SKU), None)
                .await
                .unwrap()
        ),
        [
            ("9".into(), 5, 2, strings(&["gs", "nx"])),
            ("8".into(), 1, 1, strings(&["bth"]))
        ]
    );
    // The level of the bids that accept Gansu: the hubs they name between them.
    assert_eq!(
        levels(
            exchange
                .anonymous
                .market_book(Some(SKU), Some("gs"))
                .await
                .unwrap()
        ),
        [("9".into(), 3, 1, strings(&["gs", "nx"]))]
    );
    // `limit` cuts the levels shown on each side.
    let top: suanli_sdk::MarketBook = exchange
        .anonymous
        .request(
            reqwest::Method::GET,
            &format!("/v1/market/book?sku={SKU}&limit=1"),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(levels(top), [("9".into(), 5, 2, strings(&["gs", "nx"]))]);
}
