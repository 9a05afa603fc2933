"""Waiting for a started casebook to serve, as a newcomer's `make run` would."""

from __future__ import annotations

import time

import httpx
import pytest

STARTUP_SECONDS = 60


def wait_until_healthy(base: str) -> None:
    """Poll `base`/readyz until it answers 200; fail the test after STARTUP_SECONDS."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail("casebook run never became ready")
