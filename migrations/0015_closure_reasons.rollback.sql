ALTER TABLE casebook_sla_cases DROP COLUMN closure_reason, DROP COLUMN out_of_scope;
