ALTER TABLE policy_decisions DROP CONSTRAINT policy_decisions_digest_check,
    ADD CONSTRAINT policy_decisions_digest_check CHECK (digest ~ '^[0-9a-f]{64}$');
ALTER TABLE audit_head DROP CONSTRAINT audit_head_hash_check,
    ADD CONSTRAINT audit_head_hash_check CHECK (hash ~ '^[0-9a-f]{64}$');
ALTER TABLE audit_log DROP CONSTRAINT audit_log_hash_check, DROP CONSTRAINT audit_log_prev_hash_check,
    ADD CONSTRAINT audit_log_prev_hash_check CHECK (prev_hash ~ '^[0-9a-f]{64}$'),
    ADD CONSTRAINT audit_log_hash_check CHECK (hash ~ '^[0-9a-f]{64}$');

CREATE OR REPLACE FUNCTION ledger_entries_name_their_records() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    missing uuid;
BEGIN
    SELECT i.transaction_id INTO missing FROM inserted i
        WHERE NOT EXISTS (SELECT 1 FROM ledger_transactions t WHERE t.id = i.transaction_id) LIMIT 1;
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'ledger entry names no ledger transaction: %', missing
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'ledger_entries_transaction_id_fkey';
    END IF;
    SELECT i.account_id INTO missing FROM inserted i
        WHERE NOT EXISTS (SELECT 1 FROM accounts a WHERE a.id = i.account_id) LIMIT 1;
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'ledger entry names no account: %', missing
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'ledger_entries_account_id_fkey';
    END IF;
    RETURN NULL;
END $$;
