DROP TABLE matching_lease;
