//! The test harness every whole-system test uses: a fresh PostgreSQL database per test (dropped
//! afterwards), the real server on 127.0.0.1 port 0, and the sdk as the client.
//!
//! The database server is `DATABASE_URL` when set; otherwise a private cluster under
//! `target/suanli-test-pg`, started on first use and reused by later runs (the README's test
//! command stops it at the end).

pub mod browser;
pub mod cluster;

use std::path::PathBuf;
use std::sync::OnceLock;

use actix_web::dev::ServerHandle;
use actix_web::web;
use diesel::{Connection, PgConnection, RunQueryDsl};
use suanli_sdk::{Client, CreatedParticipant, NewParticipant, ParticipantKind, ProviderType};
use suanli_server::app;
use suanli_server::config::Config;
use suanli_server::http::{self, AppState, HttpLimits};
use suanli_server::pg_private::{ClientAuth, PrivateCluster};

/// The URL of a database on the test PostgreSQL server, which may create databases.
fn server_url(database: &str) -> String {
    static BASE: OnceLock<String> = OnceLock::new();
    let base = BASE.get_or_init(|| match std::env::var("DATABASE_URL") {
        Ok(url) => url,
        Err(_) => {
            let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/suanli-test-pg");
            // Cleartext over 127.0.0.1: no OpenSSL in the test process's connections (see
            // `ClientAuth::Cleartext`).
            let cluster = PrivateCluster::start_with(&root, "postgres", ClientAuth::Cleartext)
                .expect("start the private test PostgreSQL");
            cluster.url("postgres")
        }
    });
    with_database(base, database)
}

/// `url` with its database name replaced by `database`.
fn with_database(url: &str, database: &str) -> String {
    let (without_query, query) = match url.split_once('?') {
        Some((head, query)) => (head, format!("?{query}")),
        None => (url, String::new()),
    };
    let authority_end = without_query.find("://").map_or(0, |index| index + 3);
    let base = match without_query[authority_end..].find('/') {
        Some(slash) => &without_query[..authority_end + slash],
        None => without_query,
    };
    format!("{base}/{database}{query}")
}

/// A fresh database on the test PostgreSQL server, dropped when this is dropped.
pub struct TestDatabase {
    pub name: String,
    pub url: String,
}

impl TestDatabase {
    /// Creates an empty database with a unique name (migrations run when a server starts on it).
    pub fn create() -> Self {
        let name = format!("suanli_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin_connection =
            PgConnection::establish(&server_url("postgres")).expect("connect to PostgreSQL");
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut admin_connection)
            .expect("create database");
        TestDatabase {
            url: server_url(&name),
            name,
        }
    }

    /// A direct connection to this database.
    pub fn connect(&self) -> PgConnection {
        PgConnection::establish(&self.url).expect("connect to the test database")
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Ok(mut connection) = PgConnection::establish(&server_url("postgres")) {
            let _ = diesel::sql_query(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&mut connection);
        }
    }
}

/// A running exchange on its own database.
pub struct TestExchange {
    /// A client without a token.
    pub anonymous: Client,
    /// A client logged in as the bootstrap admin.
    pub admin: Client,
    /// The bootstrap admin's API key.
    pub admin_api_key: String,
    /// The configuration the server runs with.
    pub config: Config,
    /// The URL of this test's database.
    pub database_url: String,
    /// The server's shared state, for tests that look behind the API.
    pub state: web::Data<AppState>,
    database: Option<TestDatabase>,
    handle: ServerHandle,
}

impl TestExchange {
    /// A `/metrics` series' value, as the anonymous client reads it. A labelled series
    /// (`name{label="…"}`) appears only once its labels are first used, so it reads 0 until then;
    /// an unlabelled one is always there, and its absence (a misspelt name) fails the test.
    pub async fn metric(&self, series: &str) -> f64 {
        let text = self
            .anonymous
            .request(reqwest::Method::GET, "/metrics")
            .send()
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("the metrics' text");
        let prefix = format!("{series} ");
        text.lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .map(|value| value.trim().parse().expect("a metric's value"))
            .unwrap_or_else(|| {
                assert!(
                    series.contains('{'),
                    "/metrics has no series {series}:\n{text}"
                );
                0.0
            })
    }

