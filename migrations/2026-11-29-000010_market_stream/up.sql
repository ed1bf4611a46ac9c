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

-- The resting orders of the book, summed per side, SKU and price (a bid counts in each of its
-- SKUs), kept by the writer in each batch's transaction from the changes it makes: a changed
-- level costs one row, however many orders rest at it. Levels emptied keep their row at zero.
-- (No CHECK on the sums: PostgreSQL checks an upsert's proposed row, here a change that may be
-- negative, before it finds the conflict; the invariant book_levels_equal_resting_orders holds
-- the sums to the resting orders instead.)
CREATE TABLE book_levels (
    side text NOT NULL CHECK (side IN ('offer', 'bid')),
    sku text NOT NULL,
    price numeric NOT NULL,
    units bigint NOT NULL,
    orders bigint NOT NULL,
    PRIMARY KEY (side, sku, price)
);

INSERT INTO book_levels (side, sku, price, units, orders)
SELECT 'offer', sku, ask_price, sum(remaining), count(*) FROM offers
WHERE status IN ('open', 'partially_filled') GROUP BY sku, ask_price;

INSERT INTO book_levels (side, sku, price, units, orders)
SELECT 'bid', s, limit_price, sum(remaining), count(*) FROM bids, unnest(skus) AS s
WHERE status IN ('open', 'partially_filled') GROUP BY s, limit_price;
