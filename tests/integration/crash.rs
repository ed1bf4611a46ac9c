//! Acknowledged means durable: a server killed with SIGKILL under load comes back with every
//! acknowledged order and contract, and with the same book.

use std::collections::HashSet;

use suanli_sdk::{Client, NewDeposit, NewParticipant, ParticipantKind, ProviderType};
use suanli_tests::{ServerProcess, TestDatabase, event_count, new_bid, new_offer, window};
use uuid::Uuid;

const SKU: &str = "ai.metax-c500";
const SERVER: &str = env!("CARGO_BIN_EXE_suanli-test-server");

async fn participant(admin: &Client, name: &str, kind: ParticipantKind) -> (Uuid, String) {
    let new = NewParticipant {
        name: name.into(),
        kind,
        provider_type: (kind == ParticipantKind::Provider).then_some(ProviderType::TelecomOperator),
        hub: None,
    };
    let created = admin.create_participant(&new).await.unwrap();
    if kind == ParticipantKind::Buyer {
        let deposit = NewDeposit {
            amount: "10000000".parse().unwrap(),
            reference: "wire".into(),
            idempotency_key: name.into(),
        };
        admin
            .deposit(created.participant.id, &deposit)
            .await
            .unwrap();
    }
    (created.participant.id, created.api_key)
}

