"""The topic contract: what casebook publishes about cases and organisations.

Analytics reads the topics, so they are a public contract. This package says what goes
on `<prefix>.case-events.v1`: the published event types and payloads (`case_events`),
their JSON Schemas and CloudEvent headers (`case_event_schemas`) and the shared pieces
every topic's schema uses (`schema_parts`). The relay publishes by it and the consumers
read by it; each projection owns the schema of the events it emits itself
(`projections.sla.schema`, `projections.audit.schema`), and the composition root
assembles them all into `schemas/` (`entrypoints.schemas`).
"""
