//! Stored policies: modules by digest (kept forever), which hub uploaded which, which is active,
//! and the faults policies caused.

use chrono::{DateTime, SubsecRound, Utc};
use diesel::prelude::*;
use serde_json::json;
use uuid::Uuid;

use super::audit;
use super::schema::{active_policies, hub_policies, policy_faults, policy_modules};
use diesel::sql_types::{Array, BigInt, Text, Timestamptz};

/// One stored version as its hub sees it.
#[derive(Debug, Clone)]
pub struct StoredPolicy {
    pub hub: String,
    pub kind: String,
    pub digest: String,
    pub size_bytes: i32,
    pub uploaded_at: DateTime<Utc>,
    pub active: bool,
}

/// Stores a validated component for `hub` (once per content) and records the upload.
pub fn store(
    connection: &mut PgConnection,
    hub: &str,
    kind: &str,
    digest: &str,
    bytes: &[u8],
    uploader: Uuid,
) -> QueryResult<StoredPolicy> {
    connection.transaction(|connection| {
        diesel::insert_into(policy_modules::table)
            .values((
                policy_modules::digest.eq(digest),
                policy_modules::bytes.eq(bytes),
                policy_modules::size_bytes.eq(bytes.len() as i32),
            ))
            .on_conflict_do_nothing()
            .execute(connection)?;
        let now = Utc::now().trunc_subsecs(6);
        let inserted = diesel::insert_into(hub_policies::table)
            .values((
                hub_policies::hub.eq(hub),
                hub_policies::kind.eq(kind),
                hub_policies::digest.eq(digest),
                hub_policies::uploaded_by.eq(uploader),
                hub_policies::uploaded_at.eq(now),
            ))
            .on_conflict_do_nothing()
            .execute(connection)?;
        if inserted > 0 {
            audit::append(
                connection,
                &uploader.to_string(),
                "policy_uploaded",
                json!({"hub": hub, "kind": kind, "digest": digest, "size_bytes": bytes.len()}),
            )?;
        }
        let stored = list(connection, hub)?
            .into_iter()
            .find(|policy| policy.digest == digest && policy.kind == kind)
            .ok_or(diesel::result::Error::NotFound)?;
        Ok(stored)
    })
}

/// How many policy versions `hub` stores, and their bytes together.
pub fn hub_usage(connection: &mut PgConnection, hub: &str) -> QueryResult<(u64, u64)> {
    #[derive(QueryableByName)]
    struct Usage {
        #[diesel(sql_type = BigInt)]
        versions: i64,
        #[diesel(sql_type = BigInt)]
        bytes: i64,
    }
    let usage: Usage = diesel::sql_query(
        "SELECT count(*) AS versions, coalesce(sum(m.size_bytes), 0)::bigint AS bytes \
         FROM hub_policies h JOIN policy_modules m ON m.digest = h.digest WHERE h.hub = $1",
    )
    .bind::<Text, _>(hub)
    .get_result(connection)?;
    Ok((usage.versions.max(0) as u64, usage.bytes.max(0) as u64))
}

/// Every version `hub` uploaded, newest first, marking the active ones.
pub fn list(connection: &mut PgConnection, hub: &str) -> QueryResult<Vec<StoredPolicy>> {
    let rows: Vec<(String, String, String, i32, DateTime<Utc>)> = hub_policies::table
        .inner_join(policy_modules::table)
        .filter(hub_policies::hub.eq(hub))
        .order(hub_policies::uploaded_at.desc())
        .select((
            hub_policies::hub,
            hub_policies::kind,
            hub_policies::digest,
            policy_modules::size_bytes,
            hub_policies::uploaded_at,
        ))
        .load(connection)?;
    let active: Vec<(String, String)> = active_policies::table
        .filter(active_policies::hub.eq(hub))
        .select((active_policies::kind, active_policies::digest))
        .load(connection)?;
    Ok(rows
        .into_iter()
        .map(|(hub, kind, digest, size_bytes, uploaded_at)| {
            let is_active = active.iter().any(|(k, d)| *k == kind && *d == digest);
            StoredPolicy {
                hub,
                kind,
                digest,
                size_bytes,
                uploaded_at,
                active: is_active,
            }
        })
        .collect())
}

