"""The event store: eventsourcing's application on casebook's PostgreSQL recorder,
configured only from casebook's settings, sealing personal fields (`privacy`)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import IntegrityError, JSONTranscoder, Mapper
from eventsourcing.utils import Environment

from casebook.database import Database
from casebook.settings import Settings
from casebook.store import eventsourcing_env
from domain.transcodings import register_domain_transcodings
from privacy.keyring import Keyring
from privacy.master_key import load_master_key
from privacy.sealing import SealedAsDict, SealingMapper


class EventStore(Application[UUID]):
    """eventsourcing's application, configured only from casebook's settings; with a
    master key, personal fields are sealed under data keys (`privacy`)."""

    name = "Casebook"  # tables: casebook_events

    def __init__(
        self, env: Any = None, *, master_key: bytes | None = None, key_cache_seconds: float = 2.0
    ) -> None:
        super().__init__(env=env)
        self.mapper: SealingMapper
        if master_key is not None:
            connection = self.recorder.datastore.get_connection  # type: ignore[attr-defined]
            self.mapper.keyring = Keyring(connection, master_key, cache_seconds=key_cache_seconds)

    @classmethod
    def open(
        cls, database: Database, settings: Settings, *, create_tables: bool = True
    ) -> EventStore:
        """The store on `database`, sealing with the settings' master key."""
        master_key = load_master_key(
            settings.privacy_master_key_file,
            embedded_data_dir=settings.data_dir if settings.uses_embedded_database else None,
        )
        try:
            env = eventsourcing_env(database, settings, create_tables=create_tables)
            return cls(
                env, master_key=master_key, key_cache_seconds=settings.privacy_key_cache_seconds
            )
        except IntegrityError:
            # Another process created the tables at the same moment (PostgreSQL's CREATE
            # ... IF NOT EXISTS races on its catalog): they exist now, open without.
            env = eventsourcing_env(database, settings, create_tables=False)
            return cls(
                env, master_key=master_key, key_cache_seconds=settings.privacy_key_cache_seconds
            )

    def construct_env(self, name: str, env: Any = None) -> Environment:
        return Environment(name, dict(env or {}))

    def construct_mapper(self) -> Mapper[UUID]:
        return SealingMapper(self.construct_transcoder())

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        register_domain_transcodings(transcoder)
        transcoder.register(SealedAsDict())
