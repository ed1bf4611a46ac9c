DROP INDEX policy_faults_hub;
ALTER TABLE bids DROP COLUMN reasons;
ALTER TABLE ledger_entries DROP COLUMN balance_after;
DROP INDEX ledger_entries_account_order;
DROP TABLE withdrawals;
DROP FUNCTION withdrawals_decided_once();
-- The payouts_pending account stays (and the kinds that allow it): ledger entries, which are
-- append-only, may refer to it.
