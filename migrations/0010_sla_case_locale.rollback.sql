ALTER TABLE casebook_sla_cases DROP COLUMN customer_timezone, DROP COLUMN customer_country;