/// The server process's environment: its database, admin key and JWT secret, and one more setting.
fn server_env(
    database: &TestDatabase,
    admin_key: &str,
    (name, value): (&'static str, &str),
) -> [(&'static str, String); 4] {
    [
        ("DATABASE_URL", database.url.clone()),
        ("SUANLI_ADMIN_API_KEY", admin_key.to_owned()),
        ("SUANLI_JWT_SECRET", "crash-test-secret".to_owned()),
        (name, value.to_owned()),
    ]
}

/// What the load generator was told was accepted.
#[derive(Debug)]
enum Acknowledged {
    Offer { id: Uuid, contracts: Vec<Uuid> },
    Bid { id: Uuid, contracts: Vec<Uuid> },
}

#[actix_web::test]
async fn a_server_killed_under_load_keeps_every_acknowledged_order_and_the_same_book() {
    let database = TestDatabase::create();
    let admin_key = format!("admin-{}", Uuid::new_v4());
    let env = server_env(
        &database,
        &admin_key,
        ("SUANLI_MATCH_CANDIDATES_MAX", "100000"),
    );
    let mut server = ServerProcess::spawn(SERVER, &env);
    let anonymous = Client::new(server.base_url.clone());
    let admin = anonymous.login(&admin_key).await.unwrap();
    let mut traders = Vec::new();
    for (name, kind) in [
        ("provider-a", ParticipantKind::Provider),
        ("provider-b", ParticipantKind::Provider),
        ("buyer-a", ParticipantKind::Buyer),
        ("buyer-b", ParticipantKind::Buyer),
    ] {
        let (_, key) = participant(&admin, name, kind).await;
        traders.push((
            kind,
            anonymous
                .login(&key)
                .await
                .unwrap()
                .bearer_token()
                .unwrap()
                .to_owned(),
        ));
    }
    let (_, sweeper_seller_key) =
        participant(&admin, "sweeper-seller", ParticipantKind::Provider).await;
    let (_, sweeper_buyer_key) = participant(&admin, "sweeper-buyer", ParticipantKind::Buyer).await;
    let (_, regulator_key) = participant(&admin, "regulator", ParticipantKind::Regulator).await;

    // Eight generators: resting bids (limits 5-9), resting offers (asks 11-15), and crossing
    // pairs at 10 that make contracts.
    let (acks, mut acknowledged) = tokio::sync::mpsc::unbounded_channel();
    let mut generators = Vec::new();
    for generator in 0..8usize {
        let (kind, token) = traders[generator % 4].clone();
        let client = anonymous.with_token(token);
        let acks = acks.clone();
        generators.push(actix_web::rt::spawn(async move {
            for n in 0usize.. {
                let crossing = n % 3 == 0;
                let quantity = 1 + (n % 3) as u32;
                let ack = match kind {
                    ParticipantKind::Provider => {
                        let ask = if crossing {
                            "10".to_owned()
                        } else {
                            (11 + n % 5).to_string()
                        };
                        let cluster = if generator % 2 == 0 {
                            "qingyang"
                        } else {
                            "zhongwei"
                        };
                        match client
                            .place_offer(&new_offer(cluster, SKU, quantity, window(1, 8), &ask))
                            .await
                        {
                            Ok(placed) => Acknowledged::Offer {
                                id: placed.offer.id,
                                contracts: placed.contracts.iter().map(|c| c.id).collect(),
                            },
                            Err(_) => return,
                        }
                    }
                    _ => {
                        let limit = if crossing {
                            "10".to_owned()
                        } else {
                            (5 + n % 5).to_string()
                        };
                        match client
                            .place_bid(&new_bid(SKU, quantity, window(2, 4), &limit))
                            .await
                        {
                            Ok(placed) => Acknowledged::Bid {
                                id: placed.bid.id,
                                contracts: placed.contracts.iter().map(|c| c.id).collect(),
                            },
                            Err(_) => return,
                        }
                    }
                };
                if acks.send(ack).is_err() {
                    return;
                }
            }
        }));
    }
    drop(acks);
    let mut received = Vec::new();
    while received.len() < 200 {
        received.push(acknowledged.recv().await.expect("the generators run"));
    }
    server.kill();
    for generator in generators {
        generator.await.unwrap();
    }
    while let Ok(ack) = acknowledged.try_recv() {
        received.push(ack);
    }

    let server = ServerProcess::spawn(SERVER, &env);
    // The killed process's matching lease runs out first.
    server.until_leading().await;
    let anonymous = Client::new(server.base_url.clone());
    let regulator = anonymous.login(&regulator_key).await.unwrap();
    let mut contracts = HashSet::new();
    for ack in &received {
        match ack {
            Acknowledged::Offer {
                id,
                contracts: made,
            } => {
                regulator
                    .offer(*id)
                    .await
                    .expect("an acknowledged offer survives");
                contracts.extend(made.iter().copied());
            }
            Acknowledged::Bid {
                id,
                contracts: made,
            } => {
                regulator
                    .bid(*id)
                    .await
                    .expect("an acknowledged bid survives");
                contracts.extend(made.iter().copied());
            }
        }
    }
    assert!(!contracts.is_empty(), "the load made contracts");
    for contract in &contracts {
        regulator
            .contract(*contract)
            .await
            .expect("an acknowledged contract survives");
    }
    assert!(regulator.audit_verify().await.unwrap().ok);

    // The restarted engine's book is the stored book: sweeping each side fills exactly what the
    // stored book says rests there.
    let book = anonymous.market_book(Some(SKU), None).await.unwrap();
    let resting_bid_units: u64 = book.bids.iter().map(|level| level.units).sum();
    let resting_offer_units: u64 = book.offers.iter().map(|level| level.units).sum();
    assert!(resting_bid_units > 0 && resting_offer_units > 0, "{book:?}");
    let seller = anonymous.login(&sweeper_seller_key).await.unwrap();
    let sweep = seller
        .place_offer(&new_offer(
            "guian",
            SKU,
            resting_bid_units as u32,
            window(1, 8),
            "1",
        ))
        .await
        .unwrap();
    assert_eq!(
        sweep
            .contracts
            .iter()
            .map(|c| u64::from(c.units))
            .sum::<u64>(),
        resting_bid_units
    );
    let buyer = anonymous.login(&sweeper_buyer_key).await.unwrap();
    let sweep = buyer
        .place_bid(&new_bid(
            SKU,
            resting_offer_units as u32,
            window(2, 4),
            "100",
        ))
        .await
        .unwrap();
    assert_eq!(
        sweep
            .contracts
            .iter()
            .map(|c| u64::from(c.units))
            .sum::<u64>(),
        resting_offer_units
    );
    let book = anonymous.market_book(Some(SKU), None).await.unwrap();
    assert!(book.bids.is_empty(), "{book:?}");
}

/// Waits (at most 60 s) until the server has matched `matched` batches in all.
async fn until_matched(base_url: &str, matched: u64) {
    let started = std::time::Instant::now();
    while event_count(base_url, "batch_matched").await < matched {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "the writer never matched {matched} batches"
        );
        actix_web::rt::task::yield_now().await;
    }
}

/// The pipelined writer matches batch N+1 while batch N commits. Killed right there (N's commit
/// held up by a lock, N+1 matched and waiting for it), the server loses nothing it acknowledged
/// and applied nothing it did not: neither batch's bid exists after the restart, and both can be
/// placed again under their idempotency keys.
#[actix_web::test]
async fn a_server_killed_between_matching_a_batch_and_committing_the_one_before_applies_neither() {
    use diesel::RunQueryDsl;
    let database = TestDatabase::create();
    let admin_key = format!("admin-{}", Uuid::new_v4());
    // No expiry ticks: the only batches are the test's own.
    let env = server_env(&database, &admin_key, ("SUANLI_EXPIRY_TICK_MS", "3600000"));
    let mut server = ServerProcess::spawn(SERVER, &env);
    let anonymous = Client::new(server.base_url.clone());
    let admin = anonymous.login(&admin_key).await.unwrap();
    let (_, buyer_key) = participant(&admin, "buyer", ParticipantKind::Buyer).await;
    let (_, regulator_key) = participant(&admin, "regulator", ParticipantKind::Regulator).await;
    let buyer = anonymous.login(&buyer_key).await.unwrap();
    let acknowledged = buyer
        .place_bid(&new_bid(SKU, 2, window(2, 4), "7"))
        .await
        .unwrap()
        .bid;
    let before = buyer.account().await.unwrap();

    // Batch N's commit waits for the audit chain's head, which this transaction holds.
    let mut lock = database.connect();
    diesel::sql_query("BEGIN").execute(&mut lock).unwrap();
    diesel::sql_query("SELECT * FROM audit_head FOR UPDATE")
        .execute(&mut lock)
        .unwrap();
    let matched = event_count(&server.base_url, "batch_matched").await;
    let committed = event_count(&server.base_url, "batch_committed").await;
    let mut unanswered = Vec::new();
    for (n, key) in ["batch-n", "batch-n-plus-1"].into_iter().enumerate() {
        let mut bid = new_bid(SKU, 1, window(2, 4), "8");
        bid.idempotency_key = key.to_owned();
        let client = buyer.clone();
        unanswered.push((
            bid.clone(),
            actix_web::rt::spawn(async move { client.place_bid(&bid).await }),
        ));
        until_matched(&server.base_url, matched + 1 + n as u64).await;
    }
    assert_eq!(
        event_count(&server.base_url, "batch_committed").await,
        committed,
        "batch N is still committing"
    );
    server.kill();
    for (_, answer) in &mut unanswered {
        assert!(
            answer.await.unwrap().is_err(),
            "nothing of the two batches was acknowledged"
        );
    }
    diesel::sql_query("ROLLBACK").execute(&mut lock).unwrap();

    let server = ServerProcess::spawn(SERVER, &env);
    server.until_leading().await;
    let anonymous = Client::new(server.base_url.clone());
    let buyer = anonymous.login(&buyer_key).await.unwrap();
    let bids = buyer.bids(None, None, 100).await.unwrap().items;
    assert_eq!(
        bids.iter().map(|bid| bid.id).collect::<Vec<_>>(),
        vec![acknowledged.id],
        "only the acknowledged bid exists"
    );
    assert_eq!(
        buyer.account().await.unwrap(),
        before,
        "only its hold is held"
    );
    let regulator = anonymous.login(&regulator_key).await.unwrap();
    assert!(regulator.audit_verify().await.unwrap().ok);
    // Neither was applied, so placing them again under the same keys places them now.
    for (bid, _) in &unanswered {
        let placed = buyer.place_bid(bid).await.unwrap().bid;
        assert_ne!(placed.id, acknowledged.id);
    }
    assert_eq!(buyer.bids(None, None, 100).await.unwrap().items.len(), 3);
}
