DROP INDEX audit_log_contract;
DROP TABLE audit_checkpoints;
DROP TABLE audit_tree;
DROP TABLE audit_tree_hashes;
