-- The SLA tracker (projections/sla): cases as the queue sees them, one clock per case
-- and metric, every clock transition with its reason, and the outbox of SLA events.
-- depends: 0005_relay_positions
CREATE TABLE casebook_sla_organisations (
    organisation_id uuid PRIMARY KEY,
    timezone text NOT NULL,
    country text NOT NULL
);

CREATE TABLE casebook_sla_cases (
    case_id uuid PRIMARY KEY,
    organisation_id uuid NOT NULL,
    category text NOT NULL,
    severity text,
    status text NOT NULL,
    agent_id text,
    opened_at timestamptz NOT NULL,
    first_response_at timestamptz,
    resolved_at timestamptz,
    unresponsive_since timestamptz,
    -- The nearest deadline still to meet: the agent queue's order.
    due_at timestamptz,
    version integer NOT NULL
);
CREATE INDEX casebook_sla_cases_queue ON casebook_sla_cases (due_at NULLS LAST, case_id)
    WHERE status <> 'resolved';
CREATE INDEX casebook_sla_cases_organisation ON casebook_sla_cases (organisation_id);

CREATE TABLE casebook_sla_clocks (
    case_id uuid NOT NULL,
    metric text NOT NULL,
    severity text NOT NULL,
    category text NOT NULL,
    policy_version text NOT NULL,
    calendar text NOT NULL,
    description text NOT NULL,
    started_at timestamptz NOT NULL,
    target_seconds double precision NOT NULL,
    deadline timestamptz,
    at_risk_at timestamptz,
    provisional boolean NOT NULL,
    state text NOT NULL,
    met_at timestamptz,
    breached_at timestamptz,
    stopped_at timestamptz,
    transitions integer NOT NULL,
    -- When time alone next changes the clock: what the timer looks for.
    next_due_at timestamptz,
    PRIMARY KEY (case_id, metric)
);
CREATE INDEX casebook_sla_clocks_due ON casebook_sla_clocks (next_due_at) WHERE next_due_at IS NOT NULL;

CREATE TABLE casebook_sla_clock_history (
    event_id text PRIMARY KEY,
    case_id uuid NOT NULL,
    metric text NOT NULL,
    change text NOT NULL,
    at timestamptz NOT NULL,
    reason text NOT NULL,
    state text NOT NULL,
    severity text NOT NULL,
    policy_version text NOT NULL,
    deadline timestamptz,
    at_risk_at timestamptz
);
CREATE INDEX casebook_sla_clock_history_case ON casebook_sla_clock_history (case_id, metric, at);

-- Written in the transaction that changes a clock, published by one outbox publisher.
CREATE TABLE casebook_sla_outbox (
    id bigserial PRIMARY KEY,
    event_id text NOT NULL UNIQUE,
    type text NOT NULL,
    subject text NOT NULL,
    time timestamptz NOT NULL,
    payload jsonb NOT NULL,
    published_at timestamptz
);
CREATE INDEX casebook_sla_outbox_pending ON casebook_sla_outbox (id) WHERE published_at IS NULL;

-- Per partition of the SLA topic, the offset after the last record the publisher marked
-- as published: on start it reads on from there, so what a crashed publisher sent but
-- did not mark is marked, not sent again.
CREATE TABLE casebook_sla_outbox_offsets (
    partition integer PRIMARY KEY,
    next_offset bigint NOT NULL
);
