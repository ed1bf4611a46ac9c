CREATE INDEX ledger_entries_transaction ON ledger_entries (transaction_id);
