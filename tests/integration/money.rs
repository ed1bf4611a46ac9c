//! Deposits into the ledger, and the ledger's invariants seen from outside.

use rust_decimal::Decimal;
use suanli_sdk::{NewDeposit, ParticipantKind};
use suanli_tests::TestExchange;

use crate::code_of;

fn deposit(amount: &str, key: &str) -> NewDeposit {
    NewDeposit {
        amount: amount.parse().unwrap(),
        reference: "bank transfer 42".into(),
        idempotency_key: key.into(),
    }
}

#[actix_web::test]
async fn a_repeated_deposit_is_credited_once_and_a_changed_one_is_refused() {
    let exchange = TestExchange::start().await;
    let (buyer, client) = exchange.participant(ParticipantKind::Buyer, "Buyer").await;
    let id = buyer.participant.id;

    let first = exchange
        .admin
        .deposit(id, &deposit("1000.00", "wire-1"))
        .await
        .unwrap();
    assert_eq!(first.amount.to_string(), "1000");
    assert_eq!(first.currency, "CNY");
    let again = exchange
        .admin
        .deposit(id, &deposit("1000", "wire-1"))
        .await
        .unwrap();
    assert_eq!(again, first, "the repeat returns the original deposit");
    assert_eq!(
        client.account().await.unwrap().available.to_string(),
        "1000"
    );

    let changed = exchange
        .admin
        .deposit(id, &deposit("1500.00", "wire-1"))
        .await;
    assert_eq!(code_of(changed), (409, "idempotency_conflict".into()));
    assert_eq!(
        client.account().await.unwrap().available.to_string(),
        "1000"
    );

    exchange
        .admin
        .deposit(id, &deposit("0.05", "wire-2"))
        .await
        .unwrap();
    assert_eq!(
        client.account().await.unwrap().available.to_string(),
        "1000.05"
    );
    assert_eq!(exchange.count("SELECT count(*) FROM deposits"), 2);
    assert_eq!(
        exchange.count("SELECT count(*) FROM audit_log WHERE kind = 'deposit'"),
        2
    );
}

#[actix_web::test]
async fn concurrent_repeats_of_one_deposit_credit_it_once() {
    let exchange = TestExchange::start().await;
    let (buyer, client) = exchange.participant(ParticipantKind::Buyer, "Buyer").await;
    let id = buyer.participant.id;
    let attempts = (0..16).map(|_| {
        let admin = exchange.admin.clone();
        async move { admin.deposit(id, &deposit("700", "same-key")).await }
    });
    let results = futures_util::future::join_all(attempts).await;
    let first = results[0].as_ref().unwrap().id;
    assert!(
        results
            .iter()
            .all(|result| result.as_ref().map(|d| d.id).ok() == Some(first)),
        "{results:?}"
    );
    assert_eq!(client.account().await.unwrap().available.to_string(), "700");
}

#[actix_web::test]
async fn deposits_go_to_existing_buyers_only() {
    let exchange = TestExchange::start().await;
    let (provider, _) = exchange
        .participant(ParticipantKind::Provider, "Provider")
        .await;
    let not_a_buyer = exchange
        .admin
        .deposit(provider.participant.id, &deposit("10", "p"))
        .await;
    assert_eq!(code_of(not_a_buyer), (422, "not_a_buyer".into()));
    let nobody = exchange
        .admin
        .deposit(uuid::Uuid::new_v4(), &deposit("10", "n"))
        .await;
    assert_eq!(code_of(nobody), (404, "not_found".into()));
    assert_eq!(exchange.count("SELECT count(*) FROM ledger_entries"), 0);
}

#[actix_web::test]
async fn the_ledger_balances_and_matches_its_entries_after_deposits() {
    let exchange = TestExchange::start().await;
    let mut total = Decimal::ZERO;
    for (index, amount) in ["0.01", "99.99", "123456.78", "5"].iter().enumerate() {
        let (buyer, _) = exchange
            .participant(ParticipantKind::Buyer, &format!("Buyer {index}"))
            .await;
        exchange
            .admin
            .deposit(buyer.participant.id, &deposit(amount, &format!("k{index}")))
            .await
            .unwrap();
        total += amount.parse::<Decimal>().unwrap();
    }
    assert_eq!(
        exchange
            .count("SELECT count(*) FROM accounts WHERE balance <> 0 AND kind = 'buyer_available'"),
        4
    );
    assert_eq!(exchange.count("SELECT sum(balance) * 100 FROM accounts"), 0);
    assert_eq!(
        exchange.count("SELECT sum(amount) * 100 FROM ledger_entries"),
        0
    );
    assert_eq!(
        exchange.count(
            "SELECT count(*) FROM accounts a WHERE a.balance <> \
             (SELECT coalesce(sum(amount), 0) FROM ledger_entries e WHERE e.account_id = a.id)"
        ),
        0
    );
    let external = exchange.count("SELECT (-balance * 100) FROM accounts WHERE kind = 'external'");
    assert_eq!(Decimal::from(external), total * Decimal::from(100));
}

