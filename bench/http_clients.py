"""(c) of bench/write.py: `casebook serve` in a subprocess, concurrent HTTP clients."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from api.keys import KeyRole, KeyStore
from bench.stats import percentile
from casebook.database import Database
from casebook.settings import Settings


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# The bench measures throughput, not the rate limits: its few keys send thousands of
# commands a minute, which the API's defaults (set for people) would answer with 429.
UNLIMITED = {
    f"CASEBOOK_API_RATE_LIMIT_{kind}": "1000000/minute"
    for kind in ("WRITES", "READS", "PER_ADDRESS", "AUTH_FAILURES", "VERIFICATIONS")
}


def start_server(
    database: Database, settings: Settings, port: int, workers: int = 1
) -> subprocess.Popen[bytes]:
    executable = Path(sys.executable).parent / "casebook"
    env = {
        **os.environ,
        "CASEBOOK_DATABASE_URL": database.url,
        "CASEBOOK_LOG_LEVEL": "warning",
        "CASEBOOK_DB_POOL_SIZE": str(settings.db_pool_size),
        **UNLIMITED,
    }
    command = [str(executable), "serve", "--host", "127.0.0.1", "--port", str(port)]
    server = subprocess.Popen(
        [*command, "--workers", str(workers)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.1)
    server.kill()
    raise RuntimeError("casebook serve did not become healthy within 30 s")


def note_request(case_id: uuid.UUID, token: str, idempotency_key: str, i: int) -> bytes:
    """One `POST /cases/{id}/notes` request, as bytes on the wire."""
    body = json.dumps({"text": f"note {i}", "visibility": "internal"}).encode()
    head = (
        f"POST /cases/{case_id}/notes HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
        f"Idempotency-Key: {idempotency_key}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def read_response(responses: Any) -> int:
    """Read one response (headers, then a Content-Length body); return its status."""
    status = int(responses.readline().split()[1])
    length = 0
    while (line := responses.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    responses.read(length)
    return status


def warm_up(port: int, token: str, cases: list[uuid.UUID]) -> None:
    """One untimed note per case: the server is a new process whose writer has yet to load
    the cases, which (a) and (b) hold in their aggregate caches already."""
    with socket.create_connection(("127.0.0.1", port)) as connection:
        responses = connection.makefile("rb")
        run = uuid.uuid4().hex[:6]
        for i, case_id in enumerate(cases):
            connection.sendall(note_request(case_id, token, f"warm-{run}-{i}", i))
            if (status := read_response(responses)) >= 300:
                raise RuntimeError(f"warm-up note refused with HTTP {status}")


class HttpBench:
    """`casebook serve` in a subprocess, warmed up; `round` posts notes from 16 clients.

    Rounds on one server, so that the bench can alternate them with rounds of (a) and
    a noisy neighbour hits both sides alike.
    """

    def __init__(
        self,
        database: Database,
        settings: Settings,
        cases: list[uuid.UUID],
        clients: int = 16,
        workers: int = 1,
    ) -> None:
        self.cases = cases
        self.clients = clients
        self.workers = workers
        self.token = KeyStore.for_database(database).create(KeyRole.AGENT, label="bench").token
        self.port = free_port()
        self.server = start_server(database, settings, self.port, workers)
        self.latencies: list[float] = []
        self.errors = 0
        self._rounds = 0
        try:
            warm_up(self.port, self.token, cases)
        except BaseException:
            self.close()
            raise

    def round(self, commands: int) -> float:
        """Post `commands` notes from the clients at once; events/s of this round."""
        latencies: list[float] = []
        errors: list[int] = []
        lock = threading.Lock()
        per_client = commands // self.clients
        self._rounds += 1
        run = f"{uuid.uuid4().hex[:6]}-{self._rounds}"

        def client(index: int) -> None:
            # A minimal keep-alive HTTP/1.1 client: the clients share the machine with
            # the server and PostgreSQL, and their CPU must not be what is measured
            # (http.client parses each response's headers with the email package).
            connection = socket.create_connection(("127.0.0.1", self.port))
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            responses = connection.makefile("rb")
            mine: list[float] = []
            failed = 0
            for i in range(per_client):
                # Client i's n-th note goes to case n*clients+i: concurrent notes land on
                # different cases, as 16 agents working 200 cases would mostly do.
                case_id = self.cases[(i * self.clients + index) % len(self.cases)]
                began = time.perf_counter()
                key = f"http-{run}-{index}-{i}"
                connection.sendall(note_request(case_id, self.token, key, i))
                status = read_response(responses)
                mine.append(time.perf_counter() - began)
                failed += status >= 300
            connection.close()
            with lock:
                latencies.extend(mine)
                errors.append(failed)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(self.clients)]
        began = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - began
        self.latencies.extend(latencies)
        self.errors += sum(errors)
        return len(latencies) / elapsed

    def percentile_ms(self, share: float) -> float:
        """A percentile of every round's request latencies, in ms."""
        return percentile(self.latencies, share) * 1000

    def close(self) -> None:
        self.server.send_signal(signal.SIGINT)
        try:
            self.server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.server.kill()

    def __enter__(self) -> HttpBench:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
