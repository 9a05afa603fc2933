ALTER TABLE casebook_sla_clocks DROP COLUMN assessed;
