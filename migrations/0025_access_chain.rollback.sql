-- Fails while a checkpoint signs an access head alone (count 0): those are signed
-- records of the log, not to be dropped silently.
ALTER TABLE casebook_audit_checkpoints
    DROP CONSTRAINT casebook_audit_checkpoints_range,
    ADD CONSTRAINT casebook_audit_checkpoints_check
        CHECK (upto_entry_id > after_entry_id AND count > 0),
    ADD CONSTRAINT casebook_audit_checkpoints_upto_entry_id_key UNIQUE (upto_entry_id),
    DROP COLUMN access_hash,
    DROP COLUMN access_seq;
DROP TABLE casebook_audit_access_head;
DROP INDEX casebook_audit_access_chain;
ALTER TABLE casebook_audit_access
    DROP COLUMN hash,
    DROP COLUMN prev_hash,
    DROP COLUMN seq;
