"""The SLA tracker: clocks per case and metric, the agent queue, SLA events."""
