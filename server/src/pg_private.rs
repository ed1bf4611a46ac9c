//! A private PostgreSQL cluster under a data folder of the project, for running the exchange (and
//! its tests) on a machine where no `DATABASE_URL` is configured.
//!
//! It uses the machine's PostgreSQL binaries (`initdb`, `pg_ctl`): created on first use, reused on
//! the next start, stopped by [`PrivateCluster::stop`]. PostgreSQL refuses to run as root, so when
//! we are root the folder is given to the `postgres` user and the binaries run as that user. The
//! cluster listens on 127.0.0.1 only, on a free port, with no Unix socket, and asks for a password
//! (scram-sha-256, or sent in clear over 127.0.0.1 for the tests' cluster: see [`ClientAuth`]): a
//! random one, kept in `<root>/password` with mode 0600. (A cluster created by an earlier version
//! with trust authentication keeps working.)

use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};
use diesel::{Connection, PgConnection, RunQueryDsl};

/// How a new cluster checks the password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// scram-sha-256: the password never crosses the connection.
    Scram,
    /// The password crosses 127.0.0.1 in clear (readable by root only), and the client computes
    /// nothing: libpq's SCRAM runs inside OpenSSL, and a test process that exits while a thread is
    /// still connecting can crash in OpenSSL's exit handlers (seen in CI as a SIGSEGV after every
    /// test had passed). For the tests' cluster only.
    Cleartext,
}

/// A running private cluster.
#[derive(Debug)]
pub struct PrivateCluster {
    root: PathBuf,
    bin_dir: PathBuf,
    port: u16,
    as_postgres_user: bool,
    password: String,
}

impl PrivateCluster {
    /// Starts (creating if needed) the cluster under `root`, or adopts it if it is already
    /// running, and makes sure a database named `database` exists in it. A new cluster asks for
    /// its password with scram-sha-256.
    pub fn start(root: &Path, database: &str) -> anyhow::Result<Self> {
        Self::start_with(root, database, ClientAuth::Scram)
    }

    /// Like [`PrivateCluster::start`], with `auth` for a cluster it creates.
    pub fn start_with(root: &Path, database: &str, auth: ClientAuth) -> anyhow::Result<Self> {
        std::fs::create_dir_all(root)
            .with_context(|| format!("Failed to create {}", root.display()))?;
        let mut root = root.canonicalize()?;
        let as_postgres_user = std::fs::metadata("/proc/self")?.uid() == 0;
        if as_postgres_user && !postgres_can_reach(&root) {
            root = relocate(&root)?;
        }
        let password = password(&root)?;
        let cluster = PrivateCluster {
            bin_dir: find_bin_dir()?,
            port: 0,
            root,
            as_postgres_user,
            password,
        };
        let data = cluster.data_dir();
        if as_postgres_user {
            cluster.chown_to_postgres()?;
        }
        if !data.join("PG_VERSION").exists() {
            tracing::info!(data = %data.display(), "creating a private PostgreSQL cluster");
            let password_file = cluster.root.join(PASSWORD_FILE);
            cluster.run(
                "initdb",
                &[
                    "-D",
                    path_str(&data)?,
                    "-U",
                    "postgres",
                    match auth {
                        ClientAuth::Scram => "--auth=scram-sha-256",
                        ClientAuth::Cleartext => "--auth=password",
                    },
                    "--pwfile",
                    path_str(&password_file)?,
                    "-E",
                    "UTF8",
                    "--no-instructions",
                ],
            )?;
        }
        let port = match cluster.running_port() {
            Some(port) => port,
            None => cluster.start_server()?,
        };
        let cluster = PrivateCluster { port, ..cluster };
        cluster.ensure_database(database)?;
        tracing::info!(port, data = %data.display(), "private PostgreSQL running");
        Ok(cluster)
    }

