"""The withdrawal's own statements (the webhook purge's hot path, syncd.webhooks.purge): one
read of everything a purge decides on, and on PostgreSQL one data-modifying statement for
everything it writes but the revision bump.

Round trips, not SQL, were the purge's cost on PostgreSQL (about 0.1 ms of CPU each in
syncd's process, and each one spent holding the chain head: docs/performance.md). So:

- `read`: the contact (locked first on PostgreSQL, as syncd.store.ledger orders its
  locks, unless `lock_addresses` locked it for the batch), its withdrawals and
  confirmations since a moment, its earlier addresses and its list memberships: one
  statement (SQLite), two (PostgreSQL: the lock, then the read, so what is read is what
  the lock protects, not a snapshot from before the wait).
- `write_postgres`: list removal, suppressions added or renewed, the consent event and the
  chain head's move, and every audit entry of the withdrawal, in ONE statement after the
  head's lock (syncd.store.ledger.lock_head): the head is held for this statement and
  the commit (the caller bumps the revision before the lock). Each piece is the same
  write as its own home's (lists.unlist, suppressions.add_or_renew, ledger.append,
  audit.append); SQLite, with no writes inside WITH and no round trips to save, uses
  those directly.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Integer, String, any_, bindparam, column, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from syncd.clock import as_utc
from syncd.schema import Contact, UtcDateTime
from syncd.store.ledger import HEAD_ID, Head, RecentConsent
from syncd.store.ledger_hash import HASHED_FIELDS
from syncd.store.lists import ListRow

_LOCK_BY_ADDRESS = (select(Contact.id).where(Contact.email_key == bindparam("email_key"))
                    .with_for_update())
# Built once, as _LOCK_BY_ADDRESS: building it per batch cost more CPU than sending it.
# dialect.among's PostgreSQL form for addresses (one bound array), with a named parameter
# so that the statement can be a constant (lock_addresses runs on PostgreSQL only).
_LOCK_ADDRESSES = (select(Contact.email_key)
                   .where(Contact.email_key == any_(bindparam("keys", type_=ARRAY(String))))
                   .order_by(Contact.id).with_for_update())
_READ = text("""
SELECT 'c' AS tag, c.id AS n, c.email_key AS s1, CAST(NULL AS VARCHAR) AS s2,
       CAST(NULL AS TIMESTAMP WITH TIME ZONE) AS at, CAST(NULL AS BOOLEAN) AS flag
  FROM contacts c WHERE c.email_key = :email_key
UNION ALL
SELECT 'e', NULL, e.purpose, e.action, e.occurred_at, NULL
  FROM consent_events e JOIN contacts c ON c.id = e.contact_id
 WHERE c.email_key = :email_key AND e.action IN ('withdrawn', 'confirmed')
   AND e.occurred_at >= :since
UNION ALL
SELECT 'h', NULL, h.address_hmac, NULL, NULL, NULL
  FROM address_history h JOIN contacts c ON c.id = h.contact_id
 WHERE c.email_key = :email_key
UNION ALL
SELECT 'l', l.id, l.name, l.purpose, NULL, l.marketing
  FROM list_memberships m JOIN internal_lists l ON l.id = m.list_id
  JOIN contacts c ON c.id = m.contact_id
 WHERE c.email_key = :email_key
