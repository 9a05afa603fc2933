"""The pure core of casebook: aggregates, events, the support policy and the SLA clock.

Nothing here performs I/O; time, randomness and configuration come in as arguments.
"""
