"""The audit trail: an append-only, hash-chained log of every event, and its verification."""