    /// An exchange with the test configuration.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// An exchange whose configuration `adjust` may change first.
    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> Self {
        let admin_api_key = format!("test-admin-{}", uuid::Uuid::new_v4());
        let database = TestDatabase::create();
        let mut config = Config::for_tests(database.url.clone());
        config.admin_api_key = Some(admin_api_key.clone());
        adjust(&mut config);
        Self::start_on(database, config, admin_api_key).await
    }

    /// An exchange on the database at `database_url`, which the caller keeps (a test's own
    /// PostgreSQL server), with the test configuration changed by `adjust`.
    pub async fn start_on_url(database_url: &str, adjust: impl FnOnce(&mut Config)) -> Self {
        let admin_api_key = format!("test-admin-{}", uuid::Uuid::new_v4());
        let mut config = Config::for_tests(database_url.to_owned());
        config.admin_api_key = Some(admin_api_key.clone());
        adjust(&mut config);
        Self::start_serving(None, database_url.to_owned(), config, admin_api_key).await
    }

    /// Stops this server as [`TestExchange::stop`] does and starts a new one on the same
    /// database, as after a restart.
    pub async fn restart(self) -> Self {
        self.restart_with(|_| {}).await
    }

    /// Like [`TestExchange::restart`], with the configuration changed by `adjust` first.
    pub async fn restart_with(mut self, adjust: impl FnOnce(&mut Config)) -> Self {
        let database = self.database.take().expect("the database is ours");
        let (mut config, admin_api_key) = (self.config.clone(), self.admin_api_key.clone());
        adjust(&mut config);
        self.stop().await;
        Self::start_on(database, config, admin_api_key).await
    }

    /// Stops this server as `suanli-server serve` stops: requests in flight finish, then
    /// [`AppState::finish`] (the writer, the lease, the last checkpoint), each waited for. For a
    /// process that ends right after (the load benchmarks): dropping only tells them to stop,
    /// and a writer or checkpointer still talking to PostgreSQL while the process exits races the
    /// C libraries' exit handlers (one 10-minute soak ended in `double free or corruption` after
    /// its last figure).
    pub async fn stop(self) {
        http::stop(&self.state, &self.handle, true).await;
        self.state.finish();
    }

    /// Another server on this exchange's database (as a second process would be), with the
    /// same configuration changed by `adjust`. It does not own the database.
    pub async fn start_another(&self, adjust: impl FnOnce(&mut Config)) -> Self {
        let mut config = self.config.clone();
        adjust(&mut config);
        let admin_api_key = config
            .admin_api_key
            .clone()
            .unwrap_or_else(|| self.admin_api_key.clone());
        Self::start_serving(None, self.database_url.clone(), config, admin_api_key).await
    }

    async fn start_on(database: TestDatabase, config: Config, admin_api_key: String) -> Self {
        let database_url = database.url.clone();
        Self::start_serving(Some(database), database_url, config, admin_api_key).await
    }

    async fn start_serving(
        database: Option<TestDatabase>,
        database_url: String,
        config: Config,
        admin_api_key: String,
    ) -> Self {
        let state = app::prepare(&config, &database_url).expect("prepare the exchange");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0");
        let address = listener.local_addr().expect("bound address");
        let limits = HttpLimits::from_config(&config);
        let server = http::server(listener, state.clone(), limits).expect("build the server");
        let handle = server.handle();
        actix_web::rt::spawn(server);
        app::join(&config, &state, address).expect("join the exchange's nodes");

        let anonymous = Client::new(format!("http://{address}"));
        let admin = anonymous.login(&admin_api_key).await.expect("admin login");
        TestExchange {
            anonymous,
            admin,
            admin_api_key,
            config,
            database_url,
            state,
            database,
            handle,
        }
    }

    /// Creates a participant of `kind` (a provider is a compute provider; a hub operator runs
    /// `nx`) and returns it with a client logged in as it.
    pub async fn participant(
        &self,
        kind: ParticipantKind,
        name: &str,
    ) -> (CreatedParticipant, Client) {
        let new = NewParticipant {
            name: name.to_owned(),
            kind,
            provider_type: (kind == ParticipantKind::Provider)
                .then_some(ProviderType::ComputeProvider),
            hub: (kind == ParticipantKind::HubOperator).then(|| "nx".to_owned()),
        };
        self.participant_from(&new).await
    }

