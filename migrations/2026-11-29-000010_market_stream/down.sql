DROP TABLE book_levels;
DROP TABLE market_events;
