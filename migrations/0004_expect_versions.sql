-- Read-set validation for the write side: a command that decided on an aggregate it did
-- not write (the organisation's agreement when assessing a case's severity) states the
-- versions it read; this refuses the transaction if any of them moved on meanwhile.
-- Called after the event table's lock is taken, so nothing can change before commit.
-- The integrity_constraint_violation code makes the caller treat it like a version
-- conflict: reload and retry.
-- depends: 0003_case_index
CREATE FUNCTION casebook_expect_versions(ids uuid[], versions bigint[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    stale uuid;
BEGIN
    SELECT expected.id INTO stale
    FROM unnest(ids, versions) AS expected(id, version)
    WHERE expected.version <> (
        SELECT coalesce(max(originator_version), 0)
        FROM casebook_events
        WHERE originator_id = expected.id
    )
    LIMIT 1;
    IF stale IS NOT NULL THEN
        RAISE EXCEPTION 'aggregate % changed after it was read', stale
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
END
$$;
