DROP INDEX casebook_sla_cases_incident;
ALTER TABLE casebook_sla_cases DROP COLUMN incident_id;
DROP TABLE casebook_incident_index;
