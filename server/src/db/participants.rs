//! Participants and their API-key credentials.

use chrono::{DateTime, SubsecRound, Utc};
use diesel::prelude::*;
use suanli_sdk::{Participant, ParticipantKind, ProviderType};
use uuid::Uuid;

use super::schema::participants;
use super::{audit, ledger};

/// The `api_key_id` of the admin whose key comes from `SUANLI_ADMIN_API_KEY`: that key has a
/// free form, so it is found by this fixed id rather than by a prefix of the key.
pub const BOOTSTRAP_ADMIN_KEY_ID: &str = "bootstrap-admin";

/// A participant row, with its credential hash.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = participants)]
pub struct ParticipantRow {
    pub id: Uuid,
    pub name: String,
    pub kind: String,
    pub provider_type: Option<String>,
    pub hub: Option<String>,
    pub api_key_id: String,
    pub api_key_hash: String,
    pub created_at: DateTime<Utc>,
    pub suspended_at: Option<DateTime<Utc>>,
    pub suspension_reason: Option<String>,
    /// Key rotations so far; the exchange's tokens carry the epoch they were issued in.
    pub key_epoch: i32,
    pub credentials_changed_at: DateTime<Utc>,
}

impl ParticipantRow {
    /// The participant's kind. A CHECK constraint keeps the column to the names `parse` knows;
    /// anything else is a corrupt row, not a buyer.
    pub fn kind(&self) -> ParticipantKind {
        ParticipantKind::parse(&self.kind).unwrap_or_else(|| {
            panic!(
                "participant {} has the unknown kind {:?}",
                self.id, self.kind
            )
        })
    }

    /// The participant as the API shows it.
    pub fn to_wire(&self) -> Participant {
        Participant {
            id: self.id,
            name: self.name.clone(),
            kind: self.kind(),
            provider_type: self.provider_type.as_deref().and_then(ProviderType::parse),
            hub: self.hub.clone(),
            created_at: self.created_at,
            suspended: self.suspended_at.is_some(),
        }
    }
}

/// What is needed to create a participant; the key hash is computed by the caller, off the
/// database connection's time.
pub struct NewParticipantRow<'a> {
    pub name: &'a str,
    pub kind: ParticipantKind,
    pub provider_type: Option<ProviderType>,
    pub hub: Option<&'a str>,
    pub api_key_id: &'a str,
    pub api_key_hash: &'a str,
}

/// Creates a participant with its ledger accounts and an audit entry, in one transaction.
pub fn create(
    connection: &mut PgConnection,
    actor: &str,
    new: &NewParticipantRow<'_>,
) -> QueryResult<ParticipantRow> {
    connection.transaction(|connection| {
        let row: ParticipantRow = diesel::insert_into(participants::table)
            .values((
                participants::id.eq(Uuid::new_v4()),
                participants::name.eq(new.name),
                participants::kind.eq(new.kind.as_str()),
                participants::provider_type.eq(new.provider_type.map(ProviderType::as_str)),
                participants::hub.eq(new.hub),
                participants::api_key_id.eq(new.api_key_id),
                participants::api_key_hash.eq(new.api_key_hash),
            ))
            .returning(ParticipantRow::as_returning())
            .get_result(connection)?;
        ledger::open_participant_accounts(connection, row.id, &row.kind)?;
        audit::append(
            connection,
            actor,
            "participant_created",
            serde_json::json!({
                "participant_id": row.id,
                "name": row.name,
                "kind": row.kind,
                "provider_type": row.provider_type,
                "hub": row.hub,
            }),
        )?;
        Ok(row)
    })
}

/// The participant with this id.
pub fn get(connection: &mut PgConnection, id: Uuid) -> QueryResult<Option<ParticipantRow>> {
    participants::table
        .find(id)
        .select(ParticipantRow::as_select())
        .first(connection)
        .optional()
}

