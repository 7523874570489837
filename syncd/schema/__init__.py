"""The database schema (SQLAlchemy 2.x), one module per group of tables, each with the
vocabularies (StrEnums) of its columns. Alembic migrations in syncd/migrations create it.

Every table keeps the least data that serves its purpose (Art. 5(1)(c) GDPR): addresses
live only in `contacts`; suppression and the inbox index carry keyed hashes."""

from syncd.schema.base import NAMING, Base, UtcDateTime
from syncd.schema.contacts import (
    AddressHistory,
    AuditEntry,
    ChangeMark,
    Contact,
    InstallationValue,
    InternalList,
    ListMembership,
    Suppression,
)
from syncd.schema.inbox import (
    BLOCKING_KINDS,
    SETTLED_STATUSES,
    UNAPPLIED_STATUSES,
    EventKind,
    InboxSource,
    InboxStatus,
    WebhookEvent,
)
from syncd.schema.ledger import (
    ESP_CHANNELS,
    ConsentAction,
    ConsentEvent,
    LedgerChainHead,
    LedgerChannel,
    LedgerTombstone,
)
from syncd.schema.purchases import Purchase
from syncd.schema.signup import LinkState, MailKind, MailStatus, OutboxMail, SignupToken
from syncd.schema.sync import (
    Cursor,
    MemberOrigin,
    PushOutcome,
    PushState,
    RunKind,
    RunOutcome,
    SyncRun,
)

__all__ = [
    'BLOCKING_KINDS', 'ESP_CHANNELS', 'NAMING', 'SETTLED_STATUSES', 'UNAPPLIED_STATUSES',
    'AddressHistory', 'AuditEntry', 'Base', 'ChangeMark', 'ConsentAction', 'ConsentEvent',
    'Contact', 'Cursor', 'EventKind', 'InboxSource', 'InboxStatus', 'InstallationValue',
    'InternalList', 'LedgerChainHead', 'LedgerChannel', 'LedgerTombstone', 'LinkState',
    'ListMembership', 'MailKind', 'MailStatus', 'MemberOrigin', 'OutboxMail', 'Purchase',
    'PushOutcome',
    'PushState', 'RunKind', 'RunOutcome', 'SignupToken', 'Suppression', 'SyncRun',
    'UtcDateTime', 'WebhookEvent',
]
