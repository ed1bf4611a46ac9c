//! The hash-chained audit log: gapless under concurrent writers, verifiable by the server and by
//! a client that trusts nothing, and tampering is pinned to the entry.

use suanli_sdk::audit::GENESIS_HASH;
use suanli_sdk::{NewDeposit, ParticipantKind};
use suanli_tests::TestExchange;

/// A connection of someone with superuser access who bypasses the database's triggers (the
/// append-only rules, the ledger's reference checks, the guards on accounts).
fn bypassing_triggers(exchange: &TestExchange) -> diesel::PgConnection {
    let mut connection = exchange.sql();
    diesel::RunQueryDsl::execute(
        diesel::sql_query("SET session_replication_role = replica"),
        &mut connection,
    )
    .unwrap();
    connection
}

fn deposit(amount: &str, key: String) -> NewDeposit {
    NewDeposit {
        amount: amount.parse().unwrap(),
        reference: "wire".into(),
        idempotency_key: key,
    }
}

#[actix_web::test]
async fn concurrent_writers_leave_a_gapless_chain_that_verifies() {
    let exchange = TestExchange::start().await;
    let (buyer, _) = exchange.participant(ParticipantKind::Buyer, "Buyer").await;
    let (_, regulator) = exchange
        .participant(ParticipantKind::Regulator, "Regulator")
        .await;
    let id = buyer.participant.id;

    let deposits = (0..48).map(|n| {
        let admin = exchange.admin.clone();
        async move {
            admin
                .deposit(id, &deposit("1.25", format!("key-{n}")))
                .await
                .map(|_| ())
        }
    });
    let creations = (0..8).map(|n| {
        let admin = exchange.admin.clone();
        async move {
            let new = suanli_sdk::NewParticipant {
                name: format!("Buyer {n}"),
                kind: ParticipantKind::Buyer,
                provider_type: None,
                hub: None,
            };
            admin.create_participant(&new).await.map(|_| ())
        }
    });
    let (deposited, created) = futures_util::future::join(
        futures_util::future::join_all(deposits),
        futures_util::future::join_all(creations),
    )
    .await;
    assert!(deposited.iter().chain(created.iter()).all(Result::is_ok));

    // 1 bootstrap admin + 2 participants + 48 deposits + 8 participants.
    let expected = 1 + 2 + 48 + 8;
    let mut entries = Vec::new();
    let mut after_seq = 0;
    loop {
        let page = regulator.audit_log(after_seq, 7).await.unwrap();
        entries.extend(page.items);
        match page.next_after_seq {
            Some(next) => after_seq = next,
            None => break,
        }
    }
    let seqs: Vec<i64> = entries.iter().map(|entry| entry.seq).collect();
    assert_eq!(seqs, (1..=expected).collect::<Vec<i64>>());
    assert_eq!(entries[0].prev_hash, GENESIS_HASH);
    for pair in entries.windows(2) {
        assert_eq!(pair[1].prev_hash, pair[0].hash);
    }
    let parsed: serde_json::Value = serde_json::from_str(&entries[5].canonical).unwrap();
    assert_eq!(parsed["seq"], 6);
    assert_eq!(parsed["payload"], entries[5].payload);

    let server = regulator.audit_verify().await.unwrap();
    assert!(server.ok, "{server:?}");
    assert_eq!(server.entries, expected as u64);
    assert_eq!(server.head_hash, entries.last().unwrap().hash);
    let mut progress = Vec::new();
    let local = regulator
        .verify_audit_chain(20, |done| progress.push(done))
        .await
        .unwrap();
    assert_eq!(
        (
            local.ok,
            local.entries,
            &local.head_hash,
            local.first_bad_seq
        ),
        (
            server.ok,
            server.entries,
            &server.head_hash,
            server.first_bad_seq
        )
    );
    assert!(
        server.invariants.iter().all(|check| check.ok),
        "{:?}",
        server.invariants
    );
    assert!(
        local.invariants.is_empty(),
        "a client checks the chain only"
    );
    assert_eq!(progress.last(), Some(&(expected as u64)));
}

#[actix_web::test]
async fn an_entry_altered_in_the_database_is_named_by_verification() {
    let exchange = TestExchange::start().await;
    let (buyer, _) = exchange.participant(ParticipantKind::Buyer, "Buyer").await;
    let (_, regulator) = exchange
        .participant(ParticipantKind::Regulator, "Regulator")
        .await;
    for n in 0..5 {
        exchange
            .admin
            .deposit(buyer.participant.id, &deposit("10", format!("k{n}")))
            .await
            .unwrap();
    }
    assert!(regulator.audit_verify().await.unwrap().ok);
    let target = exchange.count("SELECT min(seq) + 2 FROM audit_log WHERE kind = 'deposit'");

    // Someone with superuser access bypasses the append-only triggers and changes an amount.
    let mut connection = bypassing_triggers(&exchange);
    diesel::RunQueryDsl::execute(
        diesel::sql_query(format!(
            "UPDATE audit_log SET payload = jsonb_set(payload, '{{amount}}', '\"10000\"') WHERE seq = {target}"
        )),
        &mut connection,
    )
    .unwrap();

    let server = regulator.audit_verify().await.unwrap();
    assert!(!server.ok);
    assert_eq!(server.first_bad_seq, Some(target));
    let local = regulator.verify_audit_chain(3, |_| {}).await.unwrap();
    assert_eq!(local.first_bad_seq, Some(target));

    // Rewriting the canonical text and hash too breaks the link to the next entry instead.
    diesel::RunQueryDsl::execute(
        diesel::sql_query(format!(
            "UPDATE audit_log SET canonical = replace(canonical, '\"amount\":\"10\"', '\"amount\":\"10000\"'), \
             hash = repeat('a', 64) WHERE seq = {target}"
        )),
        &mut connection,
    )
    .unwrap();
    assert_eq!(
        regulator.audit_verify().await.unwrap().first_bad_seq,
        Some(target)
    );
}