""").bindparams(bindparam("since", type_=UtcDateTime())).columns(
    column("tag", String), column("n", Integer), column("s1", String),
    column("s2", String), column("at", UtcDateTime), column("flag", Boolean))


# session.info key: the addresses whose contacts this transaction locked (lock_addresses).
_LOCKED = "syncd_locked_addresses"


def lock_addresses(session: Session, email_keys: Sequence[str]) -> None:
    """PostgreSQL: lock the contacts with these addresses, in id order, for a batch of
    purges in one transaction (syncd.webhooks.group_commit), before any of them takes the
    chain head: the lock order of syncd.store.ledger for the whole batch, in one
    statement; `read` then skips its own lock for them. SQLite serialises writers."""
    conn = session.connection()
    if conn.dialect.name != "postgresql" or not email_keys:
        return
    found = conn.execute(_LOCK_ADDRESSES, {"keys": sorted(set(email_keys))})
    session.info[_LOCKED] = set(found.scalars())


@dataclass
class PurgeRead:
    """What a purge decides on; `memberships` shrinks as withdrawals take lists off."""

    contact: RecentConsent
    earlier_hmacs: list[str]
    memberships: list[ListRow] = field(default_factory=list)


def read(session: Session, email_key: str, since: datetime) -> PurgeRead | None:
    """The contact with this address (None: no such contact), locked on PostgreSQL, and
    what the purge reads of it (consent events since `since`, as recent_by_address)."""
    conn = session.connection()
    if (conn.dialect.name == "postgresql"
            and email_key not in session.info.get(_LOCKED, ())
            and conn.execute(_LOCK_BY_ADDRESS, {"email_key": email_key}).first() is None):
        return None
    contact: tuple[int, str] | None = None
    recent: list[tuple[str, str, datetime]] = []
    earlier: list[str] = []
    lists: list[ListRow] = []
    for tag, n, s1, s2, at, flag in conn.execute(_READ, {"email_key": email_key,
                                                         "since": since}):
        if tag == "c":
            contact = (int(n), str(s1))
        elif tag == "e":
            recent.append((str(s1), str(s2), as_utc(at)))
        elif tag == "h":
            earlier.append(str(s1))
        else:
            lists.append(ListRow(int(n), str(s1), str(s2), bool(flag)))
    if contact is None:
        return None
    return PurgeRead(RecentConsent(contact[0], contact[1], tuple(recent)), sorted(earlier),
                     lists)


_EVENT_COLUMNS = (*HASHED_FIELDS, "chain_seq", "chain_prev", "chain_hash")
# Every value is cast to its column's type: an untyped NULL in INSERT .. SELECT is text.
_WRITE = text("""
WITH gone AS (
  DELETE FROM list_memberships
   WHERE contact_id = :cid AND list_id = ANY(CAST(:list_ids AS integer[]))
  RETURNING list_id
), added AS (
  INSERT INTO suppressions (address_hmac, purpose, reason, created_at)
  SELECT h, :scope, :why, CAST(:moment AS timestamptz)
    FROM unnest(CAST(:hmacs AS text[])) AS h
  ON CONFLICT (address_hmac, purpose) DO NOTHING
  RETURNING address_hmac
), renewed AS (
  UPDATE suppressions SET created_at = CAST(:moment AS timestamptz), reason = :why
   WHERE CAST(:renew AS boolean) AND address_hmac = ANY(CAST(:hmacs AS text[]))
     AND purpose = :scope AND created_at < CAST(:moment AS timestamptz)
  RETURNING address_hmac
), event AS (
  INSERT INTO consent_events (contact_id, purpose, action, occurred_at, recorded_at,
    source, email_at_time, form_url, text_version, privacy_notice_version, ip,
    user_agent, confirmation_token_hash, reason, campaign_id, dedupe_key, chain_seq,
    chain_prev, chain_hash)
  SELECT CAST(:ev_contact_id AS integer), CAST(:ev_purpose AS text),
    CAST(:ev_action AS text), CAST(:ev_occurred_at AS timestamptz),
    CAST(:ev_recorded_at AS timestamptz), CAST(:ev_source AS text),
    CAST(:ev_email_at_time AS text), CAST(:ev_form_url AS text),
    CAST(:ev_text_version AS text), CAST(:ev_privacy_notice_version AS text),
    CAST(:ev_ip AS text), CAST(:ev_user_agent AS text),
    CAST(:ev_confirmation_token_hash AS text), CAST(:ev_reason AS text),
    CAST(:ev_campaign_id AS text), CAST(:ev_dedupe_key AS text),
    CAST(:ev_chain_seq AS bigint), CAST(:ev_chain_prev AS text), CAST(:ev_chain_hash AS text)
   WHERE CAST(:append AS boolean)
  ON CONFLICT (dedupe_key) DO NOTHING
  RETURNING chain_seq
), head AS (
  UPDATE ledger_chain_head SET seq = CAST(:head_seq AS bigint), hash = :head_hash,
         updated_at = CAST(:now AS timestamptz)
   WHERE id = CAST(:head_id AS integer) AND EXISTS (SELECT FROM event)
  RETURNING seq
), entries AS (
  SELECT 0 AS part, '' AS sort_key, :consent_action AS action,
         CAST(:consent_details AS json) AS details
    FROM event
  UNION ALL
  SELECT 1, lpad(CAST(o AS text), 6, '0'), a, d
    FROM unnest(CAST(:list_actions AS text[]), CAST(:list_details AS json[]))
         WITH ORDINALITY AS x(a, d, o)
  UNION ALL
  SELECT 2, h, 'suppressed', CAST(:sup_details AS json) FROM added AS a(h)
  UNION ALL
  SELECT 2, h, 'suppression_renewed', CAST(:sup_details AS json) FROM renewed AS r(h)
), audited AS (
  INSERT INTO audit_log (at, actor, action, contact_id, details)
  SELECT CAST(:now AS timestamptz), :actor, action, :cid, details FROM entries
   ORDER BY part, sort_key
  RETURNING id
)
SELECT (SELECT count(*) FROM added) + (SELECT count(*) FROM renewed),
       (SELECT count(*) FROM event), (SELECT count(*) FROM head),
       (SELECT count(*) FROM gone), (SELECT count(*) FROM audited)
""")
# The statement names every column the chain hashes (a column added there must be here).
assert all(f":ev_{name} " in _WRITE.text for name in _EVENT_COLUMNS)


@dataclass(frozen=True)
class Written:
    suppressions: int  # added or renewed
    appended: bool  # the consent event is in, the head moved


def write_postgres(session: Session, *, contact_id: int, list_ids: Sequence[int],
                   hmacs: Sequence[str], scope: str, reason: str, moment: datetime,
                   renew: bool, event: dict[str, Any] | None, head: Head,
                   actor: str, consent_action: str, consent_details: dict[str, Any],
                   list_audits: Sequence[tuple[str, dict[str, Any]]], now: datetime
                   ) -> Written:
    """PostgreSQL: the withdrawal's writes in one statement (see the module's text).
    `event`: the linked consent_events row (None: nothing to append); `head`: where the
    head moves when it is inserted; `list_audits`: (action, details) of each audit entry
    besides the suppressions' and the event's, in order."""
    values: dict[str, Any] = {f"ev_{name}": None for name in _EVENT_COLUMNS}
    if event is not None:
        values.update({f"ev_{name}": event.get(name) for name in _EVENT_COLUMNS})
    found = session.connection().execute(_WRITE, values | {
        "cid": contact_id, "list_ids": sorted(set(list_ids)), "hmacs": sorted(set(hmacs)),
        "scope": scope, "why": reason, "moment": moment, "renew": renew,
        "append": event is not None, "head_seq": head.seq, "head_hash": head.hash,
        "head_id": HEAD_ID, "now": now, "actor": actor,
        "sup_details": json.dumps({"purpose": scope, "reason": reason}),
        "consent_action": consent_action, "consent_details": json.dumps(consent_details),
        "list_actions": [action for action, _ in list_audits],
        "list_details": [json.dumps(details) for _, details in list_audits],
    }).one()
    return Written(int(found[0]), bool(found[1]))