    /// Creates the participant `new` and returns it with a client logged in as it.
    pub async fn participant_from(&self, new: &NewParticipant) -> (CreatedParticipant, Client) {
        let created = self
            .admin
            .create_participant(new)
            .await
            .expect("create participant");
        let client = self
            .anonymous
            .login(&created.api_key)
            .await
            .expect("participant login");
        (created, client)
    }

    /// Signs a checkpoint now, as the schedule does every interval; `None` when the log did not
    /// grow since the last one.
    pub fn checkpoint_now(&self) -> Option<suanli_server::checkpoint::Signed> {
        let mut connection = self.state.pool.get().expect("a database connection");
        self.state
            .checkpointer
            .run(&mut connection)
            .expect("the checkpointer runs")
    }

    /// A direct connection to this test's database, for looking behind the API (or tampering).
    pub fn sql(&self) -> PgConnection {
        PgConnection::establish(&self.database_url).expect("connect to the test database")
    }

    /// A buyer with `amount` CNY deposited, and a client logged in as it.
    pub async fn funded_buyer(&self, name: &str, amount: &str) -> (CreatedParticipant, Client) {
        let (buyer, client) = self.participant(ParticipantKind::Buyer, name).await;
        let deposit = suanli_sdk::NewDeposit {
            amount: amount.parse().expect("a decimal amount"),
            reference: format!("opening balance of {name}"),
            idempotency_key: format!("opening-{}", buyer.participant.id),
        };
        self.admin
            .deposit(buyer.participant.id, &deposit)
            .await
            .expect("deposit");
        (buyer, client)
    }

    /// A connection to the PostgreSQL server's `postgres` database, for acts on this test's
    /// database as a whole.
    pub fn server_sql(&self) -> PgConnection {
        PgConnection::establish(&server_url("postgres")).expect("connect to the PostgreSQL server")
    }

    /// A number from `SELECT <expression>` on this test's database.
    pub fn count(&self, query: &str) -> i64 {
        #[derive(diesel::QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let row: Count = diesel::sql_query(format!("SELECT ({query})::bigint AS n"))
            .get_result(&mut self.sql())
            .expect("count query");
        row.n
    }
}

impl Drop for TestExchange {
    fn drop(&mut self) {
        drop(self.handle.stop(false));
        // Its lease keeper and writer stop too (in the background), giving the lease up, and
        // its market feed (which a follower fills from the database).
        self.state.exchange.stop_leading();
        self.state.exchange.feed().close();
    }
}

/// A delivery window of `hours` whole hours starting `from_now_hours` hours after the current
/// hour began (so 1 is the next whole hour).
pub fn window(from_now_hours: i64, hours: i64) -> suanli_sdk::Window {
    use chrono::{DurationRound, TimeDelta, Utc};
    let this_hour = Utc::now()
        .duration_trunc(TimeDelta::hours(1))
        .expect("truncate to the hour");
    let start = this_hour + TimeDelta::hours(from_now_hours);
    suanli_sdk::Window {
        start,
        end: start + TimeDelta::hours(hours),
    }
}

/// An offer of `quantity` units of `sku` in `cluster` at `ask` CNY per unit-hour.
pub fn new_offer(
    cluster: &str,
    sku: &str,
    quantity: u32,
    window: suanli_sdk::Window,
    ask: &str,
) -> suanli_sdk::NewOffer {
    suanli_sdk::NewOffer {
        cluster: cluster.into(),
        sku: sku.into(),
        quantity,
        window,
        ask_price: ask.parse().expect("a decimal price"),
        green_share: 60,
        attributes: None,
        idempotency_key: uuid::Uuid::new_v4().to_string(),
    }
}

/// A GTC bid for `quantity` units of `sku` anywhere, up to `limit` CNY per unit-hour.
pub fn new_bid(
    sku: &str,
    quantity: u32,
    window: suanli_sdk::Window,
    limit: &str,
) -> suanli_sdk::NewBid {
    suanli_sdk::NewBid {
        skus: vec![sku.into()],
        quantity,
        window,
        limit_price: limit.parse().expect("a decimal price"),
        hubs: None,
        data_origin: None,
        max_latency_ms: None,
        min_green_share: None,
        data_class: None,
        time_in_force: None,
        expires_at: None,
        min_fill: None,
        idempotency_key: uuid::Uuid::new_v4().to_string(),
    }
}