/// Makes `digest` the active policy of its kind for `hub`; `None` if the hub never uploaded it.
pub fn activate(
    connection: &mut PgConnection,
    hub: &str,
    digest: &str,
    actor: Uuid,
) -> QueryResult<Option<String>> {
    connection.transaction(|connection| {
        let kind: Option<String> = hub_policies::table
            .filter(
                hub_policies::hub
                    .eq(hub)
                    .and(hub_policies::digest.eq(digest)),
            )
            .select(hub_policies::kind)
            .first(connection)
            .optional()?;
        let Some(kind) = kind else { return Ok(None) };
        let now = Utc::now().trunc_subsecs(6);
        diesel::insert_into(active_policies::table)
            .values((
                active_policies::hub.eq(hub),
                active_policies::kind.eq(&kind),
                active_policies::digest.eq(digest),
                active_policies::activated_by.eq(actor),
                active_policies::activated_at.eq(now),
            ))
            .on_conflict((active_policies::hub, active_policies::kind))
            .do_update()
            .set((
                active_policies::digest.eq(digest),
                active_policies::activated_by.eq(actor),
                active_policies::activated_at.eq(now),
            ))
            .execute(connection)?;
        audit::append(
            connection,
            &actor.to_string(),
            "policy_activated",
            json!({"hub": hub, "kind": kind, "digest": digest}),
        )?;
        Ok(Some(kind))
    })
}

/// The active policies: (hub, kind, digest).
pub fn active(connection: &mut PgConnection) -> QueryResult<Vec<(String, String, String)>> {
    active_policies::table
        .select((
            active_policies::hub,
            active_policies::kind,
            active_policies::digest,
        ))
        .load(connection)
}

/// A stored policy module.
pub struct StoredModule {
    pub bytes: Vec<u8>,
    /// The hubs that uploaded it.
    pub hubs: Vec<String>,
}

/// A stored module's bytes and the hubs that uploaded it.
pub fn module(connection: &mut PgConnection, digest: &str) -> QueryResult<Option<StoredModule>> {
    let bytes: Option<Vec<u8>> = policy_modules::table
        .find(digest)
        .select(policy_modules::bytes)
        .first(connection)
        .optional()?;
    let Some(bytes) = bytes else { return Ok(None) };
    let hubs: Vec<String> = hub_policies::table
        .filter(hub_policies::digest.eq(digest))
        .select(hub_policies::hub)
        .load(connection)?;
    Ok(Some(StoredModule { bytes, hubs }))
}

/// A fault to keep.
#[derive(Debug, Clone)]
pub struct FaultRecord {
    pub hub: String,
    pub kind: String,
    pub digest: String,
    pub class: String,
    pub message: String,
    pub input: String,
}

/// Keeps faults a batch produced.
pub fn record_faults(
    connection: &mut PgConnection,
    faults: &[FaultRecord],
    at: DateTime<Utc>,
) -> QueryResult<()> {
    let rows: Vec<_> = faults
        .iter()
        .map(|fault| {
            (
                policy_faults::at.eq(at),
                policy_faults::hub.eq(&fault.hub),
                policy_faults::kind.eq(&fault.kind),
                policy_faults::digest.eq(&fault.digest),
                policy_faults::class.eq(&fault.class),
                policy_faults::message.eq(&fault.message),
                policy_faults::input.eq(&fault.input),
            )
        })
        .collect();
    for chunk in rows.chunks(500) {
        diesel::insert_into(policy_faults::table)
            .values(chunk)
            .execute(connection)?;
    }
    Ok(())
}

/// One policy evaluation made while matching, to keep whatever its outcome.
#[derive(Debug, Clone)]
pub struct DecisionRow {
    pub hub: String,
    pub kind: &'static str,
    pub digest: String,
    /// `allowed` / `denied` (compliance), `quoted` / `rejected` (pricing), or `fault`.
    pub outcome: &'static str,
    pub bid_id: Uuid,
    pub offer_id: Uuid,
    pub input: String,
    pub output: String,
    pub fuel_used: u64,
    /// For a compliance refusal: the policy's own `code: message` (not stored apart: it is in
    /// `output`), for the order's audit entry.
    pub denial: Option<String>,
}

