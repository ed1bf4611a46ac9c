//! Withdrawals: money paid out of the exchange, and the statement of a participant's accounts.
//!
//! A request is applied by the sequenced writer (it takes money out of `available`, which only the
//! writer does), so here are the writer's reads and rows; deciding one (paid, rejected) only moves
//! money already set aside, and runs here in its own transaction.

use std::collections::HashMap;

use chrono::{DateTime, SubsecRound, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Nullable, Text, Timestamptz};
use rust_decimal::Decimal;
use suanli_sdk::{StatementEntry, Withdrawal, WithdrawalStatus};
use uuid::Uuid;

use super::Refusable;
use super::audit;
use super::ledger::{self, EXTERNAL_ACCOUNT, PAYOUTS_PENDING_ACCOUNT};
use super::schema::withdrawals;
use super::types::StoredWithdrawalStatus;
use crate::rules::money::WithdrawalRefusal;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = withdrawals)]
pub struct WithdrawalRow {
    pub id: Uuid,
    #[diesel(skip_insertion)]
    pub seq: i64,
    pub participant_id: Uuid,
    pub account_id: Uuid,
    pub amount: Decimal,
    pub destination: String,
    pub status: StoredWithdrawalStatus,
    pub idempotency_key: String,
    pub request_hash: String,
    pub bank_reference: Option<String>,
    pub reason: Option<String>,
    pub decided_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub decided_at: Option<DateTime<Utc>>,
}

impl WithdrawalRow {
    /// The withdrawal as the API shows it.
    pub fn to_wire(&self) -> Withdrawal {
        Withdrawal {
            id: self.id,
            participant_id: self.participant_id,
            amount: self.amount.normalize(),
            currency: "CNY".into(),
            destination: self.destination.clone(),
            status: self.status.0,
            idempotency_key: self.idempotency_key.clone(),
            bank_reference: self.bank_reference.clone(),
            reason: self.reason.clone(),
            created_at: self.created_at,
            decided_at: self.decided_at,
        }
    }
}

/// Withdrawals already requested under any of these (participant, key) pairs.
pub fn seen(
    connection: &mut PgConnection,
    keys: &[(Uuid, String)],
) -> QueryResult<HashMap<(Uuid, String), WithdrawalRow>> {
    let mut found = HashMap::new();
    for (participant, key) in keys {
        let row: Option<WithdrawalRow> = withdrawals::table
            .filter(
                withdrawals::participant_id
                    .eq(participant)
                    .and(withdrawals::idempotency_key.eq(key)),
            )
            .select(WithdrawalRow::as_select())
            .first(connection)
            .optional()?;
        if let Some(row) = row {
            found.insert((*participant, key.clone()), row);
        }
    }
    Ok(found)
}

/// Stores new withdrawal requests (in the writer's transaction).
pub fn insert(connection: &mut PgConnection, rows: &[WithdrawalRow]) -> QueryResult<()> {
    if rows.is_empty() {
        return Ok(());
    }
    diesel::insert_into(withdrawals::table)
        .values(rows)
        .execute(connection)?;
    Ok(())
}

/// One withdrawal.
pub fn get(connection: &mut PgConnection, id: Uuid) -> QueryResult<Option<WithdrawalRow>> {
    withdrawals::table
        .find(id)
        .select(WithdrawalRow::as_select())
        .first(connection)
        .optional()
}

