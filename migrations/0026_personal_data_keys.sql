-- Crypto-shredding (docs/privacy.md): the data keys that seal personal fields of events,
-- each wrapped under the master key, and the erasures that destroyed some of them.
-- An erased key keeps its row (id, scope, when, by which erasure) without its key.
-- depends: 0025_access_chain
CREATE TABLE casebook_erasures (
    erasure_id bigserial PRIMARY KEY,
    requested_at timestamptz NOT NULL DEFAULT now(),
    organisation_id uuid NULL,
    subject text NULL,
    erased_by text NOT NULL,
    role text NOT NULL,
    reason text NOT NULL,
    keys_destroyed integer NOT NULL,
    cases integer NOT NULL,
    recorded integer NOT NULL DEFAULT 0,
    completed_at timestamptz NULL,
    CHECK (organisation_id IS NOT NULL OR subject IS NOT NULL)
);

CREATE TABLE casebook_data_keys (
    key_id uuid PRIMARY KEY,
    organisation_id uuid NOT NULL,
    subject text NULL,
    wrapped_key bytea NULL,
    master_key_fingerprint text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    erased_at timestamptz NULL,
    erasure_id bigint NULL REFERENCES casebook_erasures (erasure_id),
    CHECK ((wrapped_key IS NULL) = (erased_at IS NOT NULL))
);

-- One live key per scope (an organisation's own: subject NULL).
CREATE UNIQUE INDEX casebook_data_keys_live
    ON casebook_data_keys (organisation_id, coalesce(subject, ''))
    WHERE erased_at IS NULL;
CREATE INDEX casebook_data_keys_by_subject ON casebook_data_keys (subject);

-- Whose data key seals a case: `privacy erase --subject` finds its cases here.
ALTER TABLE casebook_case_index ADD COLUMN requester_id text NULL;
CREATE INDEX casebook_case_index_by_requester ON casebook_case_index (requester_id);

-- Cases indexed before this migration: their requester, from their opening event (the
-- requester's principal id is no personal field, so it is stored in clear).
DO $$
BEGIN
    IF to_regclass('casebook_events') IS NOT NULL THEN
        UPDATE casebook_case_index i
            SET requester_id = convert_from(e.state, 'UTF8')::jsonb ->> 'requester_id'
            FROM casebook_events e
            WHERE e.originator_id = i.case_id AND e.originator_version = 1
              AND i.requester_id IS NULL;
    END IF;
END $$;

-- The writer's check, under the event table's lock, that the data keys it sealed a
-- batch's personal fields with are still live; their rows are locked so an erasure
-- waits for the batch (whose data it then erases too) or the batch sees the erasure.
-- The integrity_constraint_violation code makes the writer treat it as a conflict:
-- forget its keys, fetch live ones, retry.
CREATE FUNCTION casebook_expect_live_keys(keys uuid[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    live integer;
BEGIN
    SELECT count(*) INTO live FROM (
        SELECT 1 FROM casebook_data_keys
        WHERE key_id = ANY(keys) AND erased_at IS NULL
        FOR SHARE
    ) AS still_live;
    IF live < cardinality(keys) THEN
        RAISE EXCEPTION 'a data key was erased after the batch was sealed'
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
END
$$;
