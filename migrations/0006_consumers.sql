-- The consumer runtime's state, written in the same transaction as each projection's rows
-- (consumers/): PostgreSQL, not Kafka, decides where a consumer group resumes.
-- depends: 0005_relay_positions

-- The next offset to read per partition; a (re)assigned partition is sought here.
CREATE TABLE casebook_consumer_offsets (
    consumer_group text NOT NULL,
    topic text NOT NULL,
    partition integer NOT NULL,
    next_offset bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, topic, partition)
);

-- The last applied `ce_sequence` per subject: an event at or below it is a duplicate.
CREATE TABLE casebook_consumer_sequences (
    consumer_group text NOT NULL,
    subject text NOT NULL,
    sequence bigint NOT NULL,
    PRIMARY KEY (consumer_group, subject)
);

-- What could not be applied: the record as received, why, and what an operator did.
CREATE TABLE casebook_consumer_dead_letters (
    id bigserial PRIMARY KEY,
    consumer_group text NOT NULL,
    subject text,  -- NULL when the record names none (nothing can be parked)
    ce_id text,
    sequence bigint,
    topic text NOT NULL,
    partition integer NOT NULL,
    "offset" bigint NOT NULL,
    headers jsonb NOT NULL,  -- [{"name", "value"} or {"name", "base64"}], in record order
    key bytea,
    value bytea,
    error text NOT NULL,
    attempts integer NOT NULL,
    dead_at timestamptz NOT NULL DEFAULT now(),
    resolution text CHECK (resolution IN ('replayed', 'skipped')),
    resolved_at timestamptz
);
CREATE INDEX casebook_consumer_dead_letters_open
    ON casebook_consumer_dead_letters (consumer_group, subject) WHERE resolution IS NULL;

-- Subjects whose events wait for an operator (`casebook dlq replay`); one dead letter each.
CREATE TABLE casebook_consumer_parked (
    consumer_group text NOT NULL,
    subject text NOT NULL,
    dead_letter_id bigint NOT NULL REFERENCES casebook_consumer_dead_letters (id),
    parked_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, subject)
);

-- Later records of a parked subject, as received, in arrival order.
CREATE TABLE casebook_consumer_parked_events (
    id bigserial PRIMARY KEY,
    consumer_group text NOT NULL,
    subject text NOT NULL,
    ce_id text,
    sequence bigint,
    topic text NOT NULL,
    partition integer NOT NULL,
    "offset" bigint NOT NULL,
    headers jsonb NOT NULL,
    key bytea,
    value bytea,
    parked_at timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (consumer_group, subject) REFERENCES casebook_consumer_parked
);
CREATE INDEX casebook_consumer_parked_events_by_subject
    ON casebook_consumer_parked_events (consumer_group, subject, sequence, id);

-- One row per running group member, refreshed every few seconds, for operators.
CREATE TABLE casebook_consumer_status (
    consumer_group text NOT NULL,
    member text NOT NULL,
    partitions text NOT NULL,
    lag bigint,
    events_per_second double precision NOT NULL,
    parked integer NOT NULL,
    applied bigint NOT NULL,
    dead_lettered bigint NOT NULL,
    started_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, member)
);
