//! Delivery, settlement to the fen, the invariant check, and the regulator's exports and stats.

use suanli_sdk::{AuditFilter, ContractStatus, ExportFormat, NewDelivery, ParticipantKind};
use suanli_tests::{TestExchange, new_bid, new_offer, window};

use crate::code_of;

const SKU: &str = "hpc.node";

fn delivery(unit_hours: u64, key: &str) -> NewDelivery {
    NewDelivery {
        delivered_unit_hours: unit_hours,
        idempotency_key: key.into(),
    }
}

/// One provider, one buyer, and two contracts of 3 units × 7 hours at 12.345678 (259.26 each).
async fn two_contracts(
    exchange: &TestExchange,
) -> (
    suanli_sdk::Client,
    suanli_sdk::Client,
    Vec<suanli_sdk::Contract>,
) {
    let (_, provider) = exchange
        .participant(ParticipantKind::Provider, "Provider")
        .await;
    let (_, buyer) = exchange.funded_buyer("Buyer", "1000").await;
    provider
        .place_offer(&new_offer(
            "zhangjiakou",
            SKU,
            6,
            window(0, 10),
            "12.345678",
        ))
        .await
        .unwrap();
    let mut contracts = Vec::new();
    for _ in 0..2 {
        let placed = buyer
            .place_bid(&new_bid(SKU, 3, window(0, 7), "13"))
            .await
            .unwrap();
        contracts.extend(placed.contracts);
    }
    assert_eq!(contracts.len(), 2);
    assert_eq!(contracts[0].notional.to_string(), "259.26");
    (provider, buyer, contracts)
}

#[actix_web::test]
async fn full_and_partial_delivery_settle_to_the_fen() {
    let exchange = TestExchange::start().await;
    let (provider, buyer, contracts) = two_contracts(&exchange).await;
    assert_eq!(
        buyer.account().await.unwrap().available.to_string(),
        "481.48"
    );

    let full = provider
        .report_delivery(contracts[0].id, &delivery(21, "d1"))
        .await
        .unwrap();
    let amounts = [
        full.charged,
        full.refunded,
        full.provider_paid,
        full.exchange_fee,
        full.hub_levy,
    ]
    .map(|a| a.to_string());
    assert_eq!(amounts, ["259.26", "0", "257.96", "1.3", "0"]);

    let partial = provider
        .report_delivery(contracts[1].id, &delivery(10, "d2"))
        .await
        .unwrap();
    let amounts = [
        partial.charged,
        partial.refunded,
        partial.provider_paid,
        partial.exchange_fee,
        partial.hub_levy,
    ]
    .map(|a| a.to_string());
    assert_eq!(amounts, ["123.46", "135.8", "122.84", "0.62", "0"]);

    assert_eq!(
        buyer.account().await.unwrap().available.to_string(),
        "617.28"
    );
    assert_eq!(
        provider.account().await.unwrap().available.to_string(),
        "380.8"
    );
    assert_eq!(
        exchange.count("SELECT (balance * 100)::bigint FROM accounts WHERE kind = 'exchange_fees'"),
        192
    );
    assert_eq!(
        exchange
            .count("SELECT count(*) FROM accounts WHERE kind = 'contract_escrow' AND balance <> 0"),
        0
    );
    assert_eq!(
        buyer.contract(contracts[1].id).await.unwrap().status,
        ContractStatus::Settled
    );
    assert_eq!(
        exchange.count("SELECT count(*) FROM audit_log WHERE kind = 'contract_settled'"),
        2
    );

    let (_, regulator) = exchange
        .participant(ParticipantKind::Regulator, "Regulator")
        .await;
    let verdict = regulator.audit_verify().await.unwrap();
    assert!(verdict.ok, "{verdict:?}");
    assert_eq!(verdict.invariants.len(), 11);
}

