//! End-to-end load: bids per second over HTTP with auth, matching, holds and commits, next to
//! PostgreSQL's own single-row insert rate (pgbench) on the same server, in the same run.
//!
//! `cargo run --release -p suanli-tests --bin suanli-load -- [--profile] [seconds] [connections]`
//! (defaults 10 s, 32 connections; `--profile` records the whole machine with `perf` during the
//! run, prints the top of the profile and draws `target/suanli-load-flamegraph.svg` when
//! inferno is installed). Other modes: `export [rows]`, `settle [contracts]
//! [connections]`, and `hostile [seconds] [attackers]`: a looping pricing policy in one hub with 100
//! offers resting there, attackers bidding into it, and the latency of an unrelated offer plus
//! crossing bid in another hub (optionally with other hub budgets: `hostile [seconds] [attackers]
//! [order fuel] [order wall ms] [batch wall ms]`), and `stream [seconds] [connections] [subscribers]`:
//! the bid load first without, then with that many market stream subscribers reading, and
//! `soak [seconds] [connections]` (default 600 s, 32): the bid load, with the rate, latency and
//! resident memory printed every 10 s, and `rebuild [orders]` (default 1,000,000): the restart
//! time and resident memory with that many resting offers, and `proofs [entries]` (default
//! 1,000,000): the audit tree built over that many entries, a checkpoint signed, and the size and
//! time of inclusion and consistency proofs, and `failover [kills] [lease timeout s]` (default 20,
//! 2): three `suanli-test-server` nodes (the binary beside this one) under eight retrying clients,
//! the leader SIGKILLed that many times; prints each takeover time, and the orders acknowledged,
//! lost and duplicated, and `forwarded [seconds] [connections]` (default 10, 32): the bid load sent
//! to the leader, then the same load sent to a follower (which forwards every bid to the leader).
//! Uses `DATABASE_URL`'s server when set, otherwise the private test cluster
//! under `target/suanli-test-pg`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use suanli_sdk::ParticipantKind;
use suanli_tests::{TestExchange, new_bid, new_offer, window};