#[actix_web::test]
async fn entries_removed_from_the_end_are_noticed() {
    let exchange = TestExchange::start().await;
    let (_, regulator) = exchange
        .participant(ParticipantKind::Regulator, "Regulator")
        .await;
    let last = exchange.count("SELECT max(seq) FROM audit_log");
    let mut connection = bypassing_triggers(&exchange);
    diesel::RunQueryDsl::execute(
        diesel::sql_query(format!("DELETE FROM audit_log WHERE seq = {last}")),
        &mut connection,
    )
    .unwrap();
    let verdict = regulator.audit_verify().await.unwrap();
    assert_eq!((verdict.ok, verdict.first_bad_seq), (false, Some(last)));
}

#[actix_web::test]
async fn an_entry_naming_no_account_is_noticed() {
    let exchange = TestExchange::start().await;
    let (buyer, _) = exchange.participant(ParticipantKind::Buyer, "Buyer").await;
    let (_, regulator) = exchange
        .participant(ParticipantKind::Regulator, "Regulator")
        .await;
    exchange
        .admin
        .deposit(buyer.participant.id, &deposit("10", "k".into()))
        .await
        .unwrap();
    assert!(regulator.audit_verify().await.unwrap().ok);
    // Someone with superuser access bypasses the triggers and removes an account with entries.
    let mut connection = bypassing_triggers(&exchange);
    diesel::RunQueryDsl::execute(
        diesel::sql_query(format!(
            "DELETE FROM accounts WHERE participant_id = '{}' AND kind = 'buyer_available'",
            buyer.participant.id
        )),
        &mut connection,
    )
    .unwrap();
    let verdict = regulator.audit_verify().await.unwrap();
    assert!(!verdict.ok);
    let check = verdict
        .invariants
        .iter()
        .find(|check| check.name == "entries_name_their_transaction_and_account")
        .unwrap();
    assert!(!check.ok);
    assert!(
        check
            .detail
            .as_deref()
            .unwrap()
            .contains("names no account"),
        "{check:?}"
    );
}

#[actix_web::test]
async fn audit_pages_respect_their_limits() {
    let exchange = TestExchange::start().await;
    let (_, regulator) = exchange
        .participant(ParticipantKind::Regulator, "Regulator")
        .await;
    for query in ["limit=0", "limit=501", "after_seq=-1", "limit=abc"] {
        let response = regulator
            .request(reqwest::Method::GET, &format!("/v1/audit/log?{query}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{query}");
    }
    let page = regulator.audit_log(0, 500).await.unwrap();
    assert_eq!(page.items.len(), 2);
    assert_eq!(page.next_after_seq, None);
}

/// Verification reads the chain in pages and the head last: it runs in one snapshot, so an entry
/// committed meanwhile is neither half seen (the head past the last page read: a false alarm of
/// entries cut from the end) nor counted.
#[actix_web::test]
async fn the_chain_is_verified_in_one_snapshot_while_entries_are_committed() {
    let exchange = TestExchange::start().await;
    let (buyer, _) = exchange.participant(ParticipantKind::Buyer, "Buyer").await;
    let admin = exchange.admin.me().await.unwrap().id;
    let (mut reader, mut writer) = (exchange.sql(), exchange.sql());
    let (before, verdict) = suanli_server::db::in_snapshot(&mut reader, |reader| {
        let before = suanli_server::db::audit::page(reader, 0, i64::MAX)?.len();
        // A deposit commits its entry while the chain is being read ...
        suanli_server::db::ledger::deposit(
            &mut writer,
            admin,
            buyer.participant.id,
            &deposit("5", "during".into()),
        )
        .unwrap();
        // ... and the walk, reading on in pages, sees the chain and its head as they were.
        let verdict = suanli_server::db::audit::verify(reader, 2)?;
        Ok::<_, diesel::result::Error>((before, verdict))
    })
    .unwrap();
    assert!(verdict.ok, "{verdict:?}");
    assert_eq!(verdict.entries as usize, before);
    let after = suanli_server::db::audit::verify(&mut reader, 1000).unwrap();
    assert!(after.ok && after.entries as usize > before, "{after:?}");
}
