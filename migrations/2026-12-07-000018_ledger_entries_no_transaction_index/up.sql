-- Nothing looks ledger entries up by their transaction: a participant's statement goes by account
-- (`ledger_entries_account_order`), balances are read from `accounts`, the statement-level
-- reference check probes `ledger_transactions` by its key, and the invariants aggregate the whole
-- table. The index cost every entry one more index insert on the order path (3.5 entries a bid).
DROP INDEX ledger_entries_transaction;