const SKU: &str = "ai.nvidia-h20";

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1).peekable();
    if args.peek().map(String::as_str) == Some("export") {
        args.next();
        let rows: u64 = args
            .next()
            .map(|s| s.parse())
            .transpose()?
            .unwrap_or(100_000);
        return export(rows).await;
    }
    if args.peek().map(String::as_str) == Some("settle") {
        args.next();
        let contracts: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(5_000);
        let connections: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(32);
        return settle(contracts, connections).await;
    }
    if args.peek().map(String::as_str) == Some("hostile") {
        args.next();
        let seconds: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(10);
        let attackers: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1);
        // Optionally other hub budgets than the defaults: order fuel, order wall ms, batch wall ms.
        let budget: Vec<u64> = args.map(|s| s.parse()).collect::<Result<_, _>>()?;
        return hostile(seconds, attackers, &budget).await;
    }
    if args.peek().map(String::as_str) == Some("rebuild") {
        args.next();
        let orders: u64 = args
            .next()
            .map(|s| s.parse())
            .transpose()?
            .unwrap_or(1_000_000);
        return rebuild(orders).await;
    }
    if args.peek().map(String::as_str) == Some("forwarded") {
        args.next();
        let seconds: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(10);
        let connections: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(32);
        return forwarded(seconds, connections).await;
    }
    if args.peek().map(String::as_str) == Some("failover") {
        args.next();
        let kills: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(20);
        let lease_timeout_s: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(2);
        return failover(kills, lease_timeout_s).await;
    }
    if args.peek().map(String::as_str) == Some("proofs") {
        args.next();
        let entries: u64 = args
            .next()
            .map(|s| s.parse())
            .transpose()?
            .unwrap_or(1_000_000);
        return proofs(entries).await;
    }
    if args.peek().map(String::as_str) == Some("soak") {
        args.next();
        let seconds: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(600);
        let connections: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(32);
        return soak(seconds, connections).await;
    }
    if args.peek().map(String::as_str) == Some("stream") {
        args.next();
        let seconds: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(10);
        let connections: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(32);
        let subscribers: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1000);
        return stream_fan_out(seconds, connections, subscribers).await;
    }
    let profile = args.peek().map(String::as_str) == Some("--profile");
    if profile {
        args.next();
    }
    let seconds: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(10);
    let connections: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(32);

    let (exchange, buyers) = bidding_exchange(connections, |_| {}).await?;

    let recording = profile.then(|| record_profile(seconds)).transpose()?;
    let backends_before = backends_cpu(&exchange)?;
    let started = Instant::now();
    let (accepted, failed, latencies) = bid_load(&buyers, seconds).await;
    let elapsed = started.elapsed().as_secs_f64();
    let busiest_backend = busiest(&backends_before, &backends_cpu(&exchange)?);
    if let Some(recording) = recording {
        report_profile(recording)?;
    }
    let percentile = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
    };
    let contracts = exchange.count("SELECT count(*) FROM contracts");
    println!(
        "suanli, {connections} connections, POST /v1/bids, {seconds} s: {:.0} bids/s accepted ({} accepted, {} failed, {contracts} contracts), latency p50 {:?} p99 {:?}",
        accepted as f64 / elapsed,
        accepted,
        failed,
        percentile(0.50).copied().unwrap_or_default(),
        percentile(0.99).copied().unwrap_or_default(),
    );
    if let Some((pid, used)) = busiest_backend {
        println!(
            "the exchange's busiest PostgreSQL backend (the committer's, pid {pid}): {:.0} µs of CPU a bid accepted, on a CPU {:.0} % of the run, runnable but waiting for a CPU {:.0} %",
            used.on_cpu.as_secs_f64() * 1e6 / accepted.max(1) as f64,
            used.on_cpu.as_secs_f64() / elapsed * 100.0,
            used.waiting.as_secs_f64() / elapsed * 100.0,
        );
    }
    invariants_hold(&exchange)?;
    // PostgreSQL's own rate on the same server, right after (not during) the exchange's run.
    let (line, tps) = pgbench(&exchange.database_url, connections, seconds)?;
    println!("pgbench, {connections} clients, single-row INSERT, {seconds} s: {line}");
    println!(
        "ratio: bids/s ÷ pgbench tps = {:.3}",
        accepted as f64 / elapsed / tps
    );
    println!(
        "{}",
        exchange
            .state
            .metrics
            .render()
            .lines()
            .filter(|l| l.starts_with("suanli_batch_commands")
                || l.starts_with("suanli_batch_seconds_sum")
                || l.starts_with("suanli_batch_seconds_count")
                || l.starts_with("suanli_batch_commit_seconds_sum")
                || l.starts_with("suanli_batch_commit_seconds_count"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let metrics = &exchange.state.metrics;
    let batches = metrics.batch_commit_seconds.get_sample_count().max(1) as f64;
    println!(
        "batches: {}, {:.1} commands each, committed in {:.2} ms on average (hand-over to commit; every batch of the run, set-up and the expiry ticker's included)",
        metrics.batch_commit_seconds.get_sample_count(),
        metrics.batch_commands.get_sample_sum() / batches,
        metrics.batch_commit_seconds.get_sample_sum() / batches * 1000.0,
    );
    exchange.stop().await;
    Ok(())
}

/// Where `--profile` keeps its recording and flame graph.
fn profile_path(name: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target")
        .join(name)
}

/// Starts `perf record` over the whole machine (this process, PostgreSQL's backends and the
/// rest) for `seconds`, call graphs included.
fn record_profile(seconds: u64) -> anyhow::Result<std::process::Child> {
    let data = profile_path("suanli-load.perf.data");
    std::process::Command::new("perf")
        .args(["record", "-a", "-g", "-F", "499", "-o"])
        .arg(&data)
        .args(["--", "sleep", &seconds.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|error| anyhow::anyhow!("--profile needs perf (linux-perf): {error}"))
}

/// Waits for the recording, prints where the time went by process and function, and draws a
/// flame graph when inferno's tools are installed (`cargo install inferno`).
fn report_profile(mut recording: std::process::Child) -> anyhow::Result<()> {
    recording.wait()?;
    let data = profile_path("suanli-load.perf.data");
    for (what, sort, lines) in [("thread", "comm", 12), ("function", "comm,dso,sym", 40)] {
        let report = std::process::Command::new("perf")
            .args([
                "report",
                "--no-children",
                "-g",
                "none",
                "--stdio",
                "--sort",
                sort,
                "-i",
            ])
            .arg(&data)
            .output()?;
        println!("where the time went by {what} (perf, whole machine, self time):");
        for line in String::from_utf8_lossy(&report.stdout)
            .lines()
            .filter(|line| {
                line.split_whitespace()
                    .next()
                    .is_some_and(|first| first.ends_with('%'))
            })
            .take(lines)
        {
            println!("{line}");
        }
    }
    let svg = profile_path("suanli-load-flamegraph.svg");
    let drawn = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "perf script -i '{}' | inferno-collapse-perf | inferno-flamegraph > '{}'",
            data.display(),
            svg.display()
        ))
        .status()
        .is_ok_and(|status| status.success());
    if drawn {
        println!("flame graph: {}", svg.display());
    } else {
        let _ = std::fs::remove_file(&svg);
        println!(
            "recording: {} (for a flame graph: cargo install inferno, then run again)",
            data.display()
        );
    }
    Ok(())
}

/// An exchange for the bid load: capacity that half of the bids cross (one big offer per
/// cluster) and `connections` funded buyers.
async fn bidding_exchange(
    connections: usize,
    adjust: impl FnOnce(&mut suanli_server::config::Config),
) -> anyhow::Result<(TestExchange, Vec<suanli_sdk::Client>)> {
    let exchange = TestExchange::start_with(|config| {
        config.db_pool_size_max = 16;
        config.http_workers = 2;
        adjust(config);
    })
    .await;
    let (_, provider) = exchange
        .participant(ParticipantKind::Provider, "Load provider")
        .await;
    for cluster in ["qingyang", "zhongwei", "guian", "helinger"] {
        provider
            .place_offer(&new_offer(cluster, SKU, 1_000_000, window(1, 48), "10"))
            .await?;
    }
    let mut buyers = Vec::new();
    for n in 0..connections {
        buyers.push(
            exchange
                .funded_buyer(&format!("Load buyer {n}"), "1000000000")
                .await
                .1,
        );
    }
    Ok((exchange, buyers))
}

/// The bid load for `seconds`, printing every 10 s the rate, the latency percentiles of those
/// 10 s and the resident memory of this process (the server and the clients together).
async fn soak(seconds: u64, connections: usize) -> anyhow::Result<()> {
    let (exchange, buyers) = bidding_exchange(connections, |_| {}).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let latencies = Arc::new(std::sync::Mutex::new(Vec::<Duration>::new()));
    let failed = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for (index, buyer) in buyers.into_iter().enumerate() {
        let (stop, latencies, failed) = (stop.clone(), latencies.clone(), failed.clone());
        tasks.push(actix_web::rt::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let limit = if (n + index as u64).is_multiple_of(2) {
                    "10.5"
                } else {
                    "9"
                };
                let sent = Instant::now();
                match buyer.place_bid(&new_bid(SKU, 1, window(2, 4), limit)).await {
                    Ok(_) => latencies.lock().expect("latencies").push(sent.elapsed()),
                    Err(_) => drop(failed.fetch_add(1, Ordering::Relaxed)),
                }
            }
        }));
    }
    let started = Instant::now();
    let mut interval = actix_web::rt::time::interval(Duration::from_secs(10));
    interval.tick().await;
    while started.elapsed() < Duration::from_secs(seconds) {
        interval.tick().await;
        let mut window = std::mem::take(&mut *latencies.lock().expect("latencies"));
        let accepted = window.len();
        report(
            &format!(
                "t={:>4} s: {:.0} bids/s accepted, {} failed so far, RSS {} MiB, latency",
                started.elapsed().as_secs(),
                accepted as f64 / 10.0,
                failed.load(Ordering::Relaxed),
                rss_kib() / 1024
            ),
            &mut window,
        );
    }
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await?;
    }
    println!("peak RSS {} MiB", peak_rss_kib() / 1024);
    exchange.stop().await;
    Ok(())
}

