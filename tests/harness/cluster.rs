//! Several exchange nodes on one database, as separate `suanli-server serve` processes on
//! 127.0.0.1 (so that a test can SIGKILL or SIGSTOP one), and the failover run that the fault
//! test and `suanli-load failover` share: clients trading through every node while the leader is
//! killed again and again.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use diesel::RunQueryDsl;
use suanli_sdk::{Client, NewDeposit, NewParticipant, ParticipantKind, ProviderType};
use uuid::Uuid;

use crate::{ServerProcess, TestDatabase, new_bid, new_offer, window};

/// The SKU the failover run trades.
const SKU: &str = "ai.nvidia-h20";

/// Nodes of one exchange; a killed node's place holds `None` until it is started again.
pub struct Cluster {
    /// Stopped first when the cluster is dropped (fields drop in this order), while their database
    /// is still there.
    pub nodes: Vec<Option<ServerProcess>>,
    /// The database, when the cluster made it on the test PostgreSQL server (dropped with it).
    pub database: Option<TestDatabase>,
    pub database_url: String,
    pub admin_key: String,
    server: String,
    env: Vec<(&'static str, String)>,
}

impl Cluster {
    /// Starts `nodes` nodes of `server` (the `suanli-test-server` binary) on a fresh database,
    /// one after the other: the first leads.
    pub fn start(server: &str, nodes: usize, lease_timeout_s: u64) -> Self {
        Self::start_with(server, nodes, lease_timeout_s, &[])
    }

