DROP TABLE policy_faults;
DROP TABLE active_policies;
DROP TABLE hub_policies;
DROP TABLE policy_modules;