#[actix_web::test]
async fn a_contract_settles_once_and_only_its_provider_reports() {
    let exchange = TestExchange::start().await;
    let (provider, buyer, contracts) = two_contracts(&exchange).await;
    let (_, other_provider) = exchange
        .participant(ParticipantKind::Provider, "Other provider")
        .await;
    let id = contracts[0].id;

    assert_eq!(
        code_of(buyer.report_delivery(id, &delivery(21, "b")).await),
        (403, "forbidden".into())
    );
    assert_eq!(
        code_of(other_provider.report_delivery(id, &delivery(21, "o")).await).0,
        404
    );
    assert_eq!(
        code_of(
            provider
                .report_delivery(id, &delivery(22, "too-many"))
                .await
        ),
        (422, "over_delivery".into())
    );
    assert_eq!(
        code_of(
            provider
                .report_delivery(uuid::Uuid::new_v4(), &delivery(1, "x"))
                .await
        )
        .0,
        404
    );
    assert_eq!(exchange.count("SELECT count(*) FROM settlements"), 0);

    let first = provider
        .report_delivery(id, &delivery(20, "once"))
        .await
        .unwrap();
    assert_eq!(
        provider
            .report_delivery(id, &delivery(20, "once"))
            .await
            .unwrap(),
        first,
        "a retry returns the first"
    );
    assert_eq!(
        code_of(provider.report_delivery(id, &delivery(21, "twice")).await),
        (409, "already_settled".into())
    );
    assert_eq!(
        code_of(provider.report_delivery(id, &delivery(19, "once")).await),
        (409, "idempotency_conflict".into())
    );
    assert_eq!(exchange.count("SELECT count(*) FROM settlements"), 1);
    assert_eq!(
        exchange.count("SELECT count(*) FROM ledger_transactions WHERE kind = 'settlement'"),
        1
    );
}

/// A small deterministic generator, so that the workload is random but repeatable.
pub(crate) struct Lcg(pub(crate) u64);

impl Lcg {
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

#[actix_web::test]
async fn the_invariant_check_holds_after_a_random_workload_and_names_what_a_tamperer_broke() {
    let exchange = TestExchange::start().await;
    let (_, regulator) = exchange
        .participant(ParticipantKind::Regulator, "Regulator")
        .await;
    let mut providers = Vec::new();
    for n in 0..2 {
        providers.push(
            exchange
                .participant(ParticipantKind::Provider, &format!("Provider {n}"))
                .await
                .1,
        );
    }
    let mut buyers = Vec::new();
    for n in 0..3 {
        buyers.push(exchange.funded_buyer(&format!("Buyer {n}"), "5000").await);
    }
    let mut random = Lcg(42);
    let mut bids = Vec::new();
    let mut contracts = Vec::new();
    for step in 0..120 {
        match random.below(10) {
            0 => {
                let (buyer, _) = &buyers[random.below(3) as usize];
                let deposit = suanli_sdk::NewDeposit {
                    amount: format!("{}.{:02}", random.below(500), random.below(100))
                        .parse()
                        .unwrap(),
                    reference: "top-up".into(),
                    idempotency_key: format!("top-up-{step}"),
                };
                let _ = exchange.admin.deposit(buyer.participant.id, &deposit).await;
            }
            1..=3 => {
                let provider = &providers[random.below(2) as usize];
                let cluster = ["qingyang", "guian", "wuhu"][random.below(3) as usize];
                let offer = new_offer(
                    cluster,
                    SKU,
                    1 + random.below(5) as u32,
                    window(0, 12),
                    &format!("{}.5", 5 + random.below(6)),
                );
                if let Ok(placed) = provider.place_offer(&offer).await {
                    contracts.extend(
                        placed
                            .contracts
                            .into_iter()
                            .map(|c| (c.id, c.provider_id, c.units * c.hours)),
                    );
                }
            }
            4..=6 => {
                let buyer = &buyers[random.below(3) as usize].1;
                let bid = new_bid(
                    SKU,
                    1 + random.below(4) as u32,
                    window(random.below(3) as i64, 1 + random.below(6) as i64),
                    &format!("{}.25", 4 + random.below(7)),
                );
                if let Ok(placed) = buyer.place_bid(&bid).await {
                    bids.push((buyer.clone(), placed.bid.id));
                    contracts.extend(
                        placed
                            .contracts
                            .into_iter()
                            .map(|c| (c.id, c.provider_id, c.units * c.hours)),
                    );
                }
            }
            7 if !bids.is_empty() => {
                let (buyer, id) = &bids[random.below(bids.len() as u64) as usize];
                let _ = buyer.cancel_bid(*id).await;
            }
            _ if !contracts.is_empty() => {
                let (id, provider_id, unit_hours) =
                    contracts[random.below(contracts.len() as u64) as usize];
                for provider in &providers {
                    if provider.me().await.unwrap().id == provider_id {
                        let delivered = random.below(u64::from(unit_hours) + 1);
                        let _ = provider
                            .report_delivery(id, &delivery(delivered, &format!("settle-{id}")))
                            .await;
                    }
                }
            }
            _ => {}
        }
    }
    assert!(
        exchange.count("SELECT count(*) FROM settlements") > 0,
        "the workload settled contracts"
    );
    assert!(
        exchange.count("SELECT count(*) FROM bids WHERE status = 'cancelled'") > 0,
        "the workload cancelled bids"
    );
    let verdict = regulator.audit_verify().await.unwrap();
    assert!(verdict.ok, "{:?}", verdict.invariants);

    // The command-line check agrees.
    let check = std::process::Command::new(env!("CARGO_BIN_EXE_suanli-test-server"))
        .arg("check")
        .env("DATABASE_URL", &exchange.database_url)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );

    // Someone changes a provider's balance behind the ledger's back.
    let mut connection = exchange.sql();
    diesel::RunQueryDsl::execute(
        diesel::sql_query("UPDATE accounts SET balance = balance + 100 WHERE kind = 'provider' AND id = (SELECT min(id::text)::uuid FROM accounts WHERE kind = 'provider')"),
        &mut connection,
    )
    .unwrap();
    let verdict = regulator.audit_verify().await.unwrap();
    assert!(!verdict.ok);
    let broken: Vec<&str> = verdict
        .invariants
        .iter()
        .filter(|c| !c.ok)
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(
        broken,
        ["ledger_sums_to_zero", "balances_equal_their_entries"]
    );
    let check = std::process::Command::new(env!("CARGO_BIN_EXE_suanli-test-server"))
        .arg("check")
        .env("DATABASE_URL", &exchange.database_url)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(!check.status.success());
    let report = String::from_utf8_lossy(&check.stdout);
    assert!(
        report.contains("balances_equal_their_entries") && report.contains("BROKEN"),
        "{report}"
    );

    // Someone changes what the market stream says rests at a price.
    assert!(exchange.count("SELECT count(*) FROM book_levels WHERE orders > 0") > 0);
    diesel::RunQueryDsl::execute(
        diesel::sql_query(
            "UPDATE book_levels SET units = units + 1 WHERE ctid = (SELECT ctid FROM book_levels WHERE orders > 0 LIMIT 1)",
        ),
        &mut connection,
    )
    .unwrap();
    let verdict = regulator.audit_verify().await.unwrap();
    assert!(
        verdict
            .invariants
            .iter()
            .any(|c| c.name == "book_levels_equal_resting_orders" && !c.ok),
        "{:?}",
        verdict.invariants
    );
    // The writer sets the levels from the resting orders when it takes over the book.
    drop(connection);
    let token = regulator.bearer_token().unwrap().to_owned();
    let exchange = exchange.restart().await;
    let regulator = suanli_sdk::Client::new(exchange.anonymous.base_url()).with_token(token);
    let verdict = regulator.audit_verify().await.unwrap();
    assert!(
        verdict
            .invariants
            .iter()
            .any(|c| c.name == "book_levels_equal_resting_orders" && c.ok),
        "{:?}",
        verdict.invariants
    );
}

/// A Ningxia provider, a funded Beijing buyer and a regulator.
struct Trade {
    provider: suanli_sdk::Client,
    provider_id: uuid::Uuid,
    buyer: suanli_sdk::Client,
    buyer_id: uuid::Uuid,
    regulator: suanli_sdk::Client,
}

impl Trade {
    async fn parties(exchange: &TestExchange) -> Trade {
        let (provider_created, provider) = exchange
            .participant(ParticipantKind::Provider, "Ningxia provider")
            .await;
        let (buyer_created, buyer) = exchange.funded_buyer("Beijing buyer", "100000").await;
        let (_, regulator) = exchange
            .participant(ParticipantKind::Regulator, "Regulator")
            .await;
        Trade {
            provider,
            provider_id: provider_created.participant.id,
            buyer,
            buyer_id: buyer_created.participant.id,
            regulator,
        }
    }
}

