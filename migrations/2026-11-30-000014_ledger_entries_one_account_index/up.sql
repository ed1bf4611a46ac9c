-- `ledger_entries_account_order (account_id, id)` answers every lookup by account that
-- `ledger_entries_account (account_id)` did; keeping both cost every ledger entry one more index
-- insert on the order path.
DROP INDEX ledger_entries_account;