/// A page of withdrawals, newest first: those out of `account` (a participant's own, or a hub's
/// levy account that the hub's operators share), or everyone's.
pub fn list(
    connection: &mut PgConnection,
    account: Option<Uuid>,
    status: Option<WithdrawalStatus>,
    before_seq: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<WithdrawalRow>> {
    let mut query = withdrawals::table
        .select(WithdrawalRow::as_select())
        .order(withdrawals::seq.desc())
        .limit(limit)
        .into_boxed();
    if let Some(account) = account {
        query = query.filter(withdrawals::account_id.eq(account));
    }
    if let Some(status) = status {
        query = query.filter(withdrawals::status.eq(StoredWithdrawalStatus(status)));
    }
    if let Some(seq) = before_seq {
        query = query.filter(withdrawals::seq.lt(seq));
    }
    query.load(connection)
}

/// How an admin decides a pending withdrawal.
#[derive(Debug, Clone)]
pub enum Decision {
    /// The bank transfer was made: the money leaves the exchange.
    Paid { bank_reference: String },
    /// Refused: the money goes back to the account it came from.
    Rejected { reason: String },
}

impl Decision {
    fn status(&self) -> WithdrawalStatus {
        match self {
            Decision::Paid { .. } => WithdrawalStatus::Paid,
            Decision::Rejected { .. } => WithdrawalStatus::Rejected,
        }
    }
}

/// Decides a pending withdrawal, once. Repeating the same decision returns the withdrawal as it
/// is; any other decision on a decided withdrawal is 409 `withdrawal_decided`.
pub fn decide(
    connection: &mut PgConnection,
    admin: Uuid,
    id: Uuid,
    decision: &Decision,
) -> Result<Withdrawal, Refusable<WithdrawalRefusal>> {
    connection.transaction(|connection| {
        let row: WithdrawalRow = withdrawals::table
            .find(id)
            .select(WithdrawalRow::as_select())
            .for_update()
            .first(connection)
            .optional()?
            .ok_or(Refusable::Refused(WithdrawalRefusal::NoSuchWithdrawal))?;
        if row.status.0 != WithdrawalStatus::Pending {
            let same = match decision {
                Decision::Paid { bank_reference } => {
                    row.bank_reference.as_deref() == Some(bank_reference.as_str())
                }
                Decision::Rejected { reason } => row.reason.as_deref() == Some(reason.as_str()),
            };
            return if same {
                Ok(row.to_wire())
            } else {
                Err(Refusable::Refused(WithdrawalRefusal::AlreadyDecided {
                    status: row.status.0.as_str().to_owned(),
                }))
            };
        }
        // Microseconds: what PostgreSQL keeps, so answers equal later reads.
        let now = Utc::now().trunc_subsecs(6);
        let (kind, destination) = match decision {
            Decision::Paid { .. } => ("withdrawal_paid", EXTERNAL_ACCOUNT),
            Decision::Rejected { .. } => ("withdrawal_returned", row.account_id),
        };
        let transaction_id = ledger::post(
            connection,
            kind,
            &id.to_string(),
            &[
                (PAYOUTS_PENDING_ACCOUNT, -row.amount),
                (destination, row.amount),
            ],
        )?;
        let (bank_reference, reason) = match decision {
            Decision::Paid { bank_reference } => (Some(bank_reference.as_str()), None),
            Decision::Rejected { reason } => (None, Some(reason.as_str())),
        };
        let updated: WithdrawalRow = diesel::update(withdrawals::table.find(id))
            .set((
                withdrawals::status.eq(StoredWithdrawalStatus(decision.status())),
                withdrawals::bank_reference.eq(bank_reference),
                withdrawals::reason.eq(reason),
                withdrawals::decided_by.eq(admin),
                withdrawals::decided_at.eq(now),
            ))
            .returning(WithdrawalRow::as_returning())
            .get_result(connection)?;
        let mut payload = serde_json::json!({
            "withdrawal_id": id,
            "participant_id": row.participant_id,
            "amount": row.amount.normalize().to_string(),
            "currency": "CNY",
            "transaction_id": transaction_id,
        });
        match decision {
            Decision::Paid { bank_reference } => {
                payload["bank_reference"] = bank_reference.as_str().into();
            }
            Decision::Rejected { reason } => payload["reason"] = reason.as_str().into(),
        }
        audit::append(connection, &admin.to_string(), kind, payload)?;
        Ok(updated.to_wire())
    })
}

#[derive(QueryableByName)]
struct EntryRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Timestamptz)]
    at: DateTime<Utc>,
    #[diesel(sql_type = Text)]
    transaction_kind: String,
    #[diesel(sql_type = Text)]
    reference: String,
    #[diesel(sql_type = diesel::sql_types::Numeric)]
    amount: Decimal,
    #[diesel(sql_type = diesel::sql_types::Numeric)]
    balance_after: Decimal,
    #[diesel(sql_type = Text)]
    account_kind: String,
}

/// A page of the statement of `accounts`, oldest first: entries made in `[from, to)` after the
/// entry `after_id`, each with its account's balance after it (stored with the entry). One index
/// range read per account (`ledger_entries (account_id, id)`), however long the history.
///
/// Entry ids are taken in commit order per account (an account's row is locked before its
/// entries are written), so paging one account never skips an entry; across a buyer's two
/// accounts, an entry committed late with a lower id than one already read could be passed over
/// by a cursor (documented in ARCHITECTURE.md).
pub fn statement(
    connection: &mut PgConnection,
    account_ids: &[Uuid],
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    after_id: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<(i64, StatementEntry)>> {
    let rows: Vec<EntryRow> = diesel::sql_query(
        "SELECT x.* FROM unnest($1::uuid[]) AS own(account_id), LATERAL ( \
           SELECT e.id, e.created_at AS at, t.kind AS transaction_kind, t.reference, e.amount, \
                  e.balance_after, a.kind AS account_kind \
           FROM ledger_entries e \
           JOIN ledger_transactions t ON t.id = e.transaction_id \
           JOIN accounts a ON a.id = e.account_id \
           WHERE e.account_id = own.account_id AND e.id > $4 \
             AND ($2::timestamptz IS NULL OR e.created_at >= $2) \
             AND ($3::timestamptz IS NULL OR e.created_at < $3) \
           ORDER BY e.id LIMIT $5) x \
         ORDER BY x.id LIMIT $5",
    )
    .bind::<Array<diesel::sql_types::Uuid>, _>(account_ids)
    .bind::<Nullable<Timestamptz>, _>(from)
    .bind::<Nullable<Timestamptz>, _>(to)
    .bind::<BigInt, _>(after_id.unwrap_or(0))
    .bind::<BigInt, _>(limit)
    .load(connection)?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let account = if row.account_kind == ledger::kind::BUYER_HELD {
                "held"
            } else {
                "available"
            };
            let kind = statement_kind(&row.transaction_kind);
            (
                row.id,
                StatementEntry {
                    at: row.at,
                    kind: kind.to_owned(),
                    reference: row.reference,
                    amount: row.amount.normalize(),
                    balance_after: row.balance_after.normalize(),
                    account: account.to_owned(),
                },
            )
        })
        .collect())
}

/// What a ledger transaction is called on a statement, seen from one account.
fn statement_kind(transaction_kind: &str) -> &str {
    match transaction_kind {
        "bid_hold" => "hold",
        "hold_release" => "release",
        "settlement_fee" => "fee",
        "settlement_levy" => "levy",
        "withdrawal_request" => "withdrawal",
        kind => kind,
    }
}
