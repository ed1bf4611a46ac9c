DROP TABLE policy_decisions;