/// The exchange running as its own process (the `suanli-test-server` binary, which is the
/// `suanli-server` command line), for tests that must kill it.
pub struct ServerProcess {
    child: std::process::Child,
    /// `http://127.0.0.1:<port>`.
    pub base_url: String,
    /// Every line the process printed on standard output so far.
    pub stdout: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl ServerProcess {
    /// Starts `<binary> serve` with `env` and waits (at most 60 s) until it listens. Pass
    /// `env!("CARGO_BIN_EXE_suanli-test-server")` as `binary` (only tests know that path).
    pub fn spawn(binary: &str, env: &[(&str, String)]) -> Self {
        Self::spawn_command(binary, "serve", env)
    }

    /// Starts `<binary> <subcommand>` (`serve` or `dev`) with `env` and waits until it listens.
    pub fn spawn_command(binary: &str, subcommand: &str, env: &[(&str, String)]) -> Self {
        use std::io::BufRead;
        let mut command = std::process::Command::new(binary);
        command
            .arg(subcommand)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("SUANLI_LISTEN", "127.0.0.1:0")
            .env("RUST_LOG", "warn")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("start the server process");
        let stdout = child.stdout.take().expect("piped stdout");
        let (sender, receiver) = std::sync::mpsc::channel();
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = lines.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if let Some(url) = line.strip_prefix("suanli-server listening on ") {
                    let _ = sender.send(url.trim().to_owned());
                }
                kept.lock().expect("stdout lines").push(line);
            }
        });
        let base_url = receiver
            .recv_timeout(std::time::Duration::from_secs(120))
            .expect("the server starts listening");
        ServerProcess {
            child,
            base_url,
            stdout: lines,
        }
    }

    /// Interrupts the process (SIGINT, as Ctrl-C) and waits for it to finish shutting down.
    pub fn interrupt(&mut self) -> std::process::ExitStatus {
        let status = std::process::Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -INT");
        self.child.wait().expect("wait for the server")
    }

    /// Waits (at most 60 s) until this node says it leads (`/readyz`): a node started after
    /// another was killed leads only once the dead one's matching lease has run out.
    pub async fn until_leading(&self) {
        let client = Client::new(self.base_url.clone());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            if client
                .readyz()
                .await
                .is_ok_and(|ready| ready.writer == "leader")
            {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{} never took the matching lease",
                self.base_url
            );
            actix_web::rt::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// The process id, to look at the server from outside (its memory in `/proc`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the process with SIGKILL, as a crash would, and reaps it.
    pub fn kill(&mut self) {
        self.child.kill().expect("SIGKILL the server");
        self.child.wait().expect("reap the server");
    }
}

impl Drop for ServerProcess {
    /// Asks the server to stop as Ctrl-C would (so a private cluster it runs is stopped too), and
    /// kills it if it has not stopped within 10 seconds.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = std::process::Command::new("kill")
                .args(["-INT", &self.child.id().to_string()])
                .status();
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while std::time::Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::yield_now();
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A policy component built by `scripts/build-policies` (`target/policies/<name>.wasm`).
pub fn policy_component(name: &str) -> Vec<u8> {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../target/policies/{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|error| {
        panic!(
            "{}: {error}; run scripts/build-policies first (scripts/test does)",
            path.display()
        )
    })
}

/// The `suanli_events_total` count of `kind` the server at `base_url` reports on `/metrics`.
pub async fn event_count(base_url: &str, kind: &str) -> u64 {
    let text = reqwest::get(format!("{base_url}/metrics"))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("the metrics text");
    events_total(&text, kind)
}

/// The `suanli_events_total` count of `kind` in a `/metrics` text (0 if the series is absent).
pub fn events_total(metrics: &str, kind: &str) -> u64 {
    let series = format!("suanli_events_total{{kind=\"{kind}\"}} ");
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(&series))
        .map_or(0, |count| count.trim().parse().expect("a whole count"))
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn database_names_are_swapped_in_urls() {
        assert_eq!(
            with_database("postgres://u@h:5/a", "b"),
            "postgres://u@h:5/b"
        );
        assert_eq!(with_database("postgres://u@h:5", "b"), "postgres://u@h:5/b");
        assert_eq!(
            with_database("postgres://u@h/a?sslmode=disable", "b"),
            "postgres://u@h/b?sslmode=disable"
        );
    }
}
