"""GDPR marketing permissions switched off at Mailchimp: the member's withdrawal of the
purpose each maps to (docs/consent-rules.md rules 4-5; docs/mailchimp.md section 6).

Webhooks carry no permissions, so a switch on Mailchimp's profile page is seen only when
the audience pull or the reconciliation reads the member. push_state.esp_permissions
holds what Mailchimp last had (as syncd pushed it, or as first read); only a permission
that was ON there and is read OFF now is a withdrawal. One never on is not (I13), one
mapped to no purpose is ignored, and a member who left (unsubscribed, cleaned) is the
unsubscribe's business. The withdrawal is the webhooks' own (syncd.webhooks.purge:
ledger, lists, suppression, audit) through channel `esp_permission`; a repeat read finds
the permission off already and records nothing (I5)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import cast

from syncd.clock import as_utc, utcnow
from syncd.consent.ledger import ConsentRecord
from syncd.consent.policy import Action
from syncd.context import AppContext
from syncd.crm import address_history
from syncd.db import transaction
from syncd.errors import ConfigError
from syncd.esp import target_fields
from syncd.esp.protocol import FieldsReader, RemoteMember
from syncd.logs import get_logger
from syncd.schema import LedgerChannel
from syncd.sync.plan_member import decode_permissions as decode
from syncd.webhooks import purge
from syncd.webhooks.job import ACTOR, SAME_WITHDRAWAL_WINDOW

log = get_logger("syncd.permissions")
GONE = frozenset({"unsubscribed", "cleaned", "archived"})
REASON = "marketing permission switched off at Mailchimp"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def encode(permissions: Mapping[str, bool]) -> str | None:
    """push_state.esp_permissions: compact, sorted JSON; None for no permissions."""
    if not permissions:
        return None
    return json.dumps(dict(sorted(permissions.items())), separators=(",", ":"))


def mapped(ctx: AppContext, audience_id: str, esp: object) -> Mapping[str, str]:
    """Permission id -> purpose of the audience's target; empty when it maps none or the
    reader cannot read them. A configuration error (a text the audience lacks) is the
    sync's to report loudly: here it only leaves permissions unread."""
    target = ctx.settings.target_of_audience(audience_id)
    if target is None or not target.marketing_permissions or not hasattr(
            esp, "read_audience_fields"):
        return {}
    try:
        return target_fields.read(cast(FieldsReader, esp), target).permissions
    except ConfigError as exc:
        log.warning("permissions_not_read", target=target.name, error=str(exc))
        return {}


def turned_off(known: str | None, member: RemoteMember,
               permissions: Mapping[str, str]) -> set[str]:
    """The purposes whose mapped permission moved from on (as known) to off (as read)."""
    if member.status in GONE or not member.marketing_permissions:
        return set()
    was = decode(known)
    return {purpose for pid, purpose in permissions.items()
            if was.get(pid) is True and member.marketing_permissions.get(pid) is False}


def _withdrawn(recent: Iterable[tuple[str, str, datetime]], purpose: str,
               moment: datetime) -> bool:
    """The purpose's latest withdrawal or confirmation up to `moment` is a withdrawal."""
    latest = max(((at, action) for p, action, at in recent
                  if p == purpose and at <= moment
                  and action in (Action.WITHDRAWN, Action.CONFIRMED)), default=None)
    return latest is not None and latest[1] == Action.WITHDRAWN


def withdraw(ctx: AppContext, email_key: str, member: RemoteMember,
             purposes: set[str]) -> bool:
    """Record the withdrawal of these purposes for the contact with this address, dated
    when Mailchimp last changed the member. True if anything changed."""
    moment: datetime = min(as_utc(member.last_changed), utcnow())
    changed = False
    with transaction(ctx.sessions) as session:
        # The whole history (this path is rare): a purpose already withdrawn at that moment
        # is off at Mailchimp by syncd's own write (one racing the read), not the person's.
        known = purge.find(session, email_key, _EPOCH)
        if known is None:
            return False
        hmacs = sorted({ctx.keyring.address_hmac(known.email_key),
                        *address_history.hmacs_of(session, known.id)})
        for purpose in sorted(p for p in purposes if not _withdrawn(known.recent, p, moment)):
            record = ConsentRecord(purpose=purpose, action=Action.WITHDRAWN,
                                   occurred_at=moment, source=LedgerChannel.ESP_PERMISSION,
                                   reason=REASON)
            one, added = purge.withdraw(session, known, hmacs, purge.Withdrawal(
                purpose=purpose, moment=moment, record=record,
                dedupe_salt=f"permission:{purpose}", why=REASON, abuse=False,
                deleted=False, channel=LedgerChannel.ESP_PERMISSION, actor=ACTOR,
                suppression_scope=purpose, suppression_reason="permission_off",
                window=SAME_WITHDRAWAL_WINDOW))
            changed = changed or one or added
    if changed:
        log.info("permission_withdrawn", contact_id=known.id, purposes=sorted(purposes))
    return changed
