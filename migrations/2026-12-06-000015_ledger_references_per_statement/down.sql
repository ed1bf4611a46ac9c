DROP TRIGGER deposits_no_truncate ON deposits;
DROP TRIGGER ledger_transactions_no_truncate ON ledger_transactions;
DROP TRIGGER accounts_no_truncate ON accounts;
DROP TRIGGER accounts_never_renumbered ON accounts;
DROP TRIGGER accounts_never_removed ON accounts;
DROP FUNCTION refuse_account_removal();

CREATE OR REPLACE FUNCTION ledger_entries_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    unbalanced uuid;
BEGIN
    SELECT transaction_id INTO unbalanced FROM inserted GROUP BY transaction_id HAVING sum(amount) <> 0 LIMIT 1;
    IF unbalanced IS NOT NULL THEN
        RAISE EXCEPTION 'ledger transaction % is unbalanced', unbalanced
            USING ERRCODE = 'check_violation', CONSTRAINT = 'ledger_transaction_balanced';
    END IF;
    RETURN NULL;
END $$;

ALTER TABLE ledger_entries ADD CONSTRAINT ledger_entries_transaction_id_fkey
    FOREIGN KEY (transaction_id) REFERENCES ledger_transactions (id);
ALTER TABLE ledger_entries ADD CONSTRAINT ledger_entries_account_id_fkey
    FOREIGN KEY (account_id) REFERENCES accounts (id);
