//! The double-entry ledger: accounts, balanced transactions of append-only entries, deposits.
//!
//! Every movement of money goes through [`post`], which writes the entries and moves the cached
//! balances in one go, so that "each account's balance equals the sum of its entries" holds by
//! construction; PostgreSQL re-checks that each transaction sums to zero (a trigger at the end of each statement inserting entries) and
//! that no balance but `external` goes below zero (a CHECK).

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use rust_decimal::Decimal;
use suanli_sdk::{Deposit, NewDeposit};
use uuid::Uuid;

use super::audit;
use diesel::sql_types::{Array, Numeric, Text};

use super::Refusable;
use super::prepared::{Prepared, prepared};
use super::schema::{accounts, deposits, participants};
use crate::rules::money::DepositRefusal;

/// The account that mirrors money outside the exchange: its balance is minus what came in
/// (deposits) plus what went out (paid withdrawals).
pub const EXTERNAL_ACCOUNT: Uuid = Uuid::from_u128(1);
/// The exchange's fee income.
pub const EXCHANGE_FEES_ACCOUNT: Uuid = Uuid::from_u128(2);
/// Money withdrawals set aside until an admin marks them paid or rejected.
pub const PAYOUTS_PENDING_ACCOUNT: Uuid = Uuid::from_u128(3);

/// The kinds of account a participant owns.
pub mod kind {
    pub const BUYER_AVAILABLE: &str = "buyer_available";
    pub const BUYER_HELD: &str = "buyer_held";
    pub const PROVIDER: &str = "provider";
    pub const HUB_LEVY: &str = "hub_levy";
}

/// One balanced ledger transaction produced by the writer.
#[derive(Debug, Clone)]
pub struct LedgerTransaction {
    pub id: Uuid,
    pub kind: &'static str,
    pub reference: String,
    pub legs: Vec<(Uuid, Decimal)>,
}

/// Writes one balanced transaction: `legs` are (account, signed amount) and must sum to zero.
pub fn post(
    connection: &mut PgConnection,
    transaction_kind: &'static str,
    reference: &str,
    legs: &[(Uuid, Decimal)],
) -> QueryResult<Uuid> {
    let transaction = LedgerTransaction {
        id: Uuid::new_v4(),
        kind: transaction_kind,
        reference: reference.to_owned(),
        legs: legs.to_vec(),
    };
    post_all(connection, std::slice::from_ref(&transaction))?;
    Ok(transaction.id)
}

/// Writes balanced transactions outside the writer's batch (deposits, withdrawals): each touched
/// balance moved by the sum of its entries ([`MOVE_BALANCES`], in account-id order, so that
/// concurrent writers cannot deadlock on accounts), then the transactions and all their entries,
/// each entry with its account's balance after it (read from the moved balance while its row is
/// locked, so an account's entries and their running balances are in one order). Three
/// statements whose texts never change (PostgreSQL plans them once). Money moves only through
/// [`Postings`]: here, and in the writer's batch, which sends [`move_balances`] with its other
/// updates (`db::orders::write_batch`).
pub fn post_all(
    connection: &mut PgConnection,
    transactions: &[LedgerTransaction],
) -> QueryResult<()> {
    #[derive(QueryableByName)]
    struct Moved {
        #[diesel(sql_type = diesel::sql_types::Uuid)]
        id: Uuid,
        #[diesel(sql_type = Numeric)]
        balance: Decimal,
    }
    let postings = Postings::of(transactions, &HashSet::new());
    let mut moved = Vec::new();
    if !postings.moved_accounts.is_empty() {
        moved = prepared(&MOVE_BALANCES)
            .bind::<Array<diesel::sql_types::Uuid>, _>(&postings.moved_accounts)
            .bind::<Array<Numeric>, _>(&postings.moved_amounts)
            .load::<Moved>(connection)?
            .into_iter()
            .map(|row| (row.id, row.balance))
            .collect();
    }
    for statement in postings.statements(moved).0 {
        statement.execute(connection)?;
    }
    Ok(())
}

