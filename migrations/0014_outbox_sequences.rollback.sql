UPDATE casebook_consumer_sequences s SET sequence = o.id
FROM casebook_sla_outbox o
WHERE strpos(s.subject, 'sla-events.v1|') > 0
  AND o.subject = split_part(s.subject, '|', 2) AND o.sequence = s.sequence;
ALTER TABLE casebook_audit_checkpoint_outbox DROP COLUMN sequence;
ALTER TABLE casebook_sla_outbox DROP COLUMN sequence;
