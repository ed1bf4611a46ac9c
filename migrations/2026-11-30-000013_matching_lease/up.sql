-- The matching lease (README "Several nodes"): the one row that says which node applies orders
-- and settlements. A node takes it when it has expired (by the database's clock, so nodes' clocks
-- do not matter), the holder renews it, and every batch the holder writes checks, inside its own
-- transaction, that `token` is still the one it took (the fencing token): a node that lost the
-- lease while paused can never commit afterwards.
--
-- `token` is UNIQUE so that PostgreSQL treats it as a key column: taking the lease changes it
-- (a key update, which waits for a batch's `FOR KEY SHARE` lock on the row), renewing does not
-- (a no-key update, which does not wait for batches).
CREATE TABLE matching_lease (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    -- Raised by one each time a node takes the lease.
    token bigint NOT NULL UNIQUE CHECK (token >= 0),
    -- The holding process (a random id per process start), its name, and the address followers
    -- forward order commands to.
    holder uuid,
    node text NOT NULL,
    address text NOT NULL,
    expires_at timestamptz NOT NULL,
    renewed_at timestamptz NOT NULL
);
INSERT INTO matching_lease (singleton, token, holder, node, address, expires_at, renewed_at)
VALUES (true, 0, NULL, '', '', 'epoch', 'epoch');
