-- The customer's locale recorded at a case's opening (Opened v2): presales clocks count
-- the customer's hours from the case's own events, whatever order partitions are read in.
-- depends: 0007_sla
ALTER TABLE casebook_sla_cases
    ADD COLUMN customer_timezone text,
    ADD COLUMN customer_country text;
