-- Money out, statements and reasons.
--
-- A withdrawal moves money from a participant's available account to the single
-- `payouts_pending` account at request; an admin then marks it paid (pending → external: the money
-- left the exchange) or rejected (pending → back to the available account). The invariant check
-- compares `payouts_pending` with the pending withdrawals.

ALTER TABLE accounts DROP CONSTRAINT accounts_kind_check;
ALTER TABLE accounts ADD CONSTRAINT accounts_kind_check
    CHECK (kind IN ('external', 'exchange_fees', 'buyer_available', 'buyer_held', 'provider',
                    'hub_levy', 'contract_escrow', 'payouts_pending'));
DROP INDEX accounts_singleton_kind;
CREATE UNIQUE INDEX accounts_singleton_kind ON accounts (kind)
    WHERE kind IN ('external', 'exchange_fees', 'payouts_pending');
INSERT INTO accounts (id, kind) VALUES ('00000000-0000-0000-0000-000000000003', 'payouts_pending');

CREATE TABLE withdrawals (
    id uuid PRIMARY KEY,
    -- Arrival order, for paging.
    seq bigserial NOT NULL UNIQUE,
    participant_id uuid NOT NULL REFERENCES participants (id),
    -- The account the money left (and returns to if the withdrawal is rejected).
    account_id uuid NOT NULL REFERENCES accounts (id),
    amount numeric(20, 2) NOT NULL CHECK (amount > 0),
    destination text NOT NULL CHECK (length(destination) BETWEEN 1 AND 200),
    status text NOT NULL CHECK (status IN ('pending', 'paid', 'rejected')),
    idempotency_key text NOT NULL CHECK (length(idempotency_key) BETWEEN 1 AND 200),
    request_hash text NOT NULL,
    bank_reference text CHECK (length(bank_reference) BETWEEN 1 AND 200),
    reason text CHECK (length(reason) BETWEEN 1 AND 500),
    decided_by uuid REFERENCES participants (id),
    created_at timestamptz NOT NULL,
    decided_at timestamptz,
    CONSTRAINT withdrawals_idempotency_key UNIQUE (participant_id, idempotency_key),
    CHECK ((status = 'paid') = (bank_reference IS NOT NULL)),
    CHECK ((status = 'rejected') = (reason IS NOT NULL)),
    CHECK ((status = 'pending') = (decided_at IS NULL))
);
CREATE INDEX withdrawals_account ON withdrawals (account_id, seq);
CREATE INDEX withdrawals_pending ON withdrawals (seq) WHERE status = 'pending';

-- A withdrawal is decided once: pending → paid or rejected, and nothing else ever changes.
CREATE FUNCTION withdrawals_decided_once() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status <> 'pending' OR NEW.status = 'pending'
       OR (NEW.id, NEW.seq, NEW.participant_id, NEW.account_id, NEW.amount, NEW.destination, NEW.idempotency_key,
           NEW.request_hash, NEW.created_at)
          IS DISTINCT FROM
          (OLD.id, OLD.seq, OLD.participant_id, OLD.account_id, OLD.amount, OLD.destination, OLD.idempotency_key,
           OLD.request_hash, OLD.created_at) THEN
        RAISE EXCEPTION 'a withdrawal is decided once' USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER withdrawals_decided_once BEFORE UPDATE ON withdrawals
    FOR EACH ROW EXECUTE FUNCTION withdrawals_decided_once();
CREATE TRIGGER withdrawals_no_delete BEFORE DELETE ON withdrawals
    FOR EACH ROW EXECUTE FUNCTION refuse_history_change();

-- Statements read one account's entries in order, each with its account's balance after it
-- (written with the entry from then on; computed here for the entries already made).
CREATE INDEX ledger_entries_account_order ON ledger_entries (account_id, id);
ALTER TABLE ledger_entries ADD COLUMN balance_after numeric(20, 2);
ALTER TABLE ledger_entries DISABLE TRIGGER ledger_entries_append_only;
UPDATE ledger_entries e SET balance_after = r.running
    FROM (SELECT id, sum(amount) OVER (PARTITION BY account_id ORDER BY id) AS running FROM ledger_entries) r
    WHERE r.id = e.id;
ALTER TABLE ledger_entries ENABLE TRIGGER ledger_entries_append_only;
ALTER TABLE ledger_entries ALTER COLUMN balance_after SET NOT NULL;

-- Why a bid's units stayed unfilled when it was matched: `[{"code","message","hub"?}]`.
ALTER TABLE bids ADD COLUMN reasons jsonb NOT NULL DEFAULT '[]';

-- The hub operator's view pages a hub's faults.
CREATE INDEX policy_faults_hub ON policy_faults (hub, id);
