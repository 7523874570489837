"""The CRM's tables: contacts, internal lists and memberships, every earlier address of a
contact (keyed hashes), suppressions, the audit trail and installation values."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql.functions import FunctionElement

from syncd.schema.base import Base, UtcDateTime


class ChangeMark(FunctionElement[int]):
    """The change mark a write gives a contact now: the one expression of it (why it
    commits in order with the sync's cursor: syncd.store.candidates)."""

    type = BigInteger()
    inherit_cache = True


@compiles(ChangeMark, "postgresql")
def _mark_postgresql(*_: object, **__: object) -> str:
    return "pg_current_xact_id()::text::bigint"  # this transaction's id (xid8: no wrap)


@compiles(ChangeMark)
def _mark_serialised(*_: object, **__: object) -> str:
    # SQLite: one writer at a time, so the newest mark plus one (from the index's end).
    return "(coalesce((SELECT max(change_mark) FROM contacts), 0) + 1)"


class Contact(Base):
    __tablename__ = "contacts"
    # The sync's incremental read walks (id, revision) from the index alone.
    # import_hash: a re-import finds a line's contact by the line's hash alone.
    # change_mark: the sync finds what changed since its cursor (syncd.store.candidates).
    __table_args__ = (Index("ix_contacts_id_revision", "id", "revision"),
                      Index("ix_contacts_import_hash", "import_hash"),
                      Index("ix_contacts_change_mark", "change_mark"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Identity: trimmed, lower-cased. Mailchimp's subscriber hash is MD5 of the same.
    email_key: Mapped[str] = mapped_column(String(320), unique=True)
    email_display: Mapped[str] = mapped_column(String(320))
    first_name: Mapped[str | None] = mapped_column(String(200))
    last_name: Mapped[str | None] = mapped_column(String(200))
    crm_id: Mapped[str | None] = mapped_column(String(200), unique=True)
    attributes: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    # An existing customer: soft opt-in for similar products, never newsletter consent.
    is_customer: Mapped[bool] = mapped_column(Boolean, default=False)
    # Set by a hard bounce (`cleaned`); cleared when the address changes.
    undeliverable_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # Bumped on every change that could change what is pushed: the sync reads only
    # contacts whose revision is newer than the one last confirmed by the ESP.
    revision: Mapped[int] = mapped_column(BigInteger, default=1)
    # The import line last applied and the revision it left (syncd.store.import_marks).
    import_hash: Mapped[str | None] = mapped_column(String(64))
    import_revision: Mapped[int | None] = mapped_column(BigInteger)
    # Set with every write that can make the contact a sync candidate (a revision bump,
    # a creation, a lowered settled revision); an INSERT without it gets one by default.
    change_mark: Mapped[int] = mapped_column(BigInteger, default=ChangeMark())


class InternalList(Base):
    __tablename__ = "internal_lists"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    purpose: Mapped[str] = mapped_column(String(64))
    marketing: Mapped[bool] = mapped_column(Boolean, default=True)


class ListMembership(Base):
    __tablename__ = "list_memberships"

    contact_id: Mapped[int] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True
    )
    list_id: Mapped[int] = mapped_column(
        ForeignKey("internal_lists.id", ondelete="CASCADE"), primary_key=True
    )
    added_at: Mapped[datetime] = mapped_column(UtcDateTime)
    source: Mapped[str] = mapped_column(String(64))


class Suppression(Base):
    """Keyed HMAC of the normalised address: survives erasure (rule 8, I10).
    A keyed hash is still personal data (Dutch AP): kept only for this purpose."""

    __tablename__ = "suppressions"
    __table_args__ = (UniqueConstraint("address_hmac", "purpose"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    address_hmac: Mapped[str] = mapped_column(String(64))
    # A purpose, or "*" for every marketing purpose (abuse complaint, erasure).
    purpose: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class AuditEntry(Base):
    """Every change to consent, lists and suppression. No addresses: contact id only."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    contact_id: Mapped[int | None] = mapped_column(Integer, index=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class AddressHistory(Base):
    """Every address a contact had before its current one, as keyed hashes: a stale
    export of an old address is the same person, blocked by the same suppression (I12)."""

    __tablename__ = "address_history"
    __table_args__ = (UniqueConstraint("contact_id", "address_hmac"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"),
                                            index=True)
    address_hmac: Mapped[str] = mapped_column(String(64), index=True)
    replaced_at: Mapped[datetime] = mapped_column(UtcDateTime)


class InstallationValue(Base):
    """Values generated once per installation (e.g. the pseudonym key if none is set)."""

    __tablename__ = "installation"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(String(500))