/// The statement keeping the decisions a batch made (sent with the batch's other writes, in its
/// transaction); its text never changes. `None` for no decisions.
pub fn decisions_statement(
    rows: &[DecisionRow],
    at: DateTime<Utc>,
) -> Option<super::prepared::Prepared<'_>> {
    if rows.is_empty() {
        return None;
    }
    let texts = |pick: fn(&DecisionRow) -> &str| rows.iter().map(pick).collect::<Vec<&str>>();
    super::prepared::prepared(
        "INSERT INTO policy_decisions (at, hub, kind, digest, outcome, bid_id, offer_id, input, output, fuel_used) \
         SELECT $1, * FROM unnest($2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind::<Timestamptz, _>(at)
    .bind::<Array<Text>, _>(texts(|row| &row.hub))
    .bind::<Array<Text>, _>(texts(|row| row.kind))
    .bind::<Array<Text>, _>(texts(|row| &row.digest))
    .bind::<Array<Text>, _>(texts(|row| row.outcome))
    .bind::<Array<diesel::sql_types::Uuid>, _>(rows.iter().map(|row| row.bid_id).collect::<Vec<_>>())
    .bind::<Array<diesel::sql_types::Uuid>, _>(rows.iter().map(|row| row.offer_id).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(texts(|row| &row.input))
    .bind::<Array<Text>, _>(texts(|row| &row.output))
    .bind::<Array<BigInt>, _>(rows.iter().map(|row| i64::try_from(row.fuel_used).unwrap_or(i64::MAX)).collect::<Vec<_>>())
    .into()
}

/// A page of the policy decisions taken for `hub`, newest first; `kind` and `outcome` narrow it.
pub fn hub_decisions(
    connection: &mut PgConnection,
    hub: &str,
    kind: Option<&str>,
    outcome: Option<&str>,
    before_id: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<suanli_sdk::HubDecision>> {
    use super::schema::policy_decisions as d;
    let mut query = d::table
        .filter(d::hub.eq(hub))
        .order(d::id.desc())
        .limit(limit)
        .select((
            d::id,
            d::at,
            d::hub,
            d::kind,
            d::digest,
            d::outcome,
            d::bid_id,
            d::offer_id,
            d::input,
            d::output,
            d::fuel_used,
        ))
        .into_boxed();
    if let Some(kind) = kind {
        query = query.filter(d::kind.eq(kind.to_owned()));
    }
    if let Some(outcome) = outcome {
        query = query.filter(d::outcome.eq(outcome.to_owned()));
    }
    if let Some(id) = before_id {
        query = query.filter(d::id.lt(id));
    }
    type Row = (
        i64,
        DateTime<Utc>,
        String,
        String,
        String,
        String,
        Uuid,
        Uuid,
        String,
        String,
        i64,
    );
    let rows: Vec<Row> = query.load(connection)?;
    Ok(rows
        .into_iter()
        .map(
            |(id, at, hub, kind, digest, outcome, bid_id, offer_id, input, output, fuel)| {
                suanli_sdk::HubDecision {
                    id,
                    at,
                    hub,
                    kind,
                    policy_digest: digest,
                    outcome,
                    bid_id,
                    offer_id,
                    input: json_or_text(&input),
                    output: json_or_text(&output),
                    fuel_used: fuel.max(0) as u64,
                }
            },
        )
        .collect())
}

/// A page of the policy faults in `hub`, newest first.
pub fn hub_faults(
    connection: &mut PgConnection,
    hub: &str,
    before_id: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<suanli_sdk::HubFault>> {
    use super::schema::policy_faults as f;
    let mut query = f::table
        .filter(f::hub.eq(hub))
        .order(f::id.desc())
        .limit(limit)
        .select((
            f::id,
            f::at,
            f::hub,
            f::kind,
            f::digest,
            f::class,
            f::message,
            f::input,
        ))
        .into_boxed();
    if let Some(id) = before_id {
        query = query.filter(f::id.lt(id));
    }
    type Row = (
        i64,
        DateTime<Utc>,
        String,
        String,
        String,
        String,
        String,
        String,
    );
    let rows: Vec<Row> = query.load(connection)?;
    Ok(rows
        .into_iter()
        .map(
            |(id, at, hub, kind, digest, class, message, input)| suanli_sdk::HubFault {
                id,
                at,
                hub,
                kind,
                policy_digest: digest,
                class,
                message,
                input: (!input.is_empty()).then(|| json_or_text(&input)),
            },
        )
        .collect())
}

/// Stored canonical JSON as a value (text that is not JSON, as a string).
fn json_or_text(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|_| serde_json::Value::String(text.to_owned()))
}
