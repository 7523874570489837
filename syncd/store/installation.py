"""Installation values: random values generated once per installation and kept in the
database (the pseudonym key when none is configured)."""

from __future__ import annotations

import secrets
from typing import cast

from sqlalchemy import Select, Table, select
from sqlalchemy.orm import Session, sessionmaker

from syncd.db import transaction
from syncd.schema import InstallationValue
from syncd.store.dialect import insert_ignoring_duplicates

_TABLE = cast(Table, InstallationValue.__table__)


def _query(name: str) -> Select[str]:
    return select(InstallationValue.value).where(InstallationValue.name == name)


def installation_value(factory: sessionmaker[Session], name: str) -> str:
    """The value called `name`, generated on first use. Three short transactions: when
    another process creates it first, the insert is skipped and theirs is read."""
    with transaction(factory) as session:
        found = session.scalar(_query(name))
        if found is not None:
            return found
    with transaction(factory) as session:
        insert_ignoring_duplicates(session, _TABLE, [
            {"name": name, "value": secrets.token_hex(32)}])
    with transaction(factory) as session:
        return session.execute(_query(name)).scalar_one()
