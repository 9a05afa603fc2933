"""An organisation with thousands of audited cases, for evidence bundles at scale.

The case cloned is `live_a_case`'s (eight case events, with an escalation, a downgrade
after an unanswered question and a reopen, and the clock events the tracker publishes
for them); bench.organisation clones and audits it as the bundle bench does its own.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.organisation import AuditedOrganisation, audit_clones
from casebook.database import Database
from tests.integration.audit_support import live_a_case


def audit_many_cases(database: Database, cases: int, key: Ed25519PrivateKey) -> AuditedOrganisation:
    """`cases` cases of one organisation in the audit log (all alike but for their ids),
    every entry covered by checkpoints signed with `key`."""
    past = live_a_case(database, audit=False)
    return audit_clones(database, past.organisation_id, past.case_id, cases, key)
