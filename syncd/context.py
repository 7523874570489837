"""What every command needs, built once: settings, engine, sessions and the keyring."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from syncd.config import Settings
from syncd.db import make_engine, session_factory, transaction
from syncd.keys import Keyring
from syncd.store import lists
from syncd.store.installation import installation_value

PSEUDONYM_KEY_NAME = "pseudonym_key"


@dataclass
class AppContext:
    settings: Settings
    engine: Engine

    @classmethod
    def open(cls, settings: Settings) -> AppContext:
        return cls(settings=settings, engine=make_engine(settings.database_url))

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        return session_factory(self.engine)

    @cached_property
    def keyring(self) -> Keyring:
        configured = self.settings.pseudonym_key
        if configured is not None:
            return Keyring(configured.get_secret_value().encode("utf-8"))
        return Keyring(bytes.fromhex(installation_value(self.sessions, PSEUDONYM_KEY_NAME)))

    def sync_lists(self) -> None:
        """The internal lists table follows the configuration."""
        with transaction(self.sessions) as session:
            lists.ensure_lists(session, self.settings.lists)

    def close(self) -> None:
        self.engine.dispose()
