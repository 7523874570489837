"""Contacts (table contacts): create or update many by address in a few statements, bump
revisions (the sync looks again at a contact whose revision moved), and read them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Integer, String, Table, bindparam, func, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from syncd.addresses import Address
from syncd.clock import utcnow
from syncd.schema import ChangeMark, Contact, InternalList, ListMembership, UtcDateTime
from syncd.store import audit, dialect

_TABLE = cast(Table, Contact.__table__)
# Bound parameters per IN list (SQLite's historic limit is 999).
IN_CHUNK = 900
_FIELDS = ("email_display", "first_name", "last_name", "crm_id", "is_customer", "attributes")
_UPDATE_FIELDS = (update(_TABLE).where(_TABLE.c.id == bindparam("b_id"))
                  .values({name: bindparam(f"b_{name}") for name in _FIELDS}))
_INSERT = _TABLE.insert().returning(_TABLE.c.id, _TABLE.c.email_key)
_KEY = ("id", "email_key")
_BUMP = (update(_TABLE).where(_TABLE.c.id == bindparam("b_id"))
         .values(revision=_TABLE.c.revision + bindparam("b_bumps"),
                 updated_at=bindparam("b_now"), change_mark=ChangeMark()))
# PostgreSQL: every bump of a batch in one statement, the ids and bumps as two arrays
# (an executemany is one UPDATE per contact on the server).
_PG_BUMPS = select(func.unnest(bindparam("ids", type_=ARRAY(Integer))).label("id"),
                   func.unnest(bindparam("bumps", type_=ARRAY(Integer))).label("bumps")
                   ).subquery("b")
_PG_BUMP = (update(_TABLE).where(_TABLE.c.id == _PG_BUMPS.c.id)
            .values(revision=_TABLE.c.revision + _PG_BUMPS.c.bumps, change_mark=ChangeMark(),
                    updated_at=bindparam("now", type_=UtcDateTime())))


@dataclass(frozen=True)
class ContactData:
    """What to write for an address: only the fields given (not None) change."""

    address: Address
    first_name: str | None = None
    last_name: str | None = None
    crm_id: str | None = None
    attributes: Mapping[str, str] | None = None
    is_customer: bool | None = None
    # A contact this creates: its later writes' bumps, counted into its first revision.
    bumps_to_come: int = 0
    import_hash: str | None = None


@dataclass(slots=True)
class ContactRef:
    """A contact as the set-based writes hand it back (no ORM object: loading, tracking
    and flushing ORM objects cost more than the SQL). `bumps` counts the changes not yet
    added to the stored revision (`apply_revision_bumps`; minus `bumps_to_come` at its
    creation). `marked`: created with its import mark, valid while `bumps` is 0."""

    id: int
    email_key: str
    bumps: int = 0
    marked: bool = False


def _changes(current: dict[str, Any], data: ContactData) -> dict[str, object]:
    """Only given fields that differ; attributes are merged into the stored ones."""
    changes: dict[str, object] = {
        name: value
        for name, value in (("first_name", data.first_name), ("last_name", data.last_name),
                            ("crm_id", data.crm_id), ("is_customer", data.is_customer),
                            ("email_display", data.address.display))
        if value is not None and current[name] != value
    }
    if data.attributes is not None:
        merged = {**current["attributes"], **data.attributes}
        if merged != current["attributes"]:
            changes["attributes"] = merged
    return changes


def _current(session: Session, keys: list[str]
             ) -> tuple[dict[str, dict[str, Any]], dict[str, ContactRef]]:
    current: dict[str, dict[str, Any]] = {}
    refs: dict[str, ContactRef] = {}
    for part in dialect.pieces(session, keys, IN_CHUNK):
        query = select(_TABLE.c.id, _TABLE.c.email_key, *(_TABLE.c[name] for name in _FIELDS)
                       ).where(dialect.any_of(session, _TABLE.c.email_key, part, String))
        for row in session.connection().execute(query).mappings():
            current[row["email_key"]] = {name: row[name] for name in _FIELDS}
            current[row["email_key"]]["attributes"] = dict(row["attributes"] or {})
            refs[row["email_key"]] = ContactRef(row["id"], row["email_key"])
    return current, refs


def upsert(session: Session, batch: Sequence[ContactData], *,
           actor: str) -> list[tuple[ContactRef, bool, bool]]:
    """Create or update by address, in order: one indexed query (unique email_key) finds
    the existing contacts, one multi-row INSERT returns the new ids, one executemany
    UPDATE writes the changed fields, one INSERT the audit entries. The revision bumps of
    changed contacts are left in `ContactRef.bumps` (see `apply_revision_bumps`); a new
    contact's go into its INSERT, with its `bumps_to_come` and import mark.
    Returns (contact, created, changed) per item; a repeated address shares one ref."""
    current, refs = _current(session, list({data.address.key for data in batch}))
    now = utcnow()
    new: dict[str, dict[str, Any]] = {}
    dirty: set[str] = set()
    updated_fields: list[tuple[str, list[str]]] = []
    out: list[tuple[str, bool, bool]] = []
    born: dict[str, list[Any]] = {}  # revision; import mark, bumps to come (last item's)
    for data in batch:
        key = data.address.key
        state = current.get(key)
        if state is None:
            state = current[key] = {
                "email_display": data.address.display, "first_name": data.first_name,
                "last_name": data.last_name, "crm_id": data.crm_id,
                "is_customer": bool(data.is_customer),
                "attributes": dict(data.attributes or {})}
            new[key] = state
            born[key] = [1, data.import_hash, data.bumps_to_come]
            out.append((key, True, True))
            continue
        changes = _changes(state, data)
        state.update(changes)
        if key in born:  # the last item's mark; a change's bump goes into the INSERT
            born[key][:] = born[key][0] + bool(changes), data.import_hash, data.bumps_to_come
        elif changes:
            dirty.add(key)
        if changes:
            updated_fields.append((key, sorted(changes)))
        out.append((key, False, bool(changes)))
    conn = session.connection()
    if new:
        rows = [{"email_key": key, **state, "created_at": now, "updated_at": now,
                 "revision": rev + to_come, "import_hash": mark,
                 "import_revision": rev + to_come if mark else None}
                for key, state in new.items() for rev, mark, to_come in (born[key],)]
        for key, cid in create(session, rows).items():
            refs[key] = ContactRef(cid, key, -born[key][2], born[key][1] is not None)
    if dirty:
        conn.execute(_UPDATE_FIELDS, [
            {"b_id": refs[key].id, **{f"b_{name}": current[key][name] for name in _FIELDS}}
            for key in dirty])
    none: dict[str, Any] = {}  # one details object for all: serialised once
    audit_rows = [audit.AuditRow(actor, "contact_created", refs[k].id, none, now) for k in new]
    for key, fields in updated_fields:
        if key not in born:
            refs[key].bumps += 1  # one bump per changing item
        audit_rows.append(audit.AuditRow(actor, "contact_updated", refs[key].id,
                                         {"fields": fields}, now))
    audit.append(session, audit_rows)
    return [(refs[key], created, changed) for key, created, changed in out]


def create(session: Session, rows: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Create contacts from rows of column values (each with its email_key, timestamps and
    revision; the same keys in every row): one INSERT over arrays on PostgreSQL; on SQLite
    one plain executemany, the new ids read back by address (RETURNING had SQLAlchemy
    render 1,000 rows' VALUES per statement, each parsed anew, processing every value).
    Returns the new ids by address; an address stored already raises IntegrityError."""
    conn, names = session.connection(), tuple(rows[0])
    if len(rows) > 1 and conn.dialect.name == "postgresql":
        return {k: i for i, k in dialect.insert_arrays(session, _TABLE, rows, _KEY)}
    if len(rows) == 1:
        return {key: contact_id for contact_id, key in conn.execute(_INSERT, list(rows))}
    dialect.insert_rows(session, _TABLE, names, ([row[n] for n in names] for row in rows))
    return {k: i for i, k in conn.execute(select(_TABLE.c.id, _TABLE.c.email_key).where(
        dialect.among(conn.dialect.name, _TABLE.c.email_key, [r["email_key"] for r in rows])))}


