-- Price history: candles per SKU, hub (and '' for all hubs) and interval, kept by the sequenced
-- writer in the same transaction as the contracts they summarise, so that reading candles costs
-- what is returned, never a scan of the contracts. Trade time is the contract's `created_at`;
-- buckets are UTC hours and UTC days. `price_unit_hours` is Σ unit_price × unit_hours, so the
-- unit-hour-weighted average price (vwap) is price_unit_hours / unit_hours.
CREATE TABLE market_candles (
    sku text NOT NULL REFERENCES skus (code),
    hub text NOT NULL CHECK (hub = '' OR hub ~ '^[a-z][a-z0-9-]{0,31}$'),
    interval text NOT NULL CHECK (interval IN ('1h', '1d')),
    start timestamptz NOT NULL,
    open numeric(20, 6) NOT NULL,
    high numeric(20, 6) NOT NULL,
    low numeric(20, 6) NOT NULL,
    close numeric(20, 6) NOT NULL,
    price_unit_hours numeric(40, 6) NOT NULL,
    unit_hours bigint NOT NULL CHECK (unit_hours > 0),
    notional numeric(24, 2) NOT NULL,
    contracts bigint NOT NULL CHECK (contracts > 0),
    PRIMARY KEY (sku, hub, interval, start),
    CHECK (low <= open AND open <= high AND low <= close AND close <= high)
);
-- The index reads one SKU's recent hourly candles of every hub at once.
CREATE INDEX market_candles_recent ON market_candles (sku, interval, start)
    INCLUDE (hub, price_unit_hours, unit_hours);

-- The contracts made before this table existed.
INSERT INTO market_candles (sku, hub, interval, start, open, high, low, close, price_unit_hours,
                            unit_hours, notional, contracts)
SELECT sku, hub, interval, start,
       (array_agg(unit_price ORDER BY seq))[1],
       max(unit_price), min(unit_price),
       (array_agg(unit_price ORDER BY seq DESC))[1],
       sum(unit_price * units * hours), sum(units::bigint * hours), sum(notional), count(*)
FROM (
    SELECT c.*, h.hub_key AS hub, i.interval,
           CASE i.interval WHEN '1h' THEN date_trunc('hour', c.created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
                           ELSE date_trunc('day', c.created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' END AS start
    FROM (SELECT seq, sku, hub AS contract_hub, unit_price, units, hours, notional, created_at FROM contracts) c
    CROSS JOIN LATERAL (VALUES (c.contract_hub), ('')) AS h (hub_key)
    CROSS JOIN (VALUES ('1h'), ('1d')) AS i (interval)
) t
GROUP BY sku, hub, interval, start;