#[actix_web::test]
async fn history_cannot_be_rewritten_through_sql() {
    let exchange = TestExchange::start().await;
    let (buyer, _) = exchange.participant(ParticipantKind::Buyer, "Buyer").await;
    exchange
        .admin
        .deposit(buyer.participant.id, &deposit("10", "k"))
        .await
        .unwrap();
    let mut connection = exchange.sql();
    for statement in [
        "UPDATE ledger_entries SET amount = amount * 2",
        "DELETE FROM ledger_entries",
        "UPDATE audit_log SET actor = 'someone else'",
        "DELETE FROM audit_log",
        "DELETE FROM deposits",
        "TRUNCATE ledger_entries CASCADE",
    ] {
        let result = diesel::RunQueryDsl::execute(diesel::sql_query(statement), &mut connection);
        assert!(
            result.unwrap_err().to_string().contains("append-only"),
            "{statement}"
        );
    }
    // An unbalanced transaction is refused at commit.
    let unbalanced = diesel::RunQueryDsl::execute(
        diesel::sql_query(
            "WITH t AS (INSERT INTO ledger_transactions (id, kind, reference) VALUES (gen_random_uuid(), 'forged', 'x') RETURNING id) \
             INSERT INTO ledger_entries (transaction_id, account_id, amount, balance_after) \
             SELECT t.id, a.id, 5, a.balance + 5 FROM t, accounts a WHERE a.kind = 'exchange_fees'",
        ),
        &mut connection,
    );
    assert!(unbalanced.unwrap_err().to_string().contains("unbalanced"));
    // Every entry names an existing transaction and account (checked per statement, all rows).
    for (statement, refusal) in [
        (
            "WITH t AS (INSERT INTO ledger_transactions (id, kind, reference) VALUES (gen_random_uuid(), 'forged', 'x') RETURNING id) \
             INSERT INTO ledger_entries (transaction_id, account_id, amount, balance_after) \
             SELECT t.id, a.id, s.amount, a.balance + s.amount FROM t, accounts a, (VALUES (5), (-5)) AS s(amount) \
             WHERE a.kind = 'exchange_fees' \
             UNION ALL SELECT t.id, gen_random_uuid(), 1, 1 FROM t UNION ALL SELECT t.id, gen_random_uuid(), -1, -1 FROM t",
            "names no account",
        ),
        (
            "INSERT INTO ledger_entries (transaction_id, account_id, amount, balance_after) \
             SELECT t.id, a.id, s.amount, a.balance + s.amount \
             FROM (SELECT gen_random_uuid() AS id) t, accounts a, (VALUES (5), (-5)) AS s(amount) \
             WHERE a.kind = 'exchange_fees'",
            "names no ledger transaction",
        ),
        (
            "DELETE FROM accounts WHERE kind = 'exchange_fees'",
            "never removed",
        ),
        (
            "UPDATE accounts SET id = gen_random_uuid() WHERE kind = 'exchange_fees'",
            "never removed or renumbered",
        ),
        ("TRUNCATE accounts CASCADE", "never removed"),
        (
            "TRUNCATE ledger_transactions CASCADE",
            "ledger_transactions is append-only",
        ),
        ("TRUNCATE deposits", "append-only"),
    ] {
        let result = diesel::RunQueryDsl::execute(diesel::sql_query(statement), &mut connection);
        let error = result.unwrap_err().to_string();
        assert!(error.contains(refusal), "{statement}: {error}");
    }
    // An entry changed to name no account, where a migration lifted the append-only rule.
    diesel::RunQueryDsl::execute(diesel::sql_query("BEGIN"), &mut connection).unwrap();
    diesel::RunQueryDsl::execute(
        diesel::sql_query("ALTER TABLE ledger_entries DISABLE TRIGGER ledger_entries_append_only"),
        &mut connection,
    )
    .unwrap();
    let renamed = diesel::RunQueryDsl::execute(
        diesel::sql_query(
            "UPDATE ledger_entries SET account_id = gen_random_uuid() WHERE id = (SELECT min(id) FROM ledger_entries)",
        ),
        &mut connection,
    );
    let error = renamed.unwrap_err().to_string();
    assert!(error.contains("names no account"), "{error}");
    diesel::RunQueryDsl::execute(diesel::sql_query("ROLLBACK"), &mut connection).unwrap();
    // What was refused left the ledger as it was.
    assert_eq!(
        exchange.count("SELECT count(*) FROM ledger_transactions WHERE kind = 'forged'"),
        0
    );
}

