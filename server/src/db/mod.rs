//! The store: PostgreSQL through diesel. Only this module (and `pg_private`) knows SQL, or diesel:
//! the rest of the exchange names a [`Connection`] and a [`StoreError`], and asks [`failure`] what
//! a failure means.
//!
//! Every function takes a `&mut Connection` and runs inside the caller's transaction, so that a
//! change, its ledger entries and its audit entry commit together or not at all.

pub mod audit;
pub mod invariants;
pub mod lease;
pub mod ledger;
pub mod market;
pub mod orders;
pub mod participants;
pub mod policies;
pub mod prepared;
pub mod reference;
pub mod regulator;
pub mod schema;
pub mod settlement;
pub mod stream;
pub mod tree;
pub mod types;
pub mod withdrawals;

use anyhow::Context;
use diesel::pg::PgConnection;
use diesel::r2d2::{ConnectionManager, Pool};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

/// What a store function that applies a rule can end with: the rule's refusal (nothing written),
/// or a failure of the store itself.
#[derive(Debug, thiserror::Error)]
pub enum Refusable<R> {
    #[error("refused: {0}")]
    Refused(R),
    #[error(transparent)]
    Store(#[from] diesel::result::Error),
}

/// One connection to PostgreSQL.
pub type Connection = PgConnection;

/// What a store function fails with.
pub type StoreError = diesel::result::Error;

/// No pooled connection could be had in time.
pub type PoolError = diesel::r2d2::PoolError;

/// Runs `work` in one transaction: committed when it returns `Ok`, rolled back otherwise.
pub fn transaction<T, E, F>(connection: &mut Connection, work: F) -> Result<T, E>
where
    F: FnOnce(&mut Connection) -> Result<T, E>,
    E: From<StoreError>,
{
    diesel::Connection::transaction(connection, work)
}

/// Runs `read` in one snapshot of the database (a read-only, repeatable-read transaction): what
/// commits meanwhile is not seen at all, rather than seen in part. Checks that read several
/// tables, or one table in pages, while the writer goes on use it, so that a chain growing as it
/// is read is not taken for one cut short, nor a ledger half read for one out of balance.
pub fn in_snapshot<T, E, F>(connection: &mut Connection, read: F) -> Result<T, E>
where
    F: FnOnce(&mut Connection) -> Result<T, E>,
    E: From<StoreError>,
{
    connection
        .build_transaction()
        .repeatable_read()
        .read_only()
        .run(read)
}

/// What a store failure means to the rest of the exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The row asked for does not exist.
    NotFound,
    /// A balance would go below zero (the `accounts_balance_not_negative` check).
    InsufficientFunds,
    /// Another request took the same idempotency key at the same moment.
    IdempotencyRace,
    /// The connection to PostgreSQL is gone.
    ConnectionLost,
    /// A serializable transaction lost a race with another.
    SerializationFailure,
    /// PostgreSQL refused the data written (a constraint, a value out of range) or a value read
    /// back could not be decoded: what one command brought may have caused it.
    Refused,
    /// Anything else: a fault of the exchange, not of a request.
    Other,
}

/// Classifies a store failure.
pub fn failure(error: &StoreError) -> Failure {
    use diesel::result::{DatabaseErrorKind, Error};
    match error {
        Error::NotFound => Failure::NotFound,
        Error::DatabaseError(kind, info) => match (kind, info.constraint_name()) {
            (DatabaseErrorKind::CheckViolation, Some("accounts_balance_not_negative")) => {
                Failure::InsufficientFunds
            }
            (DatabaseErrorKind::UniqueViolation, Some(constraint))
                if constraint.ends_with("idempotency_key") =>
            {
                Failure::IdempotencyRace
            }
            (DatabaseErrorKind::ClosedConnection, _) => Failure::ConnectionLost,
            (DatabaseErrorKind::SerializationFailure, _) => Failure::SerializationFailure,
            _ => Failure::Refused,
        },
        Error::SerializationError(_) | Error::DeserializationError(_) => Failure::Refused,
        _ => Failure::Other,
    }
}

/// Opens one connection of its own (the writer's, the reader's, the lease keeper's), outside any
/// pool.
pub fn open(database_url: &str) -> anyhow::Result<Connection> {
    use diesel::Connection as _;
    PgConnection::establish(database_url).context("Failed to connect to PostgreSQL")
}

/// A pool of PostgreSQL connections.
pub type DbPool = Pool<ConnectionManager<PgConnection>>;

/// A connection taken from a [`DbPool`].
pub type PooledConnection = diesel::r2d2::PooledConnection<ConnectionManager<PgConnection>>;

/// The migrations of `migrations/`, compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations");

/// Opens a pool of at most `size_max` connections to `database_url`; a request waits at most
/// `connect_timeout_ms` for one.
pub fn connect(
    database_url: &str,
    size_max: u32,
    connect_timeout_ms: u64,
) -> anyhow::Result<DbPool> {
    let manager = ConnectionManager::<PgConnection>::new(database_url);
    // Connections are opened when requests need them and kept while they are used (no idle
    // minimum): a pool whose connections were cut does not keep reconnecting in the background.
    let pool = Pool::builder()
        .max_size(size_max)
        .min_idle(Some(0))
        .connection_timeout(std::time::Duration::from_millis(connect_timeout_ms))
        .build(manager)
        .context("Failed to connect to PostgreSQL")?;
    // One connection now, so that an unreachable database fails the start.
    drop(pool.get().context("Failed to connect to PostgreSQL")?);
    Ok(pool)
}

