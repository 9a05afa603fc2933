"""Helpers for the HTTP API tests: the real app on a real database, keys, a server.

Plain functions and context managers (no fixtures), so each test module states its
own fixtures and their scope.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from psycopg_pool import ConnectionPool

from api.app import create_app
from api.keys import KeyStore
from api.read_models import ReadModels
from casebook.application import Casebook
from casebook.database import Database
from casebook.settings import Settings
from domain.values import Role
from entrypoints.broker import free_port
from projections.sla.policies import target_book
from tests.generous_limits import GENEROUS_LIMITS
from tests.master_key import MASTER_KEY_VARIABLE

REGISTERED_PHONE = "+48 22 123 45 67"
REGISTERED_EMAIL = "it@acme.example"
ACME: dict[str, Any] = {
    "name": "Acme",
    "country": "PL",
    "timezone": "Europe/Warsaw",
    "agreement": "advanced",
    "admins": ["ada"],
    "phones": [REGISTERED_PHONE],
    "emails": [REGISTERED_EMAIL],
}
# An agent opening a request while the customer's admin is on the phone.
PHONE_REQUEST: dict[str, Any] = {
    "requester_id": "ada",
    "channel": "phone",
    "caller_phone": REGISTERED_PHONE,
    "category": "technical",
    "title": "Mail is not delivered",
    "description": "Since 08:00 no mail reaches our users.",
    "contact_phone": REGISTERED_PHONE,
    "contact_email": REGISTERED_EMAIL,
}
API_ROLES = (Role.AGENT, Role.SUPERVISOR, Role.AUDITOR, Role.ANALYST, Role.ADMIN, Role.PORTAL)
# The customer portal's requests act for Acme's admin unless a test says otherwise.
PORTAL_ACTS_FOR = {"Casebook-On-Behalf-Of": "ada"}


@dataclass
class Api:
    """The app under test, its write side, and one bearer header per role."""

    app: FastAPI
    casebook: Casebook
    keys: KeyStore
    headers: dict[Role, dict[str, str]]
    principals: dict[Role, str]

    def as_(self, role: Role, **extra: str) -> dict[str, str]:
        """The headers of a request sent with `role`'s key, plus `extra` headers."""
        return self.headers[role] | extra


@contextmanager
def running_api(
    database: Database,
    *,
    keys_in: Database | None = None,
    settings: Settings | None = None,
    clock: Callable[[], datetime] | None = None,
) -> Iterator[Api]:
    """`create_app` over a Casebook connected to `database`, with a key for every role.

    `keys_in` keeps the API keys in another database (to break one without the other);
    `clock`, when given, is the time of the write side and of the read models alike.
    """
    settings = settings or Settings(database_url=database.url)
    casebook = Casebook.connect(database, settings, clock=clock)
    pool = ConnectionPool((keys_in or database).url, min_size=1, max_size=8, open=True)
    keys = KeyStore(pool.connection)
    try:
        targets = target_book(settings)
        read_models = (
            ReadModels(database, targets, clock=clock) if clock else ReadModels(database, targets)
        )
        app = create_app(casebook, keys, database, settings, read_models)
        created = {role: keys.create(role.value) for role in API_ROLES}
        headers = {role: bearer(key.token) for role, key in created.items()}
        headers[Role.PORTAL] |= PORTAL_ACTS_FOR
        principals = {role: key.principal_id for role, key in created.items()}
        yield Api(app, casebook, keys, headers, principals)
    finally:
        pool.close()
        casebook.close()


def bearer(token: str) -> dict[str, str]:
    """An Authorization header for `token`."""
    return {"Authorization": f"Bearer {token}"}


def register_acme(client: TestClient | httpx.Client, api: Api, **overrides: Any) -> str:
    """Register Acme (admin ada, advanced agreement) as the platform admin; its id."""
    response = client.post("/organisations", json=ACME | overrides, headers=api.as_(Role.ADMIN))
    assert response.status_code == 201, response.text
    return str(response.json()["aggregate_id"])


def open_case(
    client: TestClient | httpx.Client, api: Api, organisation_id: str, **overrides: Any
) -> str:
    """Open a technical request for ada, by an agent on the phone; its id."""
    body = PHONE_REQUEST | {"organisation_id": organisation_id} | overrides
    response = client.post("/cases", json=body, headers=api.as_(Role.AGENT))
    assert response.status_code == 201, response.text
    return str(response.json()["aggregate_id"])


@contextmanager
def serving(app: FastAPI, **options: Any) -> Iterator[str]:
    """Run `app` under uvicorn in a thread on a free loopback port; yield its base URL.

    `options` go to `uvicorn.Config` (casebook serve's forwarded-header options, say)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", **options)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@contextmanager
def casebook_serve(
    database: Database, *, workers: int, env: dict[str, str] | None = None
) -> Iterator[str]:
    """`casebook serve --workers N` on `database` in a process of its own until the block
    ends (then Ctrl-C, and its exit awaited); yields its base URL once `/readyz` answers.

    Only `env`'s casebook and prometheus-client variables reach it, beside the database's.
    """
    port = free_port()
    inherited = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("CASEBOOK_") and name != "PROMETHEUS_MULTIPROC_DIR"
    }
    own = {
        "CASEBOOK_DATABASE_URL": database.url,
        "CASEBOOK_LOG_LEVEL": "warning",
        MASTER_KEY_VARIABLE: os.environ[MASTER_KEY_VARIABLE],
    }
    executable = str(Path(sys.executable).parent / "casebook")
    server = subprocess.Popen(
        [executable, "serve", "--port", str(port), "--workers", str(workers)],
        env=inherited | GENEROUS_LIMITS | own | (env or {}),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        yield base
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)
