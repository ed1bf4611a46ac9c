//! The live market stream: trades and book changes arrive within a second of their commit, a
//! subscriber resumes after any event id (after a restart too) with exactly the events it
//! missed, and one that stops reading is cut off while the writer and the others go on.

use std::collections::BTreeMap;
use std::time::Duration;

use diesel::prelude::*;
use rust_decimal::Decimal;
use suanli_sdk::{MarketEvent, MarketStream, MarketUpdate, ParticipantKind, Side};
use suanli_tests::{TestExchange, new_bid, new_offer, window};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::code_of;

const SKU: &str = "ai.ascend-910b";

/// The ids of the stored stream events after `after`, oldest first.
fn stored_ids(exchange: &TestExchange, after: i64) -> Vec<i64> {
    use suanli_server::db::schema::market_events::dsl::*;
    market_events
        .select(id)
        .filter(id.gt(after))
        .order(id.asc())
        .load(&mut exchange.sql())
        .unwrap()
}

/// Reads events until one with `id` `until` has been read.
async fn read_until(stream: &mut MarketStream, until: i64) -> Vec<MarketEvent> {
    let mut events = Vec::new();
    while stream.last_event_id().is_none_or(|last| last < until) {
        let event = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("the next event within 10 s")
            .unwrap();
        events.push(event);
    }
    events
}

/// The ask levels of `sku` as the book events leave them: price → (units, orders).
fn apply_book(levels: &mut BTreeMap<Decimal, (u64, u64)>, events: &[MarketEvent], sku: &str) {
    for event in events {
        if let MarketUpdate::Book(change) = &event.update
            && change.side == Side::Offer
            && change.sku == sku
        {
            if change.units == 0 {
                levels.remove(&change.price);
            } else {
                levels.insert(change.price, (change.units, change.orders));
            }
        }
    }
}

/// A market stream subscriber over plain TCP with a 4 KiB receive window, which has read the
/// answer's head (200) and will read nothing more until the test says so.
async fn stalled_subscriber(exchange: &TestExchange, after: Option<i64>) -> tokio::net::TcpStream {
    let address = exchange
        .anonymous
        .base_url()
        .trim_start_matches("http://")
        .to_owned();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stalled = socket.connect(address.parse().unwrap()).await.unwrap();
    let resume = after.map_or(String::new(), |id| format!("last-event-id: {id}\r\n"));
    stalled
        .write_all(
            format!("GET /v1/market/stream HTTP/1.1\r\nhost: {address}\r\n{resume}\r\n").as_bytes(),
        )
        .await
        .unwrap();
    let mut head = vec![0u8; 512];
    let read = stalled.read(&mut head).await.unwrap();
    assert!(String::from_utf8_lossy(&head[..read]).starts_with("HTTP/1.1 200"));
    stalled
}

