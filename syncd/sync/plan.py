"""The planner: pure. One contact (its ledger facts, suppressions, lists, inbox state) and
what the ESP last confirmed for it -> the one member change to make, and why.

Rules it enforces (docs/consent-rules.md):
- I1: only an eligible Decision (confirmed consent newer than any withdrawal or
  suppression) is ever added; unconfirmed only as `pending`, and only when
  `sync_push_unconfirmed_as_pending` is set (rule 3).
- I2: `status` is sent on an existing member only for `unsubscribed` (a withdrawal) and
  `pending` (a re-consent, once: never again while the ESP state is pending); data
  updates never carry a status. A member the ESP has as unsubscribed/cleaned is never
  subscribed again by syncd; an unsubscribed one still gets the GDPR permissions of its
  withdrawn purposes switched off (the permission alone, once).
- A contact with an unapplied unsubscribe/cleaned webhook in the inbox is not pushed:
  the person may have just left (the webhook engineer relies on this).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from syncd.config import Settings
from syncd.config.targets import TargetSettings
from syncd.consent.policy import Action as Consent
from syncd.consent.policy import ConsentFact, Decision, PurchaseFact, Standing, SuppressionFact
from syncd.esp.protocol import LIVE_STATUSES, MemberData
from syncd.frozen import quick_init

# ESP_CHANNELS: ledger channels of withdrawals that Mailchimp itself reported
# (syncd.webhooks.apply): the member is already unsubscribed there, so no call is needed
# and none counts against the safety limit. Except ESP_PERMISSION: a GDPR permission the
# member switched off, still subscribed (syncd.sync.permission_moves).
from syncd.schema import ESP_CHANNELS, LedgerChannel
from syncd.sync.plan_member import (
    decide_contact,
    fingerprint,
    member_data,
    permissions_of,
    permissions_still_on,
)
from syncd.sync.plan_member import stamp as _stamp

LIVE = LIVE_STATUSES


class Action(StrEnum):
    ADD = "add"  # batch add, update_existing false: existing members are never touched
    UPDATE = "update"  # data and/or tags, never a status
    RECONSENT = "reconsent"  # status pending: Mailchimp mails its own confirmation
    UNSUBSCRIBE = "unsubscribe"  # the one status change an update may carry
    SETTLE = "settle"  # nothing to send; this revision's outcome is known
    HOLD = "hold"  # nothing to send now; look again next run


# Enum members read once (an `Enum.MEMBER` costs about a tenth of a microsecond on
# Python 3.11; these are read for every contact planned).
_ADD = Action.ADD
_UNCONFIRMED, _ADMITTED_AS_SUBSCRIBED = Standing.UNCONFIRMED, (Standing.CONFIRMED,
                                                               Standing.CUSTOMER)


@dataclass(frozen=True)
class PlanConfig:
    purpose: str
    merge_fields: Mapping[str, str]
    sync_tags: bool
    tag_lists: tuple[str, ...]  # the internal lists of the purpose, mirrored as tags
    unconfirmed_as_pending: bool
    # The legal basis (docs/consent-rules.md rules 7, 11): "soft_opt_in" admits paying
    # customers (decide_soft_opt_in) and tags them with the categories they bought.
    basis: str = "consent"
    soft_opt_in_months: int = 24
    category_tags: bool = True
    # Resolved at the start of a run (syncd.esp.target_fields): internal list -> interest
    # id; GDPR permission id -> purpose. Empty: nothing of either is sent.
    interests: Mapping[str, str] = field(default_factory=dict)
    permissions: Mapping[str, str] = field(default_factory=dict)
    # Every purpose whose confirmed consent admits (empty: `purpose` alone).
    purposes: tuple[str, ...] = ()

    @property
    def admitting(self) -> tuple[str, ...]:
        return self.purposes or (self.purpose,)

    @classmethod
    def for_target(cls, target: TargetSettings, settings: Settings) -> PlanConfig:
        """The plan of one sync target (a confirmed consent for any purpose admits)."""
        several = tuple(target.purposes) if len(target.purposes) > 1 else ()
        return cls(purpose=target.purposes[0], purposes=several,
                   merge_fields=dict(target.merge_fields), sync_tags=target.sync_tags,
                   tag_lists=tuple(sorted({name for p in target.purposes
                                           for name in settings.lists_of_purpose(p)})),
                   unconfirmed_as_pending=settings.sync_push_unconfirmed_as_pending,
                   basis=target.basis, soft_opt_in_months=target.soft_opt_in_months,
                   category_tags=target.category_tags)


@quick_init
@dataclass(frozen=True)
class ContactFacts:
    contact_id: int
    revision: int
    email: str  # the normalised address (email_key): the member key at the ESP
    first_name: str | None = None
    last_name: str | None = None
    attributes: Mapping[str, str] = field(default_factory=dict)
    is_customer: bool = False
    undeliverable_at: datetime | None = None
    lists: tuple[str, ...] = ()
    events: tuple[ConsentFact, ...] = ()
    suppressions: tuple[SuppressionFact, ...] = ()
    purchases: tuple[PurchaseFact, ...] = ()  # the soft opt-in basis only
    # An unsubscribe/cleaned webhook for this address is stored but not applied yet.
    inbox_block: bool = False
    # Created after the last audience pull: Mailchimp may have had the address all along
    # (a member from before syncd), which syncd cannot know without asking.
    unknown_to_pull: bool = False


@quick_init
@dataclass(frozen=True)
class KnownState:
    """push_state: what the ESP last confirmed for this contact."""

    settled_revision: int
    fingerprint: str | None = None
    esp_status: str | None = None
    esp_email: str | None = None
    parked_reason: str | None = None
    attempt_fingerprint: str | None = None
    retry_after: datetime | None = None
    # Mailchimp's last_changed as last read or reported (pull, reconciliation, webhook).
    esp_last_changed: datetime | None = None
    # The GDPR permissions Mailchimp has (JSON, id -> enabled; as syncd last sent or read).
    esp_permissions: str | None = None


@quick_init
@dataclass(frozen=True)
class Change:
    contact_id: int
    revision: int
    action: Action
    reason: str  # in words, for the operator (may name dates, never the address)
    category: str  # bounded label for counts and metrics
    data: MemberData | None = None
    status: str | None = None  # ADD: the new member's status; RECONSENT: pending
    fingerprint: str | None = None  # of `data` (data half + tags half)
    write_data: bool = False
    write_tags: bool = False
    inactive_tags: tuple[str, ...] = ()
    known: KnownState | None = None
    # SETTLE only: the ESP status learnt without a call (an unsubscribe Mailchimp reported).
    esp_status_after: str | None = None
    # UNSUBSCRIBE only: when the CRM's withdrawal or suppression was (a latency metric).
    withdrawn_at: datetime | None = None

    @property
    def writes(self) -> bool:
        return self.action in (Action.ADD, Action.UPDATE, Action.RECONSENT,
                               Action.UNSUBSCRIBE)


def plan_contact(  # noqa: PLR0911, PLR0912 - one flat decision table, read top to bottom
        facts: ContactFacts, known: KnownState | None, cfg: PlanConfig, now: datetime
) -> Change:
    """The change for one contact. Pure: no I/O, `now` given."""
    def change(**fields: Any) -> Change:
        return Change(contact_id=facts.contact_id, revision=facts.revision, known=known,
                      **fields)

    if facts.inbox_block:
        return change(action=Action.HOLD, category="webhook_pending",
                      reason="an unsubscribe or cleaned webhook for this address is not "
                             "applied yet; not pushed until it is")
    if known is not None and known.retry_after is not None and known.retry_after > now:
        return change(action=Action.HOLD, category="retry_later",
                      reason="Mailchimp refused the address for now (too many recent "
                             f"sign-ups); retried after {_stamp(known.retry_after)}")
    decision = decide_contact(facts, cfg, now)
    status = known.esp_status if known is not None else None
    pending_unconfirmed = decision.standing is _UNCONFIRMED and cfg.unconfirmed_as_pending

    # An add that was sent but never confirmed (timeout, crash) may have landed: the
    # member can be live at the ESP although syncd has no status for it. So can a
    # re-consent's `pending` sent to a member syncd still knows as unsubscribed: a later
    # withdrawal must unsubscribe it, or a click in Mailchimp's confirmation mail would
    # subscribe a person who withdrew (found by the proof model).
    attempted = known is not None and known.attempt_fingerprint is not None
    maybe_live = (status is None and (attempted or facts.unknown_to_pull)) or (
        status == "unsubscribed" and attempted)
    if not decision.eligible and not pending_unconfirmed:
        # A lapsed soft opt-in (rule 11: the period is over) ends like a withdrawal.
        if (status in LIVE or maybe_live) and decision.standing in (
                Standing.WITHDRAWN, Standing.SUPPRESSED, Standing.LAPSED):
            if _withdrawn_at_esp(facts, cfg.admitting):
                # Only for a member syncd knows is there (not one that may be).
                if status in LIVE and (off := permissions_still_on(facts, cfg, now, known)):
                    return _switch_off(change, facts, known, off, decision.reason)
                return change(action=Action.SETTLE, category="unsubscribed_at_esp",
                              reason=f"{decision.reason}; already unsubscribed at Mailchimp",
                              esp_status_after="unsubscribed")
            # The member key at the ESP is the address syncd pushed.
            at_esp = MemberData(email=(known.esp_email if known and known.esp_email
                                       else facts.email),
                                marketing_permissions={
                                    p: on for p, on in permissions_of(facts, cfg, now).items()
                                    if not on})
            return change(action=Action.UNSUBSCRIBE, category="unsubscribe",
                          reason=decision.reason, status="unsubscribed", data=at_esp,
                          withdrawn_at=_blocked_since(facts, cfg.admitting))
        if status == "unsubscribed" and (off := permissions_still_on(facts, cfg, now, known)):
            return _switch_off(change, facts, known, off, decision.reason)
        return change(action=Action.SETTLE, category=str(decision.standing),
                      reason=decision.reason)

    data = member_data(facts, decision, cfg, now)
    print_ = fingerprint(data)
    new_status = "subscribed" if decision.standing in _ADMITTED_AS_SUBSCRIBED else "pending"
    if status is None:
        # Every contact of a first push: built directly, not through `change`.
        return Change(facts.contact_id, facts.revision, _ADD, decision.reason, "add", data,
                      new_status, print_, True, bool(data.tags), known=known)
    old = (known.fingerprint if known is not None else None) or ""
    data_changed, tags_changed = old[:32] != print_[:32], old[32:] != print_[32:]
    # The address is part of the data fingerprint: a changed address is a data change,
    # pushed as a rename of the member syncd knows (known.esp_email).
    inactive = tuple(n for n in cfg.tag_lists if n not in data.tags) if cfg.sync_tags else ()
    if status == "unsubscribed" and _newer_than_esp_unsubscribe(decision, known):
        # The one way back after an unsubscribe (rule 6): `pending`, Mailchimp's own
        # confirmation mail. Sent once; while the ESP says pending it is not sent again.
        return change(action=Action.RECONSENT, category="reconsent",
                      reason=decision.reason, data=data, status="pending",
                      fingerprint=print_, write_data=True,
                      write_tags=tags_changed and cfg.sync_tags, inactive_tags=inactive)
    if status not in LIVE:
        # unsubscribed/cleaned/archived at the ESP: never subscribed again by syncd (I2).
        if status == "unsubscribed" and (off := permissions_still_on(facts, cfg, now, known)):
            return _switch_off(change, facts, known, off, decision.reason)
        return change(action=Action.SETTLE, category=f"esp_{status}",
                      reason=f"member is {status} at Mailchimp; syncd never subscribes it "
                             "again (only a new confirmed consent, sent as pending)")
    if pending_unconfirmed and status == "pending" and not (data_changed or tags_changed):
        return change(action=Action.SETTLE, category="unchanged",
                      reason=decision.reason, fingerprint=print_)
    if not (data_changed or tags_changed):
        return change(action=Action.SETTLE, category="unchanged",
                      reason=decision.reason, fingerprint=print_)
    return change(action=Action.UPDATE, category="update", reason=decision.reason,
                  data=data, status=new_status, fingerprint=print_, write_data=data_changed,
                  write_tags=tags_changed and cfg.sync_tags, inactive_tags=inactive)


def _switch_off(change: Callable[..., Change], facts: ContactFacts,
                known: KnownState | None, off: Mapping[str, bool], reason: str) -> Change:
    """The GDPR permissions of withdrawn purposes switched off on a member who is
    unsubscribed at Mailchimp already: a PATCH of the permissions alone, no status (I2).
    Status and permissions are separate fields there (docs/mailchimp.md section 6); left
    on, the permission would still say the person agrees. Sent once: the checkpoint
    records what was sent (push_state.esp_permissions)."""
    email = known.esp_email if known is not None and known.esp_email else facts.email
    return change(action=Action.UPDATE, category="permission_off",
                  reason=f"{reason}; its GDPR permission switched off at Mailchimp",
                  data=MemberData(email=email, marketing_permissions=dict(off)),
                  write_data=True)


def _newer_than_esp_unsubscribe(decision: Decision, known: KnownState | None) -> bool:
    """A re-consent, decided against what Mailchimp has: the ledger says so (a withdrawal
    followed by a newer confirmed consent), or the confirmation is newer than Mailchimp's
    last change of a member it has as unsubscribed (one who left before syncd knew them,
    whatever order syncd learnt the two in)."""
    if decision.standing is Standing.RE_CONSENT:
        return True
    proof = decision.proof
    since = known.esp_last_changed if known is not None else None
    return (decision.standing is Standing.CONFIRMED and proof is not None
            and since is not None and proof.confirmed_at > since)


def _blocked_since(facts: ContactFacts, purposes: tuple[str, ...]) -> datetime | None:
    moments = [e.occurred_at for e in facts.events
               if e.purpose in purposes and e.action is Consent.WITHDRAWN]
    moments += [s.created_at for s in facts.suppressions if s.purpose in (*purposes, "*")]
    return max(moments, default=None)


def _withdrawn_at_esp(facts: ContactFacts, purposes: tuple[str, ...]) -> bool:
    """The latest withdrawal of the target's purposes came from Mailchimp as an
    unsubscribe (webhook or pull): the member is unsubscribed there already. A GDPR
    permission switched off is no unsubscribe: the member is still subscribed, and
    syncd unsubscribes them (docs/mailchimp.md section 6)."""
    withdrawals = [e for e in facts.events
                   if e.purpose in purposes and e.action is Consent.WITHDRAWN]
    latest = max(withdrawals, key=lambda e: e.occurred_at, default=None)
    return (latest is not None and latest.source in ESP_CHANNELS
            and latest.source != LedgerChannel.ESP_PERMISSION)
