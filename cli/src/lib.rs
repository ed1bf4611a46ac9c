//! `suanli`: the exchange from the command line, for every role. Tables for people, `--json` for
//! scripts, a progress bar on long work, and errors as one line with a non-zero exit code.
//!
//! `suanli login --api-key KEY` keeps a token in `~/.config/suanli/config.json` (mode 0600, or
//! `$SUANLI_CONFIG`); every other command uses it.

/// Prints a line to standard output; a reader that went away (`suanli … | head`) ends the
/// program quietly, with success, instead of a panic.
macro_rules! out {
    () => {
        $crate::write_out(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::write_out(format_args!("{}\n", format_args!($($arg)*)))
    };
}

mod table;

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use suanli_sdk::{
    AuditFilter, Client, DataClass, DryRunRequest, ExportFormat, NewBid, NewDelivery, NewOffer,
    NewWithdrawal, OrderStatus, TimeInForce, Window, WithdrawalPaid, WithdrawalRejected,
    WithdrawalStatus,
};
use uuid::Uuid;

use table::Table;

#[derive(Parser)]
#[command(
    name = "suanli",
    version,
    about = "The Suanli compute exchange from the command line"
)]
struct Cli {
    /// The exchange's address.
    #[arg(long, global = true, env = "SUANLI_URL")]
    url: Option<String>,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    /// Where the login is kept.
    #[arg(long, global = true, env = "SUANLI_CONFIG")]
    config: Option<PathBuf>,
    /// The time zone times are shown in: UTC, `local` (this machine's), or a name such as
    /// Asia/Shanghai. Times always carry their zone.
    #[arg(long, global = true, env = "SUANLI_TZ", default_value = "UTC", value_parser = parse_zone)]
    tz: Zone,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Exchanges an API key for a token and keeps it.
    Login {
        #[arg(long, env = "SUANLI_API_KEY", hide_env_values = true)]
        api_key: String,
        /// Keep the API key too (in the 0600 config file), to log in again by itself when the
        /// token is about to expire.
        #[arg(long)]
        keep_key: bool,
    },
    /// Your API key.
    #[command(subcommand)]
    Keys(Keys),
    /// Participants (admins).
    #[command(subcommand)]
    Participants(Participants),
    /// Who the kept token speaks for.
    Whoami,
    /// The national hubs (`hubs latency`: the round-trip latency between them).
    Hubs {
        #[command(subcommand)]
        view: Option<HubsView>,
    },
    /// The tradable SKUs.
    Skus,
    /// Your money.
    Balance,
    /// Offers (providers).
    #[command(subcommand)]
    Offers(Offers),
    /// Bids (buyers).
    #[command(subcommand)]
    Bids(Bids),
    /// Contracts.
    #[command(subcommand)]
    Contracts(Contracts),
    /// Hub policies (hub operators).
    #[command(subcommand)]
    Policy(Policy),
    /// The audit log and the regulator's view.
    #[command(subcommand)]
    Audit(Audit),
    /// Public market data.
    #[command(subcommand)]
    Market(Market),
    /// Asks for money to be paid out of your available balance (buyers, providers, hub
    /// operators); an admin then marks it paid or rejected.
    Withdraw {
        /// CNY, at most 2 decimals.
        #[arg(long)]
        amount: Decimal,
        /// Where the money goes (your bank account).
        #[arg(long)]
        destination: String,
        #[arg(long)]
        idempotency_key: Option<String>,
    },
    /// Withdrawals: yours (admins: everyone's), and the admin's decisions.
    #[command(subcommand)]
    Withdrawals(Withdrawals),
    /// Your statement: every movement of your money, with the balance after it.
    Statement {
        /// From this day (midnight UTC) or time (e.g. 2026-11-01 or 2026-11-01T08:00:00Z).
        #[arg(long, value_parser = parse_time)]
        from: Option<DateTime<Utc>>,
        /// Up to (not including) this day or time.
        #[arg(long, value_parser = parse_time)]
        to: Option<DateTime<Utc>>,
        /// Print CSV instead of a table.
        #[arg(long)]
        csv: bool,
    },
    /// Your hub (hub operators; regulators name one with --hub): its contracts, policy
    /// decisions and faults.
    #[command(subcommand)]
    Hub(Hub),
}

#[derive(Subcommand)]
enum HubsView {
    /// Round-trip latency between hubs, in milliseconds.
    Latency,
}

#[derive(Subcommand)]
enum Withdrawals {
    /// Lists withdrawals, newest first.
    List {
        /// pending, paid or rejected.
        #[arg(long)]
        status: Option<String>,
    },
    /// Marks a pending withdrawal paid (admins): the bank transfer was made.
    Paid {
        id: Uuid,
        #[arg(long)]
        bank_reference: String,
    },
    /// Rejects a pending withdrawal (admins): the money goes back to the participant.
    Rejected {
        id: Uuid,
        #[arg(long)]
        reason: String,
    },
}

