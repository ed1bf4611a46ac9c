-- A participant's standing: suspended (with the reason) or not, and when its credentials last
-- changed. `key_epoch` counts key rotations: a token the exchange issued carries the epoch it was
-- issued in and is good only while that is still the participant's epoch; a token from the
-- external issuer must be issued after `credentials_changed_at`.
ALTER TABLE participants
    ADD COLUMN suspended_at timestamptz,
    ADD COLUMN suspension_reason text CHECK (length(suspension_reason) BETWEEN 1 AND 500),
    ADD COLUMN key_epoch integer NOT NULL DEFAULT 0 CHECK (key_epoch >= 0),
    ADD COLUMN credentials_changed_at timestamptz NOT NULL DEFAULT '1970-01-01T00:00:00Z',
    ADD CONSTRAINT participants_suspension CHECK ((suspended_at IS NULL) = (suspension_reason IS NULL));
