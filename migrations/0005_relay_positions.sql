-- How far each relay has published the event store's notification log to Kafka.
-- Advanced only after the broker acknowledged everything up to `position`.
-- depends: 0004_expect_versions
CREATE TABLE casebook_relay_positions (
    relay text PRIMARY KEY,
    position bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
