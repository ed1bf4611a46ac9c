-- The foundation: reference data tables, participants, the double-entry ledger and the
-- hash-chained audit log. Money is numeric(20,2) (CNY, fen); every invariant the application
-- keeps is also a CHECK or a trigger here, so that a bug cannot silently break it.

CREATE TABLE hubs (
    code text PRIMARY KEY CHECK (code ~ '^[a-z][a-z0-9-]{0,31}$'),
    name text NOT NULL,
    tier text NOT NULL CHECK (tier IN ('east', 'west')),
    region text NOT NULL CHECK (region ~ '^[a-z]+$'),
    renewable_share smallint NOT NULL CHECK (renewable_share BETWEEN 0 AND 100),
    carbon_g_per_kwh integer NOT NULL CHECK (carbon_g_per_kwh >= 0),
    pue numeric(4, 2) NOT NULL CHECK (pue >= 1 AND pue < 10)
);

CREATE TABLE clusters (
    code text PRIMARY KEY CHECK (code ~ '^[a-z][a-z0-9-]{0,63}$'),
    name text NOT NULL,
    hub text NOT NULL REFERENCES hubs (code)
);

CREATE TABLE hub_latency (
    from_hub text NOT NULL REFERENCES hubs (code),
    to_hub text NOT NULL REFERENCES hubs (code),
    ms integer NOT NULL CHECK (ms > 0),
    PRIMARY KEY (from_hub, to_hub)
);

CREATE TABLE skus (
    code text PRIMARY KEY CHECK (code ~ '^[a-z][a-z0-9.-]{0,63}$'),
    name text NOT NULL,
    class text NOT NULL CHECK (class IN ('general', 'intelligent', 'supercomputing')),
    unit text NOT NULL CHECK (unit IN ('vCPU-hour', 'card-hour', 'node-hour')),
    perf_fp16_tflops numeric(10, 2) CHECK (perf_fp16_tflops > 0)
);

CREATE TABLE participants (
    id uuid PRIMARY KEY,
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    kind text NOT NULL CHECK (kind IN ('provider', 'buyer', 'hub_operator', 'regulator', 'admin')),
    provider_type text CHECK (provider_type IN ('telecom_operator', 'compute_provider', 'cloud_vendor')),
    hub text REFERENCES hubs (code),
    -- Public lookup part of the API key; the secret part is only stored as an Argon2 hash.
    api_key_id text NOT NULL UNIQUE,
    api_key_hash text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CHECK ((kind = 'provider') = (provider_type IS NOT NULL)),
    CHECK ((kind = 'hub_operator') = (hub IS NOT NULL))
);

-- Ledger accounts. `external` mirrors money that came in from outside (bank transfers): it is
-- the one account whose balance is negative, so that all balances sum to zero.
CREATE TABLE accounts (
    id uuid PRIMARY KEY,
    kind text NOT NULL CHECK (kind IN ('external', 'exchange_fees', 'buyer_available', 'buyer_held',
                                       'provider', 'hub_levy', 'contract_escrow')),
    participant_id uuid REFERENCES participants (id),
    hub text REFERENCES hubs (code),
    contract_id uuid,
    balance numeric(20, 2) NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT accounts_balance_not_negative CHECK (kind = 'external' OR balance >= 0),
    CHECK ((kind IN ('buyer_available', 'buyer_held', 'provider')) = (participant_id IS NOT NULL)),
    CHECK ((kind = 'hub_levy') = (hub IS NOT NULL)),
    CHECK ((kind = 'contract_escrow') = (contract_id IS NOT NULL))
);
CREATE UNIQUE INDEX accounts_participant_kind ON accounts (participant_id, kind) WHERE participant_id IS NOT NULL;
CREATE UNIQUE INDEX accounts_hub_kind ON accounts (hub, kind) WHERE hub IS NOT NULL;
CREATE UNIQUE INDEX accounts_contract_kind ON accounts (contract_id, kind) WHERE contract_id IS NOT NULL;
CREATE UNIQUE INDEX accounts_singleton_kind ON accounts (kind) WHERE kind IN ('external', 'exchange_fees');

-- One balanced movement of money.
CREATE TABLE ledger_transactions (
    id uuid PRIMARY KEY,
    kind text NOT NULL CHECK (kind ~ '^[a-z_]+$'),
    reference text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE ledger_entries (
    id bigserial PRIMARY KEY,
    transaction_id uuid NOT NULL REFERENCES ledger_transactions (id),
    account_id uuid NOT NULL REFERENCES accounts (id),
    amount numeric(20, 2) NOT NULL CHECK (amount <> 0),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ledger_entries_account ON ledger_entries (account_id);
CREATE INDEX ledger_entries_transaction ON ledger_entries (transaction_id);

-- Every INSERT of ledger entries must balance per ledger transaction: a transaction's legs are
-- written by one statement, and the rows of each statement are checked together (one query per
-- statement, not per row).
CREATE FUNCTION ledger_entries_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
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
CREATE TRIGGER ledger_entries_balanced AFTER INSERT ON ledger_entries
    REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION ledger_entries_balanced();

CREATE TABLE deposits (
    id uuid PRIMARY KEY,
    participant_id uuid NOT NULL REFERENCES participants (id),
    amount numeric(20, 2) NOT NULL CHECK (amount > 0),
    reference text NOT NULL,
    idempotency_key text NOT NULL CHECK (length(idempotency_key) BETWEEN 1 AND 200),
    created_by uuid NOT NULL REFERENCES participants (id),
    transaction_id uuid NOT NULL REFERENCES ledger_transactions (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT deposits_idempotency_key UNIQUE (created_by, idempotency_key)
);

-- The audit log: see API.md "The hash chain". Rows are appended under the lock of the single
-- `audit_head` row, which makes `seq` gapless even with concurrent writers.
CREATE TABLE audit_log (
    seq bigint PRIMARY KEY CHECK (seq >= 1),
    at timestamptz NOT NULL,
    actor text NOT NULL,
    kind text NOT NULL CHECK (kind ~ '^[a-z_]+$'),
    payload jsonb NOT NULL,
    canonical text NOT NULL,
    prev_hash text NOT NULL CHECK (prev_hash ~ '^[0-9a-f]{64}$'),
    hash text NOT NULL CHECK (hash ~ '^[0-9a-f]{64}$')
);

CREATE TABLE audit_head (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    seq bigint NOT NULL CHECK (seq >= 0),
    hash text NOT NULL CHECK (hash ~ '^[0-9a-f]{64}$')
);
INSERT INTO audit_head (singleton, seq, hash) VALUES (true, 0, repeat('0', 64));

-- History is append-only: ledger and audit rows can be neither changed nor removed.
CREATE FUNCTION refuse_history_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER ledger_transactions_append_only BEFORE UPDATE OR DELETE ON ledger_transactions
    FOR EACH ROW EXECUTE FUNCTION refuse_history_change();
CREATE TRIGGER ledger_entries_append_only BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION refuse_history_change();
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION refuse_history_change();
CREATE TRIGGER deposits_append_only BEFORE UPDATE OR DELETE ON deposits
    FOR EACH ROW EXECUTE FUNCTION refuse_history_change();
CREATE TRIGGER history_no_truncate BEFORE TRUNCATE ON ledger_entries
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_history_change();
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_history_change();