    /// [`Cluster::start`] with more settings for every node.
    pub fn start_with(
        server: &str,
        nodes: usize,
        lease_timeout_s: u64,
        settings: &[(&'static str, &str)],
    ) -> Self {
        let database = TestDatabase::create();
        let url = database.url.clone();
        let mut cluster = Self::start_on(server, &url, nodes, lease_timeout_s, settings);
        cluster.database = Some(database);
        cluster
    }

    /// Nodes on the database at `database_url` (which the caller keeps).
    pub fn start_on(
        server: &str,
        database_url: &str,
        nodes: usize,
        lease_timeout_s: u64,
        settings: &[(&'static str, &str)],
    ) -> Self {
        let admin_key = format!("admin-{}", Uuid::new_v4());
        let mut env = vec![
            ("DATABASE_URL", database_url.to_owned()),
            ("SUANLI_ADMIN_API_KEY", admin_key.clone()),
            ("SUANLI_JWT_SECRET", "cluster-test-secret".to_owned()),
            ("SUANLI_LEASE_TIMEOUT_S", lease_timeout_s.to_string()),
            ("SUANLI_FORWARD_TIMEOUT_MS", "3000".to_owned()),
            // Orders matched one at a time on a busy machine may wait; none should be refused.
            ("SUANLI_ORDER_COMMAND_DEADLINE_MS", "30000".to_owned()),
            // The book check sweeps every resting order with one order per side.
            ("SUANLI_MATCH_CANDIDATES_MAX", "100000".to_owned()),
        ];
        env.extend(
            settings
                .iter()
                .map(|(name, value)| (*name, (*value).to_owned())),
        );
        let mut cluster = Cluster {
            database: None,
            database_url: database_url.to_owned(),
            admin_key,
            nodes: Vec::new(),
            server: server.to_owned(),
            env,
        };
        for _ in 0..nodes {
            let node = ServerProcess::spawn(&cluster.server, &cluster.env);
            cluster.nodes.push(Some(node));
        }
        cluster
    }

    /// Like [`Cluster::start`], but every node is started at the same moment (as a deployment
    /// starts them), on a database no node has prepared yet.
    pub fn start_together(server: &str, nodes: usize, lease_timeout_s: u64) -> Self {
        let mut cluster = Self::start_with(server, 0, lease_timeout_s, &[]);
        let started: Vec<ServerProcess> = std::thread::scope(|scope| {
            let starting: Vec<_> = (0..nodes)
                .map(|_| scope.spawn(|| ServerProcess::spawn(&cluster.server, &cluster.env)))
                .collect();
            starting
                .into_iter()
                .map(|node| node.join().expect("a node starts"))
                .collect()
        });
        cluster.nodes = started.into_iter().map(Some).collect();
        cluster
    }

    /// Starts a node again in the place of `index`.
    pub fn restart(&mut self, index: usize) {
        self.nodes[index] = Some(ServerProcess::spawn(&self.server, &self.env));
    }

    /// The base URLs of the running nodes.
    pub fn urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .flatten()
            .map(|node| node.base_url.clone())
            .collect()
    }

    /// The node that says it leads (`/readyz`), if one does. A node that does not answer within
    /// half a second (a paused one) is not asked further.
    pub async fn leader(&self) -> Option<usize> {
        for (index, node) in self.nodes.iter().enumerate() {
            let Some(node) = node else { continue };
            if role(&node.base_url).await.as_deref() == Some("leader") {
                return Some(index);
            }
        }
        None
    }

    /// Waits (at most `patience`) until some node leads; which one, and how long that took.
    pub async fn until_leader(&self, patience: Duration) -> (usize, Duration) {
        let started = Instant::now();
        loop {
            if let Some(index) = self.leader().await {
                return (index, started.elapsed());
            }
            assert!(
                started.elapsed() < patience,
                "no node took the matching lease within {patience:?}"
            );
            actix_web::rt::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// A participant made by the admin through node `via`, funded if a buyer; its API key.
    pub async fn participant(&self, via: &str, name: &str, kind: ParticipantKind) -> String {
        let admin = Client::new(via.to_owned())
            .login(&self.admin_key)
            .await
            .expect("admin login");
        let created = admin
            .create_participant(&NewParticipant {
                name: name.into(),
                kind,
                provider_type: (kind == ParticipantKind::Provider)
                    .then_some(ProviderType::TelecomOperator),
                hub: None,
            })
            .await
            .expect("create a participant");
        if kind == ParticipantKind::Buyer {
            let deposit = NewDeposit {
                amount: "100000000".parse().expect("an amount"),
                reference: "wire".into(),
                idempotency_key: name.into(),
            };
            admin
                .deposit(created.participant.id, &deposit)
                .await
                .expect("a deposit");
        }
        created.api_key
    }
}

/// What a failover run saw.
#[derive(Debug)]
pub struct FailoverReport {
    /// From each SIGKILL of the leader until another node said it leads (or, for a database
    /// restart, until an order sent after it was acknowledged).
    pub takeovers: Vec<Duration>,
    /// Orders the clients were told were accepted.
    pub acknowledged: usize,
    /// Acknowledged orders or contracts missing afterwards.
    pub lost: usize,
    /// Orders stored twice for one idempotency key, or stored under another id than the one
    /// acknowledged.
    pub duplicates: usize,
    /// Orders sent again (after a 503 or a connection that failed) with the same key.
    pub retries: usize,
}

/// One order a client placed, and what it was told.
struct Sent {
    /// When the client first sent it.
    started: Instant,
    key: String,
    side: suanli_sdk::Side,
    acknowledged: Option<(Uuid, Vec<Uuid>)>,
}

/// What happens to the cluster between stretches of trading.
pub enum Disruption<'a> {
    /// SIGKILL the leader (and start a node again in its place, as a follower).
    KillLeader,
    /// Restart the PostgreSQL server under the nodes (`pg_ctl restart -m fast`).
    RestartDatabase(&'a suanli_server::pg_private::PrivateCluster),
}

/// [`trade_through`] with the leader SIGKILLed `kills` times.
pub async fn kill_leaders_under_load(
    cluster: &mut Cluster,
    kills: usize,
    orders_between_kills: usize,
) -> FailoverReport {
    trade_through(cluster, Disruption::KillLeader, kills, orders_between_kills).await
}

/// Eight clients (two per trader) place offers and bids through every node, each retrying a
/// failed order with the same idempotency key on the next node; every `orders_between`
/// acknowledged orders `disruption` strikes, `rounds` times, and the time until a node leads
/// again is measured. Then every acknowledged order and contract is looked up, every stored
/// order is matched to its key, the audit chain and invariants are checked, and the leader's book
/// is swept to show it is the stored one.
pub async fn trade_through(
    cluster: &mut Cluster,
    disruption: Disruption<'_>,
    rounds: usize,
    orders_between_kills: usize,
) -> FailoverReport {
    let (leader, _) = cluster.until_leader(Duration::from_secs(60)).await;
    let via = cluster.nodes[leader]
        .as_ref()
        .expect("running")
        .base_url
        .clone();
    let mut traders = Vec::new();
    for (name, kind) in [
        ("provider-a", ParticipantKind::Provider),
        ("provider-b", ParticipantKind::Provider),
        ("buyer-a", ParticipantKind::Buyer),
        ("buyer-b", ParticipantKind::Buyer),
    ] {
        let key = cluster.participant(&via, name, kind).await;
        let token = Client::new(via.clone())
            .login(&key)
            .await
            .expect("login")
            .bearer_token()
            .expect("a token")
            .to_owned();
        traders.push((kind, token));
    }
    let regulator_key = cluster
        .participant(&via, "regulator", ParticipantKind::Regulator)
        .await;

    let urls = Arc::new(std::sync::RwLock::new(cluster.urls()));
    let stop = Arc::new(AtomicBool::new(false));
    let (sent_tx, mut sent_rx) = tokio::sync::mpsc::unbounded_channel::<(Sent, usize)>();
    let mut generators = Vec::new();
    for generator in 0..8usize {
        let (kind, token) = traders[generator % 4].clone();
        let (urls, stop, sent_tx) = (urls.clone(), stop.clone(), sent_tx.clone());
        generators.push(actix_web::rt::spawn(async move {
            let mut n = 0usize;
            while !stop.load(Ordering::SeqCst) {
                n += 1;
                let crossing = n.is_multiple_of(3);
                let quantity = 1 + (n % 3) as u32;
                let started = Instant::now();
                let (sent, retries) = if kind == ParticipantKind::Provider {
                    let ask = if crossing {
                        "10".to_owned()
                    } else {
                        (11 + n % 5).to_string()
                    };
                    let cluster_name = if generator % 2 == 0 {
                        "qingyang"
                    } else {
                        "zhongwei"
                    };
                    let offer = new_offer(cluster_name, SKU, quantity, window(1, 8), &ask);
                    let (placed, retries) = retrying(&urls, &token, generator, |client| {
                        let offer = offer.clone();
                        async move { client.place_offer(&offer).await }
                    })
                    .await;
                    let sent = Sent {
                        started,
                        key: offer.idempotency_key.clone(),
                        side: suanli_sdk::Side::Offer,
                        acknowledged: placed.map(|placed| {
                            (
                                placed.offer.id,
                                placed.contracts.iter().map(|c| c.id).collect(),
                            )
                        }),
                    };
                    (sent, retries)
                } else {
                    let limit = if crossing {
                        "10".to_owned()
                    } else {
                        (5 + n % 5).to_string()
                    };
                    let bid = new_bid(SKU, quantity, window(2, 4), &limit);
                    let (placed, retries) = retrying(&urls, &token, generator, |client| {
                        let bid = bid.clone();
                        async move { client.place_bid(&bid).await }
                    })
                    .await;
                    let sent = Sent {
                        started,
                        key: bid.idempotency_key.clone(),
                        side: suanli_sdk::Side::Bid,
                        acknowledged: placed.map(|placed| {
                            (
                                placed.bid.id,
                                placed.contracts.iter().map(|c| c.id).collect(),
                            )
                        }),
                    };
                    (sent, retries)
                };
                if sent_tx.send((sent, retries)).is_err() {
                    return;
                }
            }
        }));
    }
    drop(sent_tx);

    let mut sent = Vec::new();
    let mut retries = 0;
    let mut takeovers = Vec::new();
    let mut acknowledged = 0usize;
    for _ in 0..rounds {
        let target = acknowledged + orders_between_kills;
        while acknowledged < target {
            let (order, retried) = sent_rx.recv().await.expect("the clients run");
            acknowledged += usize::from(order.acknowledged.is_some());
            retries += retried;
            sent.push(order);
        }
        let (leader, _) = cluster.until_leader(Duration::from_secs(60)).await;
        let struck = Instant::now();
        match disruption {
            Disruption::KillLeader => {
                cluster.nodes[leader].as_mut().expect("running").kill();
                cluster.nodes[leader] = None;
                cluster.until_leader(Duration::from_secs(60)).await;
                takeovers.push(struck.elapsed());
                cluster.restart(leader);
                *urls.write().expect("urls") = cluster.urls();
            }
            Disruption::RestartDatabase(database) => {
                database.restart().expect("restart PostgreSQL");
                // Recovered once an order sent after the restart is acknowledged.
                loop {
                    let (order, retried) = sent_rx.recv().await.expect("the clients run");
                    let recovered = order.started > struck && order.acknowledged.is_some();
                    acknowledged += usize::from(order.acknowledged.is_some());
                    retries += retried;
                    sent.push(order);
                    if recovered {
                        takeovers.push(struck.elapsed());
                        break;
                    }
                }
            }
        }
    }
    // A last stretch of trading under the last leader, then the clients stop.
    let target = acknowledged + orders_between_kills;
    while acknowledged < target {
        let (order, retried) = sent_rx.recv().await.expect("the clients run");
        acknowledged += usize::from(order.acknowledged.is_some());
        retries += retried;
        sent.push(order);
    }
    stop.store(true, Ordering::SeqCst);
    for generator in generators {
        generator.await.expect("a client task");
    }
    while let Some((order, retried)) = sent_rx.recv().await {
        retries += retried;
        sent.push(order);
    }

    let (leader, _) = cluster.until_leader(Duration::from_secs(60)).await;
    let via = cluster.nodes[leader]
        .as_ref()
        .expect("running")
        .base_url
        .clone();
    let regulator = Client::new(via.clone())
        .login(&regulator_key)
        .await
        .expect("regulator login");
    let mut lost = 0;
    let mut contracts = HashSet::new();
    for order in &sent {
        let Some((id, made)) = &order.acknowledged else {
            continue;
        };
        let found = match order.side {
            suanli_sdk::Side::Offer => regulator.offer(*id).await.is_ok(),
            suanli_sdk::Side::Bid => regulator.bid(*id).await.is_ok(),
        };
        lost += usize::from(!found);
        contracts.extend(made.iter().copied());
    }
    for contract in &contracts {
        lost += usize::from(regulator.contract(*contract).await.is_err());
    }
    assert!(
        regulator.audit_verify().await.expect("verify").ok,
        "the audit chain and the invariants hold"
    );

    // Every stored order is one the clients sent, once per key, under the id acknowledged.
    let mut connection = diesel::Connection::establish(&cluster.database_url)
        .map(|connection: diesel::PgConnection| connection)
        .expect("connect to the cluster's database");
    #[derive(diesel::QueryableByName)]
    struct Stored {
        #[diesel(sql_type = diesel::sql_types::Uuid)]
        id: Uuid,
        #[diesel(sql_type = diesel::sql_types::Text)]
        idempotency_key: String,
    }
    let stored: Vec<Stored> = diesel::sql_query(
        "SELECT id, idempotency_key FROM offers UNION ALL SELECT id, idempotency_key FROM bids",
    )
    .load(&mut connection)
    .expect("read the orders");
    let mut by_key: HashMap<&str, Vec<Uuid>> = HashMap::new();
    for row in &stored {
        by_key
            .entry(row.idempotency_key.as_str())
            .or_default()
            .push(row.id);
    }
    let sent_keys: HashMap<&str, Option<Uuid>> = sent
        .iter()
        .map(|order| {
            (
                order.key.as_str(),
                order.acknowledged.as_ref().map(|(id, _)| *id),
            )
        })
        .collect();
    let mut duplicates = 0;
    for (key, ids) in &by_key {
        duplicates += ids.len() - 1;
        match sent_keys.get(key) {
            Some(Some(acknowledged)) if ids[0] != *acknowledged => duplicates += 1,
            None => panic!("an order nobody sent is stored: key {key}"),
            _ => {}
        }
    }
    assert_the_leaders_book_is_the_stored_book(cluster, &via).await;
    FailoverReport {
        takeovers,
        acknowledged,
        lost,
        duplicates,
        retries,
    }
}

/// The book the leader holds in memory (rebuilt from the database at each takeover) is the book
/// stored: one offer sized to the resting bids' units, at the lowest price, fills exactly them;
/// one bid sized to the resting offers' units, at a high limit, fills exactly them; then no bid
/// rests and no offer has a unit left.
async fn assert_the_leaders_book_is_the_stored_book(cluster: &Cluster, via: &str) {
    let anonymous = Client::new(via.to_owned());
    let book = anonymous
        .market_book(Some(SKU), None)
        .await
        .expect("the book");
    let resting_bids: u64 = book.bids.iter().map(|level| level.units).sum();
    let resting_offers: u64 = book.offers.iter().map(|level| level.units).sum();
    let seller_key = cluster
        .participant(via, "sweeper-seller", ParticipantKind::Provider)
        .await;
    let buyer_key = cluster
        .participant(via, "sweeper-buyer", ParticipantKind::Buyer)
        .await;
    let units = |contracts: &[suanli_sdk::Contract]| -> u64 {
        contracts
            .iter()
            .map(|contract| u64::from(contract.units))
            .sum()
    };
    if resting_bids > 0 {
        let seller = anonymous.login(&seller_key).await.expect("login");
        let swept = seller
            .place_offer(&new_offer(
                "guian",
                SKU,
                u32::try_from(resting_bids).expect("a quantity"),
                window(1, 8),
                "1",
            ))
            .await
            .expect("the sweeping offer");
        assert_eq!(units(&swept.contracts), resting_bids, "the leader's bids");
    }
    if resting_offers > 0 {
        let buyer = anonymous.login(&buyer_key).await.expect("login");
        let swept = buyer
            .place_bid(&new_bid(
                SKU,
                u32::try_from(resting_offers).expect("a quantity"),
                window(2, 4),
                "100",
            ))
            .await
            .expect("the sweeping bid");
        assert_eq!(
            units(&swept.contracts),
            resting_offers,
            "the leader's offers"
        );
    }
    let book = anonymous
        .market_book(Some(SKU), None)
        .await
        .expect("the book");
    // Offers keep resting for the hours outside the swept window; none has a unit left in it.
    assert!(
        book.bids.is_empty() && book.offers.iter().all(|level| level.units == 0),
        "nothing is left to sell or buy after the sweeps: {book:?}"
    );
}

/// Runs `place` against the nodes in turn, starting at the `start`th, until one accepts it or
/// refuses it for a reason of its own (a 4xx); a 503 or a failed connection moves to the next
/// node with the same request. Gives up (`None`) after 60 s. Also answers how many times it
/// retried.
async fn retrying<T, F, Fut>(
    urls: &std::sync::RwLock<Vec<String>>,
    token: &str,
    start: usize,
    place: F,
) -> (Option<T>, usize)
where
    F: Fn(Client) -> Fut,
    Fut: std::future::Future<Output = Result<T, suanli_sdk::Error>>,
{
    let started = Instant::now();
    for attempt in 0.. {
        let url = {
            let urls = urls.read().expect("urls");
            urls[(start + attempt) % urls.len()].clone()
        };
        match place(Client::new(url).with_token(token.to_owned())).await {
            Ok(placed) => return (Some(placed), attempt),
            Err(error) if error.status().is_some_and(|status| status.as_u16() < 500) => {
                panic!("an order was refused: {error}")
            }
            Err(_) if started.elapsed() > Duration::from_secs(60) => return (None, attempt),
            Err(_) => actix_web::rt::time::sleep(Duration::from_millis(20)).await,
        }
    }
    unreachable!("the loop returns")
}

/// What the node at `base_url` says it is (`leader` or `follower`), if it answers within half a
/// second.
pub async fn role(base_url: &str) -> Option<String> {
    let client = Client::new(base_url.to_owned());
    match actix_web::rt::time::timeout(Duration::from_millis(500), client.readyz()).await {
        Ok(Ok(ready)) => Some(ready.writer),
        _ => None,
    }
}

/// A private PostgreSQL primary and a streaming replica of it, for one test (their own
/// servers, since a test restarts or pauses them); stopped and removed when dropped.
pub struct Replicated {
    pub primary: suanli_server::pg_private::PrivateCluster,
    pub replica: suanli_server::pg_private::PrivateCluster,
    root: std::path::PathBuf,
}

impl Replicated {
    /// The primary (with a database `suanli`) and its replica, under `target/`.
    pub fn start() -> Self {
        use suanli_server::pg_private::{ClientAuth, PrivateCluster};
        let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../target/suanli-test-replicated")
            .join(Uuid::new_v4().simple().to_string());
        // Cleartext over 127.0.0.1, as the tests' own cluster (see `ClientAuth::Cleartext`).
        let primary =
            PrivateCluster::start_with(&root.join("primary"), "suanli", ClientAuth::Cleartext)
                .expect("start a private PostgreSQL primary");
        let replica = primary
            .start_replica(&root.join("replica"))
            .expect("start a streaming replica");
        Replicated {
            primary,
            replica,
            root,
        }
    }
}

impl Drop for Replicated {
    fn drop(&mut self) {
        let _ = self.replica.stop();
        let _ = self.primary.stop();
        for part in ["primary", "replica"] {
            // As root, the clusters may live elsewhere (see `pg_private`); this file says where.
            if let Ok(location) = std::fs::read_to_string(self.root.join(part).join("location")) {
                let _ = std::fs::remove_dir_all(location.trim());
            }
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}