/// Balanced transactions laid out to be written: what they move in the balances of accounts that
/// exist ([`move_balances`]' two parameters, which the writer's batch sends with its other
/// updates), then, once those balances are known, the statements that write the transactions
/// and their entries ([`Postings::statements`]).
pub struct Postings<'a> {
    ids: Vec<Uuid>,
    kinds: Vec<&'static str>,
    references: Vec<&'a str>,
    entry_transactions: Vec<Uuid>,
    entry_accounts: Vec<Uuid>,
    entry_amounts: Vec<Decimal>,
    /// The accounts that existed before, in id order (the order their rows are locked in) …
    pub moved_accounts: Vec<Uuid>,
    /// … and what their balances move by.
    pub moved_amounts: Vec<Decimal>,
    /// The balances after them of the accounts opened with these transactions.
    new_balances: HashMap<Uuid, Decimal>,
}

impl<'a> Postings<'a> {
    /// Lays out `transactions` (each must sum to zero); `new_accounts` are opened with them and
    /// start at zero.
    pub fn of(transactions: &'a [LedgerTransaction], new_accounts: &HashSet<Uuid>) -> Self {
        let mut deltas: HashMap<Uuid, Decimal> = HashMap::new();
        let (mut ids, mut kinds, mut references) = (Vec::new(), Vec::new(), Vec::new());
        let (mut entry_transactions, mut entry_accounts, mut entry_amounts) =
            (Vec::new(), Vec::new(), Vec::new());
        for transaction in transactions {
            assert!(
                transaction
                    .legs
                    .iter()
                    .map(|(_, amount)| *amount)
                    .sum::<Decimal>()
                    .is_zero(),
                "unbalanced {transaction:?}"
            );
            ids.push(transaction.id);
            kinds.push(transaction.kind);
            references.push(transaction.reference.as_str());
            for (account, amount) in &transaction.legs {
                if !amount.is_zero() {
                    *deltas.entry(*account).or_default() += *amount;
                    entry_transactions.push(transaction.id);
                    entry_accounts.push(*account);
                    entry_amounts.push(*amount);
                }
            }
        }
        // Accounts opened here start at zero: their balance after is the sum of their entries.
        let new_balances: HashMap<Uuid, Decimal> = deltas
            .iter()
            .filter(|(account, _)| new_accounts.contains(account))
            .map(|(account, delta)| (*account, *delta))
            .collect();
        let mut deltas: Vec<(Uuid, Decimal)> = deltas
            .into_iter()
            .filter(|(account, _)| !new_accounts.contains(account))
            .collect();
        deltas.sort_by_key(|(account, _)| *account);
        let (moved_accounts, moved_amounts) = deltas.into_iter().unzip();
        Postings {
            ids,
            kinds,
            references,
            entry_transactions,
            entry_accounts,
            entry_amounts,
            moved_accounts,
            moved_amounts,
            new_balances,
        }
    }

    /// The statements that write the transactions and their entries, to be run in this order,
    /// given `moved`, the balances after them of the accounts that existed; and the balances of
    /// the accounts opened with them (whose rows the caller inserts with these balances).
    pub fn statements(
        self,
        moved: impl IntoIterator<Item = (Uuid, Decimal)>,
    ) -> (Vec<Prepared<'a>>, HashMap<Uuid, Decimal>) {
        let Postings {
            ids,
            kinds,
            references,
            entry_transactions,
            entry_accounts,
            entry_amounts,
            new_balances,
            ..
        } = self;
        let mut balances = new_balances.clone();
        balances.extend(moved);
        // Each entry's balance after it: walk back from the account's new balance.
        let mut balance_after = vec![Decimal::ZERO; entry_amounts.len()];
        for index in (0..entry_amounts.len()).rev() {
            if let Some(balance) = balances.get_mut(&entry_accounts[index]) {
                balance_after[index] = *balance;
                *balance -= entry_amounts[index];
            }
        }
        let mut statements = Vec::new();
        if !ids.is_empty() {
            statements.push(
                prepared(
                    "INSERT INTO ledger_transactions (id, kind, reference) SELECT * FROM unnest($1, $2, $3)",
                )
                .bind::<Array<diesel::sql_types::Uuid>, _>(ids)
                .bind::<Array<Text>, _>(kinds)
                .bind::<Array<Text>, _>(references),
            );
        }
        if !entry_transactions.is_empty() {
            // All the entries in one statement, which the balance trigger checks per
            // transaction; `WITH ORDINALITY` keeps their order, so ids follow the running balances.
            statements.push(
                prepared(
                    "INSERT INTO ledger_entries (transaction_id, account_id, amount, balance_after) \
                     SELECT t, a, m, b FROM unnest($1, $2, $3, $4) WITH ORDINALITY AS v(t, a, m, b, n) ORDER BY n",
                )
                .bind::<Array<diesel::sql_types::Uuid>, _>(entry_transactions)
                .bind::<Array<diesel::sql_types::Uuid>, _>(entry_accounts)
                .bind::<Array<Numeric>, _>(entry_amounts)
                .bind::<Array<Numeric>, _>(balance_after),
            );
        }
        (statements, new_balances)
    }
}

