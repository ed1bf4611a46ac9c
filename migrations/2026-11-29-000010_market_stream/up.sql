-- The live market stream's events, written in the same transaction as the trades and order
-- changes they announce, so that a subscriber resumes after any event id (even across a restart)
-- with exactly the events it missed. Only the sequenced writer inserts, one batch at a time, so
-- ids grow in commit order (a rolled-back batch may leave a hole; nothing is ever inserted
-- below an id already committed).
CREATE TABLE market_events (
    id bigserial PRIMARY KEY,
    kind text NOT NULL CHECK (kind IN ('trade', 'book')),
    data jsonb NOT NULL,
    created_at timestamptz NOT NULL
);

-- A changed price level is re-aggregated from the resting orders at that level.
CREATE INDEX offers_levels ON offers (sku, ask_price) WHERE status IN ('open', 'partially_filled');
CREATE INDEX bids_levels ON bids (limit_price) WHERE status IN ('open', 'partially_filled');
