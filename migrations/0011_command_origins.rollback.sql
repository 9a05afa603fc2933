ALTER TABLE casebook_audit_entries
    DROP COLUMN api_key_id, DROP COLUMN client_address, DROP COLUMN request_id;
DROP TABLE casebook_command_origins;
