DROP INDEX casebook_sla_clocks_provisional;
ALTER TABLE casebook_sla_clocks DROP COLUMN proof;
