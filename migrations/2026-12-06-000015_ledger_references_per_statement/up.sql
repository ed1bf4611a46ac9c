-- Every ledger entry names an existing ledger transaction and account. The two foreign keys that
-- said so ran two queries per entry (the sequenced writer writes a batch's 40–60 entries in one
-- statement: 80–120 queries; BENCHMARKS.md, "2026-12-06 (fifth)", times a 60-entry statement
-- both ways). The same promise is now checked once per statement, over all of its
-- rows: after every INSERT, and after every UPDATE (entries are append-only, but a migration may
-- lift that, as `money_out` did). What a foreign key also promised, that the row it names cannot
-- go away or change its id, holds because ledger transactions are append-only (`foundation`, and
-- TRUNCATE below) and accounts are never removed and never renumbered (below).
ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_transaction_id_fkey;
ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_account_id_fkey;

CREATE FUNCTION ledger_entries_name_their_records() RETURNS trigger LANGUAGE plpgsql AS $$
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
CREATE TRIGGER ledger_entries_name_their_records AFTER INSERT ON ledger_entries
    REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION ledger_entries_name_their_records();
CREATE TRIGGER ledger_entries_name_their_records_after_update AFTER UPDATE ON ledger_entries
    REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION ledger_entries_name_their_records();

-- Accounts stay: never removed, never renumbered (their balances change, nothing else of theirs
-- that entries rely on).
CREATE FUNCTION refuse_account_removal() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'accounts are never removed or renumbered' USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER accounts_never_removed BEFORE DELETE ON accounts
    FOR EACH ROW EXECUTE FUNCTION refuse_account_removal();
CREATE TRIGGER accounts_never_renumbered BEFORE UPDATE OF id ON accounts
    FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id) EXECUTE FUNCTION refuse_account_removal();
CREATE TRIGGER accounts_no_truncate BEFORE TRUNCATE ON accounts
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_account_removal();
CREATE TRIGGER ledger_transactions_no_truncate BEFORE TRUNCATE ON ledger_transactions
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_history_change();
-- Deposits were refused UPDATE and DELETE but not TRUNCATE.
CREATE TRIGGER deposits_no_truncate BEFORE TRUNCATE ON deposits
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_history_change();
