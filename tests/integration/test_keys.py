"""API keys: bearer tokens whose secrets are stored only as hashes."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from api.keys import KeyRole, KeyStore, Principal
from casebook.database import Database
from domain.values import Role
from tests.integration.conftest import ON_BOTH_SERVERS, CliRunner

pytestmark = [pytest.mark.integration, ON_BOTH_SERVERS]


@pytest.fixture
def keys(clean_database: Database) -> KeyStore:
    return KeyStore.for_database(clean_database)


def test_a_new_key_authenticates_as_its_principal(keys: KeyStore) -> None:
    created = keys.create(KeyRole.SUPERVISOR, label="night shift", principal_id="sue")
    assert created.token.startswith(f"cbk_{created.key_id}_")
    assert keys.authenticate(created.token) == Principal("sue", Role.SUPERVISOR, created.key_id)


def test_principal_defaults_to_role_and_key_id(keys: KeyStore) -> None:
    created = keys.create("agent")
    assert created.principal_id == f"agent-{created.key_id[:8]}"
    assert created.role is KeyRole.AGENT


def test_only_a_hash_of_the_secret_is_stored(keys: KeyStore, clean_database: Database) -> None:
    created = keys.create(KeyRole.AUDITOR)
    secret = created.token.rsplit("_", 1)[-1]
    with psycopg.connect(clean_database.url) as conn:
        row = conn.execute("SELECT k::text FROM casebook_api_keys AS k").fetchone()
    assert row is not None
    stored = row[0]  # the whole row, every column as text
    assert created.token not in stored and secret not in stored
    assert "sha256:" in stored


@pytest.mark.parametrize(
    "wrong",
    [
        "",
        "cbk_",
        "Bearer something",
        "cbk_not-a-key-id_secret",
        "cbk_00000000000000000000000000000000_secret",  # unknown key id
    ],
)
def test_malformed_or_unknown_tokens_authenticate_nobody(keys: KeyStore, wrong: str) -> None:
    keys.create(KeyRole.AGENT)
    assert keys.authenticate(wrong) is None


def test_a_wrong_secret_for_a_real_key_authenticates_nobody(keys: KeyStore) -> None:
    created = keys.create(KeyRole.ADMIN)
    assert (
        keys.authenticate(created.token[:-1] + ("A" if created.token[-1] != "A" else "B")) is None
    )
    other = keys.create(KeyRole.ADMIN)
    secret_of_other = other.token.rsplit("_", 1)[-1]
    assert keys.authenticate(f"cbk_{created.key_id}_{secret_of_other}") is None


def test_a_revoked_key_authenticates_nobody(keys: KeyStore) -> None:
    created = keys.create(KeyRole.ANALYST)
    assert keys.revoke(created.key_id) is True
    assert keys.authenticate(created.token) is None
    assert keys.revoke(created.key_id) is False, "revoking twice reports nothing revoked"
    assert keys.revoke("not-a-key-id") is False


def test_listing_shows_every_key_without_secrets(keys: KeyStore) -> None:
    first = keys.create(KeyRole.AGENT, label="bob's laptop")
    second = keys.create(KeyRole.AUDITOR)
    keys.revoke(first.key_id)
    listed = {key.key_id: key for key in keys.list()}
    assert listed.keys() == {first.key_id, second.key_id}
    assert listed[first.key_id].label == "bob's laptop"
    assert listed[first.key_id].revoked_at is not None
    assert listed[second.key_id].revoked_at is None


def test_keys_authenticate_from_many_threads_over_a_pool(clean_database: Database) -> None:
    pool: ConnectionPool[Any] = ConnectionPool(clean_database.url, max_size=4, open=True)
    try:
        keys = KeyStore(pool.connection)
        tokens = [keys.create(role).token for role in KeyRole]
        with ThreadPoolExecutor(max_workers=8) as workers:
            principals = list(workers.map(keys.authenticate, tokens * 10))
    finally:
        pool.close()
    assert all(principal is not None for principal in principals)
    assert {p.role.value for p in principals if p} == {role.value for role in KeyRole}


def test_keys_create_prints_only_the_token_on_stdout(
    cli: CliRunner, clean_database: Database
) -> None:
    result = cli("keys", "create", "--role", "agent", "--label", "ci", db=clean_database)
    assert result.code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("cbk_")
    assert "store the token" in result.stderr
    principal = KeyStore.for_database(clean_database).authenticate(lines[0])
    assert principal is not None and principal.role is Role.AGENT


def test_keys_create_refuses_an_unknown_role_in_one_line(
    cli: CliRunner, clean_database: Database
) -> None:
    result = cli("keys", "create", "--role", "boss", db=clean_database)
    assert result.code == 2
    assert result.stdout == ""
    assert result.stderr.startswith("casebook: error: Invalid value for '--role'")
    assert result.stderr.count("\n") == 1


def test_keys_list_and_revoke_from_the_command_line(
    cli: CliRunner, clean_database: Database
) -> None:
    created = KeyStore.for_database(clean_database).create(KeyRole.ADMIN, principal_id="root")
    listed = cli("keys", "list", db=clean_database)
    assert listed.code == 0 and created.key_id in listed.stdout and "active" in listed.stdout
    revoked = cli("keys", "revoke", created.key_id, db=clean_database)
    assert (revoked.code, revoked.stdout) == (0, f"revoked {created.key_id}\n")
    again = cli("keys", "revoke", created.key_id, db=clean_database)
    assert again.code == 1
    assert again.stderr == f"casebook: error: no active key with id {created.key_id!r}\n"


def test_a_caching_store_remembers_a_verified_key_for_its_window(
    clean_database: Database,
) -> None:
    admin = KeyStore.for_database(clean_database)
    cached = KeyStore(lambda: psycopg.connect(clean_database.url), cache_seconds=60)
    created = admin.create(KeyRole.AGENT, principal_id="bob")

    assert cached.recently_verified(created.token) is None  # never checked yet
    assert cached.authenticate(created.token) == Principal("bob", Role.AGENT, created.key_id)
    admin.revoke(created.key_id)  # from another process: this one may not know yet
    assert cached.recently_verified(created.token) is not None
    assert cached.authenticate(created.token) is not None
    assert admin.authenticate(created.token) is None


def test_revoking_through_a_caching_store_takes_effect_at_once(clean_database: Database) -> None:
    cached = KeyStore(lambda: psycopg.connect(clean_database.url), cache_seconds=60)
    created = cached.create(KeyRole.AGENT)
    assert cached.authenticate(created.token) is not None
    cached.revoke(created.key_id)
    assert cached.authenticate(created.token) is None