/// A bid that names its data origin rests; an offer arriving later crosses it. The contract
/// is the same whichever side came first: the regulator sees where the data comes from, and the
/// flow is counted.
#[actix_web::test]
async fn an_incoming_offer_keeps_the_resting_bids_data_origin() {
    let exchange = TestExchange::start().await;
    let Trade {
        provider,
        buyer,
        regulator,
        ..
    } = Trade::parties(&exchange).await;
    // Next hour's window: a bid for the current hour would not rest (it stops resting when its
    // window starts).
    let base = window(1, 2);
    let mut bid = new_bid(SKU, 2, base, "3");
    bid.data_origin = Some("bth".into());
    // Gansu lies 18 ms from Beijing, Ningxia 15.
    bid.hubs = Some(vec!["nx".into(), "gs".into()]);
    bid.max_latency_ms = Some(16);
    let placed = buyer.place_bid(&bid).await.unwrap();
    assert!(placed.contracts.is_empty(), "nothing to cross yet");
    assert_eq!(placed.bid.status, suanli_sdk::OrderStatus::Open);
    let crossed = provider
        .place_offer(&new_offer(
            "zhongwei",
            SKU,
            2,
            suanli_sdk::Window {
                start: base.start,
                end: base.start + chrono::TimeDelta::hours(10),
            },
            "3",
        ))
        .await
        .unwrap();
    assert_eq!(
        crossed.contracts.len(),
        1,
        "the offer crosses the resting bid"
    );
    let contract_id = crossed.contracts[0].id;

    let page = regulator
        .audit_contracts(&AuditFilter::default(), None, 10)
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].contract.id, contract_id);
    assert_eq!(page.items[0].data_origin.as_deref(), Some("bth"));
    let stats = regulator
        .audit_stats(&AuditFilter::default())
        .await
        .unwrap();
    assert_eq!(
        stats
            .east_to_west
            .iter()
            .map(|row| (row.key.as_str(), row.contracts))
            .collect::<Vec<_>>(),
        [("bth→nx", 1)]
    );
    // The hash-chained log says the same: where the data comes from, and what the buyer asked.
    let log = regulator.audit_log(0, 500).await.unwrap().items;
    let payload = |kind: &str| {
        log.iter()
            .find(|entry| entry.kind == kind)
            .map(|entry| entry.payload.clone())
            .unwrap()
    };
    // The contract's entry, which both parties read in its proof, does not name the bid's data
    // origin: the bid's own entry does.
    assert!(payload("contract_created").get("data_origin").is_none());
    let accepted = payload("bid_accepted");
    assert_eq!(
        (
            &accepted["data_origin"],
            &accepted["max_latency_ms"],
            &accepted["requested_hubs"],
            &accepted["hubs"]
        ),
        (
            &serde_json::json!("bth"),
            &serde_json::json!(16),
            &serde_json::json!(["nx", "gs"]),
            &serde_json::json!(["nx"])
        )
    );
}

/// Contracts recorded without their bid's data origin by earlier versions get it from the
/// migration that fixes them; nothing else changes.
#[actix_web::test]
async fn the_migration_gives_contracts_recorded_without_an_origin_their_bids() {
    let exchange = TestExchange::start().await;
    let Trade {
        provider,
        buyer,
        regulator,
        ..
    } = Trade::parties(&exchange).await;
    let base = window(2, 2);
    let mut bid = new_bid(SKU, 1, base, "3");
    bid.data_origin = Some("bth".into());
    buyer.place_bid(&bid).await.unwrap();
    let offer_window = suanli_sdk::Window {
        start: base.start,
        end: base.start + chrono::TimeDelta::hours(10),
    };
    provider
        .place_offer(&new_offer("zhongwei", SKU, 1, offer_window, "3"))
        .await
        .unwrap();
    // Another buyer's contract, with no origin, stays without one.
    let (_, local) = exchange.funded_buyer("Local buyer", "100000").await;
    local.place_bid(&new_bid(SKU, 1, base, "3")).await.unwrap();
    provider
        .place_offer(&new_offer("zhongwei", SKU, 1, offer_window, "3"))
        .await
        .unwrap();
    let origins = |exchange: &TestExchange| {
        exchange.count("SELECT count(*) FROM contracts WHERE data_origin = 'bth'")
    };
    assert_eq!(origins(&exchange), 1);

    // As an earlier version recorded it, and with the fixing migration not yet applied.
    let mut sql = exchange.sql();
    for statement in [
        "UPDATE contracts SET data_origin = NULL",
        "DELETE FROM __diesel_schema_migrations WHERE version = '20261206000016'",
    ] {
        diesel::RunQueryDsl::execute(diesel::sql_query(statement), &mut sql).unwrap();
    }
    assert_eq!(origins(&exchange), 0);
    suanli_server::db::migrate(&mut sql).unwrap();
    assert_eq!(origins(&exchange), 1);
    assert_eq!(
        exchange.count("SELECT count(*) FROM contracts WHERE data_origin IS NULL"),
        1
    );
    let stats = regulator
        .audit_stats(&AuditFilter::default())
        .await
        .unwrap();
    assert_eq!(stats.east_to_west[0].key, "bth→nx");
}

