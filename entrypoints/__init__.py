"""The composition root: the CLI and the wiring of every process.

Only this package knows the concrete implementations and starts things: the API server
and its workers, the relay, the consumers with their timers and outbox publishers, the
rebuilds, the demo data, the local broker and the embedded database. Nothing imports it.
"""
