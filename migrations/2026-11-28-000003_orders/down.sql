DROP TABLE contracts;
DROP TABLE bids;
DROP TABLE offers;
DROP FUNCTION on_the_hour(timestamptz);
