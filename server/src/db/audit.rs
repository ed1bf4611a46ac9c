//! The hash-chained audit log (API.md "The hash chain").
//!
//! Entries join the chain through the database's `audit_append` ([`append_batch`]), which locks the
//! single `audit_head` row, so entries get gapless `seq`s in commit order even with many concurrent
//! writers, and an aborted transaction leaves no hole. Each entry's canonical text up to its `seq`
//! is made by the sdk's function; `audit_append` completes it and hashes it as the sdk's
//! `chain_hash` does, and [`verify`] checks the stored chain with the sdk's verifier, the one a
//! client uses.

use chrono::{DateTime, SubsecRound, Utc};
use diesel::prelude::*;
use serde_json::Value;
use suanli_sdk::audit::{ChainVerifier, canonical_entry_prefix};
use suanli_sdk::{AuditEntry, AuditVerification};

use diesel::sql_types::{Array, BigInt, Jsonb, Text, Timestamptz};

use super::prepared::prepared;
use super::schema::{audit_head, audit_log};

/// Who caused a change: a participant, or the exchange itself.
pub const SYSTEM_ACTOR: &str = "system";

/// Formats a time as the log stores and hashes it: RFC 3339, UTC, microseconds.
pub fn format_at(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = audit_log)]
struct Row {
    seq: i64,
    at: DateTime<Utc>,
    actor: String,
    kind: String,
    payload: Value,
    canonical: String,
    prev_hash: String,
    hash: String,
}

impl From<Row> for AuditEntry {
    fn from(row: Row) -> Self {
        AuditEntry {
            seq: row.seq,
            at: format_at(row.at),
            actor: row.actor,
            kind: row.kind,
            payload: row.payload,
            canonical: row.canonical,
            prev_hash: row.prev_hash,
            hash: row.hash,
        }
    }
}

/// Appends one entry in the caller's transaction and returns its `seq`.
///
/// Call it last in a transaction: the head row stays locked until commit, which serialises every
/// writer of the log for that long.
pub fn append(
    connection: &mut PgConnection,
    actor: &str,
    kind: &str,
    payload: Value,
) -> QueryResult<i64> {
    append_batch(
        connection,
        &[(actor.to_owned(), kind, salted(payload))],
        Utc::now(),
    )
}

/// `payload` with a `salt` of 128 random bits. An inclusion proof hands its reader the leaf
/// hashes of neighbouring entries, and most entries are guessable from what a party knows (its
/// counterparty's id, a window, a price in whole fen): unsalted, a provider could recover a
/// buyer's limit from the hash beside its own contract's entry. Every entry is salted where it is
/// made: here, and in the writer's `Effects::audit`.
pub fn salted(mut payload: Value) -> Value {
    if let Some(fields) = payload.as_object_mut() {
        fields.insert(
            "salt".into(),
            Value::String(format!("{:032x}", rand::random::<u128>())),
        );
    }
    payload
}

/// Appends entries in order, all stamped `at`, in the caller's transaction, and returns the last
/// `seq`. Entries join the chain only through the database's `audit_append` (migration
/// `..._batch_audit_in_one_statement`): here, and in the writer's batch, through `batch_end`
/// (`db::stream::end_statement`). It locks the head until the transaction ends, completes each
/// entry's canonical text with its `seq` and hashes it after the one before, in one round trip.
pub fn append_batch(
    connection: &mut PgConnection,
    entries: &[(String, &str, Value)],
    at: DateTime<Utc>,
) -> QueryResult<i64> {
    #[derive(QueryableByName)]
    struct Appended {
        #[diesel(sql_type = BigInt)]
        last_seq: i64,
    }
    let entries = Entries::of(entries, at);
    let appended: Appended = prepared("SELECT audit_append($1, $2, $3, $4, $5) AS last_seq")
        .bind::<Timestamptz, _>(entries.at)
        .bind::<Array<Text>, _>(entries.actors)
        .bind::<Array<Text>, _>(entries.kinds)
        .bind::<Array<Jsonb>, _>(entries.payloads)
        .bind::<Array<Text>, _>(entries.prefixes)
        .get_result(connection)?;
    Ok(appended.last_seq)
}

/// Entries laid out for the database's `audit_append` (or the writer's `batch_end`, which calls
/// it): each one's actor, kind, payload and canonical text up to its `seq`, all stamped `at`.
pub struct Entries<'a> {
    /// When, to the microsecond (what PostgreSQL keeps, so that the canonical text's `at` is the
    /// stored one).
    pub at: DateTime<Utc>,
    pub actors: Vec<&'a str>,
    pub kinds: Vec<&'a str>,
    pub payloads: Vec<&'a Value>,
    /// Each entry's canonical text up to and including `"seq":`.
    pub prefixes: Vec<String>,
}

impl<'a> Entries<'a> {
    pub fn of(entries: &'a [(String, &'a str, Value)], at: DateTime<Utc>) -> Self {
        let at = at.trunc_subsecs(6);
        let at_text = format_at(at);
        let mut laid_out = Entries {
            at,
            actors: Vec::with_capacity(entries.len()),
            kinds: Vec::with_capacity(entries.len()),
            payloads: Vec::with_capacity(entries.len()),
            prefixes: Vec::with_capacity(entries.len()),
        };
        for (actor, kind, payload) in entries {
            laid_out
                .prefixes
                .push(canonical_entry_prefix(&at_text, actor, kind, payload));
            laid_out.actors.push(actor);
            laid_out.kinds.push(kind);
            laid_out.payloads.push(payload);
        }
        laid_out
    }
}

/// At most `limit` entries with `seq > after_seq`, in order.
pub fn page(
    connection: &mut PgConnection,
    after_seq: i64,
    limit: i64,
) -> QueryResult<Vec<AuditEntry>> {
    let rows: Vec<Row> = audit_log::table
        .filter(audit_log::seq.gt(after_seq))
        .order(audit_log::seq.asc())
        .limit(limit)
        .select(Row::as_select())
        .load(connection)?;
    Ok(rows.into_iter().map(AuditEntry::from).collect())
}

/// Recomputes the whole chain from the stored rows, `batch` rows at a time, and checks that the
/// head row points at the last entry (so that entries removed from the end are noticed too).
pub fn verify(connection: &mut PgConnection, batch: i64) -> QueryResult<AuditVerification> {
    let mut verifier = ChainVerifier::new();
    let mut after_seq = 0;
    let mut last: Option<AuditEntry> = None;
    loop {
        let entries = page(connection, after_seq, batch)?;
        let Some(tail) = entries.last() else { break };
        after_seq = tail.seq;
        for entry in &entries {
            verifier.push(entry);
        }
        last = entries.into_iter().last();
    }
    let mut verdict = verifier.finish();
    let (head_seq, head_hash): (i64, String) = audit_head::table
        .select((audit_head::seq, audit_head::hash))
        .first(connection)?;
    let last_seq = last.as_ref().map_or(0, |entry| entry.seq);
    if verdict.ok && (head_seq != last_seq || head_hash != verdict.head_hash) {
        verdict.ok = false;
        verdict.first_bad_seq = Some(last_seq.min(head_seq) + 1);
    }
    Ok(verdict)
}