#[derive(Subcommand)]
enum Hub {
    /// Contracts made in the hub, newest first.
    Contracts {
        /// The hub (default: your token's hub).
        #[arg(long)]
        hub: Option<String>,
        #[arg(long, value_parser = parse_time)]
        from: Option<DateTime<Utc>>,
        #[arg(long, value_parser = parse_time)]
        to: Option<DateTime<Utc>>,
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Policy decisions taken for the hub, newest first.
    Decisions {
        #[arg(long)]
        hub: Option<String>,
        /// pricing or compliance.
        #[arg(long)]
        kind: Option<String>,
        /// allowed, denied, quoted, rejected or fault.
        #[arg(long)]
        outcome: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// The hub's policy faults, newest first.
    Faults {
        #[arg(long)]
        hub: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
}

#[derive(Subcommand)]
enum Offers {
    /// Lists capacity.
    Create {
        #[arg(long)]
        cluster: String,
        #[arg(long)]
        sku: String,
        #[arg(long)]
        quantity: u32,
        /// Window start, RFC 3339 on the hour.
        #[arg(long)]
        start: DateTime<Utc>,
        #[arg(long)]
        end: DateTime<Utc>,
        /// CNY per unit-hour.
        #[arg(long)]
        ask: Decimal,
        /// Renewable share, percent.
        #[arg(long, default_value_t = 0)]
        green_share: u8,
        /// Free-form attributes, `key=value`, repeatable.
        #[arg(long = "attribute")]
        attributes: Vec<String>,
        /// Reuse a key to retry safely; one is made up otherwise.
        #[arg(long)]
        idempotency_key: Option<String>,
    },
    List {
        #[arg(long)]
        status: Option<String>,
    },
    Show {
        id: Uuid,
    },
    Cancel {
        id: Uuid,
    },
}

/// The terms of a bid, shared by `bids place` and `bids quote`.
#[derive(clap::Args, Debug, Clone)]
struct BidTerms {
    /// Acceptable SKU, repeatable.
    #[arg(long = "sku", required = true)]
    skus: Vec<String>,
    #[arg(long)]
    quantity: u32,
    /// The window's first hour (RFC 3339, a whole UTC hour).
    #[arg(long)]
    start: DateTime<Utc>,
    /// The hour after the window (RFC 3339).
    #[arg(long)]
    end: DateTime<Utc>,
    /// The most you pay, CNY per unit-hour.
    #[arg(long)]
    limit: Decimal,
    /// A hub the work may run in, repeatable (default: any).
    #[arg(long = "hub")]
    hubs: Vec<String>,
    #[arg(long)]
    data_origin: Option<String>,
    #[arg(long)]
    max_latency_ms: Option<u32>,
    #[arg(long)]
    min_green_share: Option<u8>,
    /// general, important or core.
    #[arg(long)]
    data_class: Option<String>,
    /// GTC, IOC, FOK or GTD.
    #[arg(long)]
    time_in_force: Option<String>,
    #[arg(long)]
    expires_at: Option<DateTime<Utc>>,
    #[arg(long)]
    min_fill: Option<u32>,
}

impl BidTerms {
    fn to_bid(&self, idempotency_key: String) -> anyhow::Result<NewBid> {
        Ok(NewBid {
            skus: self.skus.clone(),
            quantity: self.quantity,
            window: Window {
                start: self.start,
                end: self.end,
            },
            limit_price: self.limit,
            hubs: (!self.hubs.is_empty()).then(|| self.hubs.clone()),
            data_origin: self.data_origin.clone(),
            max_latency_ms: self.max_latency_ms,
            min_green_share: self.min_green_share,
            data_class: self
                .data_class
                .as_deref()
                .map(|c| DataClass::parse(c).with_context(|| format!("unknown data class {c}")))
                .transpose()?,
            time_in_force: self
                .time_in_force
                .as_deref()
                .map(|t| {
                    TimeInForce::parse(&t.to_uppercase())
                        .with_context(|| format!("unknown time in force {t} (GTC, IOC, FOK, GTD)"))
                })
                .transpose()?,
            expires_at: self.expires_at,
            min_fill: self.min_fill,
            idempotency_key,
        })
    }
}

#[derive(Subcommand)]
enum Bids {
    /// Bids for capacity. IOC and FOK bids that fill nothing exit with status 3.
    Place {
        #[command(flatten)]
        terms: BidTerms,
        /// Only ask what the bid would get now (the same as `bids quote`).
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        idempotency_key: Option<String>,
    },
    /// What a bid would get now, with nothing placed or held.
    Quote {
        #[command(flatten)]
        terms: BidTerms,
    },
    List {
        #[arg(long)]
        status: Option<String>,
    },
    Show {
        id: Uuid,
    },
    Cancel {
        id: Uuid,
    },
}

#[derive(Subcommand)]
enum Contracts {
    List {
        #[arg(long)]
        hub: Option<String>,
        #[arg(long)]
        sku: Option<String>,
    },
    Show {
        id: Uuid,
    },
    /// Reports delivery (the contract's provider), which settles it. Settling for less than
    /// was contracted asks for confirmation; zero unit-hours needs --yes.
    Deliver {
        id: Uuid,
        #[arg(long)]
        unit_hours: u64,
        /// Settle without asking, even for less than contracted.
        #[arg(long)]
        yes: bool,
        #[arg(long)]
        idempotency_key: Option<String>,
    },
}

#[derive(Subcommand)]
enum Policy {
    /// Uploads a module (`.wasm`).
    Upload {
        /// The hub (default: your token's hub).
        #[arg(long)]
        hub: Option<String>,
        /// pricing or compliance.
        #[arg(long)]
        kind: String,
        file: PathBuf,
    },
    List {
        /// The hub (default: your token's hub).
        #[arg(long)]
        hub: Option<String>,
    },
    Activate {
        /// The hub (default: your token's hub).
        #[arg(long)]
        hub: Option<String>,
        digest: String,
    },
    /// Evaluates a stored policy on an offer and a bid (JSON files shaped like the API's).
    DryRun {
        /// The hub (default: your token's hub).
        #[arg(long)]
        hub: Option<String>,
        digest: String,
        #[arg(long)]
        offer: PathBuf,
        #[arg(long)]
        bid: PathBuf,
    },
    /// Builds the example policies into target/policies/ (from a checkout of the repository).
    Build,
}

#[derive(Subcommand)]
enum Audit {
    Log {
        #[arg(long, default_value_t = 0)]
        after_seq: i64,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Downloads the whole log and recomputes the chain here; also asks the server's check.
    Verify {
        #[arg(long, default_value_t = 500)]
        page_size: u32,
    },
    /// Streams contracts with settlements to a file.
    Export {
        /// csv or jsonl.
        #[arg(long, default_value = "csv")]
        format: String,
        #[arg(long)]
        out: PathBuf,
        #[arg(long)]
        from: Option<DateTime<Utc>>,
        #[arg(long)]
        to: Option<DateTime<Utc>>,
    },
    /// Re-executes a contract's policy decisions.
    Replay { id: Uuid },
    Stats {
        #[arg(long)]
        from: Option<DateTime<Utc>>,
        #[arg(long)]
        to: Option<DateTime<Utc>>,
    },
}

#[derive(Subcommand)]
enum Keys {
    /// Replaces your API key: the old one and every token issued before stop working at once.
    /// Prints the new key once and logs in with it.
    Rotate,
}

#[derive(Subcommand)]
enum Participants {
    /// Suspends a participant: its tokens and key are refused and its resting orders cancelled.
    Suspend {
        id: Uuid,
        #[arg(long)]
        reason: String,
    },
    /// Lifts a suspension.
    Reinstate { id: Uuid },
}

#[derive(Subcommand)]
enum Market {
    Book {
        #[arg(long)]
        sku: Option<String>,
        #[arg(long)]
        hub: Option<String>,
    },
    Trades {
        #[arg(long)]
        sku: Option<String>,
        #[arg(long)]
        hub: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
}

/// What `login` keeps.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Saved {
    url: Option<String>,
    token: Option<String>,
    /// When the token expires, Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_at: Option<i64>,
    /// The API key, only when the user asked to keep it (`login --keep-key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    api_key: Option<String>,
}

/// Logs in with `api_key` and keeps the token (and the key, if asked).
async fn log_in(
    cli: &Cli,
    anonymous: &Client,
    url: &str,
    api_key: &str,
    keep_key: bool,
) -> anyhow::Result<Client> {
    let token = anonymous.token(api_key).await?;
    let expires_at =
        chrono::Utc::now().timestamp() + i64::try_from(token.expires_in).unwrap_or(i64::MAX / 2);
    save(
        cli,
        &Saved {
            url: Some(url.to_owned()),
            token: Some(token.access_token.clone()),
            expires_at: Some(expires_at),
            api_key: keep_key.then(|| api_key.to_owned()),
        },
    )?;
    Ok(anonymous.with_token(token.access_token))
}

/// Seconds before expiry at which a kept key is used to log in again.
const RELOGIN_MARGIN_S: i64 = 60;

fn config_path(cli: &Cli) -> anyhow::Result<PathBuf> {
    if let Some(path) = &cli.config {
        return Ok(path.clone());
    }
    let home = std::env::var_os("HOME").context("HOME is not set; pass --config")?;
    Ok(PathBuf::from(home).join(".config/suanli/config.json"))
}

fn load(cli: &Cli) -> anyhow::Result<Saved> {
    let path = config_path(cli)?;
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).with_context(|| {
            format!(
                "the config file {} is not one `suanli login` wrote; remove it and log in again",
                path.display()
            )
        }),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Saved::default()),
        Err(error) => {
            Err(error).with_context(|| format!("cannot read the config file {}", path.display()))
        }
    }
}

fn save(cli: &Cli, saved: &Saved) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = config_path(cli)?;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)?;
    // `mode` applies only to a new file: an older one keeps its mode unless it is set here.
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(serde_json::to_string_pretty(saved)?.as_bytes())?;
    Ok(())
}

