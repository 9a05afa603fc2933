"""Rate limits high enough for the suite's load generators and role sweeps.

The API's defaults suit people at keyboards; the tests send thousands of requests with
one key from one address. Tests of the limits themselves set their own, low ones.
"""

from __future__ import annotations

GENEROUS_LIMITS = {
    f"CASEBOOK_API_RATE_LIMIT_{kind}": "1000000/minute"
    for kind in ("WRITES", "READS", "PER_ADDRESS", "AUTH_FAILURES", "VERIFICATIONS")
}
