"""The write side's Prometheus metrics and the registry every metric of this process joins.

Hot paths only observe histograms (a lock and an add). What is read when a scrape asks
(the board of parts, pools, the database) is collected by `api.metrics`.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)
WRITE_BATCH_SIZE = Histogram(
    "casebook_write_batch_size",
    "Commands saved together in one group-commit batch of the write side.",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
    registry=REGISTRY,
)
WRITE_BATCH_SECONDS = Histogram(
    "casebook_write_batch_seconds",
    "Time to prepare and save one group-commit batch (one transaction), in seconds.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
    registry=REGISTRY,
)