fn key(given: Option<String>) -> String {
    given.unwrap_or_else(|| Uuid::new_v4().to_string())
}

fn parse_status(status: Option<String>) -> anyhow::Result<Option<OrderStatus>> {
    status
        .map(|s| OrderStatus::parse(&s).with_context(|| format!("unknown status {s}")))
        .transpose()
}

fn print_json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    out!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Writes to standard output; see [`out!`].
pub(crate) fn write_out(text: std::fmt::Arguments<'_>) {
    let mut stdout = std::io::stdout().lock();
    if let Err(error) = stdout.write_fmt(text).and_then(|()| stdout.flush()) {
        if error.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to standard output: {error}");
        std::process::exit(1);
    }
}

/// Runs the command line given to the process and exits non-zero, with one line on standard
/// error, if it fails.
pub fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) if !error.use_stderr() => error.exit(),
        Err(error) => {
            // One line (and clap's tip, if it has one) rather than the usage screen.
            let text = error.to_string();
            let mut lines = text.lines();
            let mut message = lines
                .next()
                .unwrap_or("error: invalid arguments")
                .to_owned();
            if let Some(tip) = lines.find(|line| line.trim_start().starts_with("tip:")) {
                message.push_str(&format!(" ({})", tip.trim()));
            }
            eprintln!("{message}; see `suanli --help`");
            std::process::exit(2);
        }
    };
    if let Err(error) = runtime.block_on(run(cli)) {
        let message = match error.downcast_ref::<suanli_sdk::Error>() {
            Some(suanli_sdk::Error::Api {
                status,
                code,
                message,
            }) if status.as_u16() == 401 => {
                format!("{code}: {message} (log in with `suanli login --api-key KEY`)")
            }
            Some(suanli_sdk::Error::Api { code, message, .. }) => format!("{code}: {message}"),
            Some(suanli_sdk::Error::Transport(_)) => format!(
                "{error:#} (is the exchange running at the address `suanli login` saved, or \
                 --url / SUANLI_URL?)"
            ),
            _ => format!("{error:#}"),
        };
        eprintln!("error: {message}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let _ = ZONE.set(cli.tz);
    let saved = load(&cli)?;
    let url = cli
        .url
        .clone()
        .or(saved.url.clone())
        .unwrap_or_else(|| "http://127.0.0.1:8080".into());
    let anonymous = Client::new(url.clone());
    let mut client = match &saved.token {
        Some(token) => anonymous.with_token(token.clone()),
        None => anonymous.clone(),
    };
    // A kept key logs in again by itself when the token is about to expire.
    let expiring = saved
        .expires_at
        .is_some_and(|at| at - RELOGIN_MARGIN_S <= chrono::Utc::now().timestamp());
    if let (Some(api_key), true, false) = (
        &saved.api_key,
        expiring,
        matches!(cli.command, Command::Login { .. }),
    ) {
        client = log_in(&cli, &anonymous, &url, api_key, true).await?;
    }
    let json = cli.json;
    match &cli.command {
        Command::Login { api_key, keep_key } => {
            let me = log_in(&cli, &anonymous, &url, api_key, *keep_key)
                .await?
                .me()
                .await?;
            if json {
                return print_json(&me);
            }
            out!("logged in as {} ({}, {})", me.name, me.kind.as_str(), me.id);
        }
        Command::Keys(Keys::Rotate) => {
            let rotated = client.rotate_key().await?;
            // Shown before anything else can fail: the old key no longer works.
            if json {
                print_json(&rotated)?;
            } else {
                out!("new API key (shown once; the old key and its tokens no longer work):");
                out!("{}", rotated.api_key);
            }
            log_in(
                &cli,
                &anonymous,
                &url,
                &rotated.api_key,
                saved.api_key.is_some(),
            )
            .await?;
        }
        Command::Participants(command) => {
            let participant = match command {
                Participants::Suspend { id, reason } => {
                    client.suspend_participant(*id, reason).await?
                }
                Participants::Reinstate { id } => client.reinstate_participant(*id).await?,
            };
            if json {
                return print_json(&participant);
            }
            let standing = if participant.suspended {
                "suspended"
            } else {
                "in good standing"
            };
            out!(
                "{} ({}, {}) is {standing}",
                participant.name,
                participant.kind.as_str(),
                participant.id
            );
        }
        Command::Whoami => {
            let me = client.me().await?;
            if json {
                return print_json(&me);
            }
            out!("{} ({}, {})", me.name, me.kind.as_str(), me.id);
        }
        Command::Hubs {
            view: Some(HubsView::Latency),
        } => {
            let latency = anonymous.hub_latency().await?;
            if json {
                return print_json(&latency);
            }
            let codes: Vec<&String> = latency.ms.keys().collect();
            let mut table = Table::from_header(
                std::iter::once("ms".to_owned())
                    .chain(codes.iter().map(|code| (*code).clone()))
                    .collect(),
            );
            for from in &codes {
                let row = &latency.ms[*from];
                table.push(
                    std::iter::once((*from).clone())
                        .chain(codes.iter().map(|to| {
                            row.get(*to)
                                .map_or_else(|| "-".to_owned(), |ms| ms.to_string())
                        }))
                        .collect(),
                );
            }
            table.print();
        }
        Command::Hubs { view: None } => {
            let hubs = anonymous.hubs().await?;
            if json {
                return print_json(&hubs);
            }
            let mut table = Table::new([
                "code",
                "name",
                "tier",
                "renewable %",
                "gCO2/kWh",
                "PUE",
                "clusters",
            ]);
            for hub in &hubs {
                let clusters: Vec<&str> = hub.clusters.iter().map(|c| c.code.as_str()).collect();
                table.row([
                    hub.code.clone(),
                    hub.name.clone(),
                    format!("{:?}", hub.tier).to_lowercase(),
                    hub.renewable_share.to_string(),
                    hub.carbon_g_per_kwh.to_string(),
                    hub.pue.to_string(),
                    clusters.join(" "),
                ]);
            }
            table.print();
        }
        Command::Skus => {
            let skus = anonymous.skus().await?;
            if json {
                return print_json(&skus);
            }
            let mut table = Table::new(["code", "class", "unit", "FP16 TFLOPS", "name"]);
            for sku in &skus {
                table.row([
                    sku.code.clone(),
                    format!("{:?}", sku.class).to_lowercase(),
                    sku.unit.clone(),
                    sku.perf_fp16_tflops
                        .map(|p| p.to_string())
                        .unwrap_or_else(|| "-".into()),
                    sku.name.clone(),
                ]);
            }
            table.print();
        }
        Command::Balance => {
            let account = client.account().await?;
            if json {
                return print_json(&account);
            }
            out!(
                "available {} {}  held {} {}",
                account.available,
                account.currency,
                account.held,
                account.currency
            );
        }
        Command::Offers(command) => offers(&client, command, json).await?,
        Command::Bids(command) => bids(&client, command, json).await?,
        Command::Contracts(command) => contracts(&client, command, json).await?,
        Command::Policy(command) => policy(&client, command, json).await?,
        Command::Audit(command) => audit(&client, command, json).await?,
        Command::Market(command) => market(&anonymous, command, json).await?,
        Command::Withdraw {
            amount,
            destination,
            idempotency_key,
        } => {
            let withdrawal = client
                .withdraw(&NewWithdrawal {
                    amount: *amount,
                    destination: destination.clone(),
                    idempotency_key: key(idempotency_key.clone()),
                })
                .await?;
            if json {
                return print_json(&withdrawal);
            }
            withdrawal_table(std::slice::from_ref(&withdrawal));
        }
        Command::Withdrawals(command) => {
            let withdrawals = match command {
                Withdrawals::List { status } => {
                    let status = status
                        .as_deref()
                        .map(|name| {
                            WithdrawalStatus::parse(name).with_context(|| {
                                format!("unknown status {name} (pending, paid, rejected)")
                            })
                        })
                        .transpose()?;
                    client.all_withdrawals(status).await?
                }
                Withdrawals::Paid { id, bank_reference } => vec![
                    client
                        .mark_withdrawal_paid(
                            *id,
                            &WithdrawalPaid {
                                bank_reference: bank_reference.clone(),
                            },
                        )
                        .await?,
                ],
                Withdrawals::Rejected { id, reason } => vec![
                    client
                        .reject_withdrawal(
                            *id,
                            &WithdrawalRejected {
                                reason: reason.clone(),
                            },
                        )
                        .await?,
                ],
            };
            if json {
                return print_json(&withdrawals);
            }
            withdrawal_table(&withdrawals);
        }
        Command::Statement { from, to, csv } => {
            let entries = client.full_statement(*from, *to).await?;
            if json {
                return print_json(&entries);
            }
            if *csv {
                out!("at,kind,reference,account,amount,balance_after");
                for entry in &entries {
                    out!(
                        "{},{},{},{},{},{}",
                        entry.at.to_rfc3339(),
                        entry.kind,
                        csv_field(&entry.reference),
                        entry.account,
                        entry.amount,
                        entry.balance_after
                    );
                }
                return Ok(());
            }
            let mut table = Table::new([
                "at",
                "kind",
                "account",
                "amount",
                "balance after",
                "reference",
            ]);
            for entry in &entries {
                table.row([
                    time_text(entry.at),
                    entry.kind.clone(),
                    entry.account.clone(),
                    entry.amount.to_string(),
                    entry.balance_after.to_string(),
                    entry.reference.clone(),
                ]);
            }
            table.print();
        }
        Command::Hub(command) => hub(&client, command, json).await?,
    }
    Ok(())
}

/// The hub a command is about: the one given, or the caller's own (hub operators).
async fn own_hub(client: &Client, given: &Option<String>) -> anyhow::Result<String> {
    if let Some(hub) = given {
        return Ok(hub.clone());
    }
    client
        .me()
        .await?
        .hub
        .context("name the hub with --hub (only a hub operator's token names one)")
}

/// A policy digest from a unique prefix of one of the hub's stored digests.
async fn full_digest(client: &Client, hub: &str, given: &str) -> anyhow::Result<String> {
    if given.len() == 64 {
        return Ok(given.to_owned());
    }
    let policies = client.policies(hub).await?;
    let matching: Vec<&str> = policies
        .iter()
        .map(|policy| policy.digest.as_str())
        .filter(|digest| digest.starts_with(given))
        .collect();
    match matching.as_slice() {
        [one] => Ok((*one).to_owned()),
        [] => bail!("no policy of hub {hub} has a digest starting with {given}"),
        _ => bail!(
            "{} policies of hub {hub} have digests starting with {given}; give more characters",
            matching.len()
        ),
    }
}

/// Asks a yes/no question on the terminal; no terminal means no.
fn confirm(question: &str) -> anyhow::Result<bool> {
    use std::io::IsTerminal;
    if !std::io::stdin().is_terminal() {
        return Ok(false);
    }
    eprint!("{question}");
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

/// A day (`2026-11-01`, midnight UTC) or an RFC 3339 time.
fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&Utc));
    }
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map(|day| day.and_time(chrono::NaiveTime::MIN).and_utc())
        .map_err(|_| format!("`{text}` is neither a day (2026-11-01) nor an RFC 3339 time"))
}