/// The statement that moves the balances of accounts that existed before the batch: `$1` their ids
/// (sorted), `$2` the amounts; answers each account's new balance ([`move_balances`]).
pub static MOVE_BALANCES: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "WITH {} SELECT id, balance FROM moved_balances",
        move_balances(1, 2)
    )
});

/// The common table expressions that move the balances of accounts that existed before the
/// batch, the parameter numbered `ids` their ids (sorted) and the one numbered `amounts` what each
/// moves by; `moved_balances` answers each account's new balance as `(id, balance)`. Sent as
/// [`MOVE_BALANCES`], or with the other updates of the writer's batch
/// (`db::orders::write_batch`). Rows are locked in id order whatever plan PostgreSQL picks for the
/// update: `locked_accounts` locks them first, its row locks taken above its sort, so every
/// transaction that moves several balances (these are the only statements that do) takes their
/// locks in one order and none can deadlock with another.
pub fn move_balances(ids: usize, amounts: usize) -> String {
    format!(
        "balance_moves AS MATERIALIZED (SELECT * FROM unnest(${ids}::uuid[], ${amounts}::numeric[]) \
                                        AS v(id, delta)), \
         locked_accounts AS MATERIALIZED (SELECT a.id FROM accounts a JOIN balance_moves v ON a.id = v.id \
                                          ORDER BY a.id FOR NO KEY UPDATE OF a), \
         moved_balances AS (UPDATE accounts a SET balance = a.balance + v.delta \
                            FROM balance_moves v, locked_accounts l \
                            WHERE a.id = v.id AND l.id = a.id RETURNING a.id, a.balance)"
    )
}

/// The id of a participant's account of `account_kind`: derived from the two, so that the
/// sequenced writer can name accounts without asking the database.
pub fn participant_account_id(participant: Uuid, account_kind: &str) -> Uuid {
    Uuid::new_v5(&participant, account_kind.as_bytes())
}

/// A participant's own accounts: the one it spends or withdraws from, and (buyers) the one that
/// holds money for its open bids.
#[derive(Debug, Clone, Copy)]
pub struct OwnAccounts {
    /// A buyer's available account, a provider's account, a hub operator's hub levy account.
    pub available: Uuid,
    /// A buyer's held account.
    pub held: Option<Uuid>,
}

impl OwnAccounts {
    /// Both accounts, the available one first.
    pub fn all(&self) -> Vec<Uuid> {
        std::iter::once(self.available).chain(self.held).collect()
    }
}

/// The accounts of a participant of `role` (a hub operator's: its hub's levy account, shared
/// with the hub's other operators); `None` for roles that hold no money.
pub fn own_accounts(
    connection: &mut PgConnection,
    role: suanli_sdk::ParticipantKind,
    participant: Uuid,
    hub: Option<&str>,
) -> QueryResult<Option<OwnAccounts>> {
    use suanli_sdk::ParticipantKind;
    Ok(match (role, hub) {
        (ParticipantKind::Buyer, _) => Some(OwnAccounts {
            available: participant_account_id(participant, kind::BUYER_AVAILABLE),
            held: Some(participant_account_id(participant, kind::BUYER_HELD)),
        }),
        (ParticipantKind::Provider, _) => Some(OwnAccounts {
            available: participant_account_id(participant, kind::PROVIDER),
            held: None,
        }),
        (ParticipantKind::HubOperator, Some(hub)) => accounts::table
            .filter(accounts::hub.eq(hub).and(accounts::kind.eq(kind::HUB_LEVY)))
            .select(accounts::id)
            .first(connection)
            .optional()?
            .map(|available| OwnAccounts {
                available,
                held: None,
            }),
        _ => None,
    })
}

