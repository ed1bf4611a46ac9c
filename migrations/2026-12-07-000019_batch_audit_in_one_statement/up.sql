-- Entries join the audit chain through `audit_append`, which hashes them here, in one round trip:
-- the exchange used to lock the chain's head in a statement of its own, hash the entries after the
-- head it read, then insert them and move the head. The hashing is the one every verifier
-- recomputes: an entry's canonical text is its `prefix` (its canonical JSON up to and including
-- `"seq":`, made by the exchange) followed by its sequence number and `}`, and its hash is
-- sha256(the previous hash's 32 bytes || the canonical text's UTF-8 bytes), in lowercase hex.
-- The head stays locked (`FOR UPDATE`) until the caller's transaction ends, so `seq` stays gapless
-- and nothing joins the chain in between. Answers the last sequence number the chain holds.
CREATE FUNCTION audit_append(
    p_at timestamptz,
    p_actors text[],
    p_kinds text[],
    p_payloads jsonb[],
    p_prefixes text[]
) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    entries integer := coalesce(cardinality(p_prefixes), 0);
    head_seq bigint;
    head_hash text;
    seqs bigint[];
    canonicals text[];
    prev_hashes text[];
    hashes text[];
BEGIN
    IF coalesce(cardinality(p_actors), 0) <> entries
        OR coalesce(cardinality(p_kinds), 0) <> entries
        OR coalesce(cardinality(p_payloads), 0) <> entries THEN
        RAISE EXCEPTION 'audit_append: % prefixes but % actors, % kinds and % payloads',
            entries, cardinality(p_actors), cardinality(p_kinds), cardinality(p_payloads);
    END IF;
    IF entries = 0 THEN
        -- Nothing to chain: no need to wait for (or hold up) the head.
        SELECT h.seq INTO head_seq FROM audit_head h WHERE h.singleton;
        RETURN head_seq;
    END IF;
    SELECT h.seq, h.hash INTO head_seq, head_hash FROM audit_head h WHERE h.singleton FOR UPDATE;
    FOR i IN 1 .. entries LOOP
        head_seq := head_seq + 1;
        seqs[i] := head_seq;
        canonicals[i] := p_prefixes[i] || head_seq::text || '}';
        prev_hashes[i] := head_hash;
        head_hash := encode(sha256(decode(head_hash, 'hex') || convert_to(canonicals[i], 'UTF8')), 'hex');
        hashes[i] := head_hash;
    END LOOP;
    INSERT INTO audit_log (seq, at, actor, kind, payload, canonical, prev_hash, hash)
    SELECT s, p_at, a, k, p, c, ph, h
    FROM unnest(seqs, p_actors, p_kinds, p_payloads, canonicals, prev_hashes, hashes)
        AS t(s, a, k, p, c, ph, h);
    UPDATE audit_head SET seq = head_seq, hash = head_hash WHERE singleton;
    RETURN head_seq;
END $$;

-- The end of the writer's batch, called from the statement that records the batch's market events:
-- appends its audit entries (`audit_append`), then checks the matching lease, locking, in this
-- order, the chain's head and then the lease's row (`FOR KEY SHARE`: see `db::lease`), both until
-- the batch commits. A batch whose `p_lease_token` no longer holds the lease fails with an error
-- naming the constraint `matching_lease_held`, and the writer rolls it back as fenced off.
CREATE FUNCTION batch_end(
    p_lease_token bigint,
    p_at timestamptz,
    p_actors text[],
    p_kinds text[],
    p_payloads jsonb[],
    p_prefixes text[]
) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    last_seq bigint := audit_append(p_at, p_actors, p_kinds, p_payloads, p_prefixes);
    held bigint;
BEGIN
    SELECT l.token INTO held FROM matching_lease l WHERE l.singleton FOR KEY SHARE;
    IF held IS DISTINCT FROM p_lease_token THEN
        RAISE EXCEPTION 'this node no longer holds the matching lease (its token is %, the lease''s %)',
            p_lease_token, held
            USING ERRCODE = 'object_not_in_prerequisite_state', CONSTRAINT = 'matching_lease_held';
    END IF;
    RETURN last_seq;
END $$;
