DROP TABLE contracts;
DROP TABLE bids;
DROP TABLE offers;
