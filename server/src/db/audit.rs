//! The hash-chained audit log (API.md "The hash chain").
//!
//! [`append`] locks the single `audit_head` row, so entries get gapless `seq`s in commit order even
//! with many concurrent writers, and an aborted transaction leaves no hole. The canonical text and
//! the hash are computed by the sdk's functions, the same ones a client verifies with.

use chrono::{DateTime, SubsecRound, Utc};
use diesel::prelude::*;
use serde_json::Value;
use suanli_sdk::audit::{ChainVerifier, canonical_entry, chain_hash};
use suanli_sdk::{AuditEntry, AuditVerification};

use diesel::sql_types::{Array, BigInt, Jsonb, Text, Timestamptz};

use super::prepared::{Prepared, prepared};
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

/// Appends entries in order, all stamped `at`, in the caller's transaction (one lock of the head,
/// one multi-row insert), and returns the last `seq`: the one way entries join the chain.
pub fn append_batch(
    connection: &mut PgConnection,
    entries: &[(String, &str, Value)],
    at: DateTime<Utc>,
) -> QueryResult<i64> {
    let (statements, seq) = append_statements(connection, entries, at)?;
    for statement in statements {
        statement.execute(connection)?;
    }
    Ok(seq)
}

/// [`append_batch`] for the writer's batch, which sends most of its writes as one statement:
/// locks the head (answered at once: the new entries' hashes chain from it) and returns the
/// statements that insert the entries and move the head, and the last `seq`. The head stays
/// locked until the caller's transaction ends, so nothing joins the chain in between.
pub fn append_statements<'a>(
    connection: &mut PgConnection,
    entries: &'a [(String, &str, Value)],
    at: DateTime<Utc>,
) -> QueryResult<(Vec<Prepared<'a>>, i64)> {
    if entries.is_empty() {
        // Nothing to chain: no need to wait for (or hold up) the head.
        let seq = audit_head::table
            .select(audit_head::seq)
            .first(connection)?;
        return Ok((Vec::new(), seq));
    }
    let (mut seq, mut hash): (i64, String) = audit_head::table
        .select((audit_head::seq, audit_head::hash))
        .for_update()
        .first(connection)?;
    let at = at.trunc_subsecs(6);
    let at_text = format_at(at);
    let mut seqs = Vec::with_capacity(entries.len());
    let mut actors = Vec::with_capacity(entries.len());
    let mut kinds = Vec::with_capacity(entries.len());
    let mut payloads = Vec::with_capacity(entries.len());
    let mut canonicals = Vec::with_capacity(entries.len());
    let mut prev_hashes = Vec::with_capacity(entries.len());
    let mut hashes = Vec::with_capacity(entries.len());
    for (actor, kind, payload) in entries {
        seq += 1;
        let canonical = canonical_entry(seq, &at_text, actor, kind, payload);
        let next = chain_hash(&hash, &canonical).expect("hashes are 64 hex digits");
        seqs.push(seq);
        actors.push(actor.as_str());
        kinds.push(*kind);
        payloads.push(payload);
        canonicals.push(canonical);
        prev_hashes.push(std::mem::replace(&mut hash, next.clone()));
        hashes.push(next);
    }
    // Statements whose texts never change, whatever the batch size: PostgreSQL plans them once.
    let insert = prepared(
        "INSERT INTO audit_log (seq, at, actor, kind, payload, canonical, prev_hash, hash) \
         SELECT s, $2, a, k, p, c, ph, h FROM unnest($1, $3, $4, $5, $6, $7, $8) AS t(s, a, k, p, c, ph, h)",
    )
    .bind::<Array<BigInt>, _>(seqs)
    .bind::<Timestamptz, _>(at)
    .bind::<Array<Text>, _>(actors)
    .bind::<Array<Text>, _>(kinds)
    .bind::<Array<Jsonb>, _>(payloads)
    .bind::<Array<Text>, _>(canonicals)
    .bind::<Array<Text>, _>(prev_hashes)
    .bind::<Array<Text>, _>(hashes);
    let head = prepared("UPDATE audit_head SET seq = $1, hash = $2")
        .bind::<BigInt, _>(seq)
        .bind::<Text, _>(hash);
    Ok((vec![insert, head], seq))
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
