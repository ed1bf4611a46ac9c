//! Wiring: from configuration to a running exchange, and the demo participants of `dev` mode.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;

use actix_web::dev::Server;
use actix_web::web;
use anyhow::Context;
use rust_decimal::Decimal;
use suanli_sdk::{NewDeposit, ParticipantKind, ProviderType};

use crate::auth::{self, TokenKeys};
use crate::config::Config;
use crate::db::{self, audit, ledger, participants};
use crate::exchange::{Exchange, ExchangeConfig};
use crate::http::{self, AppState, HttpLimits};
use crate::market::EngineConfig;
use crate::pg_private::PrivateCluster;
use crate::telemetry::Metrics;
use std::sync::Arc;

/// The database the exchange uses: the configured one, or its private cluster.
pub struct Database {
    pub url: String,
    /// Set when the exchange runs its own cluster, which it stops on the way out.
    pub private_cluster: Option<PrivateCluster>,
}

/// Uses `DATABASE_URL`, or starts the private cluster under `data_dir/postgres`.
pub fn database(config: &Config) -> anyhow::Result<Database> {
    match &config.database_url {
        Some(url) => Ok(Database {
            url: url.clone(),
            private_cluster: None,
        }),
        None => {
            let cluster = PrivateCluster::start(&config.data_dir.join("postgres"), "suanli")?;
            Ok(Database {
                url: cluster.url("suanli"),
                private_cluster: Some(cluster),
            })
        }
    }
}