#[actix_web::test]
async fn trades_arrive_live_and_a_subscriber_resumes_with_exactly_what_it_missed() {
    let exchange = TestExchange::start().await;
    let (_, provider) = exchange
        .participant(ParticipantKind::Provider, "Gansu Telecom")
        .await;
    let (buyer, buyer_client) = exchange.funded_buyer("Model Lab", "100000").await;

    // A subscriber without Last-Event-ID is told where it starts: the newest event.
    let fresh = exchange
        .anonymous
        .request(reqwest::Method::GET, "/v1/market/stream")
        .send()
        .await
        .unwrap()
        .chunk()
        .await
        .unwrap()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&fresh).contains("\nid: 0\n\n"),
        "{fresh:?}"
    );

    // Resuming after id 0 replays everything from the first event.
    let mut live = exchange.anonymous.market_stream(Some(0));
    let offer = provider
        .place_offer(&new_offer("qingyang", SKU, 4, window(1, 2), "10"))
        .await
        .unwrap()
        .offer;
    let newest = *stored_ids(&exchange, 0).last().unwrap();
    let opening = read_until(&mut live, newest).await;
    let mut asks = BTreeMap::new();
    apply_book(&mut asks, &opening, SKU);
    assert_eq!(
        asks,
        BTreeMap::from([(Decimal::from(10), (4, 1))]),
        "{opening:?}"
    );

    // A crossing bid: its trade reaches the subscriber within a second of the answer (which
    // leaves only after the commit).
    let placed = buyer_client
        .place_bid(&new_bid(SKU, 3, window(1, 2), "12"))
        .await
        .unwrap();
    let contract = &placed.contracts[0];
    let trade = tokio::time::timeout(Duration::from_secs(1), async {
        loop {
            let event = live.next().await.unwrap();
            if let MarketUpdate::Trade(trade) = event.update {
                return trade;
            }
        }
    })
    .await
    .expect("the trade within a second of its commit");
    assert_eq!(trade.contract_id, contract.id);
    assert_eq!((trade.units, trade.hours), (3, 2));
    assert_eq!(trade.unit_price, Decimal::from(10));
    assert_eq!(trade.maker, Side::Offer);
    assert_eq!((trade.hub.as_str(), trade.sku.as_str()), ("gs", SKU));

    // What the stream says of the book is what the book says.
    let newest = *stored_ids(&exchange, 0).last().unwrap();
    let rest = read_until(&mut live, newest).await;
    apply_book(&mut asks, &rest, SKU);
    let book = exchange
        .anonymous
        .market_book(Some(SKU), None)
        .await
        .unwrap();
    let snapshot: BTreeMap<Decimal, (u64, u64)> = book
        .offers
        .iter()
        .map(|level| (level.price, (level.units, level.orders)))
        .collect();
    assert_eq!(asks, snapshot);
    assert_eq!(asks, BTreeMap::from([(Decimal::from(10), (1, 1))]));

    // The raw stream names no participant.
    let raw = exchange
        .anonymous
        .request(reqwest::Method::GET, "/v1/market/stream")
        .header("last-event-id", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(
        raw.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    let mut raw = raw;
    let mut text = String::new();
    while !text.contains("event: trade") {
        let chunk = tokio::time::timeout(Duration::from_secs(10), raw.chunk())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    for party in [buyer.participant.id, offer.provider_id] {
        assert!(!text.contains(&party.to_string()), "{text}");
    }
    drop(raw);

    // A subscriber away for a while resumes with exactly the events it missed: those the one
    // that stayed saw after the same id.
    let away_after = live.last_event_id().unwrap();
    for price in ["11", "11.5", "12.25"] {
        provider
            .place_offer(&new_offer("zhongwei", SKU, 2, window(1, 2), price))
            .await
            .unwrap();
    }
    buyer_client
        .place_bid(&new_bid(SKU, 3, window(1, 2), "11.5"))
        .await
        .unwrap();
    let newest = *stored_ids(&exchange, 0).last().unwrap();
    let stayed = read_until(&mut live, newest).await;
    let mut resumed = exchange.anonymous.market_stream(Some(away_after));
    let missed = read_until(&mut resumed, newest).await;
    assert_eq!(missed, stayed);
    assert_eq!(
        missed.iter().map(|event| event.id).collect::<Vec<_>>(),
        stored_ids(&exchange, away_after)
    );
    assert!(
        missed
            .iter()
            .any(|event| matches!(event.update, MarketUpdate::Trade(_)))
    );

    // After a restart, a subscriber resumes from the stored events, then goes on live.
    let before_restart = resumed.last_event_id().unwrap();
    let exchange = exchange.restart().await;
    // Tokens outlive the restart; the server listens on a new port.
    let provider = suanli_sdk::Client::new(exchange.anonymous.base_url())
        .with_token(provider.bearer_token().unwrap());
    let mut after_restart = exchange.anonymous.market_stream(Some(before_restart));
    provider
        .place_offer(&new_offer("qingyang", SKU, 1, window(1, 2), "13"))
        .await
        .unwrap();
    let newest = *stored_ids(&exchange, 0).last().unwrap();
    let events = read_until(&mut after_restart, newest).await;
    assert_eq!(
        events.iter().map(|event| event.id).collect::<Vec<_>>(),
        stored_ids(&exchange, before_restart)
    );

    // An id the stream never sent is refused.
    let mut bogus = exchange.anonymous.market_stream(Some(newest + 1_000));
    assert_eq!(code_of(bogus.next().await), (400, "invalid_header".into()));
    let garbage = exchange
        .anonymous
        .request(reqwest::Method::GET, "/v1/market/stream")
        .header("last-event-id", "-3")
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status(), 400);
}

#[actix_web::test]
async fn a_subscriber_that_stops_reading_is_cut_off_while_the_writer_and_the_others_go_on() {
    let exchange = TestExchange::start_with(|config| {
        config.stream_buffer = 32;
        config.http_send_stall_ms = 1000;
    })
    .await;
    let (_, buyer) = exchange.funded_buyer("Model Lab", "100000000").await;
    let (_, provider) = exchange
        .participant(ParticipantKind::Provider, "Gansu Telecom")
        .await;
    let skus: Vec<String> = exchange
        .anonymous
        .skus()
        .await
        .unwrap()
        .into_iter()
        .map(|sku| sku.code)
        .take(16)
        .collect();

    // A subscriber with a small receive window that reads the answer's head and then nothing.
    let mut stalled = stalled_subscriber(&exchange, Some(0)).await;

    // One that keeps reading all along, from the first event on.
    let reading = actix_web::rt::spawn({
        let mut reader = exchange.anonymous.market_stream(Some(0));
        async move {
            let mut ids = Vec::new();
            loop {
                let event = reader.next().await.unwrap();
                ids.push(event.id);
                if matches!(event.update, MarketUpdate::Trade(_)) {
                    return (ids, reader.reconnections());
                }
            }
        }
    });

    // Bids over 16 SKUs at prices of their own: each changes 16 price levels. Then one trade,
    // which ends the reader's watch.
    let mut placed = 0;
    for round in 0..120 {
        let bids = (0..4).map(|i| {
            let mut bid = new_bid(&skus[0], 1, window(1, 1), &format!("{}.{i}", 1 + round));
            bid.skus = skus.clone();
            let buyer = buyer.clone();
            async move { buyer.place_bid(&bid).await }
        });
        for result in futures_util::future::join_all(bids).await {
            result.unwrap();
            placed += 1;
        }
    }
    assert_eq!(
        placed, 480,
        "every order was taken while one subscriber stalled"
    );
    provider
        .place_offer(&new_offer("qingyang", &skus[0], 1, window(1, 1), "1"))
        .await
        .unwrap();
    let (read, reconnections) = tokio::time::timeout(Duration::from_secs(30), reading)
        .await
        .expect("the reader saw the trade")
        .unwrap();
    let trade = *read.last().unwrap();
    let until_trade: Vec<i64> = stored_ids(&exchange, 0)
        .into_iter()
        .filter(|id| *id <= trade)
        .collect();
    assert!(
        until_trade.len() > 480 * skus.len(),
        "{}",
        until_trade.len()
    );
    assert_eq!(read, until_trade, "the reader got every event");
    assert_eq!(reconnections, 0, "the reader kept up without being cut off");

    // The stalled one is disconnected: cut off once it fell the whole ring behind, or, its
    // receive window closed past the stall bound, closed by the kernel. Either way its
    // connection ends, and reading what was delivered shows no event out of order.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut text = Vec::new();
    let ended = tokio::time::timeout(Duration::from_secs(20), async {
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            match stalled.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(read) => text.extend_from_slice(&buffer[..read]),
            }
            // The end of a chunked body (after a cut-off).
            if text.ends_with(b"\r\n0\r\n\r\n") {
                return;
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the stalled stream is still open");
    let text = String::from_utf8_lossy(&text);
    // Complete lines only: a connection the kernel closed may end in the middle of a line (an
    // `id: 5` that was going to be `id: 512`).
    let ids: Vec<i64> = text
        .split_inclusive('\n')
        .filter(|line| line.ends_with('\n'))
        .filter_map(|line| line.trim_end().strip_prefix("id: ")?.parse().ok())
        .collect();
    assert!(ids.windows(2).all(|pair| pair[0] < pair[1]), "{ids:?}");
}

#[actix_web::test]
async fn a_client_that_takes_nothing_sent_to_it_is_disconnected_and_frees_its_seat() {
    let exchange = TestExchange::start_with(|config| {
        config.http_send_stall_ms = 1000;
        config.stream_subscribers_max = 1;
    })
    .await;
    let (_, buyer) = exchange.funded_buyer("Model Lab", "100000000").await;
    let skus: Vec<String> = exchange
        .anonymous
        .skus()
        .await
        .unwrap()
        .into_iter()
        .map(|sku| sku.code)
        .take(16)
        .collect();

    let mut stalled = stalled_subscriber(&exchange, None).await;
    // The one seat is taken.
    let busy = exchange
        .anonymous
        .request(reqwest::Method::GET, "/v1/market/stream")
        .send()
        .await
        .unwrap();
    assert_eq!(busy.status(), 503);
    assert_eq!(
        busy.json::<serde_json::Value>().await.unwrap()["code"],
        "stream_busy"
    );

    // More than its receive window, sent while it reads nothing.
    for round in 0..20 {
        let mut bid = new_bid(&skus[0], 1, window(1, 1), &format!("{}", 1 + round));
        bid.skus = skus.clone();
        buyer.place_bid(&bid).await.unwrap();
    }

    // It stays silent past the stall bound: the kernel closes the connection.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            match stalled.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the stalled connection is still open");
    // Its seat is free again (the sdk retries a busy stream by itself).
    let mut another = exchange.anonymous.market_stream(Some(0));
    assert_eq!(
        another.next().await.unwrap().id,
        stored_ids(&exchange, 0)[0]
    );
}

/// A node that does not lead serves the live stream too, from the database: a trade the leader
/// makes reaches the follower's subscribers within moments, with the same ids.
#[actix_web::test]
async fn a_follower_node_streams_the_trades_the_leader_makes() {
    let leader = TestExchange::start().await;
    let follower = leader.start_another(|_| {}).await;
    assert_eq!(
        follower.anonymous.readyz().await.unwrap().writer,
        "follower"
    );
    let (_, provider) = leader
        .participant(ParticipantKind::Provider, "Gansu Telecom")
        .await;
    let (_, buyer) = leader.funded_buyer("Model Lab", "100000").await;
    let mut on_follower = follower.anonymous.market_stream(Some(0));

    provider
        .place_offer(&new_offer("qingyang", SKU, 4, window(1, 2), "10"))
        .await
        .unwrap();
    let placed = buyer
        .place_bid(&new_bid(SKU, 3, window(1, 2), "12"))
        .await
        .unwrap();
    let newest = *stored_ids(&leader, 0).last().unwrap();
    let events = read_until(&mut on_follower, newest).await;
    let ids: Vec<i64> = events.iter().map(|event| event.id).collect();
    assert_eq!(
        ids,
        stored_ids(&leader, 0),
        "every stored event, in order, once"
    );
    let trades: Vec<_> = events
        .iter()
        .filter_map(|event| match &event.update {
            MarketUpdate::Trade(trade) => Some(trade.contract_id),
            _ => None,
        })
        .collect();
    assert_eq!(trades, [placed.contracts[0].id]);

    // Live, not only replayed: a trade made after the follower's stream caught up arrives too.
    provider
        .place_offer(&new_offer("qingyang", SKU, 1, window(1, 2), "10"))
        .await
        .unwrap();
    let again = buyer
        .place_bid(&new_bid(SKU, 1, window(1, 2), "12"))
        .await
        .unwrap();
    let newest = *stored_ids(&leader, 0).last().unwrap();
    let later = read_until(&mut on_follower, newest).await;
    assert!(later.iter().any(|event| matches!(
        &event.update,
        MarketUpdate::Trade(trade) if trade.contract_id == again.contracts[0].id
    )));

    // The follower takes over (the leader gives the lease up, and now forwards to it): its
    // subscriber goes on, its own writer publishing from then on.
    leader.state.exchange.resign();
    let started = std::time::Instant::now();
    while follower.anonymous.readyz().await.unwrap().writer != "leader" {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "never took over"
        );
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    // (A node that resigned keeps no lease keeper, so it knows no leader to forward to: the
    // clients turn to the new leader.)
    let on_new_leader = |client: &suanli_sdk::Client| {
        suanli_sdk::Client::new(follower.anonymous.base_url().to_owned())
            .with_token(client.bearer_token().unwrap().to_owned())
    };
    on_new_leader(&provider)
        .place_offer(&new_offer("qingyang", SKU, 1, window(1, 2), "10"))
        .await
        .unwrap();
    let after_takeover = on_new_leader(&buyer)
        .place_bid(&new_bid(SKU, 1, window(1, 2), "12"))
        .await
        .unwrap();
    let newest = *stored_ids(&leader, 0).last().unwrap();
    let last = read_until(&mut on_follower, newest).await;
    assert!(last.iter().any(|event| matches!(
        &event.update,
        MarketUpdate::Trade(trade) if trade.contract_id == after_takeover.contracts[0].id
    )));
    let all: Vec<i64> = [events, later, last]
        .iter()
        .flatten()
        .map(|event| event.id)
        .collect();
    assert_eq!(
        all,
        stored_ids(&leader, 0),
        "every event once, in order, across the takeover"
    );
}
