DROP INDEX policy_faults_hub;
ALTER TABLE bids DROP COLUMN reasons;
DROP INDEX ledger_entries_account_order;
DROP TABLE withdrawals;
DROP FUNCTION withdrawals_decided_once();
DELETE FROM accounts WHERE kind = 'payouts_pending';
DROP INDEX accounts_singleton_kind;
CREATE UNIQUE INDEX accounts_singleton_kind ON accounts (kind) WHERE kind IN ('external', 'exchange_fees');
ALTER TABLE accounts DROP CONSTRAINT accounts_kind_check;
ALTER TABLE accounts ADD CONSTRAINT accounts_kind_check
    CHECK (kind IN ('external', 'exchange_fees', 'buyer_available', 'buyer_held', 'provider',
                    'hub_levy', 'contract_escrow'));