    /// The URL of `database` in this cluster. The cluster listens on 127.0.0.1 without TLS or
    /// GSSAPI, so the client is told not to try them: connecting then loads neither OpenSSL's nor
    /// Kerberos' state, which a process's exit could tear down under a thread still connecting.
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://postgres:{}@127.0.0.1:{}/{database}?sslmode=disable&gssencmode=disable",
            self.password, self.port
        )
    }

    /// Stops the cluster, letting running transactions roll back (`pg_ctl stop -m fast`).
    pub fn stop(&self) -> anyhow::Result<()> {
        self.run(
            "pg_ctl",
            &[
                "-D",
                path_str(&self.data_dir())?,
                "-m",
                "fast",
                "-w",
                "stop",
            ],
        )?;
        tracing::info!("private PostgreSQL stopped");
        Ok(())
    }

    /// Restarts the server on the same port (`pg_ctl restart -m fast`: every session is cut).
    pub fn restart(&self) -> anyhow::Result<()> {
        self.run(
            "pg_ctl",
            &[
                "-D",
                path_str(&self.data_dir())?,
                "-m",
                "fast",
                "-w",
                "-t",
                "60",
                "restart",
            ],
        )
    }

    /// Starts (creating if needed, with `pg_basebackup`) a streaming replica of this cluster under
    /// `root`: a hot standby on its own port, following this one through `primary_conninfo`.
    pub fn start_replica(&self, root: &Path) -> anyhow::Result<PrivateCluster> {
        std::fs::create_dir_all(root)
            .with_context(|| format!("Failed to create {}", root.display()))?;
        let mut root = root.canonicalize()?;
        if self.as_postgres_user && !postgres_can_reach(&root) {
            root = relocate(&root)?;
        }
        std::fs::write(root.join(PASSWORD_FILE), &self.password)?;
        let replica = PrivateCluster {
            root,
            bin_dir: self.bin_dir.clone(),
            port: 0,
            as_postgres_user: self.as_postgres_user,
            password: self.password.clone(),
        };
        if self.as_postgres_user {
            replica.chown_to_postgres()?;
        }
        let data = replica.data_dir();
        if let Some(port) = replica.running_port() {
            return Ok(PrivateCluster { port, ..replica });
        }
        // A copy left from an earlier run follows the primary's port of that run: copy again.
        if data.exists() {
            std::fs::remove_dir_all(&data)
                .with_context(|| format!("Failed to remove {}", data.display()))?;
        }
        tracing::info!(data = %data.display(), "copying the primary for a streaming replica");
        let primary = format!(
            "host=127.0.0.1 port={} user=postgres password={} sslmode=disable \
             gssencmode=disable application_name=suanli_replica",
            self.port, self.password
        );
        replica.run(
            "pg_basebackup",
            &[
                "-D",
                path_str(&data)?,
                "-d",
                &primary,
                "-X",
                "stream",
                "-R",
                "--checkpoint=fast",
            ],
        )?;
        let port = replica.start_server()?;
        Ok(PrivateCluster { port, ..replica })
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    fn data_dir(&self) -> PathBuf {
        self.root.join("pgdata")
    }

    fn chown_to_postgres(&self) -> anyhow::Result<()> {
        let status = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(&self.root)
            .status()?;
        if !status.success() {
            bail!(
                "Failed to give {} to the postgres user (is PostgreSQL installed?)",
                self.root.display()
            );
        }
        Ok(())
    }

    /// The port of a server already running on this data folder, read from `postmaster.pid`.
    fn running_port(&self) -> Option<u16> {
        let data = self.data_dir();
        let status = self
            .command("pg_ctl")
            .arg("status")
            .arg("-D")
            .arg(&data)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .ok()?;
        if !status.success() {
            return None;
        }
        let pid_file = std::fs::read_to_string(data.join("postmaster.pid")).ok()?;
        pid_file.lines().nth(3)?.trim().parse().ok()
    }

    fn start_server(&self) -> anyhow::Result<u16> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let options =
            format!("-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=''");
        let log = self.root.join("postgres.log");
        self.run(
            "pg_ctl",
            &[
                "-D",
                path_str(&self.data_dir())?,
                "-l",
                path_str(&log)?,
                "-w",
                "-t",
                "60",
                "-o",
                &options,
                "start",
            ],
        )
        .with_context(|| format!("Failed to start PostgreSQL; see {}", log.display()))?;
        Ok(port)
    }

    fn ensure_database(&self, database: &str) -> anyhow::Result<()> {
        let mut connection = PgConnection::establish(&self.url("postgres"))
            .context("Failed to connect to the private PostgreSQL")?;
        #[derive(diesel::QueryableByName)]
        struct Found {
            #[diesel(sql_type = diesel::sql_types::Bool)]
            found: bool,
        }
        let found: Found = diesel::sql_query(
            "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS found",
        )
        .bind::<diesel::sql_types::Text, _>(database)
        .get_result(&mut connection)?;
        if !found.found {
            diesel::sql_query(format!("CREATE DATABASE \"{}\"", database.replace('"', "")))
                .execute(&mut connection)?;
        }
        Ok(())
    }

    fn command(&self, program: &str) -> Command {
        let binary = self.bin_dir.join(program);
        let mut command = if self.as_postgres_user {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(binary);
            command
        } else {
            Command::new(binary)
        };
        // The server must not hold our stdout/stderr open after pg_ctl returns.
        command.stdin(Stdio::null());
        command
    }

    fn run(&self, program: &str, args: &[&str]) -> anyhow::Result<()> {
        let output = self
            .command(program)
            .args(args)
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .output()?;
        if !output.status.success() {
            bail!(
                "{program} failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(())
    }
}

/// Whether the `postgres` user can reach `path` (every folder above it must let it through: a
/// project cloned into root's private home folder does not).
fn postgres_can_reach(path: &Path) -> bool {
    Command::new("runuser")
        .args(["-u", "postgres", "--", "test", "-x"])
        .arg(path)
        .stdin(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// A place the `postgres` user can reach, for the cluster of `root`: a folder under `/var/tmp`
/// named after `root`'s path, recorded in `root/location` so that scripts find it.
fn relocate(root: &Path) -> anyhow::Result<PathBuf> {
    use sha2::Digest;
    let name = hex::encode(&sha2::Sha256::digest(root.as_os_str().as_encoded_bytes())[..8]);
    let relocated = PathBuf::from(format!("/var/tmp/suanli-pg-{name}"));
    // Made here, private, or found as this code left it (a real folder of root's or postgres's):
    // a name another local user could have taken first must not hand them the cluster.
    match std::fs::symlink_metadata(&relocated) {
        Err(_) => {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(&relocated)
                .with_context(|| format!("Failed to create {}", relocated.display()))?;
        }
        Ok(found) => {
            let postgres_uid = postgres_uid();
            if !found.is_dir()
                || found.file_type().is_symlink()
                || !(found.uid() == 0 || Some(found.uid()) == postgres_uid)
            {
                bail!(
                    "{} exists and is not the private cluster's folder; remove it",
                    relocated.display()
                );
            }
        }
    }
    std::fs::write(root.join("location"), format!("{}\n", relocated.display()))?;
    tracing::warn!(
        requested = %root.display(),
        cluster = %relocated.display(),
        "the postgres user cannot reach the data folder (a private home folder?): the private cluster lives elsewhere"
    );
    Ok(relocated)
}

/// The `postgres` user's id.
fn postgres_uid() -> Option<u32> {
    let output = Command::new("id")
        .args(["-u", "postgres"])
        .stdin(Stdio::null())
        .output()
        .ok()?;
    String::from_utf8_lossy(&output.stdout).trim().parse().ok()
}

/// The file under the cluster's root that keeps its password.
const PASSWORD_FILE: &str = "password";

/// The cluster's password: read from `<root>/password`, or made (random, hex) and kept there with
/// mode 0600.
fn password(root: &Path) -> anyhow::Result<String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = root.join(PASSWORD_FILE);
    if let Ok(password) = std::fs::read_to_string(&path) {
        return Ok(password.trim().to_owned());
    }
    let password = hex::encode(rand::random::<[u8; 24]>());
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("Failed to create {}", path.display()))?;
    file.write_all(password.as_bytes())?;
    Ok(password)
}

/// The newest `/usr/lib/postgresql/<version>/bin`, or `pg_config --bindir`.
pub fn find_bin_dir() -> anyhow::Result<PathBuf> {
    let mut candidates: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    candidates.sort();
    if let Some((_, bin)) = candidates.pop() {
        return Ok(bin);
    }
    let output = Command::new("pg_config").arg("--bindir").output();
    match output {
        Ok(output) if output.status.success() => Ok(PathBuf::from(
            String::from_utf8_lossy(&output.stdout).trim().to_owned(),
        )),
        _ => bail!(
            "PostgreSQL server binaries not found: install the `postgresql` package or set DATABASE_URL"
        ),
    }
}

fn path_str(path: &Path) -> anyhow::Result<&str> {
    path.to_str()
        .with_context(|| format!("{} is not UTF-8", path.display()))
}
