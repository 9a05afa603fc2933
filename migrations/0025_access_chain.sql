-- Tamper evidence for the access log (projections/audit/access_chain.py): every access
-- record joins one SHA-256 hash chain (`seq` 1, 2, ... without gaps, `prev_hash`, `hash`
-- over the record's canonical encoding), whose head a one-row table keeps; writers take
-- that row's lock, so several API processes append one chain. Signed checkpoints gain the
-- access chain's head they saw (format 2), and may sign a moved head alone (count 0).
-- depends: 0021_portal_access 0009_audit_checkpoints
ALTER TABLE casebook_audit_access
    ADD COLUMN seq bigint,
    ADD COLUMN prev_hash text,
    ADD COLUMN hash text;
-- No uniqueness on seq: a row inserted by hand must be found by verification, not refused.
CREATE INDEX casebook_audit_access_chain ON casebook_audit_access (seq);

CREATE TABLE casebook_audit_access_head (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    seq bigint NOT NULL,
    hash text NOT NULL
);

-- Records written before this migration are chained now, in access_id order. The text
-- hashed is what projections/audit/access_chain.py's `canonical` writes: JSON with sorted
-- keys, no spaces, non-ASCII as is, instants in UTC with microseconds (verification
-- recomputes it in Python, so the two must agree; tests/integration/test_access_chain.py).
DO $$
DECLARE
    r record;
    n bigint := 0;
    previous text := repeat('0', 64);
    body text;
BEGIN
    FOR r IN SELECT * FROM casebook_audit_access ORDER BY access_id LOOP
        n := n + 1;
        body := '{"at":' || to_json(to_char(r.at AT TIME ZONE 'UTC',
                    'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'))::text
            || ',"case_id":' || coalesce(to_json(r.case_id::text)::text, 'null')
            || ',"client_address":' || coalesce(to_json(r.client_address)::text, 'null')
            || ',"method":' || to_json(r.method)::text
            || ',"on_behalf_of":' || coalesce(to_json(r.on_behalf_of)::text, 'null')
            || ',"organisation_id":' || coalesce(to_json(r.organisation_id::text)::text, 'null')
            || ',"path":' || to_json(r.path)::text
            || ',"prev_hash":' || to_json(previous)::text
            || ',"principal_id":' || to_json(r.principal_id)::text
            || ',"reason":' || coalesce(to_json(r.reason)::text, 'null')
            || ',"request_id":' || coalesce(to_json(r.request_id)::text, 'null')
            || ',"role":' || to_json(r.role)::text
            || ',"route":' || to_json(r.route)::text
            || ',"seq":' || n::text || '}';
        UPDATE casebook_audit_access
            SET seq = n, prev_hash = previous,
                hash = encode(sha256(convert_to(body, 'UTF8')), 'hex')
            WHERE access_id = r.access_id
            RETURNING hash INTO previous;
    END LOOP;
    INSERT INTO casebook_audit_access_head (seq, hash) VALUES (n, previous);
END $$;

ALTER TABLE casebook_audit_access
    ALTER COLUMN seq SET NOT NULL,
    ALTER COLUMN prev_hash SET NOT NULL,
    ALTER COLUMN hash SET NOT NULL;

-- The access chain's head each checkpoint signed (NULL in format-1 checkpoints). A
-- checkpoint over no new entry signs a moved access head alone: its entry range is empty.
ALTER TABLE casebook_audit_checkpoints
    ADD COLUMN access_seq bigint,
    ADD COLUMN access_hash text,
    DROP CONSTRAINT casebook_audit_checkpoints_upto_entry_id_key,
    DROP CONSTRAINT casebook_audit_checkpoints_check,
    ADD CONSTRAINT casebook_audit_checkpoints_range CHECK (
        (upto_entry_id > after_entry_id AND count > 0)
        OR (upto_entry_id = after_entry_id AND count = 0 AND access_seq IS NOT NULL)
    );
