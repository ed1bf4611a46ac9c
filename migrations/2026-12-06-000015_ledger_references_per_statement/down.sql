DROP TRIGGER deposits_no_truncate ON deposits;
DROP TRIGGER ledger_transactions_no_truncate ON ledger_transactions;
DROP TRIGGER accounts_no_truncate ON accounts;
DROP TRIGGER accounts_never_renumbered ON accounts;
DROP TRIGGER accounts_never_removed ON accounts;
DROP FUNCTION refuse_account_removal();

DROP TRIGGER ledger_entries_name_their_records_after_update ON ledger_entries;
DROP TRIGGER ledger_entries_name_their_records ON ledger_entries;
DROP FUNCTION ledger_entries_name_their_records();

ALTER TABLE ledger_entries ADD CONSTRAINT ledger_entries_transaction_id_fkey
    FOREIGN KEY (transaction_id) REFERENCES ledger_transactions (id);
ALTER TABLE ledger_entries ADD CONSTRAINT ledger_entries_account_id_fkey
    FOREIGN KEY (account_id) REFERENCES accounts (id);
