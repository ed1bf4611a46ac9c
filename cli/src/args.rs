//! The command line as clap reads it, and the parsers of its values.

use crate::*;

#[derive(Parser)]
#[command(
    name = "suanli",
    version,
    about = "The Suanli compute exchange from the command line"
)]
pub(crate) struct Cli {
    /// The exchange's address.
    #[arg(long, global = true, env = "SUANLI_URL")]
    pub(crate) url: Option<String>,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    /// Where the login is kept.
    #[arg(long, global = true, env = "SUANLI_CONFIG")]
    pub(crate) config: Option<PathBuf>,
    /// The time zone times are shown in: UTC, `local` (this machine's), or a name such as
    /// Asia/Shanghai. Times always carry their zone.
    #[arg(long, global = true, env = "SUANLI_TZ", default_value = "UTC", value_parser = parse_zone)]
    pub(crate) tz: Zone,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
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
pub(crate) enum HubsView {
    /// Round-trip latency between hubs, in milliseconds.
    Latency,
}

#[derive(Subcommand)]
pub(crate) enum Withdrawals {
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
pub(crate) enum Hub {
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
pub(crate) enum Offers {
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
pub(crate) struct BidTerms {
    /// Acceptable SKU, repeatable.
    #[arg(long = "sku", required = true)]
    pub(crate) skus: Vec<String>,
    #[arg(long)]
    pub(crate) quantity: u32,
    /// The window's first hour (RFC 3339, a whole UTC hour).
    #[arg(long)]
    pub(crate) start: DateTime<Utc>,
    /// The hour after the window (RFC 3339).
    #[arg(long)]
    pub(crate) end: DateTime<Utc>,
    /// The most you pay, CNY per unit-hour.
    #[arg(long)]
    pub(crate) limit: Decimal,
    /// A hub the work may run in, repeatable (default: any).
    #[arg(long = "hub")]
    pub(crate) hubs: Vec<String>,
    #[arg(long)]
    pub(crate) data_origin: Option<String>,
    #[arg(long)]
    pub(crate) max_latency_ms: Option<u32>,
    #[arg(long)]
    pub(crate) min_green_share: Option<u8>,
    /// general, important or core.
    #[arg(long)]
    pub(crate) data_class: Option<String>,
    /// GTC, IOC, FOK or GTD.
    #[arg(long)]
    pub(crate) time_in_force: Option<String>,
    #[arg(long)]
    pub(crate) expires_at: Option<DateTime<Utc>>,
    #[arg(long)]
    pub(crate) min_fill: Option<u32>,
}

impl BidTerms {
    pub(crate) fn to_bid(&self, idempotency_key: String) -> anyhow::Result<NewBid> {
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
pub(crate) enum Bids {
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
pub(crate) enum Contracts {
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
pub(crate) enum Policy {
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
pub(crate) enum Audit {
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
        #[command(flatten)]
        select: ContractSelection,
    },
    /// Re-executes a contract's policy decisions: on the exchange, or with --local here, in this
    /// process, from the stored modules and recorded inputs (the same deterministic engine).
    Replay {
        id: Uuid,
        /// Run the policies here instead of asking the exchange to.
        #[arg(long)]
        local: bool,
    },
    /// Fetches the latest signed checkpoint and verifies it: its signature against the pinned key,
    /// and that it extends the last checkpoint verified here (a fork is refused). Keeps it.
    Checkpoint {
        /// The note verifier key to pin (`name+hash+key`); without it the pinned one is used, or,
        /// the first time, the exchange's published key is pinned (and said so).
        #[arg(long)]
        key: Option<String>,
        /// Also write the checkpoint (the signed note) to this file.
        #[arg(long)]
        save: Option<PathBuf>,
    },
    /// Proves a contract's audit entries are in the signed log: inclusion proofs against the
    /// latest checkpoint, checked here against the pinned key.
    Prove {
        /// The contract (omit with --offline).
        id: Option<Uuid>,
        /// Write the proof (JSON) to this file, to check again later without the exchange.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Check a proof saved with --out, offline.
        #[arg(long, conflicts_with = "id")]
        offline: Option<PathBuf>,
    },
    /// Proves that the log today extends a checkpoint saved earlier (fork detection).
    Consistency {
        /// A checkpoint saved by `audit checkpoint --save`.
        #[arg(long)]
        from_checkpoint: PathBuf,
    },
    /// Volume and value by hub, SKU and class, east→west flows, green share.
    Stats {
        #[command(flatten)]
        select: ContractSelection,
    },
}

/// Which contracts an export or the statistics cover, shared by `audit export` and `audit stats`.
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct ContractSelection {
    /// Contracts made at or after this time (RFC 3339).
    #[arg(long)]
    pub(crate) from: Option<DateTime<Utc>>,
    /// Contracts made before this time (RFC 3339).
    #[arg(long)]
    pub(crate) to: Option<DateTime<Utc>>,
    /// Only contracts in this hub.
    #[arg(long)]
    pub(crate) hub: Option<String>,
    /// Only contracts of this SKU.
    #[arg(long)]
    pub(crate) sku: Option<String>,
    /// Only contracts where this participant is buyer or provider.
    #[arg(long)]
    pub(crate) participant: Option<Uuid>,
}

impl ContractSelection {
    pub(crate) fn filter(&self) -> AuditFilter {
        AuditFilter {
            from: self.from,
            to: self.to,
            hub: self.hub.clone(),
            sku: self.sku.clone(),
            participant: self.participant,
        }
    }
}

#[derive(Subcommand)]
pub(crate) enum Keys {
    /// Replaces your API key: the old one and every token issued before stop working at once.
    /// Prints the new key once and logs in with it.
    Rotate,
}

#[derive(Subcommand)]
pub(crate) enum Participants {
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
pub(crate) enum Market {
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
    /// Candles of a SKU: open, high, low, close and the unit-hour-weighted price per interval.
    Candles {
        #[arg(long)]
        sku: String,
        /// One hub (default: all hubs together).
        #[arg(long)]
        hub: Option<String>,
        /// 1h or 1d.
        #[arg(long, default_value = "1h")]
        interval: String,
        #[arg(long, value_parser = parse_time)]
        from: Option<DateTime<Utc>>,
        #[arg(long, value_parser = parse_time)]
        to: Option<DateTime<Utc>>,
    },
    /// The price index of a SKU, nationally and per hub: the last 24 hours and 7 days.
    Index {
        #[arg(long)]
        sku: String,
    },
    /// The live market, one line per event (trades and changed price levels) until interrupted;
    /// it resumes by itself after a disconnection.
    Watch {
        /// Start just after this event id (every event since then first).
        #[arg(long)]
        after: Option<i64>,
        /// Stop after this many events.
        #[arg(long)]
        count: Option<u64>,
    },
}

pub(crate) fn key(given: Option<String>) -> String {
    given.unwrap_or_else(|| Uuid::new_v4().to_string())
}

pub(crate) fn parse_status(status: Option<String>) -> anyhow::Result<Option<OrderStatus>> {
    status
        .map(|s| OrderStatus::parse(&s).with_context(|| format!("unknown status {s}")))
        .transpose()
}

/// A day (`2026-11-01`, midnight UTC) or an RFC 3339 time.
pub(crate) fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&Utc));
    }
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map(|day| day.and_time(chrono::NaiveTime::MIN).and_utc())
        .map_err(|_| format!("`{text}` is neither a day (2026-11-01) nor an RFC 3339 time"))
}