/// Like [`connect`], but opening connections only when they are asked for.
pub fn connect_lazily(
    database_url: &str,
    size_max: u32,
    connect_timeout_ms: u64,
) -> anyhow::Result<DbPool> {
    let manager = ConnectionManager::<PgConnection>::new(database_url);
    Pool::builder()
        .max_size(size_max)
        .min_idle(Some(0))
        .connection_timeout(std::time::Duration::from_millis(connect_timeout_ms))
        .build(manager)
        .context("Failed to connect to PostgreSQL")
}

/// A round trip to the database: is it reachable?
/// Names this session in `pg_stat_activity` (`application_name`), for operators (and tests)
/// looking at the database from outside.
pub fn name_session(connection: &mut PgConnection, name: &'static str) -> diesel::QueryResult<()> {
    diesel::RunQueryDsl::execute(
        diesel::sql_query(format!("SET application_name = '{name}'")),
        connection,
    )
    .map(drop)
}

/// Opens one of the sequenced writer's sessions (the committer's, named `name`, or its reader's),
/// planning its statements as lookups by key in tables held in memory (`random_page_cost = 1.1`,
/// PostgreSQL's default being 4: a disk seek per page read out of order). A batch reads and
/// changes rows by key (balances by account, orders by id, foreign-key checks) in tables the
/// writer itself keeps warm; its bulk reads (the book's rebuild, the stream's levels) are plain
/// scans either way. With the default, a plan made while a table is small or its statistics old
/// (a new exchange: `accounts` grows by an escrow account per contract) scans the whole table
/// and hashes it for each batch, a cost that grows with the exchange's history until the next
/// re-plan. This narrows that risk without removing it: an estimate far enough behind still
/// hashes (the ledger entries' reference check did, BENCHMARKS.md "2026-12-07 (thirteenth)"), so
/// that check no longer leaves the choice to the planner (migration
/// `..._order_path_checks_stay_cheap`).
///
/// Each statement is planned once per session and the plan kept (`plan_cache_mode =
/// force_generic_plan`). The batch's statements have fixed texts over arrays, so a plan made for
/// the parameters at hand ("custom") would only see how long the arrays are, and costs more to
/// make than to run. Left to itself, PostgreSQL made a custom plan for 3,499 of 4,496 executions of
/// the batch's first statement, once it judged the generic plan dearer than plans for small
/// arrays: planning was 15–18 % of the committer backend's samples (BENCHMARKS.md "2026-12-07
/// (fifteenth)"). The sessions' other reads (the book's rebuild, the stream after an event id, the
/// hubs' levy accounts, the batch's reads by key) plan as well generically; a condition whose
/// value decides the plan is written into the statement's text instead of bound (the rebuild's
/// resting statuses, `db::orders::resting_offers_after`). The plans are still made again as the
/// tables grow (`db::orders::forget_plans`).
pub fn open_for_writer(
    database_url: &str,
    name: Option<&'static str>,
) -> anyhow::Result<Connection> {
    let mut connection = open(database_url)?;
    if let Some(name) = name {
        name_session(&mut connection, name)?;
    }
    diesel::connection::SimpleConnection::batch_execute(
        &mut connection,
        "SET random_page_cost = 1.1; SET plan_cache_mode = force_generic_plan",
    )?;
    Ok(connection)
}

pub fn ping(connection: &mut PgConnection) -> diesel::QueryResult<()> {
    diesel::RunQueryDsl::execute(diesel::sql_query("SELECT 1"), connection).map(drop)
}

/// Runs `work` while no other node runs its own start-up `work` on this database (a session
/// advisory lock): nodes started together must not, for instance, both create the bootstrap admin.
pub fn one_start_at_a_time<T>(
    connection: &mut PgConnection,
    work: impl FnOnce(&mut PgConnection) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    // A transaction's lock: released however the work ends.
    transaction(connection, |connection| {
        diesel::sql_query("SELECT pg_advisory_xact_lock(727400004)")
            .execute(connection)
            .context("Failed to take the start-up lock")?;
        work(connection)
    })
}

/// Applies every pending migration. Safe to call on every start: applied ones are skipped.
pub fn migrate(connection: &mut PgConnection) -> anyhow::Result<()> {
    // Several servers may start at once against one database: serialise their migrations.
    diesel::sql_query("SELECT pg_advisory_lock(727400001)")
        .execute(connection)
        .context("Failed to take the migration lock")?;
    let result = connection
        .run_pending_migrations(MIGRATIONS)
        .map(|applied| applied.len())
        .map_err(|error| anyhow::anyhow!("Failed to run migrations: {error}"));
    diesel::sql_query("SELECT pg_advisory_unlock(727400001)")
        .execute(connection)
        .context("Failed to release the migration lock")?;
    let applied = result?;
    if applied > 0 {
        tracing::info!(applied, "migrations applied");
    }
    Ok(())
}

use diesel::RunQueryDsl;
