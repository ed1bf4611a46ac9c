DROP FUNCTION batch_end(bigint, timestamptz, text[], text[], jsonb[], text[]);
DROP FUNCTION audit_append(timestamptz, text[], text[], jsonb[], text[]);
