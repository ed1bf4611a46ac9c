ALTER TABLE participants
    DROP CONSTRAINT participants_suspension,
    DROP COLUMN credentials_changed_at,
    DROP COLUMN key_epoch,
    DROP COLUMN suspension_reason,
    DROP COLUMN suspended_at;
