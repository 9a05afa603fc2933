-- Subjects a consumer group holds because an event skipped a sequence number on a topic
-- whose sequences are contiguous (consumers/gaps.py): their later events wait here until
-- the missing one arrives (then all are applied in order), or until the wait times out
-- (then the subject is parked with a dead letter whose error begins `sequence-gap`).
-- depends: 0011_command_origins

CREATE TABLE casebook_consumer_waiting (
    consumer_group text NOT NULL,
    subject text NOT NULL,
    sequence_key text NOT NULL,  -- topic|subject, as in casebook_consumer_sequences
    expected bigint NOT NULL,    -- the first sequence number that has not arrived
    since timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, subject)
);

-- The held records, as received.
CREATE TABLE casebook_consumer_waiting_events (
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
    held_at timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (consumer_group, subject) REFERENCES casebook_consumer_waiting ON DELETE CASCADE
);
CREATE INDEX casebook_consumer_waiting_events_by_subject
    ON casebook_consumer_waiting_events (consumer_group, subject, sequence, id);

-- The topic id each group last read a topic under: a topic deleted and created again (or a
-- broker that lost it) has a new id, and the group then reads it again from the start
-- instead of seeking to offsets that belong to the old log.
CREATE TABLE casebook_consumer_topics (
    consumer_group text NOT NULL,
    topic text NOT NULL,
    topic_id text NOT NULL,
    seen_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, topic)
);
