"""Kafka's jars, resolved once from tools/kafka/pom.xml with `mvn` into a cache, and `java`.

The jars come from the pom through `mvn dependency:copy-dependencies` into a cache
(./var/kafka/<version>/lib, or $CASEBOOK_KAFKA_CACHE/<version>/lib) once; every later start
reuses them.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import structlog

from entrypoints.apache_kafka.processes import tail_text
from entrypoints.broker import BrokerUnavailable

# One logger for the package: every kafka.apache.* event names the same logger.
log = structlog.get_logger(__package__)

KAFKA_VERSION = "4.1.1"
"""Passed to the pom as -Dkafka.version; the cache directory is named after it."""

RESOLVE_TIMEOUT_S = 900.0

_INSTALL_HINT = (
    "Apache Kafka needs Java 17+ and Maven: apt-get install openjdk-17-jre-headless maven"
)
# This file is entrypoints/apache_kafka/install.py: the repository is two directories up.
_REPO_ROOT = Path(__file__).resolve().parents[2]
POM = _REPO_ROOT / "tools" / "kafka" / "pom.xml"


def default_cache_dir() -> Path:
    """$CASEBOOK_KAFKA_CACHE, else ./var/kafka of the repository (git-ignored)."""
    configured = os.environ.get("CASEBOOK_KAFKA_CACHE")
    return Path(configured) if configured else _REPO_ROOT / "var" / "kafka"


def java_executable() -> str:
    """The `java` on PATH; BrokerUnavailable with the install line when there is none."""
    java = shutil.which("java")
    if java is None:
        raise BrokerUnavailable(f"no `java` on PATH; {_INSTALL_HINT}")
    return java


def resolve_kafka(cache_dir: Path | None = None) -> Path:
    """The directory of Kafka's jars (`<cache>/<version>/lib`), running mvn the first time.

    The jars are copied into a scratch directory renamed into place only when mvn succeeded,
    so an existing lib directory is always complete; a file lock keeps parallel test workers
    from resolving twice.
    """
    java_executable()
    version_dir = (cache_dir if cache_dir is not None else default_cache_dir()) / KAFKA_VERSION
    lib = version_dir / "lib"
    if lib.is_dir():
        return lib
    mvn = shutil.which("mvn")
    if mvn is None:
        raise BrokerUnavailable(f"no `mvn` on PATH to fetch Kafka {KAFKA_VERSION}; {_INSTALL_HINT}")
    if not POM.is_file():
        raise BrokerUnavailable(f"{POM} is missing: resolve_kafka needs a source checkout")
    version_dir.mkdir(parents=True, exist_ok=True)
    with open(version_dir / ".resolve.lock", "wb") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if lib.is_dir():  # another process finished while we waited
            return lib
        started = time.perf_counter()
        scratch = Path(tempfile.mkdtemp(prefix="lib-", dir=version_dir))
        try:
            _run_mvn(mvn, scratch)
            if not (scratch / f"kafka_2.13-{KAFKA_VERSION}.jar").is_file():
                raise BrokerUnavailable(f"mvn succeeded but copied no kafka_2.13 jar to {scratch}")
            scratch.rename(lib)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    log.info(
        "kafka.apache.resolved",
        version=KAFKA_VERSION,
        lib=str(lib),
        jars=len(list(lib.glob("*.jar"))),
        elapsed_ms=round((time.perf_counter() - started) * 1000),
    )
    return lib


def _run_mvn(mvn: str, output_dir: Path) -> None:
    command = [
        mvn,
        "-B",
        "-q",
        "-f",
        str(POM),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={output_dir}",
        f"-Dkafka.version={KAFKA_VERSION}",
    ]
    with tempfile.TemporaryFile() as output:
        try:
            result = subprocess.run(
                command,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                timeout=RESOLVE_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise BrokerUnavailable(
                f"mvn did not resolve Kafka {KAFKA_VERSION} in {RESOLVE_TIMEOUT_S:.0f} s"
            ) from None
        if result.returncode != 0:
            output.seek(0)
            tail = tail_text(output.read())
            raise BrokerUnavailable(
                f"mvn could not resolve Kafka {KAFKA_VERSION} (exit {result.returncode}); "
                f"its output:\n{tail}"
            )
