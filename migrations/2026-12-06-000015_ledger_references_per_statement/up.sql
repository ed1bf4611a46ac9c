-- Every ledger entry names an existing ledger transaction and account. The two foreign keys that
-- said so ran one query per entry (a batch of the sequenced writer writes some 60 entries in one
-- statement: 120 queries, about a quarter of the batch's database time). The same promise is now
-- checked once per INSERT statement, over all of its rows, by the trigger that already checks that
-- each transaction balances. What a foreign key also promised, that the row it names cannot go
-- away or change its id, holds because ledger transactions are append-only (below, and in
-- `foundation`) and accounts are never removed and never renumbered (below).
ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_transaction_id_fkey;
ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_account_id_fkey;

CREATE OR REPLACE FUNCTION ledger_entries_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    unbalanced uuid;
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
    SELECT transaction_id INTO unbalanced FROM inserted GROUP BY transaction_id HAVING sum(amount) <> 0 LIMIT 1;
    IF unbalanced IS NOT NULL THEN
        RAISE EXCEPTION 'ledger transaction % is unbalanced', unbalanced
            USING ERRCODE = 'check_violation', CONSTRAINT = 'ledger_transaction_balanced';
    END IF;
    RETURN NULL;
END $$;

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
