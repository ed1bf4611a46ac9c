CREATE INDEX ledger_entries_account ON ledger_entries (account_id);