/// Connects, migrates, loads reference data, makes sure the bootstrap admin exists, and returns
/// the state every handler shares.
pub fn prepare(config: &Config, database_url: &str) -> anyhow::Result<web::Data<AppState>> {
    let pool = db::connect(
        database_url,
        config.db_pool_size_max,
        config.db_connect_timeout_ms,
    )?;
    let mut connection = pool.get().context("Failed to connect to PostgreSQL")?;
    db::migrate(&mut connection)?;
    let reference =
        db::reference::load(&mut connection).context("Failed to load reference data")?;
    if let Some(key) = &config.admin_api_key {
        // Nodes started together would both create it.
        db::one_start_at_a_time(&mut connection, |connection| {
            ensure_bootstrap_admin(connection, key)
        })?;
    }
    drop(connection);
    let secret = match &config.jwt_secret {
        Some(secret) => secret.clone().into_bytes(),
        None => {
            tracing::warn!(
                "SUANLI_JWT_SECRET is not set: using a random secret; tokens will not survive a restart"
            );
            rand::random::<[u8; 32]>().to_vec()
        }
    };
    let public_key = match &config.jwt_public_key {
        Some(value) if !value.trim_start().starts_with("-----BEGIN") => Some(
            std::fs::read_to_string(value)
                .with_context(|| format!("Failed to read SUANLI_JWT_PUBLIC_KEY file {value}"))?,
        ),
        other => other.clone(),
    };
    let tokens = TokenKeys::new(
        &secret,
        public_key.as_deref(),
        config.token_ttl_seconds,
        &config.jwt_issuer,
        config.jwt_max_lifetime_s,
    )?;
    let logins = crate::auth::LoginGuard::new(
        config.login_hashes_concurrent_max,
        config.login_queue_max,
        config.login_failures_max,
        std::time::Duration::from_secs(config.login_failure_window_s),
        config.admin_api_key.as_deref(),
    )?;
    let metrics = Metrics::new();
    let exchange_config = ExchangeConfig {
        exchange_fee_bps: config.exchange_fee_bps,
        queue_max: config.order_queue_max,
        batch_commands_max: config.match_batch_commands_max,
        engine: EngineConfig {
            candidates_max: config.match_candidates_max,
        },
        expiry_tick_ms: config.expiry_tick_ms,
        command_deadline_ms: config.order_command_deadline_ms,
        lease_timeout_s: config.lease_timeout_s,
        hub_budget: config.hub_budget(),
        participant_in_flight_max: config.order_participant_in_flight_max,
        stream_buffer: config.stream_buffer,
        stream_subscribers_max: config.stream_subscribers_max,
        stream_heartbeat_ms: config.stream_heartbeat_ms,
    };
    if config.exchange_fee_bps > 10_000 {
        anyhow::bail!("SUANLI_EXCHANGE_FEE_BPS must be at most 10000");
    }
    let checkpointer = Arc::new(match &config.audit_signing_key {
        Some(seed) => crate::checkpoint::Checkpointer::from_base64(seed, &config.audit_origin)?,
        None => {
            tracing::warn!(
                "SUANLI_AUDIT_SIGNING_KEY is not set: checkpoints are signed with a random key that dies with this process"
            );
            crate::checkpoint::Checkpointer::new(rand::random(), &config.audit_origin)?
        }
    });
    let checkpoints = Arc::new(crate::checkpoint::spawn(
        checkpointer.clone(),
        pool.clone(),
        std::time::Duration::from_secs(config.checkpoint_interval_s.max(1)),
    ));
    let policy_host = crate::policy::PolicyHost::new(config.sandbox_limits())?;
    let compiled_policies = Arc::new(crate::policy::Registry::new(
        config.policy_compiled_cache_max,
    ));
    let exchange = Exchange::start(
        database_url,
        Arc::new(reference.clone()),
        exchange_config,
        metrics.clone(),
        policy_host.clone(),
        compiled_policies.clone(),
    )?;
    // The market stream starts from the newest stored event before anyone can subscribe: every
    // event after it is published, whether this node leads or follows.
    let newest_event = db::stream::newest(&mut *pool.get()?)?;
    exchange.feed().start_at(newest_event);
    Ok(web::Data::new(AppState {
        pool,
        exchange,
        tokens,
        node: node_name(&config.listen),
        replica: match &config.read_database_url {
            Some(_)
                if u128::from(config.read_lag_ms_max)
                    <= exchange_config.lease_renew_every().as_millis() =>
            {
                anyhow::bail!(
                    "SUANLI_READ_LAG_MS_MAX ({} ms) must exceed the matching lease's renewal interval \
                     ({} ms, 0.3 × SUANLI_LEASE_TIMEOUT_S), by which a replica's lag is measured",
                    config.read_lag_ms_max,
                    exchange_config.lease_renew_every().as_millis()
                )
            }
            Some(url) => Some(http::replica::Replica::start(
                url,
                config.db_pool_size_max,
                config.exports_concurrent_max,
                config.db_connect_timeout_ms,
                config.read_lag_ms_max,
            )?),
            None => None,
        },
        forwarder: http::Forwarder::new(
            std::time::Duration::from_millis(config.forward_timeout_ms.max(1)),
            config.http_json_body_bytes_max,
        )?,
        policy_quota: http::PolicyQuota {
            uploads_per_hub_max: u64::from(config.policy_uploads_per_hub_max),
            hub_stored_bytes_max: config.policy_hub_stored_bytes_max,
        },
        exports: http::Exports {
            pool: db::connect_lazily(
                database_url,
                config.exports_concurrent_max.max(1),
                config.db_connect_timeout_ms,
            )?,
            slots: Arc::new(tokio::sync::Semaphore::new(
                config.exports_concurrent_max.max(1) as usize,
            )),
            stall_max: std::time::Duration::from_millis(config.export_stall_ms_max),
        },
        stream_replays: db::connect_lazily(database_url, 2, config.db_connect_timeout_ms)?,
        book_reads: Arc::new(tokio::sync::Semaphore::new(http::BOOK_READS_MAX)),
        identities: Default::default(),
        logins,
        reference,
        metrics,
        policy_host,
        compiled_policies,
        checkpointer,
        checkpoints,
    }))
}

