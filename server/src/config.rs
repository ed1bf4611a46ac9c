//! Configuration, all from environment variables (or the matching command-line flags).
//!
//! Every variable is listed in `.env.sample` at the repository root with its default; every limit
//! carries its unit in its name. The names of API.md "Operating" are fixed.

use std::path::PathBuf;

/// Settings of a running exchange.
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// PostgreSQL to use. Without it the exchange runs its own private cluster under `data_dir`.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// Address and port to serve on; port 0 picks a free port (the chosen address is logged).
    #[arg(long, env = "SUANLI_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,

    /// When set, an `admin` participant with this API key exists at start-up.
    #[arg(long, env = "SUANLI_ADMIN_API_KEY", hide_env_values = true)]
    pub admin_api_key: Option<String>,

    /// HS256 secret for the tokens the exchange issues. Without it a random secret is made at
    /// start-up (tokens then do not survive a restart, and several servers cannot share them).
    #[arg(long, env = "SUANLI_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// Optional PEM public key (RS256 or EdDSA), or the path of a file holding one, whose tokens
    /// are accepted too.
    #[arg(long, env = "SUANLI_JWT_PUBLIC_KEY")]
    pub jwt_public_key: Option<String>,

    /// How long issued tokens live.
    #[arg(long, env = "SUANLI_TOKEN_TTL_SECONDS", default_value_t = 3600)]
    pub token_ttl_seconds: u64,

    /// The `iss` of the tokens the exchange issues; tokens from the external issuer must carry it
    /// too (and `aud` = `suanli-api`).
    #[arg(long, env = "SUANLI_JWT_ISSUER", default_value = "suanli")]
    pub jwt_issuer: String,

    /// The checkpoint signing key: base64 of a 32-byte Ed25519 seed. Without it the key is made
    /// once and kept in `data_dir`.
    #[arg(long, env = "SUANLI_AUDIT_SIGNING_KEY", hide_env_values = true)]
    pub audit_signing_key: Option<String>,

    /// The checkpoints' origin line, also the signing key's name (no spaces, no `+`).
    #[arg(
        long,
        env = "SUANLI_AUDIT_ORIGIN",
        default_value = "suanli.exchange/audit-log"
    )]
    pub audit_origin: String,

    /// How often a checkpoint is signed while the log grows, seconds.
    #[arg(long, env = "SUANLI_CHECKPOINT_INTERVAL_S", default_value_t = 60)]
    pub checkpoint_interval_s: u64,

    /// The longest token lifetime (`exp - iat`) accepted, from any issuer.
    #[arg(long, env = "SUANLI_JWT_MAX_LIFETIME_S", default_value_t = 86_400)]
    pub jwt_max_lifetime_s: u64,

    /// API-key checks (Argon2, about 19 MiB and tens of ms each) that may run at once.
    #[arg(long, env = "SUANLI_LOGIN_HASHES_CONCURRENT_MAX", default_value_t = 2)]
    pub login_hashes_concurrent_max: usize,

    /// Logins that may wait for an API-key check; one more is refused at once with 503 `login_busy`.
    #[arg(long, env = "SUANLI_LOGIN_QUEUE_MAX", default_value_t = 64)]
    pub login_queue_max: usize,

    /// Failed logins allowed per client address and per API-key id within
    /// `SUANLI_LOGIN_FAILURE_WINDOW_S`; beyond it logins from there are refused with 429.
    #[arg(long, env = "SUANLI_LOGIN_FAILURES_MAX", default_value_t = 20)]
    pub login_failures_max: u32,

    /// The window over which failed logins are counted.
    #[arg(long, env = "SUANLI_LOGIN_FAILURE_WINDOW_S", default_value_t = 60)]
    pub login_failure_window_s: u64,

    /// Where the private PostgreSQL cluster and other local state live.
    #[arg(long, env = "SUANLI_DATA_DIR", default_value = ".data")]
    pub data_dir: PathBuf,

    /// Most database connections the server holds open.
    #[arg(long, env = "SUANLI_DB_POOL_SIZE_MAX", default_value_t = 16)]
    pub db_pool_size_max: u32,

    /// How long a request waits for a database connection before it is answered with 503.
    #[arg(long, env = "SUANLI_DB_CONNECT_TIMEOUT_MS", default_value_t = 5000)]
    pub db_connect_timeout_ms: u64,

    /// Streamed exports and chain verifications that may run at once, each on a database
    /// connection of its own (not taken from the pool other requests use); one more is refused
    /// with 503 `exports_busy` (`verify_busy`).
    #[arg(long, env = "SUANLI_EXPORTS_CONCURRENT_MAX", default_value_t = 2)]
    pub exports_concurrent_max: u32,

    /// How long an export's client may stop reading before the export is abandoned.
    #[arg(long, env = "SUANLI_EXPORT_STALL_MS_MAX", default_value_t = 30_000)]
    pub export_stall_ms_max: u64,

    /// Writer batches whose events the market stream keeps in memory for its subscribers; one
    /// that falls this far behind is cut off (and resumes from the database with `Last-Event-ID`).
    #[arg(long, env = "SUANLI_STREAM_BUFFER", default_value_t = 4096)]
    pub stream_buffer: usize,

    /// Market stream subscribers at once; one more is refused with 503 `stream_busy`.
    #[arg(long, env = "SUANLI_STREAM_SUBSCRIBERS_MAX", default_value_t = 2000)]
    pub stream_subscribers_max: usize,

    /// How often the market stream sends a heartbeat comment to an idle subscriber.
    #[arg(long, env = "SUANLI_STREAM_HEARTBEAT_MS", default_value_t = 15_000)]
    pub stream_heartbeat_ms: u64,

    /// How long a client may take none of the bytes the exchange sends it (a closed receive
    /// window) before its connection is closed, freeing what it held (a market stream seat).
    #[arg(long, env = "SUANLI_HTTP_SEND_STALL_MS", default_value_t = 30_000)]
    pub http_send_stall_ms: u64,

    /// Largest JSON request body accepted; larger ones are refused with 413.
    #[arg(long, env = "SUANLI_HTTP_JSON_BODY_BYTES_MAX", default_value_t = 64 * 1024)]
    pub http_json_body_bytes_max: usize,

    /// Most order commands waiting for the sequenced writer; one more is refused at once with
    /// 503 `queue_full` and a `Retry-After`.
    #[arg(long, env = "SUANLI_ORDER_QUEUE_MAX", default_value_t = 4096)]
    pub order_queue_max: usize,

    /// Commands one participant may have waiting for the sequenced writer at once; one more is
    /// refused with 429 `too_many_in_flight`.
    #[arg(
        long,
        env = "SUANLI_ORDER_PARTICIPANT_IN_FLIGHT_MAX",
        default_value_t = 64
    )]
    pub order_participant_in_flight_max: u32,

    /// Longest an order command may wait for the sequenced writer; older ones are refused with 503
    /// `deadline_exceeded` and never applied.
    #[arg(long, env = "SUANLI_ORDER_COMMAND_DEADLINE_MS", default_value_t = 5000)]
    pub order_command_deadline_ms: u64,

    /// How long a dead holder of the matching lease keeps it (README "Several nodes"):
    /// another node takes it and applies orders within this time (1 to 3600).
    #[arg(long, env = "SUANLI_LEASE_TIMEOUT_S", default_value_t = 5,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub lease_timeout_s: u64,

    /// The base URL other nodes forward order commands to while this node leads; default
    /// `http://` and the address actually bound.
    #[arg(long, env = "SUANLI_ADVERTISE_URL")]
    pub advertise_url: Option<String>,

    /// Longest a follower waits for the leader's answer to a forwarded order command before it
    /// answers 503 `writer_unavailable` (the client retries with its idempotency key).
    #[arg(long, env = "SUANLI_FORWARD_TIMEOUT_MS", default_value_t = 10_000)]
    pub forward_timeout_ms: u64,

    /// A PostgreSQL streaming replica of `DATABASE_URL` that serves the regulators' exports,
    /// statistics, the audit log and candles; used only while it lags less than
    /// `SUANLI_READ_LAG_MS_MAX` (otherwise those reads go to the primary).
    #[arg(long, env = "SUANLI_READ_DATABASE_URL", hide_env_values = true)]
    pub read_database_url: Option<String>,

    /// The most a replica may lag behind the primary and still serve reads.
    #[arg(long, env = "SUANLI_READ_LAG_MS_MAX", default_value_t = 10_000)]
    pub read_lag_ms_max: u64,

    /// Most commands the writer matches and commits in one database transaction.
    #[arg(long, env = "SUANLI_MATCH_BATCH_COMMANDS_MAX", default_value_t = 512)]
    pub match_batch_commands_max: usize,

    /// Most resting orders examined for one incoming order.
    #[arg(long, env = "SUANLI_MATCH_CANDIDATES_MAX", default_value_t = 256)]
    pub match_candidates_max: usize,

    /// How often resting orders are checked for expiry.
    #[arg(long, env = "SUANLI_EXPIRY_TICK_MS", default_value_t = 1000)]
    pub expiry_tick_ms: u64,

    /// The exchange's fee on each settlement, basis points of the charge.
    #[arg(long, env = "SUANLI_EXCHANGE_FEE_BPS", default_value_t = 50)]
    pub exchange_fee_bps: u32,

    /// Fuel one policy evaluation may burn (about 23 million per millisecond).
    #[arg(long, env = "SUANLI_POLICY_FUEL_MAX", default_value_t = 50_000_000)]
    pub policy_fuel_max: u64,

    /// Linear memory one policy evaluation may use.
    #[arg(long, env = "SUANLI_POLICY_MEMORY_BYTES_MAX", default_value_t = 16 << 20)]
    pub policy_memory_bytes_max: usize,

    /// Wall-clock time one policy evaluation may take.
    #[arg(long, env = "SUANLI_POLICY_DEADLINE_MS", default_value_t = 50)]
    pub policy_deadline_ms: u64,

    /// Largest policy answer accepted (sum of its strings).
    #[arg(long, env = "SUANLI_POLICY_OUTPUT_BYTES_MAX", default_value_t = 4096)]
    pub policy_output_bytes_max: usize,

    /// Largest policy module accepted at upload (bigger uploads get 413).
    #[arg(long, env = "SUANLI_POLICY_MODULE_BYTES_MAX", default_value_t = 4 << 20)]
    pub policy_module_bytes_max: usize,

    /// Longest compilation of an uploaded policy.
    #[arg(long, env = "SUANLI_POLICY_COMPILE_MS_MAX", default_value_t = 10_000)]
    pub policy_compile_ms_max: u64,

    /// Fuel one hub's policies may burn, summed over their evaluations for one incoming order;
    /// beyond it the hub's remaining candidates for that order are skipped.
    #[arg(
        long,
        env = "SUANLI_POLICY_HUB_ORDER_FUEL_MAX",
        default_value_t = 50_000_000
    )]
    pub policy_hub_order_fuel_max: u64,

    /// Wall time one hub's policies may take, summed over their evaluations for one incoming order.
    #[arg(long, env = "SUANLI_POLICY_HUB_ORDER_WALL_MS_MAX", default_value_t = 5)]
    pub policy_hub_order_wall_ms_max: u64,

    /// Wall time one hub's policies may take in one batch of the sequenced writer: what a hostile
    /// policy can add to every other hub's latency.
    #[arg(
        long,
        env = "SUANLI_POLICY_HUB_BATCH_WALL_MS_MAX",
        default_value_t = 10
    )]
    pub policy_hub_batch_wall_ms_max: u64,

    /// One in this many batch calls of a policy (version 0.3: many pairs in one call) is checked:
    /// one of its pairs, chosen by the count, is evaluated again alone, and an answer that
    /// differs discards the whole call (a `batch_mismatch` fault; the pairs are then evaluated one
    /// by one). 0 never checks.
    #[arg(long, env = "SUANLI_POLICY_BATCH_CHECK_EVERY", default_value_t = 16)]
    pub policy_batch_check_every: u64,

    /// Policy uploads (and compiles of stored policies) that may be compiled at once; one more is
    /// refused with 503 `compile_busy`. A compile past its time bound keeps its slot until it ends.
    #[arg(
        long,
        env = "SUANLI_POLICY_CONCURRENT_COMPILES_MAX",
        default_value_t = 2
    )]
    pub policy_concurrent_compiles_max: u32,

    /// Compiled policies kept in memory; the oldest that is not active is dropped beyond it.
    #[arg(long, env = "SUANLI_POLICY_COMPILED_CACHE_MAX", default_value_t = 64)]
    pub policy_compiled_cache_max: usize,

    /// Policy versions one hub may store; one more is refused with 422 `policy_quota_reached`.
    #[arg(long, env = "SUANLI_POLICY_UPLOADS_PER_HUB_MAX", default_value_t = 200)]
    pub policy_uploads_per_hub_max: u32,

    /// Bytes of policy modules one hub may store, all versions together.
    #[arg(long, env = "SUANLI_POLICY_HUB_STORED_BYTES_MAX", default_value_t = 256 << 20)]
    pub policy_hub_stored_bytes_max: u64,

    /// Policy evaluations that may run at once (sizes the pooling allocator).
    #[arg(
        long,
        env = "SUANLI_POLICY_CONCURRENT_EVALUATIONS_MAX",
        default_value_t = 16
    )]
    pub policy_concurrent_evaluations_max: u32,

    /// HTTP worker threads.
    #[arg(long, env = "SUANLI_HTTP_WORKERS", default_value_t = 2)]
    pub http_workers: usize,

    /// Log format: `text` for people, `json` for collectors. Levels come from `RUST_LOG`.
    #[arg(long, env = "SUANLI_LOG_FORMAT", default_value = "text")]
    pub log_format: String,
}

