"""Evidence routes (role `auditor` only): bundles of audit entries with their proofs."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import GuardedRoute

router = APIRouter(prefix="/audit", tags=["audit"], route_class=GuardedRoute)
