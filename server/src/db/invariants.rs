//! The invariants of SPEC §7 and §5, checked against the stored records. Used by
//! `suanli-server check` and by `GET /v1/audit/verify`.

use diesel::prelude::*;
use diesel::sql_types::Text;
use suanli_sdk::{ContractStatus, InvariantCheck, WithdrawalStatus};

use super::types::resting_sql;

#[derive(QueryableByName)]
struct Violation {
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    detail: Option<String>,
}

/// Each invariant as a query returning at most one row describing a violation. Statuses are
/// written `{resting}`, `{pending}`, `{settled}`, `{active}` and filled in from the enums
/// ([`with_statuses`]), never spelled here.
const CHECKS: &[(&str, &str)] = &[
    (
        "ledger_sums_to_zero",
        "SELECT 'all balances sum to ' || sum(balance)::text AS detail FROM accounts HAVING sum(balance) <> 0",
    ),
    (
        "entries_balance_per_transaction",
        "SELECT 'ledger transaction ' || transaction_id::text || ' sums to ' || sum(amount)::text AS detail \
         FROM ledger_entries GROUP BY transaction_id HAVING sum(amount) <> 0 LIMIT 1",
    ),
    (
        "entries_name_their_transaction_and_account",
        "SELECT 'ledger entry ' || e.id::text || CASE WHEN t.id IS NULL \
         THEN ' names no ledger transaction ' || e.transaction_id::text \
         ELSE ' names no account ' || e.account_id::text END AS detail \
         FROM ledger_entries e LEFT JOIN ledger_transactions t ON t.id = e.transaction_id \
         LEFT JOIN accounts a ON a.id = e.account_id WHERE t.id IS NULL OR a.id IS NULL LIMIT 1",
    ),
    (
        "no_negative_balance",
        "SELECT kind || ' account ' || id::text || ' holds ' || balance::text AS detail FROM accounts \
         WHERE balance < 0 AND kind <> 'external' LIMIT 1",
    ),
    (
        "balances_equal_their_entries",
        "SELECT 'account ' || a.id::text || ' says ' || a.balance::text || ' but its entries sum to ' || \
         coalesce(e.total, 0)::text AS detail FROM accounts a \
         LEFT JOIN (SELECT account_id, sum(amount) AS total FROM ledger_entries GROUP BY account_id) e ON e.account_id = a.id \
         WHERE a.balance <> coalesce(e.total, 0) LIMIT 1",
    ),
    (
        "holds_equal_open_exposure",
        "SELECT 'buyer ' || a.participant_id::text || ' holds ' || a.balance::text || ' against open bids worth ' || \
         coalesce(b.exposure, 0)::text AS detail FROM accounts a \
         LEFT JOIN (SELECT buyer_id, sum(unit_hold * remaining) AS exposure FROM bids \
                    WHERE status IN ({resting}) GROUP BY buyer_id) b ON b.buyer_id = a.participant_id \
         WHERE a.kind = 'buyer_held' AND a.balance <> coalesce(b.exposure, 0) LIMIT 1",
    ),
    (
        "book_levels_equal_resting_orders",
        "SELECT 'the ' || coalesce(l.side, r.side) || ' level ' || coalesce(l.sku, r.sku) || ' at ' || \
         coalesce(l.price, r.price)::text || ' says ' || coalesce(l.units, 0)::text || ' units in ' || \
         coalesce(l.orders, 0)::text || ' orders but ' || coalesce(r.units, 0)::text || ' in ' || \
         coalesce(r.orders, 0)::text || ' rest there' AS detail \
         FROM (SELECT * FROM book_levels WHERE orders <> 0 OR units <> 0) l FULL JOIN ( \
             SELECT 'offer' AS side, sku, ask_price AS price, sum(remaining)::bigint AS units, count(*) AS orders \
             FROM offers WHERE status IN ({resting}) GROUP BY sku, ask_price \
             UNION ALL \
             SELECT 'bid', s, limit_price, sum(remaining)::bigint, count(*) \
             FROM bids, unnest(skus) AS s WHERE status IN ({resting}) GROUP BY s, limit_price) r \
           ON l.side = r.side AND l.sku = r.sku AND l.price = r.price \
         WHERE l.units IS DISTINCT FROM r.units OR l.orders IS DISTINCT FROM r.orders LIMIT 1",
    ),
    (
        "pending_payouts_equal_pending_withdrawals",
        "SELECT 'payouts_pending holds ' || a.balance::text || ' against pending withdrawals of ' || \
         coalesce(w.total, 0)::text AS detail FROM accounts a \
         LEFT JOIN (SELECT sum(amount) AS total FROM withdrawals WHERE status = {pending}) w ON true \
         WHERE a.kind = 'payouts_pending' AND a.balance <> coalesce(w.total, 0)",
    ),
    (
        "settled_escrow_is_empty",
        "SELECT 'contract ' || c.id::text || ' is ' || c.status || ' with ' || a.balance::text || ' in escrow' AS detail \
         FROM contracts c JOIN accounts a ON a.contract_id = c.id AND a.kind = 'contract_escrow' \
         WHERE (c.status = {settled} AND a.balance <> 0) OR (c.status = {active} AND a.balance <> c.notional) LIMIT 1",
    ),
    (
        "capacity_never_oversold",
        "SELECT 'offer ' || c.offer_id::text || ' sold ' || sum(c.units)::text || ' of ' || o.quantity::text || \
         ' units at ' || hour::text AS detail \
         FROM contracts c JOIN offers o ON o.id = c.offer_id, \
              generate_series(c.window_start, c.window_end - interval '1 hour', interval '1 hour') AS hour \
         GROUP BY c.offer_id, o.quantity, hour HAVING sum(c.units) > o.quantity LIMIT 1",
    ),
    (
        "contracts_inside_their_offer",
        "SELECT 'contract ' || c.id::text || ' lies outside offer ' || o.id::text AS detail \
         FROM contracts c JOIN offers o ON o.id = c.offer_id \
         WHERE c.window_start < o.window_start OR c.window_end > o.window_end OR c.unit_price < o.ask_price LIMIT 1",
    ),
];

/// `query` with its status placeholders replaced by the stored names of the statuses.
fn with_statuses(query: &str) -> String {
    let quoted = |name: &str| format!("'{name}'");
    query
        .replace("{resting}", &resting_sql())
        .replace("{pending}", &quoted(WithdrawalStatus::Pending.as_str()))
        .replace("{settled}", &quoted(ContractStatus::Settled.as_str()))
        .replace("{active}", &quoted(ContractStatus::Active.as_str()))
}

/// Runs every check in one read-only snapshot.
pub fn check(connection: &mut PgConnection) -> QueryResult<Vec<InvariantCheck>> {
    super::in_snapshot(connection, check_within)
}

/// Runs every check in the caller's transaction: within [`super::in_snapshot`], beside other
/// reads that must see the same state (the chain's verification).
pub fn check_within(connection: &mut PgConnection) -> QueryResult<Vec<InvariantCheck>> {
    let mut results = Vec::with_capacity(CHECKS.len());
    for (name, query) in CHECKS {
        let violation: Option<Violation> = diesel::sql_query(with_statuses(query))
            .get_result(connection)
            .optional()?;
        results.push(InvariantCheck {
            name: (*name).to_owned(),
            ok: violation.is_none(),
            detail: violation.and_then(|violation| violation.detail),
        });
    }
    Ok(results)
}
