-- Orders (offers and bids) and the contracts their fills create. `seq` is the matching engine's
-- arrival number (time priority); windows are whole UTC hours, at most 2,160 of them.

CREATE TABLE offers (
    id uuid PRIMARY KEY,
    seq bigint NOT NULL UNIQUE CHECK (seq > 0),
    provider_id uuid NOT NULL REFERENCES participants (id),
    cluster text NOT NULL REFERENCES clusters (code),
    hub text NOT NULL REFERENCES hubs (code),
    sku text NOT NULL REFERENCES skus (code),
    quantity integer NOT NULL CHECK (quantity > 0),
    window_start timestamptz NOT NULL,
    window_end timestamptz NOT NULL,
    ask_price numeric(18, 6) NOT NULL CHECK (ask_price > 0),
    green_share smallint NOT NULL CHECK (green_share BETWEEN 0 AND 100),
    attributes jsonb NOT NULL DEFAULT '{}',
    status text NOT NULL CHECK (status IN ('open', 'partially_filled', 'filled', 'cancelled', 'expired')),
    -- Units still free in every hour of the window.
    remaining integer NOT NULL CHECK (remaining BETWEEN 0 AND quantity),
    idempotency_key text NOT NULL CHECK (length(idempotency_key) BETWEEN 1 AND 200),
    request_hash text NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    CHECK (extract(epoch FROM window_start) % 3600 = 0 AND extract(epoch FROM window_end) % 3600 = 0),
    CHECK (window_end > window_start AND window_end - window_start <= interval '2160 hours'),
    CONSTRAINT offers_idempotency_key UNIQUE (provider_id, idempotency_key)
);
CREATE INDEX offers_resting ON offers (seq) WHERE status IN ('open', 'partially_filled');
CREATE INDEX offers_provider ON offers (provider_id, seq);
CREATE INDEX offers_market ON offers (sku, hub) WHERE status IN ('open', 'partially_filled');

CREATE TABLE bids (
    id uuid PRIMARY KEY,
    seq bigint NOT NULL UNIQUE CHECK (seq > 0),
    buyer_id uuid NOT NULL REFERENCES participants (id),
    skus text[] NOT NULL CHECK (cardinality(skus) BETWEEN 1 AND 16),
    quantity integer NOT NULL CHECK (quantity > 0),
    window_start timestamptz NOT NULL,
    window_end timestamptz NOT NULL,
    limit_price numeric(18, 6) NOT NULL CHECK (limit_price > 0),
    -- Where the bid may run, after the latency bound; `requested_hubs` is what the buyer sent.
    hubs text[] NOT NULL CHECK (cardinality(hubs) >= 1),
    requested_hubs text[],
    data_origin text REFERENCES hubs (code),
    max_latency_ms integer CHECK (max_latency_ms > 0),
    min_green_share smallint NOT NULL CHECK (min_green_share BETWEEN 0 AND 100),
    data_class text NOT NULL CHECK (data_class IN ('general', 'important', 'core')),
    time_in_force text NOT NULL CHECK (time_in_force IN ('GTC', 'IOC', 'FOK', 'GTD')),
    expires_at timestamptz,
    min_fill integer NOT NULL CHECK (min_fill BETWEEN 1 AND quantity),
    -- Held per unit: limit × hours, rounded up to the fen.
    unit_hold numeric(20, 2) NOT NULL CHECK (unit_hold > 0),
    status text NOT NULL CHECK (status IN ('open', 'partially_filled', 'filled', 'cancelled', 'expired')),
    remaining integer NOT NULL CHECK (remaining BETWEEN 0 AND quantity),
    idempotency_key text NOT NULL CHECK (length(idempotency_key) BETWEEN 1 AND 200),
    request_hash text NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    CHECK (extract(epoch FROM window_start) % 3600 = 0 AND extract(epoch FROM window_end) % 3600 = 0),
    CHECK (window_end > window_start AND window_end - window_start <= interval '2160 hours'),
    CHECK ((time_in_force = 'GTD') = (expires_at IS NOT NULL)),
    CHECK (status IN ('open', 'partially_filled') OR remaining = 0),
    CONSTRAINT bids_idempotency_key UNIQUE (buyer_id, idempotency_key)
);
CREATE INDEX bids_resting ON bids (seq) WHERE status IN ('open', 'partially_filled');
CREATE INDEX bids_buyer ON bids (buyer_id, seq);

CREATE TABLE contracts (
    id uuid PRIMARY KEY,
    seq bigserial UNIQUE,
    bid_id uuid NOT NULL REFERENCES bids (id),
    offer_id uuid NOT NULL REFERENCES offers (id),
    buyer_id uuid NOT NULL REFERENCES participants (id),
    provider_id uuid NOT NULL REFERENCES participants (id),
    hub text NOT NULL REFERENCES hubs (code),
    cluster text NOT NULL REFERENCES clusters (code),
    sku text NOT NULL REFERENCES skus (code),
    data_origin text REFERENCES hubs (code),
    units integer NOT NULL CHECK (units > 0),
    window_start timestamptz NOT NULL,
    window_end timestamptz NOT NULL,
    hours integer NOT NULL CHECK (hours BETWEEN 1 AND 2160),
    unit_price numeric(18, 6) NOT NULL CHECK (unit_price > 0),
    notional numeric(20, 2) NOT NULL CHECK (notional >= 0),
    levy_bps integer NOT NULL CHECK (levy_bps BETWEEN 0 AND 10000),
    maker text NOT NULL CHECK (maker IN ('bid', 'offer')),
    status text NOT NULL CHECK (status IN ('active', 'settled')),
    decisions jsonb NOT NULL DEFAULT '[]',
    created_at timestamptz NOT NULL,
    CHECK (buyer_id <> provider_id),
    CHECK (extract(epoch FROM window_end - window_start) = hours * 3600)
);
CREATE INDEX contracts_offer ON contracts (offer_id);
CREATE INDEX contracts_bid ON contracts (bid_id);
CREATE INDEX contracts_buyer ON contracts (buyer_id, seq);
CREATE INDEX contracts_provider ON contracts (provider_id, seq);
CREATE INDEX contracts_market ON contracts (sku, hub, seq);
