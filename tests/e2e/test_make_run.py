"""`casebook run` (what `make run` calls) as a newcomer uses it: start, work, stop, restart."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from entrypoints.broker import free_port
from entrypoints.demo import DEMO_CASE
from tests.e2e.run_support import STARTUP_SECONDS, wait_until_healthy

pytestmark = pytest.mark.integration


@contextmanager
def casebook_run(data_dir: Path, port: int) -> Iterator[tuple[str, dict[str, str]]]:
    """Run `casebook run` on an embedded database in `data_dir`; yield its URL and keys."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASEBOOK_")}
    env |= {"CASEBOOK_DATA_DIR": str(data_dir), "CASEBOOK_API_PORT": str(port)}
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "casebook"), "run"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        keys = read_banner(process)
        base = f"http://127.0.0.1:{port}"
        wait_until_healthy(base)
        yield base, keys
    finally:
        process.send_signal(signal.SIGINT)
        try:
            code = process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
        assert code == 0, "casebook run did not stop cleanly on Ctrl-C"


def read_banner(process: subprocess.Popen[str]) -> dict[str, str]:
    assert process.stdout is not None
    keys: dict[str, str] = {}
    deadline = time.monotonic() + STARTUP_SECONDS
    for line in process.stdout:
        found = re.match(r"^\s+(agent|supervisor|auditor|analyst|admin)\s+(cbk_\S+)$", line)
        if found:
            keys[found.group(1)] = found.group(2)
        if "Ctrl-C stops" in line or time.monotonic() > deadline:
            break
    assert set(keys) == {"agent", "supervisor", "auditor", "analyst", "admin"}, keys
    return keys


def wait_for_queue(base: str, headers: dict[str, str], ready: Any) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 30
    items: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        response = httpx.get(f"{base}/queue", headers=headers)
        assert response.status_code == 200, response.text
        items = response.json()["items"]
        if ready(items):
            break
        time.sleep(0.2)
    return items


def wait_for_part(base: str, headers: dict[str, str], name: str) -> dict[str, Any]:
    """The part `name` as GET /status shows it, once it is listed (or fail)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        response = httpx.get(f"{base}/status", headers=headers)
        assert response.status_code == 200, response.text
        found = [p for p in response.json()["parts"] if p["part"] == name]
        if found:
            return found[0]
        time.sleep(0.2)
    raise AssertionError(f"{name} never listed on /status")


def test_run_serves_the_demo_and_keeps_its_data_across_restarts(data_home: Path) -> None:
    port = free_port()
    with casebook_run(data_home / "var", port) as (base, keys):
        agent = {"Authorization": f"Bearer {keys['agent']}"}
        case = httpx.get(f"{base}/cases/{DEMO_CASE}", headers=agent)
        assert case.status_code == 200
        assert case.json()["status"] == "awaiting_assessment"
        noted = httpx.post(
            f"{base}/cases/{DEMO_CASE}/notes",
            json={"text": "Called the customer back", "visibility": "internal"},
            headers=agent | {"If-Match": case.headers["ETag"]},
        )
        assert noted.status_code == 200, noted.text
        analyst = {"Authorization": f"Bearer {keys['analyst']}"}
        assert httpx.get(f"{base}/cases/{DEMO_CASE}", headers=analyst).status_code == 403
        assessed = httpx.post(
            f"{base}/cases/{DEMO_CASE}/severity", json={"severity": "C"}, headers=agent
        )
        assert assessed.status_code == 200, assessed.text
        # The SLA tracker (relay -> local broker -> consumer) puts it in the agent queue.
        queue = wait_for_queue(base, agent, lambda items: items and items[0]["clock"])
        assert queue[0]["case_id"] == str(DEMO_CASE)
        assert queue[0]["clock"]["state"] == "running"
        # The notifier part (survey invitations) runs beside the others.
        admin = {"Authorization": f"Bearer {keys['admin']}"}
        assert wait_for_part(base, admin, "notifier")["state"] == "running"

    with casebook_run(data_home / "var", port) as (base, keys):
        agent = {"Authorization": f"Bearer {keys['agent']}"}
        case = httpx.get(f"{base}/cases/{DEMO_CASE}", headers=agent)
        assert case.status_code == 200
        assert case.headers["ETag"] == assessed.headers["ETag"]
        # The projection kept its clocks; a fresh local broker is filled again by the relay.
        queue = wait_for_queue(base, agent, lambda items: items and items[0]["clock"])
        assert queue[0]["case_id"] == str(DEMO_CASE)
