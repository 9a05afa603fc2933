"""Evidence bundles: the API worker's memory while it streams a large organisation's bundle.

One command, one fresh PostgreSQL database. One case is lived through the write side
(opened, assessed, escalated, noted, responded to, resolved) and the SLA tracker (its
clock events), then cloned under new ids into N cases (default 10,000) of the same
organisation and audited by the real `AuditProjection`, every entry covered by a signed
checkpoint. Then, each in a process of its own whose peak resident set size (RSS) is
sampled every 10 ms from the moment it is ready (imports done, connected):
(a) bundle: `casebook serve` (one worker) streaming
    `GET /audit/organisations/{id}/evidence` to a client that writes it to a file (after
    one small bundle, so every module an export uses is loaded and the pool connected);
(b) raw stream: a Python process reading the same entries with a psycopg server-side
    cursor and writing them as JSON lines into a deflated zip member: the floor any
    streaming export stands on;
(c) raw in memory: the same read with `fetchall()` before writing: what an export
    that holds its entries costs.
Reported as the peak RSS growth of each in MiB, a/b and a/c, and a's growth against the
limit the evidence export must hold (200 MB for 10,000 cases). Memory, unlike time, does
not depend on the machine's load, but the ratios are what compares across machines.

Run: python -m bench.bundle [--database-url URL] [--cases N] [--smoke]
(default: an embedded PostgreSQL in a temporary directory; --smoke: a few cases)
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psutil
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from api.keys import KeyRole, KeyStore
from bench.infra import (
    MASTER_KEY_VARIABLE,
    add_arguments,
    bench_database,
    describe_database,
    fresh_database,
    parse_args,
)
from bench.memory import MIB, PeakRss
from bench.organisation import AuditedOrganisation, audited_organisation
from casebook.database import Database
from casebook.settings import Settings
from entrypoints.broker import free_port
from entrypoints.logging import configure_logging

SMOKE = {"cases": 40}
LIMIT_MIB = 200 * 10**6 / MIB  # the export's limit, 200 MB, in MiB


def _environment(database: Database, key_file: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASEBOOK_")}
    env[MASTER_KEY_VARIABLE] = os.environ[MASTER_KEY_VARIABLE]  # set by bench_database
    return env | {
        "CASEBOOK_DATABASE_URL": database.url,
        "CASEBOOK_LOG_LEVEL": "warning",
        "CASEBOOK_AUDIT_SIGNING_KEY_FILE": str(key_file),
    }


@contextmanager
def api_worker(database: Database, key: Ed25519PrivateKey) -> Iterator[tuple[str, psutil.Process]]:
    """`casebook serve` with one worker on `database`, signing bundles with `key`: its
    base URL and its process."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="casebook-bench-key-") as keys:
        key_file = Path(keys) / "audit-key.pem"
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        with _serving(port, _environment(database, key_file)) as served:
            yield served


@contextmanager
def _serving(port: int, env: dict[str, str]) -> Iterator[tuple[str, psutil.Process]]:
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "casebook"), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"bench: casebook serve did not become ready ({server.poll()})")
            time.sleep(0.2)
        yield base, psutil.Process(server.pid)
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)


def measure_bundle(
    database: Database, organisation: AuditedOrganisation, out: Path, key: Ed25519PrivateKey
) -> tuple[float, int]:
    """(a): the API worker's peak RSS growth while it streams the bundle, and its size."""
    token = KeyStore.for_database(database).create(KeyRole.AUDITOR).token
    headers = {"Authorization": f"Bearer {token}"}
    with (
        api_worker(database, key) as (base, worker),
        httpx.Client(base_url=base, headers=headers, timeout=600) as http,
    ):
        warm = http.get(f"/audit/cases/{organisation.lived_case}/evidence")
        if warm.status_code != 200:
            raise SystemExit(f"bench: the warm-up bundle answered {warm.status_code}")
        path = f"/audit/organisations/{organisation.organisation_id}/evidence"
        with (
            PeakRss(worker.pid) as rss,
            http.stream("GET", path) as response,
            out.open("wb") as file,
        ):
            if response.status_code != 200:
                raise SystemExit(f"bench: the organisation bundle answered {response.status_code}")
            for chunk in response.iter_bytes():
                file.write(chunk)
    return rss.growth_mib, out.stat().st_size


def measure_raw(
    database: Database, organisation: AuditedOrganisation, mode: str, out: Path
) -> float:
    """(b) or (c): the peak RSS growth of `python -m bench.raw_export` in `mode`."""
    command = [
        sys.executable,
        "-m",
        "bench.raw_export",
        database.url,
        str(organisation.organisation_id),
        mode,
        str(out),
    ]
    process = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=Path.cwd()
    )
    assert process.stdin is not None and process.stdout is not None
    ready = process.stdout.readline().strip()
    if ready != "ready":
        process.kill()
        raise SystemExit(f"bench: raw export ({mode}) did not start: {ready!r}")
    with PeakRss(process.pid) as rss:
        process.stdin.write("go\n")
        process.stdin.flush()
        written = process.stdout.readline().strip()
    process.stdin.write("exit\n")  # it waits, so its peak is read before it exits
    process.stdin.close()
    process.wait(timeout=60)
    if process.returncode != 0 or not written.isdigit():
        raise SystemExit(f"bench: raw export ({mode}) failed: {written!r}")
    if int(written) != organisation.entries:
        raise SystemExit(
            f"bench: raw export ({mode}) wrote {written} entries of {organisation.entries}"
        )
    return rss.growth_mib


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    add_arguments(parser, kafka=False)
    parser.add_argument("--cases", type=int, default=10_000, help="cases of the organisation")
    args = parse_args(parser, SMOKE)
    configure_logging(Settings(log_level="warning"), stream="stderr")
    key = Ed25519PrivateKey.generate()
    with bench_database(args.database_url) as server, fresh_database(server) as database:
        print(f"bench.bundle on {describe_database(server)}: {args.cases} cases", flush=True)
        began = time.monotonic()
        organisation = audited_organisation(database, args.cases, key)
        print(
            f"  audited {organisation.entries} entries in {time.monotonic() - began:.0f} s",
            flush=True,
        )
        with tempfile.TemporaryDirectory(prefix="casebook-bench-bundle-") as tmp:
            bundle, size = measure_bundle(database, organisation, Path(tmp) / "bundle.zip", key)
            stream = measure_raw(database, organisation, "stream", Path(tmp) / "stream.zip")
            held = measure_raw(database, organisation, "all", Path(tmp) / "all.zip")
    print(f"  (a) bundle ({size / MIB:.0f} MiB zip): API worker RSS growth {bundle:.1f} MiB")
    print(f"  (b) raw stream (server-side cursor):   RSS growth {stream:.1f} MiB")
    print(f"  (c) raw in memory (fetchall):           RSS growth {held:.1f} MiB")
    print(f"  a/b = {bundle / max(stream, 0.1):.2f}   a/c = {bundle / max(held, 0.1):.2f}")
    verdict = "within" if bundle < LIMIT_MIB else "OVER"
    print(f"  (a) is {verdict} the export's limit of 200 MB ({LIMIT_MIB:.0f} MiB)")


if __name__ == "__main__":
    main()