/// This node's name: the host name and the configured listen address.
fn node_name(listen: &str) -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|name| name.trim().to_owned())
        .unwrap_or_default();
    if host.is_empty() {
        listen.to_owned()
    } else {
        format!("{host}/{listen}")
    }
}

/// Makes sure an admin with API key `key` exists: creates it on first start, changes its key
/// when the configured one changed.
pub fn ensure_bootstrap_admin(
    connection: &mut crate::db::Connection,
    key: &str,
) -> anyhow::Result<()> {
    let existing = participants::by_api_key_id(connection, participants::BOOTSTRAP_ADMIN_KEY_ID)?;
    match existing {
        Some(admin) if auth::api_key_matches(key, &admin.api_key_hash) => {}
        Some(admin) => {
            let hash = auth::hash_api_key(key).map_err(|error| anyhow::anyhow!("{error}"))?;
            participants::rotate_key(
                connection,
                audit::SYSTEM_ACTOR,
                admin.id,
                participants::BOOTSTRAP_ADMIN_KEY_ID,
                &hash,
            )?;
            tracing::info!(admin = %admin.id, "bootstrap admin key changed");
        }
        None => {
            let hash = auth::hash_api_key(key).map_err(|error| anyhow::anyhow!("{error}"))?;
            let admin = participants::create(
                connection,
                audit::SYSTEM_ACTOR,
                &participants::NewParticipantRow {
                    name: "admin",
                    kind: ParticipantKind::Admin,
                    provider_type: None,
                    hub: None,
                    api_key_id: participants::BOOTSTRAP_ADMIN_KEY_ID,
                    api_key_hash: &hash,
                },
            )?;
            tracing::info!(admin = %admin.id, "bootstrap admin created");
        }
    }
    Ok(())
}

/// Joins the exchange's nodes (README "Several nodes"): takes the matching lease and
/// leads if it is free, and keeps trying (or renewing) from then on. Other nodes forward order
/// commands to `SUANLI_ADVERTISE_URL`, by default `http://` and the address bound.
pub fn join(config: &Config, state: &AppState, address: SocketAddr) -> anyhow::Result<()> {
    if config.advertise_url.is_none() && address.ip().is_unspecified() {
        tracing::warn!(
            %address,
            "listening on every interface without SUANLI_ADVERTISE_URL: other nodes will forward \
             orders to http://127.0.0.1:{}, which only works on this machine",
            address.port()
        );
    }
    let advertised = config.advertise_url.clone().unwrap_or_else(|| {
        let host = if address.ip().is_unspecified() {
            std::net::IpAddr::from([127, 0, 0, 1])
        } else {
            address.ip()
        };
        format!("http://{}", SocketAddr::new(host, address.port()))
    });
    state
        .exchange
        .join(&state.node, advertised.trim_end_matches('/'))
}

/// Binds `config.listen` and builds the server; returns it with the address actually bound.
pub fn listen(config: &Config, state: web::Data<AppState>) -> anyhow::Result<(Server, SocketAddr)> {
    let listener = TcpListener::bind(&config.listen)
        .with_context(|| format!("Failed to listen on {}", config.listen))?;
    let address = listener.local_addr()?;
    let limits = HttpLimits::from_config(config);
    let server = http::server(listener, state, limits)?;
    tracing::info!(%address, "listening");
    Ok((server, address))
}

/// The HS256 secret of `dev` mode: kept in the data folder so tokens survive a restart.
/// The demo's checkpoint signing key (base64 of a 32-byte Ed25519 seed), kept in `data_dir`.
pub fn dev_signing_key(data_dir: &Path) -> anyhow::Result<String> {
    use base64::Engine;
    let seed = hex::decode(dev_secret(data_dir, "dev-audit-signing-key")?)?;
    Ok(base64::engine::general_purpose::STANDARD.encode(seed))
}