/// The balances of `accounts` (zero for an account that does not exist).
pub fn balances_of(
    connection: &mut PgConnection,
    accounts: &OwnAccounts,
) -> QueryResult<(Decimal, Decimal)> {
    let rows: Vec<(Uuid, Decimal)> = accounts::table
        .filter(accounts::id.eq_any(accounts.all()))
        .select((accounts::id, accounts::balance))
        .load(connection)?;
    let balance = |id: Option<Uuid>| {
        rows.iter()
            .find(|(account, _)| Some(*account) == id)
            .map(|(_, balance)| balance.normalize())
            .unwrap_or_default()
    };
    Ok((balance(Some(accounts.available)), balance(accounts.held)))
}

/// The balances of `ids` (accounts that do not exist are left out), and whether the ledger
/// transaction `marker` is committed, both read in one statement and so from one snapshot: the
/// writer, reading while a batch of its own commits, learns whether what it read includes that
/// batch (whose transactions all commit at once).
pub fn balances_as_of(
    connection: &mut PgConnection,
    ids: &[Uuid],
    marker: Option<Uuid>,
) -> QueryResult<(HashMap<Uuid, Decimal>, bool)> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Uuid)]
        id: Uuid,
        #[diesel(sql_type = Numeric)]
        balance: Decimal,
        #[diesel(sql_type = diesel::sql_types::Bool)]
        marked: bool,
    }
    if ids.is_empty() {
        return Ok((HashMap::new(), false));
    }
    let rows: Vec<Row> = super::prepared::prepared(
        "SELECT a.id, a.balance, EXISTS (SELECT 1 FROM ledger_transactions t WHERE t.id = $2) AS marked \
         FROM accounts a WHERE a.id = ANY($1)",
    )
    .bind::<Array<diesel::sql_types::Uuid>, _>(ids)
    .bind::<diesel::sql_types::Nullable<diesel::sql_types::Uuid>, _>(marker)
    .load(connection)?;
    let marked = rows.first().is_some_and(|row| row.marked);
    Ok((
        rows.into_iter().map(|row| (row.id, row.balance)).collect(),
        marked,
    ))
}

/// The id of a contract's escrow account.
pub fn contract_escrow_account(contract: Uuid) -> Uuid {
    Uuid::new_v5(&contract, b"contract_escrow")
}

/// Creates the accounts a new participant of `kind` needs.
pub fn open_participant_accounts(
    connection: &mut PgConnection,
    participant: Uuid,
    kind: &str,
) -> QueryResult<()> {
    let kinds: &[&str] = match kind {
        "buyer" => &[kind::BUYER_AVAILABLE, kind::BUYER_HELD],
        "provider" => &[kind::PROVIDER],
        _ => &[],
    };
    for account_kind in kinds {
        diesel::insert_into(accounts::table)
            .values((
                accounts::id.eq(participant_account_id(participant, account_kind)),
                accounts::kind.eq(*account_kind),
                accounts::participant_id.eq(participant),
            ))
            .execute(connection)?;
    }
    Ok(())
}

/// The id of a participant's account of `kind`.
pub fn participant_account(
    connection: &mut PgConnection,
    participant: Uuid,
    account_kind: &str,
) -> QueryResult<Uuid> {
    accounts::table
        .filter(
            accounts::participant_id
                .eq(participant)
                .and(accounts::kind.eq(account_kind)),
        )
        .select(accounts::id)
        .first(connection)
}

/// The balance of a participant's account of `kind`, or zero if it has none.
pub fn participant_balance(
    connection: &mut PgConnection,
    participant: Uuid,
    account_kind: &str,
) -> QueryResult<Decimal> {
    let balance: Option<Decimal> = accounts::table
        .filter(
            accounts::participant_id
                .eq(participant)
                .and(accounts::kind.eq(account_kind)),
        )
        .select(accounts::balance)
        .first(connection)
        .optional()?;
    Ok(balance.unwrap_or_default().normalize())
}