/// The book rebuilt on start with `orders` resting offers (stored directly in SQL: over four
/// clusters, six SKUs, 1,000 prices and windows of 1 to 500 hours): how long the restart takes
/// and what the resting book adds to the process's resident memory.
async fn rebuild(orders: u64) -> anyhow::Result<()> {
    use diesel::RunQueryDsl;
    let exchange = TestExchange::start().await;
    let (provider, _) = exchange
        .participant(ParticipantKind::Provider, "Rebuild provider")
        .await;
    let mut connection = exchange.sql();
    let seeded = Instant::now();
    diesel::sql_query(format!(
        "INSERT INTO offers (id, seq, provider_id, cluster, hub, sku, quantity, window_start, window_end, \
         ask_price, green_share, attributes, status, remaining, idempotency_key, request_hash, created_at, updated_at) \
         SELECT gen_random_uuid(), 1000000 + n, '{}', c.code, c.hub, \
                (SELECT array_agg(code ORDER BY code) FROM skus)[1 + n % 6], 10, \
                date_trunc('hour', now()) + interval '1 hour' * (1 + n % 48), \
                date_trunc('hour', now()) + interval '1 hour' * (2 + n % 48 + n % 500), \
                5 + (n % 1000) / 100.0, n % 101, '{{}}', 'open', 10, 'seed-' || n, 'seed', now(), now() \
         FROM generate_series(1, {orders}) n \
         JOIN clusters c ON c.code = (ARRAY['qingyang', 'zhongwei', 'guian', 'helinger'])[1 + n % 4]",
        provider.participant.id
    ))
    .execute(&mut connection)?;
    diesel::sql_query("ANALYZE").execute(&mut connection)?;
    println!(
        "stored {orders} resting offers in {:.1} s",
        seeded.elapsed().as_secs_f64()
    );
    let before = rss_kib();
    let started = Instant::now();
    let exchange = exchange.restart().await;
    let elapsed = started.elapsed().as_secs_f64();
    let book = exchange
        .anonymous
        .market_book(Some("ai.nvidia-h20"), None)
        .await?;
    println!(
        "restart with the book rebuilt: {elapsed:.1} s; resident memory {} MiB before, {} MiB after ({} offer levels for one SKU)",
        before / 1024,
        rss_kib() / 1024,
        book.offers.len()
    );
    exchange.stop().await;
    Ok(())
}