/// The participant whose API key has this lookup id.
pub fn by_api_key_id(
    connection: &mut PgConnection,
    api_key_id: &str,
) -> QueryResult<Option<ParticipantRow>> {
    participants::table
        .filter(participants::api_key_id.eq(api_key_id))
        .select(ParticipantRow::as_select())
        .first(connection)
        .optional()
}

/// The participant with this exact name and kind (the demo finds its participants this way).
pub fn by_name(
    connection: &mut PgConnection,
    name: &str,
    kind: ParticipantKind,
) -> QueryResult<Option<ParticipantRow>> {
    participants::table
        .filter(
            participants::name
                .eq(name)
                .and(participants::kind.eq(kind.as_str())),
        )
        .order(participants::created_at.asc())
        .select(ParticipantRow::as_select())
        .first(connection)
        .optional()
}

/// Replaces a participant's API key: the old key and every token issued before stop working (the
/// key epoch moves on). Records that it happened; returns the new epoch.
pub fn rotate_key(
    connection: &mut PgConnection,
    actor: &str,
    id: Uuid,
    api_key_id: &str,
    api_key_hash: &str,
) -> QueryResult<i32> {
    connection.transaction(|connection| {
        let now = Utc::now().trunc_subsecs(6);
        let epoch: i32 = diesel::update(participants::table.find(id))
            .set((
                participants::api_key_id.eq(api_key_id),
                participants::api_key_hash.eq(api_key_hash),
                participants::key_epoch.eq(participants::key_epoch + 1),
                participants::credentials_changed_at.eq(now),
            ))
            .returning(participants::key_epoch)
            .get_result(connection)?;
        audit::append(
            connection,
            actor,
            "api_key_rotated",
            serde_json::json!({ "participant_id": id }),
        )?;
        Ok(epoch)
    })
}

/// Marks a participant suspended with `reason`, in the caller's transaction (the sequenced writer
/// appends the audit entry with the orders it cancelled): from then on its tokens and key are
/// refused, and the tokens issued before stay refused after a reinstatement (the key epoch moves
/// on: a suspension for a leaked token must not end with that token working again). False if it
/// was suspended already.
pub fn suspend(
    connection: &mut PgConnection,
    id: Uuid,
    reason: &str,
    at: DateTime<Utc>,
) -> QueryResult<bool> {
    let changed = diesel::update(
        participants::table
            .find(id)
            .filter(participants::suspended_at.is_null()),
    )
    .set((
        participants::suspended_at.eq(at),
        participants::suspension_reason.eq(reason),
        participants::key_epoch.eq(participants::key_epoch + 1),
        participants::credentials_changed_at.eq(at),
    ))
    .execute(connection)?;
    Ok(changed > 0)
}

/// Which of `ids` are suspended.
pub fn suspended_among(
    connection: &mut PgConnection,
    ids: &[Uuid],
) -> QueryResult<std::collections::HashSet<Uuid>> {
    let rows: Vec<Uuid> = participants::table
        .filter(
            participants::id
                .eq_any(ids)
                .and(participants::suspended_at.is_not_null()),
        )
        .select(participants::id)
        .load(connection)?;
    Ok(rows.into_iter().collect())
}

/// Lifts a suspension and records it; false if the participant was not suspended.
pub fn reinstate(connection: &mut PgConnection, actor: &str, id: Uuid) -> QueryResult<bool> {
    connection.transaction(|connection| {
        let changed = diesel::update(
            participants::table
                .find(id)
                .filter(participants::suspended_at.is_not_null()),
        )
        .set((
            participants::suspended_at.eq(None::<DateTime<Utc>>),
            participants::suspension_reason.eq(None::<String>),
        ))
        .execute(connection)?;
        if changed > 0 {
            audit::append(
                connection,
                actor,
                "participant_reinstated",
                serde_json::json!({ "participant_id": id }),
            )?;
        }
        Ok(changed > 0)
    })
}
