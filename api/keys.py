"""API keys: bearer tokens `cbk_<key id>_<secret>`; only a hash of the secret is stored.

The key id in the token finds the row; the secret's hash proves the caller holds the key.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import psycopg
import structlog

from casebook.database import Database
from domain.values import Actor, Channel, Role

log = structlog.get_logger(__name__)

TOKEN_PREFIX = "cbk"
_MAX_CACHED_KEYS = 10_000  # a flood of valid keys only empties the cache, never grows it
_HASH_SCHEME = "sha256"

ConnectionFactory = Callable[[], AbstractContextManager[psycopg.Connection[Any]]]


class KeyRole(StrEnum):
    """Roles an API key can carry (customer admins act through the portal's key)."""

    AGENT = "agent"
    SUPERVISOR = "supervisor"
    AUDITOR = "auditor"
    ANALYST = "analyst"
    ADMIN = "admin"
    PORTAL = "portal"  # the customer portal, acting for one customer admin per request


@dataclass(frozen=True)
class Principal:
    """Who an authenticated request acts as: the key's principal, or for the portal's
    key the customer admin its request names (`on_behalf_of`)."""

    principal_id: str
    role: Role
    key_id: str
    on_behalf_of: str | None = None

    def actor(self, channel: Channel) -> Actor:
        """Who the request's commands record as acting: the portal's customer acts online."""
        if self.on_behalf_of is not None:
            return Actor(self.on_behalf_of, Role.CUSTOMER_ADMIN, Channel.ONLINE)
        return Actor(self.principal_id, self.role, channel)


@dataclass(frozen=True)
class CreatedKey:
    """A new key; `token` is shown once and never stored."""

    key_id: str
    principal_id: str
    role: KeyRole
    token: str = field(repr=False)


@dataclass(frozen=True)
class KeyInfo:
    """A stored key, without anything secret."""

    key_id: str
    label: str
    role: KeyRole
    principal_id: str
    created_at: datetime
    revoked_at: datetime | None


class KeyStore:
    """Create, check, list and revoke API keys in `casebook_api_keys`; safe across threads.

    `connection` is called once per operation: pass `pool.connection` of a psycopg_pool
    ConnectionPool for the API, or use `KeyStore.for_database` for one-off commands.
    """

    def __init__(self, connection: ConnectionFactory, *, cache_seconds: float = 0) -> None:
        self._connection = connection
        # The API checks a key on every request: remembering a key that checked out for
        # a few seconds saves a database round trip per request. The price is that a
        # revoked key keeps working for at most `cache_seconds`.
        self._cache_seconds = cache_seconds
        self._verified: dict[str, tuple[Principal, float]] = {}
        self._cache_lock = threading.Lock()

    @classmethod
    def for_database(cls, db: Database) -> KeyStore:
        """A store opening a fresh connection per call (commands, tests)."""
        return cls(lambda: psycopg.connect(db.url))

    def create(
        self, role: KeyRole | str, label: str = "", principal_id: str | None = None
    ) -> CreatedKey:
        """Create a key for `role`; the principal defaults to `<role>-<first 8 of key id>`."""
        role = KeyRole(role)
        key_id = uuid.uuid4().hex
        secret = secrets.token_urlsafe(32)
        principal_id = principal_id or f"{role.value}-{key_id[:8]}"
        with self._connection() as conn:
            conn.execute(
                "INSERT INTO casebook_api_keys"
                " (key_id, label, role, principal_id, secret_hash, created_at)"
                " VALUES (%s, %s, %s, %s, %s, now())",
                (key_id, label, role.value, principal_id, _hash(key_id, secret)),
            )
        log.info("api_key.created", key_id=key_id, role=role.value, principal_id=principal_id)
        token = f"{TOKEN_PREFIX}_{key_id}_{secret}"
        return CreatedKey(key_id=key_id, principal_id=principal_id, role=role, token=token)

    def recently_verified(self, token: str) -> Principal | None:
        """The principal of a key verified within `cache_seconds`; never touches the database."""
        if self._cache_seconds <= 0:
            return None
        with self._cache_lock:
            cached = self._verified.get(_fingerprint(token))
        return cached[0] if cached is not None and cached[1] > time.monotonic() else None

    def remembered(self, token: str, within_s: float) -> Principal | None:
        """The principal of a key this process verified within the last `within_s`.

        Only for routes that must answer while the database is down (the pipeline's
        status): nobody can revoke a key in a database that cannot be reached.
        """
        with self._cache_lock:
            cached = self._verified.get(_fingerprint(token))
        if cached is None:
            return None
        principal, expires = cached
        verified_at = expires - self._cache_seconds
        return principal if time.monotonic() - verified_at <= within_s else None

    def authenticate(self, token: str) -> Principal | None:
        """The principal a token stands for, or None for a malformed, unknown or revoked key."""
        parsed = _parse(token)
        if parsed is None:
            return None
        if self._cache_seconds <= 0:
            return self._check(*parsed)
        cached = self.recently_verified(token)
        if cached is not None:
            return cached
        fingerprint = _fingerprint(token)
        now = time.monotonic()
        principal = self._check(*parsed)
        with self._cache_lock:
            if len(self._verified) >= _MAX_CACHED_KEYS:
                self._verified.clear()
            if principal is None:
                self._verified.pop(fingerprint, None)
            else:
                self._verified[fingerprint] = (principal, now + self._cache_seconds)
        return principal

    def _check(self, key_id: str, secret: str) -> Principal | None:
        with self._connection() as conn:
            row = conn.execute(
                "SELECT role, principal_id, secret_hash FROM casebook_api_keys"
                " WHERE key_id = %s AND revoked_at IS NULL",
                (key_id,),
            ).fetchone()
        # Key ids are not secret (they appear in listings), so an early return for an
        # unknown id leaks nothing; the secret itself is compared in constant time.
        if row is None or not hmac.compare_digest(row[2], _hash(key_id, secret)):
            return None
        return Principal(principal_id=row[1], role=Role(row[0]), key_id=key_id)

    def revoke(self, key_id: str) -> bool:
        """Revoke a key; False when no such active key exists."""
        try:
            key_uuid = uuid.UUID(key_id)
        except ValueError:
            return False
        with self._connection() as conn:
            cursor = conn.execute(
                "UPDATE casebook_api_keys SET revoked_at = now()"
                " WHERE key_id = %s AND revoked_at IS NULL",
                (key_uuid,),
            )
            revoked = cursor.rowcount == 1
        if revoked:
            log.info("api_key.revoked", key_id=key_uuid.hex)
            with self._cache_lock:
                self._verified.clear()  # this process forgets it at once
        return revoked

    def list(self) -> list[KeyInfo]:
        """Every key, oldest first, revoked ones included."""
        with self._connection() as conn:
            rows = conn.execute(
                "SELECT key_id, label, role, principal_id, created_at, revoked_at"
                " FROM casebook_api_keys ORDER BY created_at, key_id"
            ).fetchall()
        return [
            KeyInfo(
                key_id=row[0].hex,
                label=row[1],
                role=KeyRole(row[2]),
                principal_id=row[3],
                created_at=row[4],
                revoked_at=row[5],
            )
            for row in rows
        ]


def _fingerprint(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _parse(token: str) -> tuple[str, str] | None:
    """Split `cbk_<32 hex>_<secret>`; None when it is not shaped like one of our tokens."""
    prefix, _, rest = token.strip().partition("_")
    key_id, _, secret = rest.partition("_")  # the secret may itself contain "_"
    if prefix != TOKEN_PREFIX or not secret or len(key_id) != 32:
        return None
    try:
        return uuid.UUID(hex=key_id).hex, secret
    except ValueError:
        return None


def _hash(key_id: str, secret: str) -> str:
    # The secret is 256 random bits, so brute force is hopeless even against a fast hash;
    # a slow KDF (scrypt, bcrypt) protects guessable passwords and would only add latency
    # to every request. The key id salts the hash, binding it to its row.
    digest = hashlib.sha256(f"{key_id}:{secret}".encode()).hexdigest()
    return f"{_HASH_SCHEME}:{digest}"
