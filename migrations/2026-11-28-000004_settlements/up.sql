-- Settlement of a contract after delivery: exactly once per contract (the primary key).
CREATE TABLE settlements (
    contract_id uuid PRIMARY KEY REFERENCES contracts (id),
    delivered_unit_hours bigint NOT NULL CHECK (delivered_unit_hours >= 0),
    charged numeric(20, 2) NOT NULL CHECK (charged >= 0),
    refunded numeric(20, 2) NOT NULL CHECK (refunded >= 0),
    provider_paid numeric(20, 2) NOT NULL CHECK (provider_paid >= 0),
    exchange_fee numeric(20, 2) NOT NULL CHECK (exchange_fee >= 0),
    hub_levy numeric(20, 2) NOT NULL CHECK (hub_levy >= 0),
    exchange_fee_bps integer NOT NULL CHECK (exchange_fee_bps BETWEEN 0 AND 10000),
    idempotency_key text NOT NULL CHECK (length(idempotency_key) BETWEEN 1 AND 200),
    transaction_id uuid NOT NULL REFERENCES ledger_transactions (id),
    created_at timestamptz NOT NULL,
    CHECK (charged = provider_paid + exchange_fee + hub_levy)
);
CREATE INDEX settlements_created ON settlements (created_at);
CREATE TRIGGER settlements_append_only BEFORE UPDATE OR DELETE ON settlements
    FOR EACH ROW EXECUTE FUNCTION refuse_history_change();
CREATE INDEX contracts_created ON contracts (created_at);
