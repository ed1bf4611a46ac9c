-- Every policy evaluation matching made, allowed or denied, quoted or rejected, or failed: the
-- proof that compliance ran for every pair it judged, not only for the pairs that traded.
-- Append-only, like the rest of the history.
CREATE TABLE policy_decisions (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL,
    hub text NOT NULL REFERENCES hubs (code),
    kind text NOT NULL CHECK (kind IN ('pricing', 'compliance')),
    digest text NOT NULL CHECK (digest ~ '^[0-9a-f]{64}$'),
    outcome text NOT NULL CHECK (outcome IN ('allowed', 'denied', 'quoted', 'rejected', 'fault')),
    bid_id uuid NOT NULL,
    offer_id uuid NOT NULL,
    input text NOT NULL,
    output text NOT NULL,
    fuel_used bigint NOT NULL CHECK (fuel_used >= 0)
);
CREATE INDEX policy_decisions_hub ON policy_decisions (hub, id);
CREATE INDEX policy_decisions_bid ON policy_decisions (bid_id);
CREATE TRIGGER policy_decisions_append_only BEFORE UPDATE OR DELETE ON policy_decisions
    FOR EACH ROW EXECUTE FUNCTION refuse_history_change();
