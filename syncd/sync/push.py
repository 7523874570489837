"""Executing planned changes against the ESP and turning each answer into the
checkpoint row for that contact. Runs in worker threads; touches no database.

Call counts: new members go in batch calls of up to 500 (tags folded into the batch
items), so a first push of N contacts costs ceil(N/500) write calls. Updates, re-consents
and unsubscribes are one call per member (plus one tag call when only tags changed)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from syncd.clock import parse_timestamp
from syncd.esp.errors import EspError, EspPermanentError, EspTransientError
from syncd.esp.mailchimp_responses import RecentSignupsError, scrub
from syncd.esp.protocol import EspWriter, MemberData, MemberResult, NewMember
from syncd.frozen import quick_init
from syncd.schema import MemberOrigin, PushOutcome
from syncd.store.push_checkpoint import Settlement
from syncd.sync.plan import LIVE, Action, Change

# Our clock against Mailchimp's when telling our own timed-out add from an older member.
OWN_ADD_CLOCK_SKEW = timedelta(seconds=60)
# Enum members read once, here: on Python 3.11 every `Enum.MEMBER` in the code goes through
# the enum metaclass's __getattr__ hook (about a thousand instructions), and these are
# read for every contact a run pushes.
_ADD, _HOLD, _RECONSENT, _UNSUBSCRIBE = (Action.ADD, Action.HOLD, Action.RECONSENT,
                                         Action.UNSUBSCRIBE)
_ADDED, _SENT_PENDING, _UPDATED, _UNSUBSCRIBED = (
    PushOutcome.ADDED, PushOutcome.RECONSENT, PushOutcome.UPDATED, PushOutcome.UNSUBSCRIBED)
_PUSHED = MemberOrigin.PUSHED


@quick_init
@dataclass(frozen=True)
class Outcome:
    change: Change
    kind: PushOutcome
    settlement: Settlement | None  # None: nothing confirmed, look again next run
    error: EspError | None = None


def _settled(change: Change, *, status: str | None, fingerprint: str | None = None,
             parked: str | None = None, retry_after: datetime | None = None,
             keep_attempt: bool = False, revision: int | None = None,
             now: datetime | None = None) -> Settlement:
    known = change.known
    asked_pending = now is not None and status == "pending" and change.status == "pending"
    return Settlement(
        contact_id=change.contact_id,
        settled_revision=change.revision if revision is None else revision,
        fingerprint=fingerprint if fingerprint is not None else (known.fingerprint if known
                                                                 else None),
        esp_status=status,
        esp_email=change.data.email if change.data else (known.esp_email if known else None),
        parked_reason=parked, retry_after=retry_after,
        attempt_fingerprint=change.fingerprint if keep_attempt else None,
        esp_origin=_PUSHED if change.action is _ADD else None,
        pending_requested_at=now if asked_pending else None)


# Mailchimp has no member under the address syncd knew: changed or deleted there. Never
# re-added on that account (the person may be live under a new address: a new member at
# the old one would be a ghost that keeps getting mail, I12); the pull finds it again.
MISSING = PushOutcome.MISSING
MISSING_REASON = ("Mailchimp has no member at the address syncd knew (changed or deleted "
                  "at Mailchimp); not re-added; run `syncd audience pull` to learn its state")


def settle_without_call(change: Change) -> Settlement | None:
    """SETTLE: record the outcome (skip or unchanged); HOLD: nothing to record."""
    if change.action is _HOLD:
        return None
    known = change.known
    status = change.esp_status_after or (known.esp_status if known else None)
    return _settled(change, status=status, fingerprint=change.fingerprint)


def _refused(change: Change, error: EspError, now: datetime) -> Outcome:
    """A per-member refusal: parked at this revision (until the contact changes), or for
    Mailchimp's "too many recent sign-ups", skipped until `retry_after`."""
    known = change.known
    status = known.esp_status if known else None
    if isinstance(error, RecentSignupsError):
        later = now + timedelta(hours=error.retry_after_hours)
        # Not settled (revision kept): the contact is looked at again after `later`.
        settlement = _settled(change, status=status, retry_after=later,
                              revision=known.settled_revision if known else 0)
        return Outcome(change, PushOutcome.PARKED, settlement, error)
    reason = scrub(str(error))[:500]
    return Outcome(change, PushOutcome.PARKED, _settled(change, status=status, parked=reason),
                   error)


def _failed(change: Change, error: EspError) -> Outcome:
    # Retries exhausted: nothing confirmed; the marker stays, the next run tries again.
    return Outcome(change, PushOutcome.FAILED, None, error)


