//! Several exchange nodes on one database (README "Several nodes"): separate server
//! processes, the leader killed or paused under load.

use std::time::Duration;

use diesel::RunQueryDsl;
use suanli_sdk::{Client, ParticipantKind};
use suanli_tests::cluster::{
    Cluster, Disruption, Replicated, kill_leaders_under_load, role, trade_through,
};
use suanli_tests::{ServerProcess, TestExchange, event_count, new_bid, new_offer, window};

const SERVER: &str = env!("CARGO_BIN_EXE_suanli-test-server");
const SKU: &str = "ai.nvidia-h20";

/// The lease timeout of these tests, seconds.
const LEASE_TIMEOUT_S: u64 = 2;

fn signal(node: &ServerProcess, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([signal, &node.pid().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill {signal}");
}

#[actix_web::test]
async fn a_killed_leader_is_replaced_within_the_lease_timeout_and_nothing_is_lost_or_duplicated() {
    let mut cluster = Cluster::start(SERVER, 3, LEASE_TIMEOUT_S);
    let report = kill_leaders_under_load(&mut cluster, 2, 40).await;
    eprintln!("failover: {report:?}");
    assert_eq!(report.lost, 0, "{report:?}");
    assert_eq!(report.duplicates, 0, "{report:?}");
    assert!(report.acknowledged >= 3 * 40, "{report:?}");
    // Exactly one node says it leads.
    let mut leaders = 0;
    for node in cluster.nodes.iter().flatten() {
        leaders += usize::from(role(&node.base_url).await.as_deref() == Some("leader"));
    }
    assert_eq!(leaders, 1);
    for took in &report.takeovers {
        // The figures are in BENCHMARKS.md ("Several nodes", `suanli-load failover`); this only
        // guards against a takeover that waits for something else than the lease (a generous
        // bound for a loaded 2-core machine).
        assert!(
            *took < Duration::from_secs(LEASE_TIMEOUT_S + 10),
            "{report:?}"
        );
    }
}

/// Three nodes started at the same moment on a fresh database (migrations, reference data and
/// the bootstrap admin made once), all serving, exactly one leading.
#[actix_web::test]
async fn nodes_started_together_on_a_fresh_database_all_serve_and_one_leads() {
    let cluster = Cluster::start_together(SERVER, 3, LEASE_TIMEOUT_S);
    cluster.until_leader(Duration::from_secs(60)).await;
    let mut roles = Vec::new();
    for node in cluster.nodes.iter().flatten() {
        roles.push(role(&node.base_url).await.expect("the node answers"));
    }
    roles.sort();
    assert_eq!(roles, ["follower", "follower", "leader"]);
    let admin = Client::new(cluster.nodes[2].as_ref().unwrap().base_url.clone())
        .login(&cluster.admin_key)
        .await
        .unwrap();
    assert_eq!(
        admin.me().await.unwrap().kind,
        ParticipantKind::Admin,
        "one bootstrap admin, whichever node made it"
    );
}

/// A leader paused (SIGSTOP) in the middle of committing a batch loses the lease to another
/// node; woken up (SIGCONT), its batch reaches the fencing check and is rolled back. The client,
/// retrying with its idempotency key, gets its bid placed once, by the new leader.
#[actix_web::test]
async fn a_paused_leader_that_lost_the_lease_has_its_batch_refused_by_the_fencing_token() {
    // No expiry ticks: the only batches are the test's own.
    let cluster = Cluster::start_with(
        SERVER,
        2,
        LEASE_TIMEOUT_S,
        &[("SUANLI_EXPIRY_TICK_MS", "3600000")],
    );
    let (old, new) = (
        cluster.nodes[0].as_ref().unwrap(),
        cluster.nodes[1].as_ref().unwrap(),
    );
    assert_eq!(role(&old.base_url).await.as_deref(), Some("leader"));
    assert_eq!(role(&new.base_url).await.as_deref(), Some("follower"));
    let provider_key = cluster
        .participant(&old.base_url, "provider", ParticipantKind::Provider)
        .await;
    let buyer_key = cluster
        .participant(&old.base_url, "buyer", ParticipantKind::Buyer)
        .await;
    let regulator_key = cluster
        .participant(&old.base_url, "regulator", ParticipantKind::Regulator)
        .await;
    let on_old = Client::new(old.base_url.clone());
    let provider = on_old.login(&provider_key).await.unwrap();
    provider
        .place_offer(&new_offer("zhongwei", SKU, 5, window(1, 48), "10"))
        .await
        .unwrap();
    let buyer = on_old.login(&buyer_key).await.unwrap();
    let before = buyer.account().await.unwrap();

    // The old leader's next batch waits for the audit chain's head, which this transaction holds.
    let mut connection = cluster.database.as_ref().unwrap().connect();
    diesel::sql_query("BEGIN").execute(&mut connection).unwrap();
    diesel::sql_query("SELECT * FROM audit_head FOR UPDATE")
        .execute(&mut connection)
        .unwrap();
    let mut bid = new_bid(SKU, 2, window(2, 2), "12");
    bid.idempotency_key = "sent-to-the-paused-leader".into();
    let sent = {
        let (buyer, bid) = (buyer.clone(), bid.clone());
        actix_web::rt::spawn(async move { buyer.place_bid(&bid).await })
    };
    // Pause the old leader only once its batch waits for the head inside a statement: paused
    // between two statements, its session would sit idle in its transaction and be ended by
    // PostgreSQL after the lease timeout, and the batch would fail before its fencing check.
    let mut watcher = cluster.database.as_ref().unwrap().connect();
    let started = std::time::Instant::now();
    while waiting_for_the_audit_head(&mut watcher) == 0 {
        assert!(started.elapsed() < Duration::from_secs(60), "never matched");
        actix_web::rt::time::sleep(Duration::from_millis(10)).await;
    }

    signal(old, "-STOP");
    let (leader, _) = cluster.until_leader(Duration::from_secs(60)).await;
    assert_eq!(leader, 1, "the other node took the lease");
    signal(old, "-CONT");
    let started = std::time::Instant::now();
    while role(&old.base_url).await.as_deref() != Some("follower") {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "never stepped down"
        );
        actix_web::rt::time::sleep(Duration::from_millis(10)).await;
    }
    // Let the old leader's batch go on: it reaches the fencing check and rolls back.
    diesel::sql_query("ROLLBACK")
        .execute(&mut connection)
        .unwrap();

    let placed = sent
        .await
        .unwrap()
        .expect("the retried bid is placed by the new leader");
    assert_eq!(event_count(&old.base_url, "batch_fenced").await, 1);
    assert_eq!(event_count(&old.base_url, "batch_committed").await, {
        // Every batch before the paused one committed; the paused one did not.
        event_count(&old.base_url, "batch_matched").await - 1
    });
    #[derive(diesel::QueryableByName)]
    struct Stored {
        #[diesel(sql_type = diesel::sql_types::Uuid)]
        id: uuid::Uuid,
    }
    let stored: Vec<Stored> = diesel::sql_query(
        "SELECT id FROM bids WHERE idempotency_key = 'sent-to-the-paused-leader'",
    )
    .load(&mut connection)
    .unwrap();
    assert_eq!(
        stored.iter().map(|row| row.id).collect::<Vec<_>>(),
        vec![placed.bid.id],
        "one bid, the one acknowledged"
    );
    assert_eq!(placed.contracts.len(), 1);
    // One contract's money moved, once.
    let after = buyer.account().await.unwrap();
    assert_eq!(
        before.available - after.available,
        placed.contracts[0].notional
    );
    assert_eq!(after.held, before.held, "nothing else is held");
    let regulator = Client::new(new.base_url.clone())
        .login(&regulator_key)
        .await
        .unwrap();
    assert!(regulator.audit_verify().await.unwrap().ok);
    assert_eq!(role(&new.base_url).await.as_deref(), Some("leader"));
}

/// PostgreSQL restarted twice under load (`pg_ctl restart -m fast`, every session cut): the
/// nodes reconnect by themselves, one leads again, and nothing acknowledged is lost or doubled.
#[actix_web::test]
async fn nodes_recover_from_a_postgresql_restart_under_load_without_a_restart_of_their_own() {
    let databases = Replicated::start();
    let mut cluster = Cluster::start_on(
        SERVER,
        &databases.primary.url("suanli"),
        2,
        LEASE_TIMEOUT_S,
        &[],
    );
    let before = postmaster_started(&databases.primary.url("suanli"));
    let report = trade_through(
        &mut cluster,
        Disruption::RestartDatabase(&databases.primary),
        2,
        30,
    )
    .await;
    eprintln!("database restarts: {report:?}");
    assert_eq!(report.lost, 0, "{report:?}");
    assert_eq!(report.duplicates, 0, "{report:?}");
    assert!(
        postmaster_started(&databases.primary.url("suanli")) > before,
        "PostgreSQL was restarted"
    );
    // The same two processes serve: both answer, one leads.
    let mut roles = Vec::new();
    for node in cluster.nodes.iter().flatten() {
        roles.push(role(&node.base_url).await.expect("the node answers"));
    }
    roles.sort();
    assert_eq!(roles, ["follower", "leader"]);
}

/// The newest audit entry the regulator sees through the API.
async fn newest_seen(regulator: &Client) -> i64 {
    let mut after = 0;
    loop {
        let page = regulator.audit_log(after, 500).await.unwrap();
        match page.next_after_seq {
            Some(next) => after = next,
            None => return page.items.last().map_or(after, |entry| entry.seq),
        }
    }
}

/// The newest audit entry stored in the database at `url`.
fn newest_stored(url: &str) -> i64 {
    use diesel::Connection;
    #[derive(diesel::QueryableByName)]
    struct Newest {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        seq: i64,
    }
    let mut connection = diesel::PgConnection::establish(url).unwrap();
    diesel::sql_query("SELECT coalesce(max(seq), 0) AS seq FROM audit_log")
        .get_result::<Newest>(&mut connection)
        .unwrap()
        .seq
}

async fn until_replica(exchange: &TestExchange, state: &str) {
    let started = std::time::Instant::now();
    while exchange
        .anonymous
        .readyz()
        .await
        .unwrap()
        .replica
        .as_deref()
        != Some(state)
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the replica never became {state}"
        );
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Trades once: a contract, and its audit entries.
async fn trade(provider: &Client, buyer: &Client) {
    provider
        .place_offer(&new_offer("zhongwei", SKU, 1, window(1, 1), "10"))
        .await
        .unwrap();
    let placed = buyer
        .place_bid(&new_bid(SKU, 1, window(1, 1), "10"))
        .await
        .unwrap();
    assert_eq!(placed.contracts.len(), 1);
}

/// With `SUANLI_READ_DATABASE_URL`, the regulators' reads come from the streaming replica while
/// it is fresh; with its replay paused, once it lags beyond `SUANLI_READ_LAG_MS_MAX`, they come
/// from the primary (and so see the newest entries, which the replica does not have).
#[actix_web::test]
async fn replica_reads_are_served_while_the_replica_is_fresh_and_by_the_primary_while_it_lags() {
    let databases = Replicated::start();
    let (primary_url, replica_url) = (
        databases.primary.url("suanli"),
        databases.replica.url("suanli"),
    );
    let exchange = TestExchange::start_on_url(&primary_url, |config| {
        config.read_database_url = Some(replica_url.clone());
        config.read_lag_ms_max = 3000;
        // Renewals every 300 ms: the lease row is the replica's clock of how far behind it is.
        config.lease_timeout_s = 1;
    })
    .await;
    let (_, provider) = exchange
        .participant(ParticipantKind::Provider, "Provider")
        .await;
    let (_, buyer) = exchange.funded_buyer("Buyer", "100000").await;
    let (_, regulator) = exchange
        .participant(ParticipantKind::Regulator, "Regulator")
        .await;
    let read_from = |kind: &str| suanli_tests::events_total(&exchange.state.metrics.render(), kind);

    until_replica(&exchange, "fresh").await;
    trade(&provider, &buyer).await;
    let newest = newest_stored(&primary_url);
    let started = std::time::Instant::now();
    // The replica replays the trade within moments; the regulator then sees it from there.
    while newest_seen(&regulator).await < newest {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "never replayed"
        );
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(read_from("read_replica") > 0);

    use diesel::Connection;
    let mut replica = diesel::PgConnection::establish(&replica_url).unwrap();
    diesel::sql_query("SELECT pg_wal_replay_pause()")
        .execute(&mut replica)
        .unwrap();
    until_replica(&exchange, "lagging").await;
    trade(&provider, &buyer).await;
    let newest = newest_stored(&primary_url);
    assert!(
        newest_stored(&replica_url) < newest,
        "the replica really is behind"
    );
    assert_eq!(
        newest_seen(&regulator).await,
        newest,
        "read from the primary"
    );
    assert!(read_from("read_primary") > 0);
    let ready = exchange.anonymous.readyz().await.unwrap();
    assert!(ready.replica_lag_ms.unwrap() > 3000, "{ready:?}");

    diesel::sql_query("SELECT pg_wal_replay_resume()")
        .execute(&mut replica)
        .unwrap();
    until_replica(&exchange, "fresh").await;
}

/// When the PostgreSQL server at `url` last started, microseconds since the epoch.
fn postmaster_started(url: &str) -> i64 {
    use diesel::Connection;
    #[derive(diesel::QueryableByName)]
    struct Started {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        at: i64,
    }
    let mut connection = diesel::PgConnection::establish(url).unwrap();
    diesel::sql_query(
        "SELECT (extract(epoch FROM pg_postmaster_start_time()) * 1000000)::bigint AS at",
    )
    .get_result::<Started>(&mut connection)
    .unwrap()
    .at
}

/// How many other sessions wait for a lock in a batch's last statement, the one that locks the
/// audit chain's head (in the database's `batch_end`).
fn waiting_for_the_audit_head(connection: &mut diesel::PgConnection) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct Waiting {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    diesel::sql_query(
        "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() \
         AND pid <> pg_backend_pid() AND wait_event_type = 'Lock' AND query LIKE '%batch_end(%'",
    )
    .get_result::<Waiting>(connection)
    .expect("pg_stat_activity")
    .n
}
