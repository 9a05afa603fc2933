-- Expected waiting time (docs/sla.md): the first response promised when a case opened
-- (`expected_response_at` on casebook.case.opened.v4), kept with the case so the
-- compliance report compares promise and outcome; the business time from opening to
-- first response, which the estimate's median reads; and the two indexes the estimate
-- reads when a case opens (the unanswered queue of a category, its recent first
-- responses). Cases opened earlier carry no promise (null); cases answered earlier get
-- their business time from `casebook projections rebuild sla`.
-- depends: 0016_triage_clocks
ALTER TABLE casebook_sla_cases ADD COLUMN promised_response_at timestamptz;
ALTER TABLE casebook_sla_cases ADD COLUMN first_response_business_seconds double precision;
CREATE INDEX casebook_sla_cases_unanswered ON casebook_sla_cases (category)
    WHERE status <> 'resolved' AND first_response_at IS NULL;
CREATE INDEX casebook_sla_cases_first_responses ON casebook_sla_cases (category, first_response_at)
    WHERE first_response_at IS NOT NULL;