def run_add_batch(esp: EspWriter, changes: Sequence[Change], *, manage_foreign: bool,
                  now: datetime) -> list[Outcome]:
    """One batch call for up to 500 new members, then the `exists` answers resolved."""
    assert all(c.data is not None and c.status for c in changes)
    results = esp.push_batch([NewMember(c.data, c.status or "subscribed")  # type: ignore[arg-type]
                              for c in changes])
    outcomes = []
    for change, result in zip(changes, results, strict=True):
        if result.outcome in ("created", "written"):
            outcomes.append(_added(change, result.status or change.status, now))
        elif result.outcome == "exists":
            outcomes.append(_resolve_existing(esp, change, manage_foreign=manage_foreign,
                                              now=now, uncertain_since=result.uncertain_since))
        else:
            error = result.error or EspTransientError("add member: no answer")
            outcomes.append(_refused(change, error, now) if not _transient(error)
                            else _failed(change, error))
    return outcomes


def _added(change: Change, status: str | None, now: datetime) -> Outcome:
    """An add the ESP took: `_settled(change, status=status,
    fingerprint=change.fingerprint, now=now)` spelt out, as it runs for every contact
    of a first push."""
    known = change.known
    pending = change.status == "pending"
    fingerprint = change.fingerprint
    if fingerprint is None and known is not None:
        fingerprint = known.fingerprint
    data = change.data
    email = data.email if data else (known.esp_email if known else None)
    return Outcome(change, _SENT_PENDING if pending else _ADDED, Settlement(
        change.contact_id, change.revision, fingerprint, status, email, None, None, None,
        _PUSHED if change.action is _ADD else None,
        now if pending and status == "pending" else None))


def _transient(error: EspError) -> bool:
    return isinstance(error, EspTransientError) and not isinstance(error, RecentSignupsError)


def _resolve_existing(esp: EspWriter, change: Change, *, manage_foreign: bool,
                      now: datetime, uncertain_since: datetime | None = None) -> Outcome:
    """The add found a member already there (left untouched, no status sent).

    Ours if a previous add of this contact is unconfirmed (crash or timed-out batch):
    adopt it, re-sending the data only if it changed since. Otherwise it is a member syncd
    never added: read, then treated like every known member (below)."""
    assert change.data is not None
    known = change.known
    ours = known is not None and known.attempt_fingerprint is not None
    if ours and known is not None and known.attempt_fingerprint == change.fingerprint:
        remote = esp.get_member(change.data.email)  # a read: learn the status it has now
        if remote is None:  # gone again since: nothing confirmed, look again next run
            return Outcome(change, PushOutcome.FAILED, None,
                           EspTransientError("add member: member vanished while adopting"))
        return Outcome(change, PushOutcome.ADOPTED, _settled(
            change, status=remote.status, fingerprint=change.fingerprint))
    if not ours and uncertain_since is not None:
        # An earlier attempt of this very batch call timed out or failed after it may have
        # landed: a member changed since that attempt was sent is our own add (I8), and
        # must be known as ours, or a later withdrawal would never unsubscribe it.
        remote = esp.get_member(change.data.email)
        if remote is not None and remote.last_changed >= uncertain_since - OWN_ADD_CLOCK_SKEW:
            return Outcome(change, PushOutcome.ADOPTED, _settled(
                change, status=remote.status, fingerprint=change.fingerprint))
    if not ours:
        return _existing_from_before(esp, change, manage_foreign=manage_foreign, now=now)
    # Our own earlier add, with other data since: PATCH the data (it exists).
    result = esp.update_member(change.data)
    if result.outcome == "written" and change.data.tags:
        esp.set_tags(change.data.email, active=change.data.tags, inactive=())
    return _member_outcome(change, result, PushOutcome.ADOPTED, now)

