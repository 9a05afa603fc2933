DROP INDEX casebook_sla_cases_resolved;
ALTER TABLE casebook_sla_cases DROP COLUMN satisfaction_score, DROP COLUMN satisfaction_at;
