-- A contract's data origin is its bid's. Contracts made when an incoming offer crossed a resting
-- bid recorded none until this version (the exchange passed none for that side), so the
-- regulator's listings, exports and east→west flows missed their origin; they get their bid's.
-- Nothing else of those contracts changes, and their audit entries stay as they were written.
UPDATE contracts c SET data_origin = b.data_origin
    FROM bids b
    WHERE b.id = c.bid_id AND c.data_origin IS NULL AND b.data_origin IS NOT NULL;
