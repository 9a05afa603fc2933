-- Service incidents (policy §1, the service health dashboard): the write side's index of
-- incidents, one row per incident kept in the same transaction as its events (the
-- incidents in force that an opening is checked against, and GET /service-health); and
-- the SLA tracker's link from a case to the incident it was filed about, for the queue
-- and the compliance report's cases per incident.
-- depends: 0016_triage_clocks 0021_portal_access
CREATE TABLE casebook_incident_index (
    incident_id uuid PRIMARY KEY,
    services text[] NOT NULL,
    categories text[] NOT NULL,
    summary text NOT NULL,
    started_at timestamptz NOT NULL,
    ended_at timestamptz NULL
);
-- In force: not closed (few rows); history: closed within the last days.
CREATE INDEX casebook_incident_index_in_force
    ON casebook_incident_index (started_at) WHERE ended_at IS NULL;
CREATE INDEX casebook_incident_index_ended ON casebook_incident_index (ended_at);

ALTER TABLE casebook_sla_cases ADD COLUMN incident_id uuid NULL;
CREATE INDEX casebook_sla_cases_incident
    ON casebook_sla_cases (incident_id) WHERE incident_id IS NOT NULL;