/// The levy balance of a hub.
pub fn hub_levy_balance(connection: &mut PgConnection, hub: &str) -> QueryResult<Decimal> {
    let balance: Decimal = accounts::table
        .filter(accounts::hub.eq(hub).and(accounts::kind.eq(kind::HUB_LEVY)))
        .select(accounts::balance)
        .first(connection)?;
    Ok(balance.normalize())
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = deposits)]
struct DepositRow {
    id: Uuid,
    participant_id: Uuid,
    amount: Decimal,
    reference: String,
    idempotency_key: String,
    transaction_id: Uuid,
    created_at: DateTime<Utc>,
}

impl From<DepositRow> for Deposit {
    fn from(row: DepositRow) -> Self {
        Deposit {
            id: row.id,
            participant_id: row.participant_id,
            amount: row.amount.normalize(),
            currency: "CNY".into(),
            reference: row.reference,
            idempotency_key: row.idempotency_key,
            transaction_id: row.transaction_id,
            created_at: row.created_at,
        }
    }
}

/// Credits a buyer's available balance, once per (admin, idempotency key).
///
/// A repeat with the same key and body returns the first deposit and changes nothing; the same
/// key with another body is a 409. `deposit.amount` must already be validated.
pub fn deposit(
    connection: &mut PgConnection,
    admin: Uuid,
    participant: Uuid,
    deposit: &NewDeposit,
) -> Result<Deposit, Refusable<DepositRefusal>> {
    connection.transaction(|connection| {
        // Requests with one key wait for each other here, so that a repeat racing the first finds
        // its deposit below instead of colliding with it on the unique key.
        diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended($1, 727400003))")
            .bind::<Text, _>(format!("deposit/{admin}/{}", deposit.idempotency_key))
            .execute(connection)?;
        let existing: Option<DepositRow> = deposits::table
            .filter(
                deposits::created_by
                    .eq(admin)
                    .and(deposits::idempotency_key.eq(&deposit.idempotency_key)),
            )
            .select(DepositRow::as_select())
            .first(connection)
            .optional()?;
        if let Some(existing) = existing {
            let same = existing.participant_id == participant
                && existing.amount == deposit.amount
                && existing.reference == deposit.reference;
            return if same {
                Ok(existing.into())
            } else {
                Err(Refusable::Refused(DepositRefusal::KeyReused))
            };
        }

        let kind: Option<String> = participants::table
            .find(participant)
            .select(participants::kind)
            .first(connection)
            .optional()?;
        match kind.as_deref() {
            None => return Err(Refusable::Refused(DepositRefusal::NoSuchParticipant)),
            Some("buyer") => {}
            Some(_) => return Err(Refusable::Refused(DepositRefusal::NotABuyer)),
        }

        let available = participant_account(connection, participant, kind::BUYER_AVAILABLE)?;
        let transaction_id = post(
            connection,
            "deposit",
            &deposit.reference,
            &[
                (EXTERNAL_ACCOUNT, -deposit.amount),
                (available, deposit.amount),
            ],
        )?;
        let row: DepositRow = diesel::insert_into(deposits::table)
            .values((
                deposits::id.eq(Uuid::new_v4()),
                deposits::participant_id.eq(participant),
                deposits::amount.eq(deposit.amount),
                deposits::reference.eq(&deposit.reference),
                deposits::idempotency_key.eq(&deposit.idempotency_key),
                deposits::created_by.eq(admin),
                deposits::transaction_id.eq(transaction_id),
            ))
            .returning(DepositRow::as_returning())
            .get_result(connection)?;
        let created = Deposit::from(row);
        audit::append(
            connection,
            &admin.to_string(),
            "deposit",
            serde_json::json!({
                "deposit_id": created.id,
                "participant_id": participant,
                "amount": created.amount.to_string(),
                "currency": "CNY",
                "reference": created.reference,
                "transaction_id": transaction_id,
            }),
        )?;
        Ok(created)
    })
}
