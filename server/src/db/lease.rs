//! The matching lease: which node applies orders and settlements (README "Several nodes"). One
//! row, `matching_lease`; every time is the database's own clock (`clock_timestamp()`), so the
//! nodes' clocks never decide who leads.
//!
//! - [`acquire`] takes the lease when it has expired (or is already this process's), raising the
//!   fencing `token` by one;
//! - [`renew`] pushes the expiry on while the token is still the holder's;
//! - every batch's transaction checks the token in its last statement (the database's
//!   `batch_end`, `db::stream::end_statement`), as [`holds`] does for the rebuild of the book's
//!   levels: it reads the row `FOR KEY SHARE` and compares the token. `token` is a key column (it has a unique index), so
//!   a node that takes the lease meanwhile makes a key update of the row, which waits for that
//!   lock: either the batch commits first (and the new holder, which reads the book only after it
//!   took the lease, sees it) or the batch, reading the row after the taker committed, sees the
//!   new token and rolls back. A paused old holder can therefore never commit after losing the
//!   lease. A renewal changes no key column, so it never waits for a batch, nor a batch for it;
//! - [`release`] lets the lease go at once on a clean shutdown.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text};
use uuid::Uuid;

use super::Connection;

/// The lease as stored, and how long it has left by the database's clock.
#[derive(Debug, Clone, QueryableByName)]
pub struct Lease {
    #[diesel(sql_type = BigInt)]
    pub token: i64,
    #[diesel(sql_type = Nullable<diesel::sql_types::Uuid>)]
    pub holder: Option<Uuid>,
    #[diesel(sql_type = Text)]
    pub node: String,
    #[diesel(sql_type = Text)]
    pub address: String,
    /// Milliseconds until it expires (negative once it has).
    #[diesel(sql_type = BigInt)]
    pub remaining_ms: i64,
    /// Milliseconds since the holder last renewed it, by the clock of the database read.
    #[diesel(sql_type = BigInt)]
    pub renewed_ms_ago: i64,
}

impl Lease {
    /// Whether somebody holds it now.
    pub fn is_held(&self) -> bool {
        self.holder.is_some() && self.remaining_ms > 0
    }
}

const LEASE_COLUMNS: &str = "token, holder, node, address, \
     (extract(epoch FROM (expires_at - clock_timestamp())) * 1000)::bigint AS remaining_ms, \
     (extract(epoch FROM (clock_timestamp() - renewed_at)) * 1000)::bigint AS renewed_ms_ago";

#[derive(QueryableByName)]
struct Token {
    #[diesel(sql_type = BigInt)]
    token: i64,
}

/// Takes the lease for `holder` if it has expired or is `holder`'s already, for `timeout_ms`;
/// the new fencing token, or `None` if another holder's lease is still running.
pub fn acquire(
    connection: &mut Connection,
    holder: Uuid,
    node: &str,
    address: &str,
    timeout_ms: i64,
) -> QueryResult<Option<i64>> {
    let taken: Option<Token> = diesel::sql_query(
        "UPDATE matching_lease SET token = token + 1, holder = $1, node = $2, address = $3, \
             expires_at = clock_timestamp() + $4 * interval '1 millisecond', \
             renewed_at = clock_timestamp() \
         WHERE singleton AND (expires_at < clock_timestamp() OR holder = $1) \
         RETURNING token",
    )
    .bind::<diesel::sql_types::Uuid, _>(holder)
    .bind::<Text, _>(node)
    .bind::<Text, _>(address)
    .bind::<BigInt, _>(timeout_ms)
    .get_result(connection)
    .optional()?;
    Ok(taken.map(|taken| taken.token))
}

/// Pushes the expiry `timeout_ms` past now while `token` is still `holder`'s; false once another
/// node took the lease.
pub fn renew(
    connection: &mut Connection,
    holder: Uuid,
    token: i64,
    timeout_ms: i64,
) -> QueryResult<bool> {
    let renewed = diesel::sql_query(
        "UPDATE matching_lease SET expires_at = clock_timestamp() + $3 * interval '1 millisecond', \
             renewed_at = clock_timestamp() \
         WHERE singleton AND holder = $1 AND token = $2",
    )
    .bind::<diesel::sql_types::Uuid, _>(holder)
    .bind::<BigInt, _>(token)
    .bind::<BigInt, _>(timeout_ms)
    .execute(connection)?;
    Ok(renewed == 1)
}

/// Gives the lease up at once (a clean shutdown), if `token` is still `holder`'s.
pub fn release(connection: &mut Connection, holder: Uuid, token: i64) -> QueryResult<()> {
    diesel::sql_query(
        "UPDATE matching_lease SET expires_at = clock_timestamp() \
         WHERE singleton AND holder = $1 AND token = $2",
    )
    .bind::<diesel::sql_types::Uuid, _>(holder)
    .bind::<BigInt, _>(token)
    .execute(connection)
    .map(drop)
}

/// The lease as it stands.
pub fn current(connection: &mut Connection) -> QueryResult<Lease> {
    diesel::sql_query(format!(
        "SELECT {LEASE_COLUMNS} FROM matching_lease WHERE singleton"
    ))
    .get_result(connection)
}

/// Inside a transaction that must only commit under the lease (the rebuild of the book's levels;
/// a batch's does the same in SQL, `batch_end`): whether `token` still holds the lease. The row
/// stays key-share-locked until the transaction ends, so nobody takes the lease in between.
pub fn holds(connection: &mut Connection, token: i64) -> QueryResult<bool> {
    let row: Token =
        super::prepared::prepared("SELECT token FROM matching_lease WHERE singleton FOR KEY SHARE")
            .get_result(connection)?;
    Ok(row.token == token)
}

/// Makes PostgreSQL end this session when it sits inside a transaction for longer than
/// `timeout_ms` (the lease timeout): a paused holder must not keep rows locked, the lease row
/// among them, after another node took over.
pub fn end_idle_transactions_after(
    connection: &mut Connection,
    timeout_ms: i64,
) -> QueryResult<()> {
    diesel::sql_query(format!(
        "SET idle_in_transaction_session_timeout = {}",
        timeout_ms.max(1)
    ))
    .execute(connection)
    .map(drop)
}

/// Makes this session give up waiting for a row lock after `timeout_ms` (the lease keeper's own
/// connection: taking the lease must not wait behind a paused holder's batch forever).
pub fn wait_for_locks_at_most(connection: &mut Connection, timeout_ms: i64) -> QueryResult<()> {
    diesel::sql_query(format!("SET lock_timeout = {}", timeout_ms.max(1)))
        .execute(connection)
        .map(drop)
}

/// When this database last saw the holder renew, in milliseconds (on a streaming replica: how
/// far behind the primary it is, give or take the renewal interval).
pub fn renewed_ms_ago(connection: &mut Connection) -> QueryResult<i64> {
    current(connection).map(|lease| lease.renewed_ms_ago)
}
