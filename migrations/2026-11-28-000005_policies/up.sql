-- Hub policies: WebAssembly components stored content-addressed by SHA-256, forever (replay
-- needs every version); which versions each hub uploaded; which one is active per hub and kind;
-- and every fault a policy caused during matching.
CREATE TABLE policy_modules (
    digest text PRIMARY KEY CHECK (digest ~ '^[0-9a-f]{64}$'),
    bytes bytea NOT NULL,
    size_bytes integer NOT NULL CHECK (size_bytes = length(bytes)),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER policy_modules_append_only BEFORE UPDATE OR DELETE ON policy_modules
    FOR EACH ROW EXECUTE FUNCTION refuse_history_change();

CREATE TABLE hub_policies (
    hub text NOT NULL REFERENCES hubs (code),
    kind text NOT NULL CHECK (kind IN ('pricing', 'compliance')),
    digest text NOT NULL REFERENCES policy_modules (digest),
    uploaded_by uuid NOT NULL REFERENCES participants (id),
    uploaded_at timestamptz NOT NULL,
    PRIMARY KEY (hub, kind, digest)
);

CREATE TABLE active_policies (
    hub text NOT NULL,
    kind text NOT NULL,
    digest text NOT NULL,
    activated_by uuid NOT NULL REFERENCES participants (id),
    activated_at timestamptz NOT NULL,
    PRIMARY KEY (hub, kind),
    FOREIGN KEY (hub, kind, digest) REFERENCES hub_policies (hub, kind, digest)
);

CREATE TABLE policy_faults (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL,
    hub text NOT NULL,
    kind text NOT NULL,
    digest text NOT NULL,
    class text NOT NULL,
    message text NOT NULL,
    input text NOT NULL
);