/// Says that a listing shows only its newest `limit` rows.
fn more_hint(more: bool, limit: u32) {
    if more {
        eprintln!("(the newest {limit}; more with --limit, up to 500)");
    }
}

/// A CSV field: quoted when it must be, and never read as a formula by a spreadsheet.
fn csv_field(text: &str) -> String {
    let text = if text.starts_with(['=', '+', '-', '@']) {
        format!("'{text}")
    } else {
        text.to_owned()
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

fn withdrawal_table(withdrawals: &[suanli_sdk::Withdrawal]) {
    let mut table = Table::new([
        "id",
        "amount",
        "destination",
        "status",
        "requested",
        "bank reference / reason",
    ]);
    for withdrawal in withdrawals {
        table.row([
            withdrawal.id.to_string(),
            format!("{} {}", withdrawal.amount, withdrawal.currency),
            withdrawal.destination.clone(),
            withdrawal.status.as_str().to_owned(),
            time_text(withdrawal.created_at),
            withdrawal
                .bank_reference
                .clone()
                .or_else(|| withdrawal.reason.clone())
                .unwrap_or_default(),
        ]);
    }
    table.print();
}

async fn hub(client: &Client, command: &Hub, json: bool) -> anyhow::Result<()> {
    match command {
        Hub::Contracts {
            hub,
            from,
            to,
            limit,
        } => {
            let hub = own_hub(client, hub).await?;
            let page = client.hub_contracts(&hub, *from, *to, None, *limit).await?;
            if json {
                return print_json(&page.items);
            }
            contract_table(&page.items);
            more_hint(page.next_cursor.is_some(), *limit);
        }
        Hub::Decisions {
            hub,
            kind,
            outcome,
            limit,
        } => {
            let hub = own_hub(client, hub).await?;
            let page = client
                .hub_decisions(&hub, kind.as_deref(), outcome.as_deref(), None, *limit)
                .await?;
            if json {
                return print_json(&page.items);
            }
            let mut table =
                Table::new(["at", "kind", "outcome", "bid", "offer", "digest", "output"]);
            for decision in &page.items {
                table.row([
                    time_text(decision.at),
                    decision.kind.clone(),
                    decision.outcome.clone(),
                    decision.bid_id.to_string(),
                    decision.offer_id.to_string(),
                    decision.policy_digest.chars().take(12).collect(),
                    decision.output.to_string(),
                ]);
            }
            table.print();
            more_hint(page.next_cursor.is_some(), *limit);
        }
        Hub::Faults { hub, limit } => {
            let hub = own_hub(client, hub).await?;
            let page = client.hub_faults(&hub, None, *limit).await?;
            if json {
                return print_json(&page.items);
            }
            let mut table = Table::new(["at", "kind", "class", "digest", "message"]);
            for fault in &page.items {
                table.row([
                    time_text(fault.at),
                    fault.kind.clone(),
                    fault.class.clone(),
                    fault.policy_digest.chars().take(12).collect(),
                    fault.message.clone(),
                ]);
            }
            table.print();
            more_hint(page.next_cursor.is_some(), *limit);
        }
    }
    Ok(())
}

fn offer_table(offers: &[suanli_sdk::Offer]) {
    let mut table = Table::new([
        "id",
        "hub",
        "cluster",
        "sku",
        "qty",
        "remaining",
        "ask",
        "green %",
        "window",
        "status",
    ]);
    for offer in offers {
        table.row([
            offer.id.to_string(),
            offer.hub.clone(),
            offer.cluster.clone(),
            offer.sku.clone(),
            offer.quantity.to_string(),
            offer.remaining.to_string(),
            offer.ask_price.to_string(),
            offer.green_share.to_string(),
            window_text(&offer.window),
            offer.status.as_str().into(),
        ]);
    }
    table.print();
}

fn bid_table(bids: &[suanli_sdk::Bid]) {
    let mut table = Table::new([
        "id",
        "skus",
        "qty",
        "remaining",
        "limit",
        "held",
        "window",
        "tif",
        "status",
    ]);
    for bid in bids {
        table.row([
            bid.id.to_string(),
            bid.skus.join(" "),
            bid.quantity.to_string(),
            bid.remaining.to_string(),
            bid.limit_price.to_string(),
            bid.held.to_string(),
            window_text(&bid.window),
            bid.time_in_force.as_str().into(),
            bid.status.as_str().into(),
        ]);
    }
    table.print();
}

fn contract_table(contracts: &[suanli_sdk::Contract]) {
    let mut table = Table::new([
        "id",
        "hub",
        "sku",
        "units",
        "hours",
        "unit price",
        "notional",
        "status",
    ]);
    for contract in contracts {
        table.row([
            contract.id.to_string(),
            contract.hub.clone(),
            contract.sku.clone(),
            contract.units.to_string(),
            contract.hours.to_string(),
            contract.unit_price.to_string(),
            contract.notional.to_string(),
            format!("{:?}", contract.status).to_lowercase(),
        ]);
    }
    table.print();
}

/// Why units did not trade, one line each.
fn print_reasons(reasons: &[suanli_sdk::Reason]) {
    if reasons.is_empty() {
        return;
    }
    out!("\nwhy units did not trade:");
    for reason in reasons {
        match &reason.hub {
            Some(hub) => out!("  {} ({hub}): {}", reason.code, reason.message),
            None => out!("  {}: {}", reason.code, reason.message),
        }
    }
}

/// A time zone to show times in.
#[derive(Debug, Clone, Copy)]
enum Zone {
    Utc,
    Local,
    Named(chrono_tz::Tz),
}

fn parse_zone(text: &str) -> Result<Zone, String> {
    match text {
        "UTC" | "utc" | "Z" => Ok(Zone::Utc),
        "local" => Ok(Zone::Local),
        name => name.parse::<chrono_tz::Tz>().map(Zone::Named).map_err(|_| {
            format!("unknown time zone `{name}`: UTC, local, or a name such as Asia/Shanghai")
        }),
    }
}

/// The zone chosen with `--tz`, for the whole run.
static ZONE: std::sync::OnceLock<Zone> = std::sync::OnceLock::new();

/// A time in the chosen zone, with the zone shown.
fn time_text(at: DateTime<Utc>) -> String {
    const FORMAT: &str = "%Y-%m-%d %H:%M";
    match ZONE.get().copied().unwrap_or(Zone::Utc) {
        Zone::Utc => format!("{} UTC", at.format(FORMAT)),
        Zone::Local => at
            .with_timezone(&chrono::Local)
            .format("%Y-%m-%d %H:%M %:z")
            .to_string(),
        Zone::Named(zone) => at
            .with_timezone(&zone)
            .format("%Y-%m-%d %H:%M %Z")
            .to_string(),
    }
}

fn window_text(window: &Window) -> String {
    format!("{} → {}", time_text(window.start), time_text(window.end))
}

async fn offers(client: &Client, command: &Offers, json: bool) -> anyhow::Result<()> {
    match command {
        Offers::Create {
            cluster,
            sku,
            quantity,
            start,
            end,
            ask,
            green_share,
            attributes,
            idempotency_key,
        } => {
            let mut map = serde_json::Map::new();
            for attribute in attributes {
                let (name, value) = attribute
                    .split_once('=')
                    .context("attributes are key=value")?;
                map.insert(name.into(), serde_json::Value::String(value.into()));
            }
            let new = NewOffer {
                cluster: cluster.clone(),
                sku: sku.clone(),
                quantity: *quantity,
                window: Window {
                    start: *start,
                    end: *end,
                },
                ask_price: *ask,
                green_share: *green_share,
                attributes: (!map.is_empty()).then_some(map),
                idempotency_key: key(idempotency_key.clone()),
            };
            let placed = client.place_offer(&new).await?;
            if json {
                return print_json(&placed);
            }
            offer_table(std::slice::from_ref(&placed.offer));
            if !placed.contracts.is_empty() {
                out!("\ncontracts made:");
                contract_table(&placed.contracts);
            }
        }
        Offers::List { status } => {
            let page = client
                .offers(parse_status(status.clone())?, None, 500)
                .await?;
            if json {
                return print_json(&page.items);
            }
            offer_table(&page.items);
        }
        Offers::Show { id } => {
            let offer = client.offer(*id).await?;
            if json {
                return print_json(&offer);
            }
            offer_table(&[offer]);
        }
        Offers::Cancel { id } => {
            let offer = client.cancel_offer(*id).await?;
            if json {
                return print_json(&offer);
            }
            offer_table(&[offer]);
        }
    }
    Ok(())
}

async fn bids(client: &Client, command: &Bids, json: bool) -> anyhow::Result<()> {
    match command {
        Bids::Place {
            terms,
            dry_run: true,
            ..
        }
        | Bids::Quote { terms } => {
            let quote = client.quote(&terms.to_bid(String::new())?).await?;
            if json {
                return print_json(&quote);
            }
            let mut table =
                Table::new(["hub", "cluster", "sku", "units", "unit price", "notional"]);
            for fill in &quote.fills {
                table.row([
                    fill.hub.clone(),
                    fill.cluster.clone(),
                    fill.sku.clone(),
                    fill.units.to_string(),
                    fill.unit_price.to_string(),
                    fill.notional.to_string(),
                ]);
            }
            table.print();
            out!(
                "total {} CNY for {} units; {} unfilled; the bid would hold {} CNY",
                quote.total_notional,
                terms.quantity - quote.unfilled_units,
                quote.unfilled_units,
                quote.hold
            );
            print_reasons(&quote.reasons);
        }
        Bids::Place {
            terms,
            dry_run: false,
            idempotency_key,
        } => {
            let new = terms.to_bid(key(idempotency_key.clone()))?;
            let placed = client.place_bid(&new).await?;
            let filled_nothing = placed.contracts.is_empty()
                && matches!(new.time_in_force, Some(TimeInForce::Ioc | TimeInForce::Fok));
            if json {
                print_json(&placed)?;
            } else {
                bid_table(std::slice::from_ref(&placed.bid));
                if !placed.contracts.is_empty() {
                    out!("\ncontracts made:");
                    contract_table(&placed.contracts);
                }
                print_reasons(&placed.reasons);
            }
            if filled_nothing {
                eprintln!(
                    "error: the {} bid filled nothing",
                    placed.bid.time_in_force.as_str()
                );
                std::process::exit(3);
            }
        }
        Bids::List { status } => {
            let page = client
                .bids(parse_status(status.clone())?, None, 500)
                .await?;
            if json {
                return print_json(&page.items);
            }
            bid_table(&page.items);
        }
        Bids::Show { id } => {
            let bid = client.bid(*id).await?;
            if json {
                return print_json(&bid);
            }
            bid_table(std::slice::from_ref(&bid));
            print_reasons(&bid.reasons);
        }
        Bids::Cancel { id } => {
            let bid = client.cancel_bid(*id).await?;
            if json {
                return print_json(&bid);
            }
            bid_table(&[bid]);
        }
    }
    Ok(())
}

async fn contracts(client: &Client, command: &Contracts, json: bool) -> anyhow::Result<()> {
    match command {
        Contracts::List { hub, sku } => {
            let page = client
                .contracts(hub.as_deref(), sku.as_deref(), None, 500)
                .await?;
            if json {
                return print_json(&page.items);
            }
            contract_table(&page.items);
        }
        Contracts::Show { id } => {
            let contract = client.contract(*id).await?;
            if json {
                return print_json(&contract);
            }
            contract_table(std::slice::from_ref(&contract));
            for decision in &contract.decisions {
                out!("decision: {}", decision);
            }
        }
        Contracts::Deliver {
            id,
            unit_hours,
            yes,
            idempotency_key,
        } => {
            let contract = if *yes {
                None
            } else {
                Some(client.contract(*id).await?)
            };
            // Only the contract's provider settles it: anyone else hears the exchange's refusal.
            let settling_own = match &contract {
                Some(contract) => client.me().await?.id == contract.provider_id,
                None => false,
            };
            if let (Some(contract), true) = (contract, settling_own) {
                let contracted = u64::from(contract.units) * u64::from(contract.hours);
                if *unit_hours == 0 {
                    bail!(
                        "delivering 0 of {contracted} unit-hours settles the contract for nothing and \
                         refunds the buyer in full; pass --yes if that is what happened"
                    );
                }
                if *unit_hours < contracted
                    && !confirm(&format!(
                        "settle contract {id} for {unit_hours} of {contracted} unit-hours? the buyer \
                         is refunded the rest [y/N] "
                    ))?
                {
                    bail!("not settled (pass --yes to settle for less without asking)");
                }
            }
            let delivery = NewDelivery {
                delivered_unit_hours: *unit_hours,
                idempotency_key: key(idempotency_key.clone()),
            };
            let settlement = client.report_delivery(*id, &delivery).await?;
            if json {
                return print_json(&settlement);
            }
            let mut table = Table::new([
                "contract",
                "delivered",
                "charged",
                "refunded",
                "provider paid",
                "fee",
                "levy",
            ]);
            table.row([
                settlement.contract_id.to_string(),
                settlement.delivered_unit_hours.to_string(),
                settlement.charged.to_string(),
                settlement.refunded.to_string(),
                settlement.provider_paid.to_string(),
                settlement.exchange_fee.to_string(),
                settlement.hub_levy.to_string(),
            ]);
            table.print();
        }
    }
    Ok(())
}

async fn policy(client: &Client, command: &Policy, json: bool) -> anyhow::Result<()> {
    let print_policies = |policies: &[suanli_sdk::PolicySummary]| {
        let mut table = Table::new(["digest", "hub", "kind", "status", "bytes"]);
        for policy in policies {
            table.row([
                policy.digest.clone(),
                policy.hub.clone(),
                policy.kind.clone(),
                policy.status.clone(),
                policy.size_bytes.to_string(),
            ]);
        }
        table.print();
    };
    match command {
        Policy::Upload { hub, kind, file } => {
            let hub = &own_hub(client, hub).await?;
            let bytes = std::fs::read(file)
                .with_context(|| format!("Failed to read {}", file.display()))?;
            let stored = client.upload_policy(hub, kind, bytes).await?;
            if json {
                return print_json(&stored);
            }
            print_policies(&[stored]);
        }
        Policy::List { hub } => {
            let hub = &own_hub(client, hub).await?;
            let policies = client.policies(hub).await?;
            if json {
                return print_json(&policies);
            }
            print_policies(&policies);
        }
        Policy::Activate { hub, digest } => {
            let hub = &own_hub(client, hub).await?;
            let digest = &full_digest(client, hub, digest).await?;
            let active = client.activate_policy(hub, digest).await?;
            if json {
                return print_json(&active);
            }
            print_policies(&[active]);
        }
        Policy::DryRun {
            hub,
            digest,
            offer,
            bid,
        } => {
            let hub = &own_hub(client, hub).await?;
            let digest = &full_digest(client, hub, digest).await?;
            let read = |path: &PathBuf| -> anyhow::Result<serde_json::Value> {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("Failed to read {}", path.display()))?;
                Ok(serde_json::from_str(&text)?)
            };
            let request: DryRunRequest = serde_json::from_value(
                serde_json::json!({"offer": read(offer)?, "bid": read(bid)?}),
            )?;
            let decision = client.dry_run_policy(hub, digest, &request).await?;
            if json {
                return print_json(&decision);
            }
            match (&decision.decision, &decision.fault) {
                (Some(answer), _) => out!("{answer}  (fuel {})", decision.fuel_used),
                (None, Some(fault)) => out!("fault: {fault}  (fuel {})", decision.fuel_used),
                _ => out!("no answer"),
            }
        }
        Policy::Build => {
            let status = std::process::Command::new("scripts/build-policies")
                .status()
                .context("run `suanli policy build` from the root of a Suanli checkout")?;
            if !status.success() {
                bail!("scripts/build-policies failed");
            }
        }
    }
    Ok(())
}

async fn audit(client: &Client, command: &Audit, json: bool) -> anyhow::Result<()> {
    match command {
        Audit::Log { after_seq, limit } => {
            let page = client.audit_log(*after_seq, *limit).await?;
            if json {
                return print_json(&page);
            }
            let mut table = Table::new(["seq", "at", "actor", "kind", "hash"]);
            for entry in &page.items {
                table.row([
                    entry.seq.to_string(),
                    entry.at.clone(),
                    entry.actor.clone(),
                    entry.kind.clone(),
                    entry.hash[..16].to_owned(),
                ]);
            }
            table.print();
        }
        Audit::Verify { page_size } => {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.set_message("downloading and checking the audit log");
            let local = client
                .verify_audit_chain(*page_size, |checked| bar.set_position(checked))
                .await?;
            bar.finish_and_clear();
            let server = client.audit_verify().await?;
            if json {
                return print_json(&serde_json::json!({"local": local, "server": server}));
            }
            match local.first_bad_seq {
                None => out!(
                    "chain ok: {} entries, head {} (checked here)",
                    local.entries,
                    local.head_hash
                ),
                Some(seq) => out!("chain BROKEN at seq {seq} (checked here)"),
            }
            for check in &server.invariants {
                out!(
                    "{:<34} {}",
                    check.name,
                    if check.ok {
                        "ok".into()
                    } else {
                        format!("BROKEN: {}", check.detail.clone().unwrap_or_default())
                    }
                );
            }
            if !(local.ok && server.ok) {
                bail!("verification failed");
            }
        }
        Audit::Export {
            format,
            out,
            from,
            to,
        } => {
            let format = match format.as_str() {
                "csv" => ExportFormat::Csv,
                "jsonl" => ExportFormat::JsonLines,
                other => bail!("unknown format {other}; csv or jsonl"),
            };
            let mut file = std::io::BufWriter::new(std::fs::File::create(out)?);
            let bar = indicatif::ProgressBar::new_spinner();
            let filter = AuditFilter {
                from: *from,
                to: *to,
                ..Default::default()
            };
            let bytes = client
                .audit_export(format, &filter, &mut file, |received| {
                    bar.set_message(format!("{received} bytes"));
                    bar.tick();
                })
                .await?;
            file.flush()?;
            bar.finish_and_clear();
            if json {
                return print_json(&serde_json::json!({"file": out, "bytes": bytes}));
            }
            out!("wrote {bytes} bytes to {}", out.display());
        }
        Audit::Replay { id } => {
            let report = client.replay_contract(*id).await?;
            if json {
                return print_json(&report);
            }
            let mut table = Table::new(["digest", "kind", "matches"]);
            for decision in &report.decisions {
                table.row([
                    decision.policy_digest[..16].to_owned(),
                    decision.kind.clone(),
                    decision.matches.to_string(),
                ]);
            }
            table.print();
            if report.decisions.iter().any(|d| !d.matches) {
                bail!("a replayed decision differs from the record");
            }
        }
        Audit::Stats { from, to } => {
            let stats = client
                .audit_stats(&AuditFilter {
                    from: *from,
                    to: *to,
                    ..Default::default()
                })
                .await?;
            if json {
                return print_json(&stats);
            }
            for (title, rows) in [
                ("by hub", &stats.by_hub),
                ("by SKU", &stats.by_sku),
                ("by class", &stats.by_class),
                ("east→west", &stats.east_to_west),
            ] {
                out!("{title}:");
                let mut table = Table::new([
                    "key",
                    "contracts",
                    "unit-hours",
                    "contracted CNY",
                    "settled",
                    "delivered unit-hours",
                    "charged CNY",
                ]);
                for row in rows {
                    table.row([
                        row.key.clone(),
                        row.contracts.to_string(),
                        row.unit_hours.to_string(),
                        row.value.to_string(),
                        row.settled_contracts.to_string(),
                        row.delivered_unit_hours.to_string(),
                        row.charged.to_string(),
                    ]);
                }
                table.print();
            }
            out!(
                "delivered {} unit-hours, {} % green",
                stats.delivered_unit_hours,
                stats.green_share_of_delivered
            );
        }
    }
    Ok(())
}

async fn market(client: &Client, command: &Market, json: bool) -> anyhow::Result<()> {
    match command {
        Market::Book { sku, hub } => {
            let book = client.market_book(sku.as_deref(), hub.as_deref()).await?;
            if json {
                return print_json(&book);
            }
            let mut table = Table::new([
                "side", "price", "units", "orders", "hubs", "green %", "windows",
            ]);
            let row = |side: &str, level: &suanli_sdk::BookLevel| {
                let green = if level.green_share_min == level.green_share_max {
                    level.green_share_min.to_string()
                } else {
                    format!("{}–{}", level.green_share_min, level.green_share_max)
                };
                [
                    side.to_owned(),
                    level.price.to_string(),
                    level.units.to_string(),
                    level.orders.to_string(),
                    level.hubs.join(" "),
                    green,
                    level.window.as_ref().map(window_text).unwrap_or_default(),
                ]
            };
            for level in book.offers.iter().rev() {
                table.row(row("offer", level));
            }
            for level in &book.bids {
                table.row(row("bid", level));
            }
            table.print();
        }
        Market::Trades { sku, hub, limit } => {
            let trades = client
                .market_trades(sku.as_deref(), hub.as_deref(), *limit)
                .await?;
            if json {
                return print_json(&trades);
            }
            let mut table = Table::new(["at", "hub", "sku", "units", "unit price", "window"]);
            for trade in &trades {
                table.row([
                    time_text(trade.created_at),
                    trade.hub.clone(),
                    trade.sku.clone(),
                    trade.units.to_string(),
                    trade.unit_price.to_string(),
                    window_text(&trade.window),
                ]);
            }
            table.print();
        }
    }
    Ok(())
}
