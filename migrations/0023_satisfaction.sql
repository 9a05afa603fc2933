-- The customer's survey answer per case (§6), which GET /reports/satisfaction reads
-- beside the case's category, severity, agent and resolution. Cases answered before this
-- migration get theirs from `casebook projections rebuild sla`.
-- depends: 0017_waiting_estimates
ALTER TABLE casebook_sla_cases
    ADD COLUMN satisfaction_score smallint,
    ADD COLUMN satisfaction_at timestamptz;
CREATE INDEX casebook_sla_cases_resolved ON casebook_sla_cases (resolved_at)
    WHERE resolved_at IS NOT NULL;
