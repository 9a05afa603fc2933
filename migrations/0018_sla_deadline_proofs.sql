-- Deadline proofs (docs/sla.md): every clock records what proves its deadline (the
-- policy version, the calendar data that answered and its hash, the spans counted) when
-- the deadline is set or recomputed. Clocks recorded before have none: their explanation
-- is recomputed at read time and says so, until `casebook sla refresh` (open clocks) or
-- `casebook projections rebuild sla` records one.
-- depends: 0016_triage_clocks
ALTER TABLE casebook_sla_clocks ADD COLUMN proof jsonb;
-- `casebook sla provisional` and `casebook sla refresh` read the provisional clocks.
CREATE INDEX casebook_sla_clocks_provisional ON casebook_sla_clocks (case_id, metric)
    WHERE provisional;
