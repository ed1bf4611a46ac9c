//! The `suanli-server` command line: run the exchange (`serve`), apply migrations (`migrate`), or
//! start a demo (`dev`). Every setting comes from an environment variable; see `.env.sample`.

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::{app, db, telemetry};

#[derive(Parser)]
#[command(
    name = "suanli-server",
    version,
    about = "The Suanli compute-capacity exchange"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the exchange.
    Serve(Config),
    /// Apply pending database migrations and exit.
    Migrate(Config),
    /// Run the exchange as a demo: private database, demo participants with keys and tokens.
    Dev(Config),
    /// Run a whole cluster on this machine to try failover: a private PostgreSQL primary and a
    /// streaming replica, and several `serve` nodes on 127.0.0.1 (`scripts/cluster`).
    Cluster {
        #[command(flatten)]
        config: Config,
        /// How many exchange nodes.
        #[arg(long, default_value_t = 3)]
        nodes: usize,
        /// The first node's port; the others follow.
        #[arg(long, default_value_t = 8081)]
        first_port: u16,
    },
    /// Check the audit chain and every ledger and book invariant; exit 1 if any fails.
    Check(Config),
    /// Print the OpenAPI document of the REST API (what `/v1/openapi.json` serves) and exit.
    Openapi,
    /// Compile a policy module read from standard input; exit 0 if it compiles (the exchange runs
    /// this as a child process that it can kill at the compile time bound).
    #[command(hide = true)]
    CompileCheck {
        #[arg(long)]
        kind: String,
    },
}

/// Runs the command line given to the process.
pub fn main() -> anyhow::Result<()> {
    actix_web::rt::System::new().block_on(run_cli())
}

async fn run_cli() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(config) => serve(config, false).await,
        Command::Dev(config) => serve(config, true).await,
        Command::Check(config) => check(config),
        Command::Cluster {
            config,
            nodes,
            first_port,
        } => crate::cluster::run(config, nodes, first_port, wait_for_signal()).await,
        Command::CompileCheck { kind } => compile_check(&kind),
        Command::Openapi => {
            println!(
                "{}",
                serde_json::to_string_pretty(&crate::http::openapi::document())?
            );
            Ok(())
        }
        Command::Migrate(config) => {
            telemetry::init_logging(&config.log_format);
            let database = app::database(&config)?;
            let result = (|| {
                let pool = db::connect(&database.url, 1, config.db_connect_timeout_ms)?;
                let mut connection = pool.get()?;
                db::migrate(&mut connection)
            })();
            if let Some(cluster) = &database.private_cluster {
                cluster.stop()?;
            }
            result
        }
    }
}

fn compile_check(kind: &str) -> anyhow::Result<()> {
    use std::io::Read;
    let kind = crate::policy::PolicyKind::parse(kind).context("--kind is pricing or compliance")?;
    let mut bytes = Vec::new();
    std::io::stdin().read_to_end(&mut bytes)?;
    // The parent enforces the time bound; here the compile may take what it takes.
    let limits = crate::policy::SandboxLimits {
        compile_ms_max: 86_400_000,
        ..Default::default()
    };
    crate::policy::PolicyHost::new(limits)?
        .prepare_upload(kind, &bytes)
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    Ok(())
}

fn check(config: Config) -> anyhow::Result<()> {
    telemetry::init_logging(&config.log_format);
    let database = app::database(&config)?;
    let result = (|| -> anyhow::Result<bool> {
        let pool = db::connect(&database.url, 1, config.db_connect_timeout_ms)?;
        let mut connection = pool.get()?;
        // Every check reads one snapshot, so an exchange running meanwhile is not half seen.
        db::in_snapshot(&mut connection, check_all)
    })();
    if let Some(cluster) = &database.private_cluster {
        cluster.stop()?;
    }
    if !result? {
        anyhow::bail!("invariants broken");
    }
    Ok(())
}

/// Checks the chain, the tree and its checkpoints, and every invariant, printing one line each;
/// whether all held.
fn check_all(connection: &mut db::Connection) -> anyhow::Result<bool> {
    let chain = db::audit::verify(connection, 1000)?;
    println!(
        "{:<34} {}",
        "audit_chain",
        if chain.ok {
            format!("ok ({} entries)", chain.entries)
        } else {
            format!("BROKEN at seq {:?}", chain.first_bad_seq)
        }
    );
    let mut ok = chain.ok;
    // The Merkle tree and every signed checkpoint against the log as it is now.
    let tree = db::tree::check(connection)?;
    ok &= tree.is_empty();
    if tree.is_empty() {
        println!(
            "{:<34} ok ({} checkpoints)",
            "audit_tree_and_checkpoints",
            db::tree::checkpoints(connection)?.len()
        );
    }
    for problem in &tree {
        println!("{:<34} BROKEN: {problem}", "audit_tree_and_checkpoints");
    }
    for check in db::invariants::check_within(connection)? {
        ok &= check.ok;
        match &check.detail {
            None => println!("{:<34} ok", check.name),
            Some(detail) => println!("{:<34} BROKEN: {detail}", check.name),
        }
    }
    Ok(ok)
}

