-- One row per case, kept by the write side in the same transaction as the case's events:
-- lists cases of an organisation in opening order without replaying event streams.
-- Written only when a listed field changes (opening, severity, resolve, reopen), so a
-- note or a response costs no index write.
-- depends: 0002_idempotency
CREATE TABLE casebook_case_index (
    case_id uuid PRIMARY KEY,
    organisation_id uuid NOT NULL,
    category text NOT NULL,
    status text NOT NULL,
    severity text NULL,
    title text NOT NULL,
    opened_at timestamptz NOT NULL
);

-- Keyset pagination: WHERE organisation_id = $1 AND (opened_at, case_id) > ($2, $3).
CREATE INDEX casebook_case_index_by_organisation
    ON casebook_case_index (organisation_id, opened_at, case_id);