/// The audit log's Merkle tree at scale: `entries` entries stored directly in SQL (their chain
/// hashes are not computed: the tree hashes each entry's canonical text), the tree built and a
/// checkpoint signed, then proofs asked for through the API and timed on the server side too.
async fn proofs(entries: u64) -> anyhow::Result<()> {
    use diesel::RunQueryDsl;
    let exchange = TestExchange::start().await;
    let (_, regulator) = exchange
        .participant(ParticipantKind::Regulator, "Proof regulator")
        .await;
    let mut connection = exchange.sql();
    let seeded = Instant::now();
    diesel::sql_query(format!(
        "INSERT INTO audit_log (seq, at, actor, kind, payload, canonical, prev_hash, hash) \
         SELECT h.seq + n, now(), 'load', 'load_entry', jsonb_build_object('n', n), \
                '{{\"actor\":\"load\",\"at\":\"2026-11-30T00:00:00.000000Z\",\"kind\":\"load_entry\",\"payload\":{{\"n\":' || n || '}},\"seq\":' || (h.seq + n) || '}}', \
                repeat('0', 64), md5(n::text) || md5((n + 1)::text) \
         FROM generate_series(1, {entries}) n, audit_head h"
    ))
    .execute(&mut connection)?;
    diesel::sql_query(format!("UPDATE audit_head SET seq = seq + {entries}"))
        .execute(&mut connection)?;
    println!(
        "stored {entries} audit entries in {:.1} s",
        seeded.elapsed().as_secs_f64()
    );
    let mut pooled = exchange.state.pool.get()?;
    let built = Instant::now();
    let signed = exchange
        .state
        .checkpointer
        .run(&mut pooled)?
        .expect("a checkpoint over the new entries");
    let build_s = built.elapsed().as_secs_f64();
    let size = signed.tree_size;
    println!(
        "tree built over {size} entries and a checkpoint signed in {build_s:.1} s ({:.0} entries/s; off the order path)",
        size as f64 / build_s
    );
    let signing = Instant::now();
    let signatures = 2_000u32;
    for _ in 0..signatures {
        std::hint::black_box(
            exchange
                .state
                .checkpointer
                .sign(size, tlog_tiles::Hash([7; 32]))?,
        );
    }
    println!(
        "signing a checkpoint note: {:.1} µs",
        signing.elapsed().as_secs_f64() * 1e6 / f64::from(signatures)
    );

    // Server time: the store's own calls, as the handlers make them.
    let mut rng = StdRng::seed_from_u64(0x2545_f491_4f6c_dd1d);
    let rounds = 1_000;
    let mut server_us = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let index = rng.random_range(0..size);
        let started = Instant::now();
        let path = suanli_server::db::tree::inclusion(&mut pooled, size, index)?;
        let root = suanli_server::db::tree::root(&mut pooled, size)?;
        server_us.push(started.elapsed().as_secs_f64() * 1e6);
        std::hint::black_box((path, root));
    }
    server_us.sort_by(f64::total_cmp);
    println!(
        "inclusion proof + root, server side: median {:.0} µs, p99 {:.0} µs",
        server_us[rounds / 2],
        server_us[rounds * 99 / 100]
    );
    let mut consistency_us = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let first = rng.random_range(1..=size);
        let started = Instant::now();
        std::hint::black_box(suanli_server::db::tree::consistency(
            &mut pooled,
            first,
            size,
        )?);
        consistency_us.push(started.elapsed().as_secs_f64() * 1e6);
    }
    consistency_us.sort_by(f64::total_cmp);
    println!(
        "consistency proof, server side: median {:.0} µs, p99 {:.0} µs",
        consistency_us[rounds / 2],
        consistency_us[rounds * 99 / 100]
    );

    // Through the API, as a regulator receives them (a fresh connection: the one made before the
    // blocking work above may have been closed meanwhile).
    let regulator = suanli_sdk::Client::new(exchange.anonymous.base_url()).with_token(
        regulator
            .bearer_token()
            .expect("a logged-in regulator has a token"),
    );
    let mut http_ms = Vec::with_capacity(200);
    let mut sizes = Vec::with_capacity(200);
    for _ in 0..200 {
        let seq = rng.random_range(1..=size);
        let started = Instant::now();
        let response = regulator
            .request(
                reqwest::Method::GET,
                &format!("/v1/audit/proof/inclusion?seq={seq}&tree_size={size}"),
            )
            .send()
            .await?
            .bytes()
            .await?;
        http_ms.push(started.elapsed().as_secs_f64() * 1e3);
        let proof: suanli_sdk::InclusionProof = serde_json::from_slice(&response)?;
        sizes.push((response.len(), proof.audit_path.len()));
    }
    http_ms.sort_by(f64::total_cmp);
    let (bytes_max, hashes_max) = sizes.iter().fold((0, 0), |(b, h), &(bytes, hashes)| {
        (b.max(bytes), h.max(hashes))
    });
    println!(
        "inclusion proof over HTTP: median {:.2} ms, p99 {:.2} ms; at most {hashes_max} hashes = {} bytes binary, {bytes_max} bytes of JSON",
        http_ms[http_ms.len() / 2],
        http_ms[http_ms.len() * 99 / 100],
        hashes_max * 32
    );
    let stored: i64 = exchange.count("SELECT count(*) FROM audit_tree_hashes");
    let table_bytes: i64 = exchange.count("SELECT pg_total_relation_size('audit_tree_hashes')");
    println!(
        "stored hashes: {stored} rows, {} MiB with their index",
        table_bytes / (1 << 20)
    );
    Ok(())
}

/// Resident memory of this process now, from /proc.
fn rss_kib() -> u64 {
    proc_status_kib("VmRSS:")
}

/// What a run stored must still hold every invariant (money, holds, escrow, book levels,
/// capacity): an error names the broken ones.
fn invariants_hold(exchange: &TestExchange) -> anyhow::Result<()> {
    let broken: Vec<_> = suanli_server::db::invariants::check(&mut exchange.sql())?
        .into_iter()
        .filter(|check| !check.ok)
        .collect();
    anyhow::ensure!(
        broken.is_empty(),
        "invariants broken by the run: {broken:?}"
    );
    println!("stored invariants after the run: all hold");
    Ok(())
}

/// A backend's time so far, from `/proc/<pid>/schedstat`.
#[derive(Clone, Copy)]
struct BackendTime {
    /// On a CPU.
    on_cpu: Duration,
    /// Runnable, but waiting for a CPU (the other processes on the machine had them).
    waiting: Duration,
}

