-- The audit trail (projections/audit): an append-only log of every case, organisation
-- and SLA event, one SHA-256 hash chain per stream and subject, and the access records
-- of reads of case data.
-- depends: 0007_sla
CREATE TABLE casebook_audit_entries (
    entry_id bigserial PRIMARY KEY,
    stream text NOT NULL,          -- case, organisation or sla
    subject uuid NOT NULL,         -- the case or organisation id
    seq integer NOT NULL,          -- 1, 2, ... within (stream, subject)
    event_id text NOT NULL,
    event_type text NOT NULL,
    case_id uuid,
    organisation_id uuid,
    occurred_at timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL,
    actor_id text,
    actor_role text,
    channel text,
    outcome text NOT NULL,
    changes jsonb NOT NULL,
    prev_hash text NOT NULL,
    hash text NOT NULL
);
-- No uniqueness on (stream, subject, seq): a row inserted by hand must be found by
-- verification, not refused by the database.
CREATE INDEX casebook_audit_entries_chain ON casebook_audit_entries (stream, subject, seq);
CREATE INDEX casebook_audit_entries_case ON casebook_audit_entries (case_id, occurred_at);
CREATE INDEX casebook_audit_entries_organisation
    ON casebook_audit_entries (organisation_id, occurred_at);

-- The head of each chain and the subject's last known fields (to record before -> after).
CREATE TABLE casebook_audit_heads (
    stream text NOT NULL,
    subject uuid NOT NULL,
    seq integer NOT NULL,
    hash text NOT NULL,
    organisation_id uuid,
    fields jsonb NOT NULL,
    PRIMARY KEY (stream, subject)
);

-- Who read which case data, when, through which route, and why (optional).
CREATE TABLE casebook_audit_access (
    access_id bigserial PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now(),
    principal_id text NOT NULL,
    role text NOT NULL,
    route text NOT NULL,
    method text NOT NULL,
    path text NOT NULL,
    case_id uuid,
    organisation_id uuid,
    reason text,
    request_id text,
    client_address text
);
CREATE INDEX casebook_audit_access_case ON casebook_audit_access (case_id, at);
CREATE INDEX casebook_audit_access_at ON casebook_audit_access (at);
