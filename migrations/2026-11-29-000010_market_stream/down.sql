DROP INDEX bids_levels;
DROP INDEX offers_levels;
DROP TABLE market_events;
