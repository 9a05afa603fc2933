-- Triage clocks (docs/sla.md): an unassessed case's initial-response clock runs from the
-- opening on the strictest target the policy allowed it (`triage_severity` on
-- casebook.case.opened.v3), marked `assessed = false` until the assessment recomputes it.
-- Cases already awaiting assessment get their triage clock from
-- `casebook projections rebuild sla`.
-- depends: 0015_closure_reasons
ALTER TABLE casebook_sla_clocks ADD COLUMN assessed boolean NOT NULL DEFAULT true;
