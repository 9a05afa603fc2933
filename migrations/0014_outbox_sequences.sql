-- Each outbox row's sequence among its subject's rows (1, 2, ... with no gaps): what the
-- publisher sends as `ce_sequence` (relay/outbox.py), so a reader of the SLA and the
-- checkpoint topics sees a missing record as a gap, as on the case-events topic. Writers
-- number a subject's rows under a per-subject lock (projections/sla/store.py, due.py,
-- projections/audit/checkpointer.py); the unique constraint refuses a number twice.
-- depends: 0013_part_status

ALTER TABLE casebook_sla_outbox ADD COLUMN sequence bigint;
UPDATE casebook_sla_outbox o SET sequence = n.sequence
FROM (
    SELECT id, row_number() OVER (PARTITION BY subject ORDER BY id) AS sequence
    FROM casebook_sla_outbox
) n
WHERE o.id = n.id;
ALTER TABLE casebook_sla_outbox ALTER COLUMN sequence SET NOT NULL,
    ADD CONSTRAINT casebook_sla_outbox_subject_sequence UNIQUE (subject, sequence);

ALTER TABLE casebook_audit_checkpoint_outbox ADD COLUMN sequence bigint;
UPDATE casebook_audit_checkpoint_outbox o SET sequence = n.sequence
FROM (
    SELECT id, row_number() OVER (PARTITION BY subject ORDER BY id) AS sequence
    FROM casebook_audit_checkpoint_outbox
) n
WHERE o.id = n.id;
ALTER TABLE casebook_audit_checkpoint_outbox ALTER COLUMN sequence SET NOT NULL,
    ADD CONSTRAINT casebook_audit_checkpoint_outbox_subject_sequence UNIQUE (subject, sequence);

-- A consumer of the SLA topic remembers the last sequence it applied per case: until now
-- an outbox id. Translated to the new number of that row, so the next record follows on.
UPDATE casebook_consumer_sequences s SET sequence = o.sequence
FROM casebook_sla_outbox o
WHERE strpos(s.subject, 'sla-events.v1|') > 0
  AND o.subject = split_part(s.subject, '|', 2) AND o.id = s.sequence;
