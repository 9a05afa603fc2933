DROP TABLE casebook_sla_outbox_offsets;
DROP TABLE casebook_sla_outbox;
DROP TABLE casebook_sla_clock_history;
DROP TABLE casebook_sla_clocks;
DROP TABLE casebook_sla_cases;
DROP TABLE casebook_sla_organisations;
