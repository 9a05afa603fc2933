-- Where each command came from (NIST SP 800-53 AU-3 "from where"): the API key it was
-- sent with, the client's address and the request id. The write side inserts one row per
-- event of a command that has an origin, in the same transaction as the events; the relay
-- reads them with the events (LEFT JOIN on the event's key) and publishes them as
-- CloudEvent extensions. Commands from the CLI, the demo or a bench have no row.
-- depends: 0008_audit
CREATE TABLE casebook_command_origins (
    originator_id uuid NOT NULL,        -- the event's aggregate, as in casebook_events
    originator_version bigint NOT NULL, -- the event's version
    api_key_id text,
    client_address text,
    request_id text,
    PRIMARY KEY (originator_id, originator_version)
);

-- The audit entries record it too; NULL for entries of events without an origin (and for
-- every entry written before this migration, whose hashes therefore stay as they were).
ALTER TABLE casebook_audit_entries
    ADD COLUMN api_key_id text,
    ADD COLUMN client_address text,
    ADD COLUMN request_id text;