/// The writer moves balances in its batch's first statement (with the resting orders' updates),
/// planned once for many batches. On a
/// new exchange `accounts` grows by an escrow account per contract, faster than its statistics
/// follow: planned as PostgreSQL plans by default, the statement would scan and hash every account
/// each batch. The writer's sessions are opened to plan for lookups by key (`db::open_for_writer`),
/// so it reads the accounts it moves through their primary key.
#[actix_web::test]
async fn the_writers_balance_update_reads_accounts_by_key_as_the_table_grows() {
    #[derive(diesel::QueryableByName)]
    struct PlanLine {
        #[diesel(sql_type = diesel::sql_types::Text, column_name = "QUERY PLAN")]
        line: String,
    }
    let exchange = TestExchange::start().await;
    let mut connection = suanli_server::db::open_for_writer(&exchange.database_url, None).unwrap();
    let run = |connection: &mut diesel::PgConnection, statement: &str| {
        diesel::RunQueryDsl::execute(diesel::sql_query(statement), connection).unwrap();
    };
    // Statistics taken while the exchange was new, then 3,000 contracts' escrow accounts.
    run(&mut connection, "ANALYZE accounts");
    run(
        &mut connection,
        "INSERT INTO accounts (id, kind, contract_id) \
         SELECT gen_random_uuid(), 'contract_escrow', gen_random_uuid() FROM generate_series(1, 3000)",
    );
    run(&mut connection, "SET plan_cache_mode = force_generic_plan");
    run(
        &mut connection,
        &format!(
            "PREPARE batch_updates (uuid[], int4[], text[], uuid[], int4[], text[], int4[], \
             timestamptz, uuid[], numeric[]) AS {}",
            suanli_server::db::orders::UPDATES_AND_BALANCES.as_str()
        ),
    );
    let plan = |connection: &mut diesel::PgConnection| -> Vec<String> {
        diesel::RunQueryDsl::load::<PlanLine>(
            diesel::sql_query(
                "EXPLAIN EXECUTE batch_updates ('{}', '{}', '{}', '{}', '{}', '{}', '{}', now(), '{}', '{}')",
            ),
            connection,
        )
        .unwrap()
        .into_iter()
        .map(|row| row.line)
        .collect()
    };
    let by_key = plan(&mut connection);
    assert!(
        by_key
            .iter()
            .any(|line| line.contains("Index Scan using accounts_pkey")),
        "{by_key:#?}"
    );
    assert!(
        !by_key
            .iter()
            .any(|line| line.contains("Seq Scan on accounts")),
        "{by_key:#?}"
    );
    // The same statement planned with PostgreSQL's default costs scans the whole table.
    run(&mut connection, "SET random_page_cost = 4");
    run(&mut connection, "DISCARD PLANS");
    let by_default = plan(&mut connection);
    assert!(
        by_default
            .iter()
            .any(|line| line.contains("Seq Scan on accounts")),
        "{by_default:#?}"
    );
}

/// The writer's `suanli_events_total` count of `kind`.
fn event_count(exchange: &TestExchange, kind: &str) -> u64 {
    suanli_tests::events_total(&exchange.state.metrics.render(), kind)
}

/// The writer matches a batch while the batch before it commits, so it reads balances that may
/// not include that batch yet: what that batch held must still count. A buyer with money for one
/// hold bids twice; the first bid's batch is held up in its commit while the second is matched:
/// the second is refused for want of money before anything is written, not found out by a
/// failing commit.
#[actix_web::test]
async fn a_bid_matched_while_the_batch_before_commits_sees_that_batchs_hold() {
    use diesel::RunQueryDsl;
    use suanli_tests::{new_bid, window};
    let exchange = TestExchange::start_with(|config| config.expiry_tick_ms = 3_600_000).await;
    // Each bid holds 10 CNY × 4 hours.
    let (_, buyer) = exchange.funded_buyer("Pipelined buyer", "70").await;
    let bid = || new_bid("ai.metax-c500", 1, window(2, 4), "10");

    let mut lock = exchange.sql();
    diesel::sql_query("BEGIN").execute(&mut lock).unwrap();
    diesel::sql_query("SELECT * FROM audit_head FOR UPDATE")
        .execute(&mut lock)
        .unwrap();
    let matched = event_count(&exchange, "batch_matched");
    let committed = event_count(&exchange, "batch_committed");
    let mut answers = Vec::new();
    for n in 1..=2 {
        let (buyer, bid) = (buyer.clone(), bid());
        answers.push(actix_web::rt::spawn(
            async move { buyer.place_bid(&bid).await },
        ));
        let started = std::time::Instant::now();
        while event_count(&exchange, "batch_matched") < matched + n {
            assert!(
                started.elapsed() < std::time::Duration::from_secs(60),
                "the writer never matched bid {n}"
            );
            actix_web::rt::task::yield_now().await;
        }
    }
    assert_eq!(
        event_count(&exchange, "batch_committed"),
        committed,
        "bid 1 waits"
    );
    diesel::sql_query("COMMIT").execute(&mut lock).unwrap();

    let second = answers.pop().unwrap().await.unwrap();
    let first = answers.pop().unwrap().await.unwrap();
    assert!(first.is_ok(), "{first:?}");
    assert_eq!(code_of(second), (422, "insufficient_funds".into()));
    assert_eq!(
        event_count(&exchange, "batch_split"),
        0,
        "refused while matching, not by a failed commit"
    );
    let account = buyer.account().await.unwrap();
    assert_eq!(
        (account.available, account.held),
        (Decimal::from(30), Decimal::from(40))
    );
}
