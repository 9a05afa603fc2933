-- The closure reason of a case's current resolution (Resolved v2) and whether the policy
-- counts it out of scope (support-policy §3): the compliance report counts those apart.
-- Cases resolved before reasons existed read as `unspecified`, in scope.
-- depends: 0014_outbox_sequences
ALTER TABLE casebook_sla_cases
    ADD COLUMN closure_reason text,
    ADD COLUMN out_of_scope boolean NOT NULL DEFAULT false;
UPDATE casebook_sla_cases SET closure_reason = 'unspecified' WHERE status = 'resolved';