#[actix_web::test]
async fn regulators_export_and_summarise_contracts() {
    let exchange = TestExchange::start().await;
    let Trade {
        provider,
        provider_id,
        buyer,
        buyer_id,
        regulator,
    } = Trade::parties(&exchange).await;
    provider
        .place_offer(&new_offer("zhongwei", SKU, 40, window(0, 10), "3"))
        .await
        .unwrap();
    let mut bid = new_bid(SKU, 1, window(0, 2), "3");
    bid.data_origin = Some("bth".into());
    let mut ids = Vec::new();
    for _ in 0..30 {
        bid.idempotency_key = uuid::Uuid::new_v4().to_string();
        ids.push(buyer.place_bid(&bid).await.unwrap().contracts[0].id);
    }
    provider
        .report_delivery(ids[0], &delivery(2, "d"))
        .await
        .unwrap();

    let mut csv = Vec::new();
    let mut progress = 0;
    regulator
        .audit_export(
            ExportFormat::Csv,
            &AuditFilter::default(),
            &mut csv,
            |bytes| progress = bytes,
        )
        .await
        .unwrap();
    assert_eq!(progress, csv.len() as u64);
    let text = String::from_utf8(csv).unwrap();
    let lines: Vec<&str> = text.split("\r\n").filter(|line| !line.is_empty()).collect();
    assert_eq!(lines.len(), 31, "a header and one row per contract");
    assert!(lines[0].starts_with("contract_id,created_at,bid_id"));
    assert!(lines.iter().all(|line| line.split(',').count() == 26));
    assert!(
        lines[1].starts_with(&ids[0].to_string()) && lines[1].contains(",settled,2,6,0,"),
        "{}",
        lines[1]
    );

    let mut jsonl = Vec::new();
    regulator
        .audit_export(
            ExportFormat::JsonLines,
            &AuditFilter::default(),
            &mut jsonl,
            |_| {},
        )
        .await
        .unwrap();
    let rows: Vec<suanli_sdk::AuditedContract> = String::from_utf8(jsonl)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(rows.len(), 30);
    assert_eq!(
        rows[0].settlement.as_ref().unwrap().charged.to_string(),
        "6"
    );
    assert_eq!(rows[0].data_origin.as_deref(), Some("bth"));

    let later = AuditFilter {
        from: Some(chrono::Utc::now() + chrono::TimeDelta::hours(1)),
        ..Default::default()
    };
    let mut empty = Vec::new();
    regulator
        .audit_export(ExportFormat::JsonLines, &later, &mut empty, |_| {})
        .await
        .unwrap();
    assert!(empty.is_empty());

    let page = regulator
        .audit_contracts(
            &AuditFilter {
                hub: Some("nx".into()),
                ..Default::default()
            },
            None,
            10,
        )
        .await
        .unwrap();
    assert_eq!((page.items.len(), page.next_cursor.is_some()), (10, true));
    let page = regulator
        .audit_contracts(
            &AuditFilter {
                hub: Some("gs".into()),
                ..Default::default()
            },
            None,
            10,
        )
        .await
        .unwrap();
    assert!(page.items.is_empty());

    let stats = regulator
        .audit_stats(&AuditFilter::default())
        .await
        .unwrap();
    assert_eq!(stats.by_hub.len(), 1);
    assert_eq!(
        (
            stats.by_hub[0].key.as_str(),
            stats.by_hub[0].contracts,
            stats.by_hub[0].unit_hours
        ),
        ("nx", 30, 60)
    );
    assert_eq!(stats.by_hub[0].value.to_string(), "180");
    // Contracted value beside what was charged: one contract settled, 2 unit-hours, 6 CNY.
    assert_eq!(
        (
            stats.by_hub[0].settled_contracts,
            stats.by_hub[0].delivered_unit_hours,
            stats.by_hub[0].charged.to_string()
        ),
        (1, 2, "6".into())
    );
    assert_eq!(stats.by_class[0].key, "supercomputing");
    assert_eq!(stats.east_to_west[0].key, "bth→nx");
    assert_eq!(stats.east_to_west[0].contracts, 30);
    assert_eq!(
        (
            stats.delivered_unit_hours,
            stats.green_share_of_delivered.to_string()
        ),
        (2, "60".into())
    );

    // The export and the stats select contracts as the listing does: by hub, SKU and participant.
    let in_gansu = AuditFilter {
        hub: Some("gs".into()),
        ..Default::default()
    };
    let stats = regulator.audit_stats(&in_gansu).await.unwrap();
    assert!(stats.by_hub.is_empty() && stats.east_to_west.is_empty());
    assert_eq!(stats.delivered_unit_hours, 0);
    let mut none = Vec::new();
    regulator
        .audit_export(ExportFormat::JsonLines, &in_gansu, &mut none, |_| {})
        .await
        .unwrap();
    assert!(none.is_empty());
    let (stranger, _) = exchange
        .participant(ParticipantKind::Buyer, "A buyer with no contracts")
        .await;
    let theirs = AuditFilter {
        participant: Some(stranger.participant.id),
        ..Default::default()
    };
    assert!(
        regulator
            .audit_stats(&theirs)
            .await
            .unwrap()
            .by_sku
            .is_empty()
    );
    let ours = AuditFilter {
        participant: Some(buyer_id),
        sku: Some(SKU.into()),
        ..Default::default()
    };
    let stats = regulator.audit_stats(&ours).await.unwrap();
    assert_eq!(
        (stats.by_sku[0].contracts, stats.delivered_unit_hours),
        (30, 2)
    );
    // The provider's side of the participant filter, in the export.
    let provided = AuditFilter {
        participant: Some(provider_id),
        sku: Some(SKU.into()),
        ..Default::default()
    };
    let mut theirs_jsonl = Vec::new();
    regulator
        .audit_export(
            ExportFormat::JsonLines,
            &provided,
            &mut theirs_jsonl,
            |_| {},
        )
        .await
        .unwrap();
    assert_eq!(String::from_utf8(theirs_jsonl).unwrap().lines().count(), 30);
    let unknown = AuditFilter {
        hub: Some("atlantis".into()),
        ..Default::default()
    };
    assert_eq!(
        code_of(regulator.audit_stats(&unknown).await),
        (400, "unknown_hub".into())
    );

    assert_eq!(
        code_of(buyer.audit_stats(&AuditFilter::default()).await).0,
        403
    );
    let bad = regulator
        .request(reqwest::Method::GET, "/v1/audit/export?format=xml")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}

