-- The W3C trace context of the API request that sent each command (`traceparent`, and the
-- caller's `tracestate`), kept beside its origin so the relay publishes them with its
-- events as the CloudEvents distributed-tracing extension. Rows written before this
-- migration have none.
-- depends: 0011_command_origins
ALTER TABLE casebook_command_origins
    ADD COLUMN traceparent text,
    ADD COLUMN tracestate text;