def apply_revision_bumps(session: Session, contacts: Iterable[ContactRef]) -> None:
    """Add each contact's pending bumps to its revision (one executemany UPDATE; one
    UPDATE over two arrays on PostgreSQL), so the next sync looks at every contact that
    changed."""
    now = utcnow()
    unique = list({id(ref): ref for ref in contacts}.values())
    bumped: dict[int, int] = {}
    for ref in unique:  # two refs of one contact: one row, both bumps
        if ref.bumps:
            bumped[ref.id] = bumped.get(ref.id, 0) + ref.bumps
    conn = session.connection()
    if len(bumped) > 1 and conn.dialect.name == "postgresql":
        conn.execute(_PG_BUMP, {"ids": list(bumped), "bumps": list(bumped.values()), "now": now})
    elif bumped:
        conn.execute(_BUMP, [{"b_id": cid, "b_bumps": bumps, "b_now": now}
                             for cid, bumps in bumped.items()])
    for ref in unique:
        ref.bumps = 0


def bump_revision(session: Session, contact_id: int, bumps: int, now: datetime) -> None:
    """The contact changed in a way the sync must look at (`bumps` changes at once)."""
    session.connection().execute(_BUMP, {"b_id": contact_id, "b_bumps": bumps, "b_now": now})


def bump_revisions(session: Session, contact_ids: Iterable[int]) -> None:
    """Mark contacts changed (one bump each): the next sync looks at them again."""
    apply_revision_bumps(session, [ContactRef(cid, "", 1) for cid in contact_ids])