#[actix_web::test]
async fn the_current_hour_trades_now_and_delivery_waits_for_the_window() {
    let exchange = TestExchange::start().await;
    let (_, provider) = exchange
        .participant(ParticipantKind::Provider, "Provider")
        .await;
    let (_, buyer) = exchange.funded_buyer("Buyer", "10000").await;

    // Capacity now: a window of the current hour is traded for the whole hour. A bid for it fills
    // at once or not at all: what does not fill expires, and its hold comes back.
    provider
        .place_offer(&new_offer("zhongwei", SKU, 2, window(0, 3), "10"))
        .await
        .unwrap();
    let now = buyer
        .place_bid(&new_bid(SKU, 3, window(0, 2), "12"))
        .await
        .unwrap();
    assert_eq!(now.contracts.iter().map(|c| c.units).sum::<u32>(), 2);
    assert_eq!(
        (now.bid.status, now.bid.remaining),
        (suanli_sdk::OrderStatus::Expired, 0)
    );
    assert_eq!(
        buyer.account().await.unwrap().held,
        rust_decimal::Decimal::ZERO
    );
    let settled = provider
        .report_delivery(now.contracts[0].id, &delivery(4, "now"))
        .await
        .unwrap();
    assert_eq!(settled.delivered_unit_hours, 4);

    // A later window waits: delivery before it starts is refused, and nothing is settled.
    provider
        .place_offer(&new_offer("zhongwei", SKU, 1, window(2, 3), "10"))
        .await
        .unwrap();
    let later = buyer
        .place_bid(&new_bid(SKU, 1, window(2, 2), "12"))
        .await
        .unwrap();
    let id = later.contracts[0].id;
    assert_eq!(
        code_of(provider.report_delivery(id, &delivery(2, "early")).await),
        (409, "window_not_started".into())
    );
    assert_eq!(
        exchange.count(&format!(
            "SELECT count(*) FROM settlements WHERE contract_id = '{id}'"
        )),
        0
    );

    // The hour before this one is gone.
    assert_eq!(
        code_of(buyer.place_bid(&new_bid(SKU, 1, window(-1, 2), "12")).await),
        (422, "window_started".into())
    );
}
