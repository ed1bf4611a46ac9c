DELETE FROM accounts WHERE kind IN ('external', 'exchange_fees', 'hub_levy');
DELETE FROM skus;
DELETE FROM hub_latency;
DELETE FROM clusters;
DELETE FROM hubs;