/// Each session of the exchange's database and its backend's time so far: empty when PostgreSQL
/// runs on another machine. With the run's length it gives the share of the run the committer's
/// backend was on a CPU and waiting for one, and its CPU time a bid.
fn backends_cpu(exchange: &TestExchange) -> anyhow::Result<Vec<(i32, BackendTime)>> {
    use diesel::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Backend {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        pid: i32,
    }
    let backends: Vec<Backend> = diesel::sql_query(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .load(&mut exchange.sql())?;
    Ok(backends
        .into_iter()
        .filter_map(|backend| {
            let stat = std::fs::read_to_string(format!("/proc/{}/schedstat", backend.pid)).ok()?;
            let mut fields = stat.split_whitespace().map(str::parse::<u64>);
            let on_cpu = Duration::from_nanos(fields.next()?.ok()?);
            let waiting = Duration::from_nanos(fields.next()?.ok()?);
            Some((backend.pid, BackendTime { on_cpu, waiting }))
        })
        .collect())
}

/// The backend that used the most CPU time between two readings of [`backends_cpu`], and its
/// time in between.
fn busiest(
    before: &[(i32, BackendTime)],
    after: &[(i32, BackendTime)],
) -> Option<(i32, BackendTime)> {
    after
        .iter()
        .filter_map(|(pid, now)| {
            let (_, was) = before.iter().find(|(earlier, _)| earlier == pid)?;
            let between = BackendTime {
                on_cpu: now.on_cpu.saturating_sub(was.on_cpu),
                waiting: now.waiting.saturating_sub(was.waiting),
            };
            Some((*pid, between))
        })
        .max_by_key(|(_, between)| between.on_cpu)
}

/// PostgreSQL's single-row insert rate with `clients` clients: pgbench's line, and its tps.
fn pgbench(database_url: &str, clients: usize, seconds: u64) -> anyhow::Result<(String, f64)> {
    use diesel::RunQueryDsl;
    let mut connection = <diesel::PgConnection as diesel::Connection>::establish(database_url)?;
    diesel::sql_query("CREATE TABLE IF NOT EXISTS pgbench_single_row (id bigserial PRIMARY KEY, value integer NOT NULL, at timestamptz NOT NULL DEFAULT now())")
        .execute(&mut connection)?;
    let script = std::env::temp_dir().join(format!("suanli-pgbench-{}.sql", std::process::id()));
    std::fs::write(
        &script,
        "INSERT INTO pgbench_single_row (value) VALUES (1);\n",
    )?;
    let pgbench = suanli_server::pg_private::find_bin_dir()?.join("pgbench");
    let output = std::process::Command::new(pgbench)
        .args([
            "-n",
            "-c",
            &clients.to_string(),
            "-j",
            "2",
            "-T",
            &seconds.to_string(),
            "-f",
        ])
        .arg(&script)
        .arg(database_url)
        .output()?;
    let _ = std::fs::remove_file(&script);
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text
        .lines()
        .find(|line| line.starts_with("tps"))
        .ok_or_else(|| anyhow::anyhow!("pgbench printed no tps: {text}"))?
        .to_owned();
    // "tps = 19234.5 (without initial connection time)"
    let tps = line
        .split_whitespace()
        .nth(2)
        .and_then(|tps| tps.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("pgbench's tps: {line}"))?;
    Ok((line, tps))
}

/// Peak resident memory of this process (server and client together), from /proc.
fn peak_rss_kib() -> u64 {
    proc_status_kib("VmHWM:")
}

/// A `kB` figure of /proc/self/status (Linux only: a benchmark that cannot read it stops rather
/// than print 0).
fn proc_status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with(field))
                .and_then(|line| line.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or_else(|| panic!("/proc/self/status has no {field} figure"))
}

/// Streams an export of `rows` contracts (made directly in SQL) and reports time and peak memory.
async fn export(rows: u64) -> anyhow::Result<()> {
    use diesel::RunQueryDsl;
    let exchange = TestExchange::start().await;
    let (_, provider) = exchange
        .participant(ParticipantKind::Provider, "Export provider")
        .await;
    let (_, buyer) = exchange.funded_buyer("Export buyer", "1000000").await;
    let (_, regulator) = exchange
        .participant(ParticipantKind::Regulator, "Export regulator")
        .await;
    provider
        .place_offer(&new_offer("guian", SKU, 10, window(1, 10), "10"))
        .await?;
    let template = buyer
        .place_bid(&new_bid(SKU, 1, window(2, 2), "10"))
        .await?
        .contracts
        .remove(0);
    let mut connection = exchange.sql();
    diesel::sql_query(format!(
        "INSERT INTO contracts (id, bid_id, offer_id, buyer_id, provider_id, hub, cluster, sku, units, window_start, \
         window_end, hours, unit_price, notional, levy_bps, maker, status, decisions, created_at) \
         SELECT gen_random_uuid(), bid_id, offer_id, buyer_id, provider_id, hub, cluster, sku, units, window_start, \
         window_end, hours, unit_price, notional, levy_bps, maker, status, decisions, created_at \
         FROM contracts, generate_series(2, {rows}) WHERE id = '{}'",
        template.id
    ))
    .execute(&mut connection)?;
    let before = peak_rss_kib();
    for format in [
        suanli_sdk::ExportFormat::Csv,
        suanli_sdk::ExportFormat::JsonLines,
    ] {
        let started = Instant::now();
        let bytes = regulator
            .audit_export(
                format,
                &suanli_sdk::AuditFilter::default(),
                &mut std::io::sink(),
                |_| {},
            )
            .await?;
        println!(
            "export {format:?} of {rows} contracts: {bytes} bytes in {:.2} s; peak RSS of server+client {} MiB (before the export {} MiB)",
            started.elapsed().as_secs_f64(),
            peak_rss_kib() / 1024,
            before / 1024,
        );
    }
    Ok(())
}

