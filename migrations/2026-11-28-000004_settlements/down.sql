DROP INDEX contracts_created;
DROP TABLE settlements;