pub fn dev_secret(data_dir: &Path, name: &str) -> anyhow::Result<String> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = data_dir.join(name);
    if let Ok(secret) = std::fs::read_to_string(&path) {
        return Ok(secret.trim().to_owned());
    }
    std::fs::create_dir_all(data_dir)?;
    let secret = hex::encode(rand::random::<[u8; 32]>());
    // Written whole under a name of its own, then linked into place: several nodes starting at
    // once from one data folder all end up with the one secret that got there first.
    let written = data_dir.join(format!(".{name}.{}", uuid::Uuid::new_v4().simple()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&written)?;
    std::io::Write::write_all(&mut file, secret.as_bytes())?;
    drop(file);
    let linked = std::fs::hard_link(&written, &path);
    std::fs::remove_file(&written)?;
    match linked {
        Ok(()) => Ok(secret),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            Ok(std::fs::read_to_string(&path)?.trim().to_owned())
        }
        Err(error) => Err(error.into()),
    }
}

/// One demo participant: who it is and a fresh API key and token for it.
pub struct DemoParticipant {
    pub kind: ParticipantKind,
    pub hub: Option<String>,
    pub name: String,
    pub id: uuid::Uuid,
    pub api_key: String,
    pub token: String,
}

const DEMO_PARTICIPANTS: &[(&str, ParticipantKind, Option<ProviderType>, Option<&str>)] = &[
    (
        "China Telecom Gansu (demo)",
        ParticipantKind::Provider,
        Some(ProviderType::TelecomOperator),
        None,
    ),
    (
        "Tianfu Compute Co. (demo)",
        ParticipantKind::Provider,
        Some(ProviderType::ComputeProvider),
        None,
    ),
    (
        "Yunhai Cloud (demo)",
        ParticipantKind::Provider,
        Some(ProviderType::CloudVendor),
        None,
    ),
    (
        "Shanghai AI Lab (demo buyer)",
        ParticipantKind::Buyer,
        None,
        None,
    ),
    (
        "Ningxia hub operator (demo)",
        ParticipantKind::HubOperator,
        None,
        Some("nx"),
    ),
    (
        "Beijing–Tianjin–Hebei hub operator (demo)",
        ParticipantKind::HubOperator,
        None,
        Some("bth"),
    ),
    (
        "Computing regulator (demo)",
        ParticipantKind::Regulator,
        None,
        None,
    ),
];

/// The example policies the demo activates: (hub, kind, file under target/policies/).
const DEMO_POLICIES: &[(&str, crate::policy::PolicyKind, &str)] = &[
    (
        "bth",
        crate::policy::PolicyKind::Pricing,
        "east-peak-pricing",
    ),
    (
        "bth",
        crate::policy::PolicyKind::Compliance,
        "data-residency",
    ),
    (
        "nx",
        crate::policy::PolicyKind::Pricing,
        "west-green-pricing",
    ),
    ("nx", crate::policy::PolicyKind::Compliance, "qualification"),
];

/// Uploads and activates the example policies (built by `scripts/build-policies` into
/// `policies_dir`) as the demo hub operators; skips, with a warning, any that is not built.
pub fn activate_demo_policies(
    state: &AppState,
    policies_dir: &Path,
    operators: &[DemoParticipant],
) -> anyhow::Result<()> {
    let mut connection = state.pool.get()?;
    for (hub, kind, file) in DEMO_POLICIES {
        let Some(operator) = operators
            .iter()
            .find(|p| p.kind == ParticipantKind::HubOperator && p.hub.as_deref() == Some(*hub))
        else {
            continue;
        };
        let path = policies_dir.join(format!("{file}.wasm"));
        let Ok(bytes) = std::fs::read(&path) else {
            tracing::warn!(path = %path.display(), "example policy not built; run scripts/build-policies");
            continue;
        };
        let (component, compiled) = state
            .policy_host
            .prepare_upload(*kind, &bytes)
            .map_err(|error| anyhow::anyhow!("{file}: {error}"))?;
        state.compiled_policies.insert(compiled.clone());
        crate::db::policies::store(
            &mut connection,
            hub,
            kind.as_str(),
            &compiled.digest,
            &component,
            operator.id,
        )?;
        crate::db::policies::activate(&mut connection, hub, &compiled.digest, operator.id)?;
        println!(
            "policy       {hub:<4} {:<10} {file:<20} {}",
            kind.as_str(),
            compiled.digest
        );
    }
    // The writer is running: its next batch reads the active policies again.
    state.exchange.note_policies_changed();
    Ok(())
}

