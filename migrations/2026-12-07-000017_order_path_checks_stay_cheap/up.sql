-- Two checks the order path runs on every batch cost more than they need to, one of them more
-- with every batch (BENCHMARKS.md, "2026-12-07 (thirteenth)").

-- Every ledger entry names an existing ledger transaction and account (`ledger_references_per_
-- statement`). Written as anti-joins, the planner may answer them by hashing the whole table
-- named: it did for `accounts`, whose estimate lags behind its growth (one escrow account per
-- contract, and two balance updates a bid leave dead rows to scan), so the check read every
-- account on every batch and took longer with every contract made. Each entry now probes for its
-- record: a `LATERAL` subquery with a `LIMIT` cannot be flattened into a join, so it runs once per
-- entry; and the function plans without sequential scans, so each probe is by the primary key
-- whenever its plan was made (PL/pgSQL keeps a plan until the session plans again: one made while
-- the table was a page would otherwise scan the table once per entry).
CREATE OR REPLACE FUNCTION ledger_entries_name_their_records() RETURNS trigger LANGUAGE plpgsql
SET enable_seqscan = off AS $$
DECLARE
    missing uuid;
BEGIN
    SELECT i.transaction_id INTO missing FROM inserted i
        LEFT JOIN LATERAL (SELECT t.id FROM ledger_transactions t WHERE t.id = i.transaction_id LIMIT 1) hit
            ON true
        WHERE hit.id IS NULL LIMIT 1;
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'ledger entry names no ledger transaction: %', missing
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'ledger_entries_transaction_id_fkey';
    END IF;
    SELECT i.account_id INTO missing FROM inserted i
        LEFT JOIN LATERAL (SELECT a.id FROM accounts a WHERE a.id = i.account_id LIMIT 1) hit
            ON true
        WHERE hit.id IS NULL LIMIT 1;
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'ledger entry names no account: %', missing
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'ledger_entries_account_id_fkey';
    END IF;
    RETURN NULL;
END $$;

-- A hash is 64 lowercase hex digits. PostgreSQL's regular expressions expand a counted repeat
-- (`{64}`) into 64 states and take ~9 µs a value; a repeat (`+`) and a length say the same in
-- ~1 µs. Every audit entry checks two hashes, every batch its chain's head, every policy decision
-- its module's digest. The constraints keep their names.
ALTER TABLE audit_log DROP CONSTRAINT audit_log_prev_hash_check, DROP CONSTRAINT audit_log_hash_check,
    ADD CONSTRAINT audit_log_prev_hash_check CHECK (prev_hash ~ '^[0-9a-f]+$' AND length(prev_hash) = 64),
    ADD CONSTRAINT audit_log_hash_check CHECK (hash ~ '^[0-9a-f]+$' AND length(hash) = 64);
ALTER TABLE audit_head DROP CONSTRAINT audit_head_hash_check,
    ADD CONSTRAINT audit_head_hash_check CHECK (hash ~ '^[0-9a-f]+$' AND length(hash) = 64);
ALTER TABLE policy_decisions DROP CONSTRAINT policy_decisions_digest_check,
    ADD CONSTRAINT policy_decisions_digest_check CHECK (digest ~ '^[0-9a-f]+$' AND length(digest) = 64);
