//! `suanli-server cluster`: a whole exchange cluster on one machine, for a person to try
//! failover (`scripts/cluster`): a private PostgreSQL primary and a streaming replica of it
//! (`initdb`, `pg_basebackup -R`), and several `suanli-server serve` nodes on 127.0.0.1 that share
//! one JWT secret, admin key and checkpoint signing key, read from the replica, and hand the
//! matching lease over when the leader dies. Each node's log lines are prefixed with its name.

use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use anyhow::Context;

use crate::app;
use crate::config::Config;
use crate::pg_private::PrivateCluster;

/// Starts the cluster under `config.data_dir/cluster` and runs it until `stop` (Ctrl-C).
pub async fn run(
    config: Config,
    nodes: usize,
    first_port: u16,
    stop: impl std::future::Future,
) -> anyhow::Result<()> {
    crate::telemetry::init_logging(&config.log_format);
    let root = config.data_dir.join("cluster");
    std::fs::create_dir_all(&root)?;
    let primary = PrivateCluster::start(&root.join("primary"), "suanli")?;
    let replica = primary
        .start_replica(&root.join("replica"))
        .context("Failed to start the streaming replica")?;
    let result = run_nodes(&config, &root, &primary, &replica, nodes, first_port, stop).await;
    let stopped = replica.stop().and(primary.stop());
    result.and(stopped)
}

async fn run_nodes(
    config: &Config,
    root: &Path,
    primary: &PrivateCluster,
    replica: &PrivateCluster,
    nodes: usize,
    first_port: u16,
    stop: impl std::future::Future,
) -> anyhow::Result<()> {
    let executable = std::env::current_exe()?;
    let jwt_secret = app::dev_secret(root, "jwt-secret")?;
    let admin_key = app::dev_secret(root, "admin-api-key")?;
    let signing_key = app::dev_signing_key(root)?;
    let mut children: Vec<(String, Child)> = Vec::new();
    for index in 0..nodes.max(1) {
        let name = format!("node-{}", index + 1);
        let port = u16::try_from(index)
            .ok()
            .and_then(|index| first_port.checked_add(index))
            .context("--first-port plus --nodes goes past port 65535")?;
        let mut command = Command::new(&executable);
        command
            .arg("serve")
            .env("DATABASE_URL", primary.url("suanli"))
            .env("SUANLI_READ_DATABASE_URL", replica.url("suanli"))
            .env("SUANLI_LISTEN", format!("127.0.0.1:{port}"))
            .env("SUANLI_JWT_SECRET", &jwt_secret)
            .env("SUANLI_ADMIN_API_KEY", &admin_key)
            .env("SUANLI_AUDIT_SIGNING_KEY", &signing_key)
            .env("SUANLI_LEASE_TIMEOUT_S", config.lease_timeout_s.to_string())
            .env("SUANLI_DATA_DIR", root.join(&name))
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(error) => {
                for (_, started) in &mut children {
                    let _ = started.kill();
                    let _ = started.wait();
                }
                return Err(error).with_context(|| format!("Failed to start {name}"));
            }
        };
        prefix_lines(&name, child.stdout.take());
        prefix_lines(&name, child.stderr.take());
        println!("{name}: http://127.0.0.1:{port}  (pid {})", child.id());
        children.push((name, child));
    }
    println!();
    println!("admin API key:   {admin_key}");
    println!("primary:         {}", redact(&primary.url("suanli")));
    println!("replica:         {}", redact(&replica.url("suanli")));
    println!();
    println!("Who leads:       curl -s http://127.0.0.1:{first_port}/readyz");
    println!(
        "Kill the leader: kill -9 <its pid>   (another node leads within SUANLI_LEASE_TIMEOUT_S)"
    );
    println!("Ctrl-C stops every node and both databases.");
    stop.await;
    for (name, child) in &mut children {
        // SIGTERM: a node stops cleanly and gives the lease up.
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        match child.wait() {
            Ok(status) => println!("{name} stopped ({status})"),
            Err(error) => println!("{name}: {error}"),
        }
    }
    Ok(())
}

/// Copies a child's output to ours, each line prefixed with `name`.
fn prefix_lines(name: &str, output: Option<impl std::io::Read + Send + 'static>) {
    let Some(output) = output else { return };
    let name = name.to_owned();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(output)
            .lines()
            .map_while(Result::ok)
        {
            println!("[{name}] {line}");
        }
    });
}

/// A database URL without its password.
fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme), Some(at)) if scheme < at => {
            let user_end = url[scheme + 3..at]
                .find(':')
                .map_or(at, |colon| scheme + 3 + colon);
            format!("{}:…{}", &url[..user_end], &url[at..])
        }
        _ => url.to_owned(),
    }
}