/// Demo money credited to the demo buyer once.
const DEMO_DEPOSIT_CNY: Decimal = Decimal::from_parts(1_000_000, 0, 0, false, 0);

/// Creates the demo participants, credits the demo buyer once, and returns every participant's
/// key and token. The keys are kept in `keys_file` (mode 0600, beside the demo's other secrets), so
/// the next start prints the same keys; a kept key that no longer matches (rotated, or the file
/// lost) is replaced by a new one.
pub fn seed_demo(
    state: &AppState,
    admin_id: uuid::Uuid,
    keys_file: &Path,
) -> anyhow::Result<Vec<DemoParticipant>> {
    let mut connection = state.pool.get()?;
    let mut kept: std::collections::BTreeMap<String, String> = std::fs::read_to_string(keys_file)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default();
    let mut seeded = Vec::new();
    for (name, kind, provider_type, hub) in DEMO_PARTICIPANTS {
        let existing = participants::by_name(&mut connection, name, *kind)?;
        let still_valid = |row: &participants::ParticipantRow, key: &str| {
            row.suspended_at.is_none()
                && auth::api_key_lookup_id(key) == row.api_key_id
                && auth::api_key_matches(key, &row.api_key_hash)
        };
        let reused = match (&existing, kept.get(*name)) {
            (Some(row), Some(key)) if still_valid(row, key) => {
                Some((row.id, row.key_epoch, key.clone()))
            }
            _ => None,
        };
        let (id, key_epoch, api_key) = match (reused, existing) {
            (Some(reused), _) => reused,
            (None, Some(existing)) => {
                let key = auth::new_api_key().map_err(|error| anyhow::anyhow!("{error}"))?;
                let epoch = participants::rotate_key(
                    &mut connection,
                    audit::SYSTEM_ACTOR,
                    existing.id,
                    &key.key_id,
                    &key.hash,
                )?;
                (existing.id, epoch, key.key)
            }
            (None, None) => {
                let key = auth::new_api_key().map_err(|error| anyhow::anyhow!("{error}"))?;
                let new = participants::NewParticipantRow {
                    name,
                    kind: *kind,
                    provider_type: *provider_type,
                    hub: *hub,
                    api_key_id: &key.key_id,
                    api_key_hash: &key.hash,
                };
                (
                    participants::create(&mut connection, &admin_id.to_string(), &new)?.id,
                    0,
                    key.key,
                )
            }
        };
        kept.insert((*name).to_owned(), api_key.clone());
        if *kind == ParticipantKind::Buyer {
            let deposit = NewDeposit {
                amount: DEMO_DEPOSIT_CNY,
                reference: "demo opening balance".into(),
                idempotency_key: format!("demo-opening-balance-{id}"),
            };
            ledger::deposit(&mut connection, admin_id, id, &deposit)
                .map_err(|error| anyhow::anyhow!("{error}"))?;
        }
        let token = state
            .tokens
            .issue(id, *kind, hub.map(str::to_owned), key_epoch)
            .map_err(|error| anyhow::anyhow!("{error}"))?;
        seeded.push(DemoParticipant {
            kind: *kind,
            hub: hub.map(str::to_owned),
            name: (*name).to_owned(),
            id,
            api_key,
            token,
        });
    }
    write_private(keys_file, &serde_json::to_string_pretty(&kept)?)?;
    Ok(seeded)
}

/// Writes `text` to `path`, readable by its owner only.
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    std::io::Write::write_all(&mut file, text.as_bytes())?;
    Ok(())
}