def _existing_from_before(esp: EspWriter, change: Change, *, manage_foreign: bool,
                          now: datetime) -> Outcome:
    assert change.data is not None
    # A member that was there before (it joined after the audience pull, or the
    # contact came later): from now on known like any member (I11), its status never
    # sent (I2), only what the person asked for: the data of a live member, or
    # `pending` for a confirmation newer than Mailchimp's unsubscribe (rule 6).
    remote = esp.get_member(change.data.email)
    if remote is None:  # gone again since: nothing confirmed, look again next run
        return Outcome(change, PushOutcome.FAILED, None,
                       EspTransientError("add member: existing member vanished"))
    if remote.status in LIVE or manage_foreign:
        result = esp.update_member(change.data)
        if result.outcome == "written" and change.data.tags:
            esp.set_tags(change.data.email, active=change.data.tags, inactive=())
        return _member_outcome(change, result, PushOutcome.ADOPTED, now)
    confirmed = parse_timestamp(change.data.timestamp_opt) if (
        change.data.timestamp_opt) else None
    if remote.status == "unsubscribed" and confirmed is not None and (
            confirmed > remote.last_changed):
        result = esp.update_member(change.data, status="pending")
        return _member_outcome(replace(change, status="pending"), result, PushOutcome.RECONSENT,
                               now)
    return Outcome(change, PushOutcome.FOREIGN, Settlement(
        contact_id=change.contact_id, settled_revision=change.revision, fingerprint=None,
        esp_status=remote.status, esp_email=change.data.email, esp_origin=MemberOrigin.PULLED))


def _member_outcome(change: Change, result: MemberResult, kind: PushOutcome,
                    now: datetime) -> Outcome:
    if result.outcome == "written":
        return Outcome(change, kind, _settled(change, status=result.status,
                                              fingerprint=change.fingerprint, now=now))
    if result.outcome == "missing":
        if change.action is Action.UNSUBSCRIBE:
            # Nothing left to unsubscribe under that address; an add is only ever planned
            # through the consent gate, which a withdrawn person does not pass.
            return Outcome(change, PushOutcome.UNCHANGED, Settlement(
                contact_id=change.contact_id, settled_revision=change.revision,
                fingerprint=None, esp_status=None, esp_email=None))
        known = change.known
        return Outcome(change, MISSING, Settlement(
            contact_id=change.contact_id, settled_revision=change.revision, fingerprint=None,
            esp_status=MISSING, esp_email=(known.esp_email if known and known.esp_email
                                           else change.data.email if change.data else None),
            parked_reason=MISSING_REASON))
    error = result.error or EspPermanentError("member write refused")
    return _refused(change, error, now)


def run_member_change(esp: EspWriter, change: Change, *, now: datetime) -> Outcome:
    """UPDATE, RECONSENT or UNSUBSCRIBE of one known member. Every write is a PATCH: a
    member that is not there answers `missing`, which is news (re-read once), never a
    reason to add (I12)."""
    if change.action is _UNSUBSCRIBE:
        assert change.data is not None
        result = esp.set_status(change.data.email, "unsubscribed",
                                marketing_permissions=change.data.marketing_permissions)
        return _member_outcome(change, result, _UNSUBSCRIBED, now)
    assert change.data is not None
    kind = _SENT_PENDING if change.action is _RECONSENT else _UPDATED
    status = "pending" if change.action is _RECONSENT else None
    if change.action is _RECONSENT and change.known and change.known.attempt_fingerprint:
        # An earlier `pending` may have landed before a crash: never mail the person a
        # second confirmation. Read first; already pending (or confirmed) means done.
        remote = esp.get_member(change.data.email)
        if remote is not None and remote.status in ("pending", "subscribed"):
            if change.known.attempt_fingerprint == change.fingerprint:
                return Outcome(change, PushOutcome.ADOPTED, _settled(
                    change, status=remote.status, fingerprint=change.fingerprint))
            result = esp.update_member(change.data)
            return _member_outcome(change, result, PushOutcome.ADOPTED, now)
    old_email = change.known.esp_email if change.known else None
    if old_email and old_email != change.data.email:
        # The address changed in the CRM: rename the member syncd knows.
        result = esp.rename_member(old_email, change.data)
        if result.outcome == "missing":
            # Not under the old address: renamed at Mailchimp already (`upemail` lost or
            # racing this run)? Re-read under the new one; write there only if it exists.
            result = _write_if_present(esp, change.data, status)
        elif result.outcome == "written" and status is not None:
            result = esp.update_member(change.data, status=status)
    elif change.write_data or status is not None:
        result = esp.update_member(change.data, status=status)
        if result.outcome == "missing":
            result = _write_if_present(esp, change.data, status)
    else:
        result = MemberResult(change.data.email, "written",
                              change.known.esp_status if change.known else None)
    if result.outcome == "written" and change.write_tags:
        esp.set_tags(change.data.email, active=change.data.tags, inactive=change.inactive_tags)
    return _member_outcome(change, result, kind, now)


def _write_if_present(esp: EspWriter, data: MemberData, status: str | None) -> MemberResult:
    remote = esp.get_member(data.email)
    if remote is None:
        return MemberResult(data.email, "missing")
    return esp.update_member(data, status=status)