/// Settles `contracts` contracts from `connections` concurrent clients; reports settlements/s.
async fn settle(contracts: usize, connections: usize) -> anyhow::Result<()> {
    let exchange = TestExchange::start().await;
    let (_, provider) = exchange
        .participant(ParticipantKind::Provider, "Settling provider")
        .await;
    let (_, buyer) = exchange.funded_buyer("Settling buyer", "1000000000").await;
    provider
        .place_offer(&new_offer("guian", SKU, 1_000_000, window(0, 10), "10"))
        .await?;
    let mut ids = Vec::with_capacity(contracts);
    let chunk = 64;
    while ids.len() < contracts {
        let placing = (0..chunk.min(contracts - ids.len())).map(|_| {
            let buyer = buyer.clone();
            async move { buyer.place_bid(&new_bid(SKU, 1, window(0, 2), "10")).await }
        });
        for placed in futures_util::future::join_all(placing).await {
            ids.push(placed?.contracts[0].id);
        }
    }
    let queue = Arc::new(std::sync::Mutex::new(ids));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (queue, provider) = (queue.clone(), provider.clone());
        tasks.push(actix_web::rt::spawn(async move {
            loop {
                let Some(id) = queue.lock().expect("queue").pop() else {
                    return Ok::<_, suanli_sdk::Error>(());
                };
                let delivery = suanli_sdk::NewDelivery {
                    delivered_unit_hours: 1,
                    idempotency_key: id.to_string(),
                };
                provider.report_delivery(id, &delivery).await?;
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let rate = contracts as f64 / elapsed;
    println!(
        "settled {contracts} contracts from {connections} connections in {elapsed:.2} s: {rate:.0} settlements/s"
    );
    invariants_hold(&exchange)?;
    // PostgreSQL's own rate on the same server, right after the settlements.
    let (line, tps) = pgbench(&exchange.database_url, connections, 10)?;
    println!("pgbench, {connections} clients, single-row INSERT, 10 s: {line}");
    println!("ratio: settlements/s ÷ pgbench tps = {:.3}", rate / tps);
    exchange.stop().await;
    Ok(())
}

/// A looping pricing policy active in Ningxia with 100 offers resting there; `attackers` clients
/// bid into Ningxia without pause while one client lists an offer in Beijing and bids against it,
/// over and over. Reports the Beijing pair's latency and the worst single order in Ningxia.
async fn hostile(seconds: u64, attackers: usize, budget: &[u64]) -> anyhow::Result<()> {
    let exchange = TestExchange::start_with(|config| {
        if let [fuel, order_ms, batch_ms] = budget {
            config.policy_hub_order_fuel_max = *fuel;
            config.policy_hub_order_wall_ms_max = *order_ms;
            config.policy_hub_batch_wall_ms_max = *batch_ms;
        }
    })
    .await;
    let config = &exchange.config;
    println!(
        "hub budget: {} fuel and {} ms per order, {} ms per batch; evaluation limits {} fuel, {} ms",
        config.policy_hub_order_fuel_max,
        config.policy_hub_order_wall_ms_max,
        config.policy_hub_batch_wall_ms_max,
        config.policy_fuel_max,
        config.policy_deadline_ms
    );
    let operator = exchange
        .participant_from(&suanli_sdk::NewParticipant {
            name: "Ningxia operator".into(),
            kind: ParticipantKind::HubOperator,
            provider_type: None,
            hub: Some("nx".into()),
        })
        .await
        .1;
    let stored: serde_json::Value = operator
        .request(reqwest::Method::POST, "/v1/hubs/nx/policies?kind=pricing")
        .header("Content-Type", "application/wasm")
        .body(suanli_tests::policy_component("hostile"))
        .send()
        .await?
        .json()
        .await?;
    let digest = stored["digest"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("upload refused: {stored}"))?;
    operator
        .request(
            reqwest::Method::POST,
            &format!("/v1/hubs/nx/policies/{digest}/activate"),
        )
        .send()
        .await?
        .error_for_status()?;
    let (_, provider) = exchange
        .participant(ParticipantKind::Provider, "Ningxia provider")
        .await;
    let mut looping = new_offer("zhongwei", SKU, 1, window(1, 48), "10");
    looping.attributes = Some(
        serde_json::json!({"mode": "loop"})
            .as_object()
            .cloned()
            .unwrap_or_default(),
    );
    for n in 0..100 {
        provider
            .place_offer(&suanli_sdk::NewOffer {
                idempotency_key: format!("loop-{n}"),
                ..looping.clone()
            })
            .await?;
    }
    let (_, victim_provider) = exchange
        .participant(ParticipantKind::Provider, "Beijing provider")
        .await;
    let (_, victim) = exchange.funded_buyer("Beijing buyer", "1000000000").await;

    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for n in 0..attackers {
        let attacker = exchange
            .funded_buyer(&format!("Ningxia bidder {n}"), "1000000000")
            .await
            .1;
        let stop = stop.clone();
        tasks.push(actix_web::rt::spawn(async move {
            let mut latencies = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let bid = suanli_sdk::NewBid {
                    hubs: Some(vec!["nx".into()]),
                    ..new_bid(SKU, 1, window(2, 2), "12")
                };
                let sent = Instant::now();
                if attacker.place_bid(&bid).await.is_ok() {
                    latencies.push(sent.elapsed());
                }
            }
            latencies
        }));
    }
    let started = Instant::now();
    let mut pairs = Vec::new();
    let mut orders = Vec::new();
    while started.elapsed() < Duration::from_secs(seconds) {
        let sent = Instant::now();
        let hours = window(2, 2);
        victim_provider
            .place_offer(&new_offer("zhangjiakou", SKU, 1, hours, "10"))
            .await?;
        orders.push(sent.elapsed());
        let bid_sent = Instant::now();
        let bid = suanli_sdk::NewBid {
            hubs: Some(vec!["bth".into()]),
            ..new_bid(SKU, 1, hours, "12")
        };
        let placed = victim.place_bid(&bid).await?;
        if placed.contracts.len() != 1 {
            let open = victim_provider
                .offers(Some(suanli_sdk::OrderStatus::Open), None, 10)
                .await?;
            anyhow::bail!(
                "the Beijing pair did not trade after {} pairs: {placed:?}; open offers: {open:?}",
                pairs.len()
            );
        }
        orders.push(bid_sent.elapsed());
        pairs.push(sent.elapsed());
    }
    stop.store(true, Ordering::Relaxed);
    let mut hostile = Vec::new();
    for task in tasks {
        hostile.extend(task.await?);
    }
    report(
        &format!(
            "unrelated offer + crossing bid in bth, {} pairs with {attackers} attackers:",
            pairs.len()
        ),
        &mut pairs,
    );
    report("  each of those orders alone:", &mut orders);
    report(
        &format!("bids into the looping hub, {} orders:", hostile.len()),
        &mut hostile,
    );
    Ok(())
}

/// Prints `what` with the p50, p99 and largest of `latencies`.
fn report(what: &str, latencies: &mut [Duration]) {
    latencies.sort();
    let at = |q: f64| {
        let index = ((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1));
        latencies
            .get(index)
            .copied()
            .unwrap_or_default()
            .as_secs_f64()
            * 1e3
    };
    let max = latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3;
    println!(
        "{what} p50 {:.1} ms, p99 {:.1} ms, max {max:.1} ms",
        at(0.5),
        at(0.99)
    );
}

/// Bids from every buyer, one at a time each, for `seconds`: (accepted, failed, latencies).
async fn bid_load(buyers: &[suanli_sdk::Client], seconds: u64) -> (u64, u64, Vec<Duration>) {
    let stop = Arc::new(AtomicBool::new(false));
    let (accepted, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut tasks = Vec::new();
    for (index, buyer) in buyers.iter().cloned().enumerate() {
        let (stop, accepted, failed) = (stop.clone(), accepted.clone(), failed.clone());
        tasks.push(actix_web::rt::spawn(async move {
            let mut latencies = Vec::new();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let limit = if (n + index as u64).is_multiple_of(2) {
                    "10.5"
                } else {
                    "9"
                };
                let sent = Instant::now();
                match buyer.place_bid(&new_bid(SKU, 1, window(2, 4), limit)).await {
                    Ok(_) => {
                        accepted.fetch_add(1, Ordering::Relaxed);
                        latencies.push(sent.elapsed());
                    }
                    Err(_) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            latencies
        }));
    }
    actix_web::rt::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.unwrap_or_default());
    }
    latencies.sort();
    (
        accepted.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
        latencies,
    )
}

/// What one raw market stream subscriber saw: events, bytes, and whether it was cut off.
#[derive(Default)]
struct Seen {
    events: u64,
    bytes: u64,
    cut_off: bool,
}

/// The bid load without subscribers, then with `subscribers` market stream subscribers (plain
/// TCP readers, so that the clients cost the machine little) reading everything.
async fn stream_fan_out(
    seconds: u64,
    connections: usize,
    subscribers: usize,
) -> anyhow::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (exchange, buyers) = bidding_exchange(connections, |config| {
        config.stream_subscribers_max = subscribers.max(1);
    })
    .await?;
    let rate = |accepted: u64| accepted as f64 / seconds as f64;
    let percentile = |latencies: &[Duration], p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };

    let (accepted, failed, latencies) = bid_load(&buyers, seconds).await;
    println!(
        "without subscribers: {:.0} bids/s accepted ({failed} failed), p50 {:?} p99 {:?}",
        rate(accepted),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99)
    );

    let address = exchange
        .anonymous
        .base_url()
        .trim_start_matches("http://")
        .to_owned();
    let stop = Arc::new(AtomicBool::new(false));
    let mut readers = Vec::new();
    for _ in 0..subscribers {
        let mut socket = tokio::net::TcpStream::connect(&address).await?;
        socket
            .write_all(
                format!("GET /v1/market/stream HTTP/1.1\r\nhost: {address}\r\n\r\n").as_bytes(),
            )
            .await?;
        let stop = stop.clone();
        readers.push(actix_web::rt::spawn(async move {
            let mut seen = Seen::default();
            let mut buffer = vec![0u8; 64 * 1024];
            while !stop.load(Ordering::Relaxed) {
                let read = match tokio::time::timeout(
                    Duration::from_millis(200),
                    socket.read(&mut buffer),
                )
                .await
                {
                    Ok(Ok(0)) | Ok(Err(_)) => break,
                    Ok(Ok(read)) => read,
                    Err(_) => continue,
                };
                let chunk = &buffer[..read];
                seen.bytes += read as u64;
                seen.events += chunk.windows(7).filter(|w| w == b"event: ").count() as u64;
                seen.cut_off |= chunk.windows(9).any(|w| w == b"(cut off)");
            }
            seen
        }));
    }
    while exchange.state.exchange.feed().subscribers() < subscribers {
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    let first = exchange.count("SELECT coalesce(max(id), 0) FROM market_events");
    let (accepted, failed, latencies) = bid_load(&buyers, seconds).await;
    let last = exchange.count("SELECT coalesce(max(id), 0) FROM market_events");
    let published = exchange.count(&format!(
        "SELECT count(*) FROM market_events WHERE id > {first} AND id <= {last}"
    ));
    // Let the subscribers read what is still on its way, then stop them.
    actix_web::rt::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    let mut seen = Vec::new();
    for reader in readers {
        seen.push(reader.await?);
    }
    let events: Vec<u64> = seen.iter().map(|seen| seen.events).collect();
    println!(
        "with {subscribers} subscribers: {:.0} bids/s accepted ({failed} failed), p50 {:?} p99 {:?}; \
         {published} events published, per subscriber min {} max {} received, {} cut off, {:.1} MiB sent in all",
        rate(accepted),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        events.iter().min().copied().unwrap_or(0),
        events.iter().max().copied().unwrap_or(0),
        seen.iter().filter(|seen| seen.cut_off).count(),
        seen.iter().map(|seen| seen.bytes).sum::<u64>() as f64 / (1 << 20) as f64,
    );
    println!(
        "server peak RSS (with the load generator): {} MiB",
        peak_rss_kib() / 1024
    );
    Ok(())
}

/// The leader SIGKILLed `kills` times under eight retrying clients on three nodes.
async fn failover(kills: usize, lease_timeout_s: u64) -> anyhow::Result<()> {
    let server = std::env::current_exe()?.with_file_name("suanli-test-server");
    anyhow::ensure!(
        server.exists(),
        "{} is missing: build it first (cargo build --release -p suanli-tests --bins)",
        server.display()
    );
    let mut cluster = suanli_tests::cluster::Cluster::start(
        server.to_str().expect("a UTF-8 path"),
        3,
        lease_timeout_s,
    );
    let report = suanli_tests::cluster::kill_leaders_under_load(&mut cluster, kills, 40).await;
    let mut takeovers: Vec<f64> = report
        .takeovers
        .iter()
        .map(|took| took.as_secs_f64() * 1000.0)
        .collect();
    for (kill, took) in takeovers.iter().enumerate() {
        println!(
            "kill {:>2}: another node led after {took:>7.0} ms",
            kill + 1
        );
    }
    takeovers.sort_by(f64::total_cmp);
    let median = takeovers.get(takeovers.len() / 2).copied().unwrap_or(0.0);
    println!(
        "{kills} kills, lease timeout {lease_timeout_s} s: takeover min {:.0} ms, median {median:.0} ms, max {:.0} ms",
        takeovers.first().copied().unwrap_or(0.0),
        takeovers.last().copied().unwrap_or(0.0),
    );
    println!(
        "orders acknowledged {}, lost {}, duplicated {}, sent again after a failure {}",
        report.acknowledged, report.lost, report.duplicates, report.retries
    );
    Ok(())
}

/// The bid load against the leader, then through a follower on the same database.
async fn forwarded(seconds: u64, connections: usize) -> anyhow::Result<()> {
    let (leader, buyers) = bidding_exchange(connections, |_| {}).await?;
    let follower = leader.start_another(|_| {}).await;
    anyhow::ensure!(
        follower.anonymous.readyz().await?.writer == "follower",
        "the second node should follow"
    );
    let through_follower: Vec<suanli_sdk::Client> = buyers
        .iter()
        .map(|buyer| {
            suanli_sdk::Client::new(follower.anonymous.base_url().to_owned())
                .with_token(buyer.bearer_token().expect("logged in").to_owned())
        })
        .collect();
    let mut rates = Vec::new();
    for (to, clients) in [("the leader", &buyers), ("a follower", &through_follower)] {
        let started = Instant::now();
        let (accepted, failed, latencies) = bid_load(clients, seconds).await;
        let rate = accepted as f64 / started.elapsed().as_secs_f64();
        let percentile = |p: f64| {
            latencies
                .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
                .copied()
                .unwrap_or_default()
        };
        println!(
            "{connections} connections to {to}, {seconds} s: {rate:.0} bids/s accepted ({failed} failed), latency p50 {:?} p99 {:?}",
            percentile(0.50),
            percentile(0.99)
        );
        rates.push(rate);
    }
    println!("through a follower ÷ direct = {:.3}", rates[1] / rates[0]);
    Ok(())
}
