-- The audit log as an RFC 6962 Merkle tree (API.md "Signed checkpoints and proofs"): leaf i is the
-- entry with seq i + 1, its hash SHA-256(0x00 || canonical). The tree is kept as its "stored
-- hashes" (every complete subtree's hash, numbered as in C2SP tlog-tiles / Go's sumdb/tlog), so a
-- proof reads O(log n) rows. The checkpointer appends them after the entries commit, off the
-- order path; `audit_tree.size` says how many leaves they cover.
CREATE TABLE audit_tree_hashes (
    idx bigint PRIMARY KEY CHECK (idx >= 0),
    hash bytea NOT NULL CHECK (length(hash) = 32)
);

CREATE TABLE audit_tree (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    size bigint NOT NULL CHECK (size >= 0)
);
INSERT INTO audit_tree (singleton, size) VALUES (true, 0);

-- Signed tree heads: C2SP signed notes over C2SP tlog-checkpoint bodies.
CREATE TABLE audit_checkpoints (
    tree_size bigint PRIMARY KEY CHECK (tree_size >= 1),
    root_hash bytea NOT NULL CHECK (length(root_hash) = 32),
    key_name text NOT NULL,
    note text NOT NULL,
    signed_at timestamptz NOT NULL DEFAULT now()
);

CREATE TRIGGER audit_tree_hashes_append_only BEFORE UPDATE OR DELETE ON audit_tree_hashes
    FOR EACH ROW EXECUTE FUNCTION refuse_history_change();
CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION refuse_history_change();

-- A contract's entries, for its proof (only contract entries carry `contract_id`).
CREATE INDEX audit_log_contract ON audit_log ((payload ->> 'contract_id'))
    WHERE payload ? 'contract_id';