impl Config {
    /// The configuration tests use: everything default, nothing read from the environment.
    pub fn for_tests(database_url: String) -> Self {
        Config {
            database_url: Some(database_url),
            listen: "127.0.0.1:0".into(),
            admin_api_key: None,
            jwt_secret: Some("test-secret-not-for-production".into()),
            jwt_public_key: None,
            token_ttl_seconds: 3600,
            jwt_issuer: "suanli".into(),
            jwt_max_lifetime_s: 86_400,
            audit_signing_key: Some({
                use base64::Engine;
                base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>())
            }),
            audit_origin: "suanli.test/audit-log".into(),
            checkpoint_interval_s: 3600,
            login_hashes_concurrent_max: 2,
            login_queue_max: 64,
            login_failures_max: 20,
            login_failure_window_s: 60,
            data_dir: PathBuf::from(".data"),
            db_pool_size_max: 8,
            db_connect_timeout_ms: 2000,
            exports_concurrent_max: 2,
            export_stall_ms_max: 30_000,
            stream_buffer: 4096,
            stream_subscribers_max: 2000,
            stream_heartbeat_ms: 15_000,
            http_send_stall_ms: 30_000,
            http_json_body_bytes_max: 64 * 1024,
            http_workers: 2,
            order_queue_max: 4096,
            order_command_deadline_ms: 5000,
            order_participant_in_flight_max: 64,
            lease_timeout_s: 5,
            advertise_url: None,
            forward_timeout_ms: 10_000,
            read_database_url: None,
            read_lag_ms_max: 10_000,
            match_batch_commands_max: 512,
            match_candidates_max: 256,
            expiry_tick_ms: 1000,
            exchange_fee_bps: 50,
            policy_fuel_max: 50_000_000,
            policy_memory_bytes_max: 16 << 20,
            policy_deadline_ms: 50,
            policy_output_bytes_max: 4096,
            policy_module_bytes_max: 4 << 20,
            policy_compile_ms_max: 10_000,
            policy_concurrent_evaluations_max: 16,
            policy_concurrent_compiles_max: 2,
            policy_compiled_cache_max: 64,
            policy_uploads_per_hub_max: 200,
            policy_hub_stored_bytes_max: 256 << 20,
            policy_hub_order_fuel_max: 50_000_000,
            policy_hub_order_wall_ms_max: 5,
            policy_hub_batch_wall_ms_max: 10,
            policy_batch_check_every: 16,
            log_format: "text".into(),
        }
    }
}

impl Config {
    /// What each hub may spend on policy evaluations.
    pub fn hub_budget(&self) -> crate::exchange::HubBudget {
        crate::exchange::HubBudget {
            order_fuel_max: self.policy_hub_order_fuel_max,
            order_wall_ms_max: self.policy_hub_order_wall_ms_max,
            batch_wall_ms_max: self.policy_hub_batch_wall_ms_max,
            batch_check_every: self.policy_batch_check_every,
        }
    }

    /// The sandbox limits these settings describe.
    pub fn sandbox_limits(&self) -> crate::policy::SandboxLimits {
        crate::policy::SandboxLimits {
            fuel_max: self.policy_fuel_max,
            memory_bytes_max: self.policy_memory_bytes_max,
            deadline_ms: self.policy_deadline_ms,
            output_bytes_max: self.policy_output_bytes_max,
            module_bytes_max: self.policy_module_bytes_max,
            compile_ms_max: self.policy_compile_ms_max,
            concurrent_evaluations_max: self.policy_concurrent_evaluations_max,
            concurrent_compiles_max: self.policy_concurrent_compiles_max,
            compiled_cache_max: self.policy_compiled_cache_max,
        }
    }
}
