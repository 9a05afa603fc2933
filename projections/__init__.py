"""Read models: SLA tracker and audit trail."""