async fn serve(mut config: Config, demo: bool) -> anyhow::Result<()> {
    telemetry::init_logging(&config.log_format);
    if demo {
        if config.jwt_secret.is_none() {
            config.jwt_secret = Some(app::dev_secret(&config.data_dir, "dev-jwt-secret")?);
        }
        if config.admin_api_key.is_none() {
            config.admin_api_key = Some(app::dev_secret(&config.data_dir, "dev-admin-api-key")?);
        }
    }
    if config.audit_signing_key.is_none() {
        // Kept with the data, so that checkpoints stay signed by one key across restarts.
        if !demo {
            tracing::warn!(
                "SUANLI_AUDIT_SIGNING_KEY is not set: checkpoints are signed with a key kept in {}",
                config.data_dir.display()
            );
        }
        config.audit_signing_key = Some(app::dev_signing_key(&config.data_dir)?);
    }
    let database = app::database(&config)?;
    let result = run(&config, &database.url, demo).await;
    if let Some(cluster) = &database.private_cluster {
        cluster.stop()?;
    }
    result
}

async fn run(config: &Config, database_url: &str, demo: bool) -> anyhow::Result<()> {
    let state = app::prepare(config, database_url)?;
    // This process is `suanli-server`: policy compiles are first tried in a child process of it.
    if let Ok(executable) = std::env::current_exe() {
        state.policy_host.set_compile_checker(executable);
    }
    let (server, address) = app::listen(config, state.clone())?;
    app::join(config, &state, address)?;
    if demo {
        let admin_key = config
            .admin_api_key
            .clone()
            .context("the demo has an admin key")?;
        print_demo(&state, &admin_key, address, &config.data_dir)?;
    }
    // Printed once everything is ready (demo seeded), for scripts and tests that wait for it.
    println!("suanli-server listening on http://{address}");
    let handle = server.handle();
    let state_for_stop = state.clone();
    actix_web::rt::spawn(async move {
        // The first SIGINT or SIGTERM stops gracefully (requests in flight finish, streams end);
        // a second one, or SIGQUIT, at once.
        if wait_for_signal().await {
            tracing::info!("shutting down: requests in flight finish first");
            // The lease goes to another node at once: while this one finishes its requests, the
            // others do not forward orders to it. Commands still queued here are answered 503.
            state.exchange.stop_leading();
            let (state, handle) = (state.clone(), handle.clone());
            actix_web::rt::spawn(async move { crate::http::stop(&state, &handle, true).await });
            wait_for_signal().await;
        }
        tracing::info!("shutting down now");
        crate::http::stop(&state, &handle, false).await;
    });
    let served = server.await.context("HTTP server failed");
    state_for_stop.finish();
    served
}

/// Waits for SIGINT (Ctrl-C), SIGTERM or SIGQUIT; true for the first two (stop gracefully).
async fn wait_for_signal() -> bool {
    use actix_web::rt::signal::unix::{SignalKind, signal};
    let (Ok(mut terminate), Ok(mut quit)) =
        (signal(SignalKind::terminate()), signal(SignalKind::quit()))
    else {
        let _ = actix_web::rt::signal::ctrl_c().await;
        return true;
    };
    tokio::select! {
        _ = actix_web::rt::signal::ctrl_c() => true,
        _ = terminate.recv() => true,
        _ = quit.recv() => false,
    }
}

fn print_demo(
    state: &crate::http::AppState,
    admin_key: &str,
    address: std::net::SocketAddr,
    data_dir: &std::path::Path,
) -> anyhow::Result<()> {
    let mut connection = state.pool.get()?;
    let admin =
        db::participants::by_api_key_id(&mut connection, db::participants::BOOTSTRAP_ADMIN_KEY_ID)?
            .context("the bootstrap admin exists")?;
    drop(connection);
    // Kept beside the demo's JWT secret and admin key, so a restart prints the same keys.
    let demo = app::seed_demo(state, admin.id, &data_dir.join("dev-demo-keys.json"))?;
    println!("\nSuanli demo exchange on http://{address}  (Ctrl-C stops it and its database)\n");
    println!("admin  {}  api_key={admin_key}", admin.id);
    for participant in &demo {
        println!(
            "{:<12} {}  {}",
            participant.kind.as_str(),
            participant.id,
            participant.name
        );
        println!("             api_key={}", participant.api_key);
        println!("             token={}", participant.token);
    }
    app::activate_demo_policies(state, std::path::Path::new("target/policies"), &demo)?;
    println!("\nTry: curl -s http://{address}/v1/hubs | head -c 300; echo");
    Ok(())
}
