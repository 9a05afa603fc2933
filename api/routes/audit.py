"""Auditor routes (role `auditor` only): timelines, state as of any instant, verification."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import GuardedRoute

router = APIRouter(prefix="/audit", tags=["audit"], route_class=GuardedRoute)