@dataclass(frozen=True)
class ContactRow:
    """A contact as read: what the CRM holds on the person."""

    id: int
    email_key: str
    email_display: str
    first_name: str | None
    last_name: str | None
    crm_id: str | None
    is_customer: bool
    undeliverable_at: datetime | None
    revision: int
    created_at: datetime


_ROW = (_TABLE.c.id, _TABLE.c.email_key, _TABLE.c.email_display, _TABLE.c.first_name,
        _TABLE.c.last_name, _TABLE.c.crm_id, _TABLE.c.is_customer,
        _TABLE.c.undeliverable_at, _TABLE.c.revision, _TABLE.c.created_at)


def _rows(result: Iterable[Any]) -> list[ContactRow]:
    return [ContactRow(row[0], row[1], row[2], row[3], row[4], row[5], bool(row[6]),
                       row[7], row[8], row[9]) for row in result]


def by_key(session: Session, email_key: str) -> ContactRow | None:
    """The contact of a normalised address, if any."""
    found = _rows(session.connection().execute(select(*_ROW).where(
        _TABLE.c.email_key == email_key)))
    return found[0] if found else None


def by_keys(session: Session, email_keys: Iterable[str]) -> dict[str, ContactRow]:
    """The contacts of these normalised addresses, by address."""
    keys = sorted(set(email_keys))
    found: dict[str, ContactRow] = {}
    for start in range(0, len(keys), IN_CHUNK):
        for row in _rows(session.connection().execute(select(*_ROW).where(
                _TABLE.c.email_key.in_(keys[start : start + IN_CHUNK])))):
            found[row.email_key] = row
    return found


def page(session: Session, *, after: int, limit: int,
         on_list: str | None = None) -> list[ContactRow]:
    """Contacts with ids above `after`, in id order, at most `limit` (optionally only
    the members of the list named `on_list`)."""
    query = select(*_ROW).where(_TABLE.c.id > after).order_by(_TABLE.c.id).limit(limit)
    if on_list is not None:
        query = query.where(_TABLE.c.id.in_(
            select(ListMembership.contact_id)
            .join(InternalList, InternalList.id == ListMembership.list_id)
            .where(InternalList.name == on_list)))
    return _rows(session.connection().execute(query))


def email_keys(session: Session, contact_ids: Iterable[int]) -> dict[int, str]:
    """The normalised address of each of these contacts (absent: no such contact)."""
    ids = sorted(set(contact_ids))
    found: dict[int, str] = {}
    for start in range(0, len(ids), IN_CHUNK):
        found.update(session.connection().execute(select(_TABLE.c.id, _TABLE.c.email_key).where(
            _TABLE.c.id.in_(ids[start : start + IN_CHUNK]))).all())
    return found


def by_id(session: Session, contact_id: int) -> Contact | None:
    """The contact as an ORM object of `session` (the one it holds already, if loaded),
    for callers that read or change it through the ORM; None once erased."""
    return session.get(Contact, contact_id)


def entity(session: Session, contact_id: int) -> Contact:
    """The contact as an ORM object of `session`, read again from the database (an
    object the session already holds is refreshed)."""
    found = session.get(Contact, contact_id, populate_existing=True)
    assert found is not None, "the contact was written in this transaction"
    return found


def find_entity(session: Session, email_key: str) -> Contact | None:
    """The contact as an ORM object of `session`, for the callers that change a contact
    through it (sign-up, webhook apply)."""
    return session.scalar(select(Contact).where(Contact.email_key == email_key))


def crm_id_holders(session: Session, crm_ids: Iterable[str]) -> dict[str, str]:
    """The address of the contact holding each of these crm ids."""
    wanted = sorted(set(crm_ids))
    holders: dict[str, str] = {}
    for part in dialect.pieces(session, wanted, IN_CHUNK):
        query = (select(_TABLE.c.crm_id, _TABLE.c.email_key)
                 .where(dialect.any_of(session, _TABLE.c.crm_id, part, String)))
        holders.update((str(cid), key) for cid, key in session.connection().execute(query))
    return holders
