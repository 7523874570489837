"""A Hypothesis state machine of the whole system: CRM imports and withdrawals, the
person acting at Mailchimp (unsubscribe, spam complaint, bounce, profile, address
change) delivered as real webhooks to the real endpoint, replays, syncs, crashed syncs,
ESP faults, erasure and re-import, reconciliation, time passing.

The model is the oracle: it keeps, per address, what the rules say (latest confirmed
consent, latest withdrawal or suppression, bounced, erased) and never asks syncd's policy.
After every step it checks the invariants that apply (consent-rules.md):

- I1: nobody becomes subscribed/pending at the emulator during a step unless the model
  says they hold a confirmed consent newer than every withdrawal and suppression;
- I2: no write syncd sent set `status: subscribed` on a member that existed;
- I3: right after a delivered unsubscribe: withdrawal, list removal, suppression (one read);
- I5: replaying a delivered body changes no row of any table;
- I8: after a clean run (no fault, no failure) the audience has converged: every live
  member is eligible, every eligible person the ESP never had is there, push_state only
  claims what the emulator holds, and a second run sends nothing;
- I10: an erased address is never pushed again, whatever is re-imported;
- I11: after a clean run, no member with a withdrawal or suppression is live, whoever
  added it (the audience starts with members from before syncd: `pre_existing_audience`);
- I12: no member is ever created at an address a person left at Mailchimp (an address
  change whose `upemail` was lost: `esp_upemail_lost`).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from hypothesis import note
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)
from sqlalchemy import select

from syncd.clock import parse_timestamp, utcnow
from syncd.consent.facts import decide_for
from syncd.crm import store
from syncd.crm.erasure import erase_contact
from syncd.db import transaction
from syncd.esp.errors import EspError
from syncd.inbound.reconcile import run_reconcile
from syncd.schema import InternalList, ListMembership, PushState, Suppression
from syncd.sync.run import SyncReport, run_sync
from tests.proof.world import LIVE, World, at_text, state_hash

POOL = ("ann@example.org", "bob@example.org", "cleo@example.org", "dirk@example.org",
        "eve@example.org")
# An erasure's suppression is dated at the real now, later than any model moment.
FOREVER = datetime.max.replace(tzinfo=UTC)
FAULTS = ("429", "500", "403_bodyless", "reset")
NEWSLETTER_LISTS = ("newsletter-nl", "newsletter-en")
WRITES = r"^(PUT|PATCH|POST) /3\.0/"
# The model's client times out after MODEL_TIMEOUT s; a slow answer takes longer.
MODEL_TIMEOUT = 0.25
SLOW_SECONDS = 0.35
# One connection: calls in a fixed order, so that Hypothesis can replay and shrink a
# failing sequence (parallel calls would make "the ESP dies after n writes" vary).
MODEL_SETTINGS = {"mailchimp_timeout_seconds": MODEL_TIMEOUT, "mailchimp_max_retries": 1,
                  "mailchimp_max_connections": 1}


@dataclass
class Person:
    """A CRM contact, keyed in the model by its current address."""

    confirmed_at: datetime | None = None
    withdrawn_at: datetime | None = None
    undeliverable: bool = False


class SystemModel(RuleBasedStateMachine):
    world: World  # set by the test that runs the machine

    def __init__(self) -> None:
        super().__init__()
        self.w = self.world
        self.w.reset()
        self.contacts: dict[str, Person] = {}
        self.suppressed_at: dict[str, datetime] = {}
        self.erased: set[str] = set()
        self.faults_on = False
        self.lost: set[str] = set()  # unsubscribes Mailchimp never delivered
        self.last_body: bytes | None = None
        # In the audience before syncd, never consented in the ledger: an audit finding,
        # left alone unless the person withdraws or is suppressed (rule 12).
        self.pre_existing: set[str] = set()
        # Addresses a person left at Mailchimp while syncd missed the `upemail`.
        self.renamed_away: set[str] = set()

    @initialize(plan=st.lists(st.tuples(st.sampled_from(["absent", "subscribed",
                                                         "unsubscribed"]),
                                        st.sampled_from(["none", "unconfirmed", "confirmed"])),
                              min_size=len(POOL), max_size=len(POOL)))
    def pre_existing_audience(self, plan: list[tuple[str, str]]) -> None:
        """The audience had members before syncd: some with a CRM contact (with or
        without consent, the consent older than whatever Mailchimp did), some without."""
        for address, (_, crm) in zip(POOL, plan, strict=True):
            if crm == "confirmed":
                self.import_confirmed(address, None)
            elif crm == "unconfirmed":
                self.import_unconfirmed(address)
        moment = self.tick()
        for address, (status, _) in zip(POOL, plan, strict=True):
            if status == "absent":
                continue
            self.w.emu.seed_member(address, status)
            self.pre_existing.add(address)
            if status == "unsubscribed":
                self.suppress(address, moment)
        _note(f"pre-existing audience: {plan}")

    # -- the oracle -----------------------------------------------------------------

    def blocked_at(self, address: str) -> datetime | None:
        person = self.contacts.get(address)
        moments = [m for m in (self.suppressed_at.get(address),
                               person.withdrawn_at if person else None) if m is not None]
        return max(moments, default=None)

    def eligible(self, address: str) -> bool:
        person = self.contacts.get(address)
        if person is None or person.confirmed_at is None or person.undeliverable:
            return False
        if address in self.erased:
            return False
        blocked = self.blocked_at(address)
        return blocked is None or person.confirmed_at > blocked

    def tick(self, seconds: int = 2) -> datetime:
        return self.w.clock.advance(seconds)

    def suppress(self, address: str, moment: datetime) -> None:
        self.suppressed_at[address] = max(self.suppressed_at.get(address, moment), moment)

    # -- CRM side -------------------------------------------------------------------

    @rule(address=st.sampled_from(POOL), first_name=st.sampled_from(["Ann", "Bo", None]))
    def import_confirmed(self, address: str, first_name: str | None) -> None:
        given = self.tick()
        confirmed = self.tick()
        line = {"email": address, "lists": ["newsletter-nl"], "consents": [
            {"purpose": "newsletter", "action": "given", "at": at_text(given),
             "ip": "192.0.2.1"},
            {"purpose": "newsletter", "action": "confirmed", "at": at_text(confirmed),
             "ip": "192.0.2.1"}]}
        if first_name:
            line["first_name"] = first_name
        self.w.import_lines([line])
        person = self.contacts.setdefault(address, Person())
        person.confirmed_at = confirmed

    @rule(address=st.sampled_from(POOL))
    def import_unconfirmed(self, address: str) -> None:
        given = self.tick()
        self.w.import_lines([{"email": address, "lists": ["newsletter-en"], "consents": [
            {"purpose": "newsletter", "action": "given", "at": at_text(given)}]}])
        self.contacts.setdefault(address, Person())

    @precondition(lambda self: bool(self.contacts))
    @rule(data=st.data())
    def withdraw_in_crm(self, data: st.DataObject) -> None:
        self.withdraw(data.draw(st.sampled_from(sorted(self.contacts))))

    def withdraw(self, address: str) -> None:
        moment = self.tick()
        self.w.import_lines([{"email": address, "consents": [
            {"purpose": "newsletter", "action": "withdrawn", "at": at_text(moment),
             "source": "crm"}]}])
        self.contacts[address].withdrawn_at = moment

    @precondition(lambda self: bool(self.contacts))
    @rule(data=st.data())
    def erase_in_crm(self, data: st.DataObject) -> None:
        self.erase(data.draw(st.sampled_from(sorted(self.contacts))))

    def erase(self, address: str) -> None:
        self.tick()
        erase_contact(self.w.ctx, address, actor="test")
        del self.contacts[address]
        self.erased.add(address)
        self.suppressed_at[address] = FOREVER

    @precondition(lambda self: bool(self.erased - set(self.contacts)))
    @rule(data=st.data())
    def reimport_erased(self, data: st.DataObject) -> None:
        """Stale CRM data of an erased person comes back (rule 8: must stay out)."""
        address = data.draw(st.sampled_from(sorted(self.erased - set(self.contacts))))
        self.import_confirmed(address, "Ann")

    # -- the person at Mailchimp, delivered as webhooks ------------------------------

    def members(self, statuses: frozenset[str] | None = None) -> list[str]:
        """Pool addresses the emulator has as a member (not archived), sorted."""
        return sorted(a for a, s in self.w.statuses().items()
                      if s != "archived" and (statuses is None or s in statuses))

    def _delivered(self, deliveries: list) -> None:  # type: ignore[type-arg]
        assert deliveries, "the emulator delivered no webhook"
        for delivery in deliveries:
            assert delivery.ok, f"webhook answered {delivery.status} {delivery.error}"
        if self.w.recorder.bodies:
            self.last_body = self.w.recorder.bodies[-1]

    def _withdraw_in_model(self, address: str, moment: datetime) -> None:
        self.suppress(address, moment)
        if address in self.contacts:
            self.contacts[address].withdrawn_at = moment

    @precondition(lambda self: bool(self.members()))
    @rule(data=st.data(), abuse=st.booleans())
    def esp_unsubscribe(self, data: st.DataObject, abuse: bool) -> None:
        self.unsubscribe(data.draw(st.sampled_from(self.members())), abuse=abuse)

    def unsubscribe(self, address: str, *, abuse: bool) -> None:
        moment = self.tick()
        self._delivered(self.w.emu.fire_unsubscribe(address, reason="abuse" if abuse else "manual"))
        self._withdraw_in_model(address, moment)
        self.lost.discard(address)
        self.check_purged(address)

    @precondition(lambda self: bool(self.members(LIVE)))
    @rule(data=st.data())
    def esp_unsubscribe_lost(self, data: st.DataObject) -> None:
        """Mailchimp gave up on the delivery: only the reconciliation pull finds it."""
        address = data.draw(st.sampled_from(self.members(LIVE)))
        self.tick()
        self.w.emu.fire_unsubscribe(address, deliver=False)
        self.lost.add(address)

    @precondition(lambda self: bool(self.members()))
    @rule(data=st.data(), abuse=st.booleans())
    def esp_cleaned(self, data: st.DataObject, abuse: bool) -> None:
        address = data.draw(st.sampled_from(self.members()))
        moment = self.tick()
        self._delivered(self.w.emu.fire_cleaned(address, "abuse" if abuse else "hard"))
        if abuse:
            self._withdraw_in_model(address, moment)
            self.check_purged(address)
        elif address in self.contacts:
            self.contacts[address].undeliverable = True
        self.lost.discard(address)

    @precondition(lambda self: bool(self.members()))
    @rule(data=st.data(), name=st.sampled_from(["Anna", "Bob", "Zed"]))
    def esp_profile(self, data: st.DataObject, name: str) -> None:
        address = data.draw(st.sampled_from(self.members()))
        self.tick()
        self._delivered(self.w.emu.fire_profile(address, {"FNAME": name}))

    def _renamable(self) -> list[str]:
        return [a for a in self.members() if a not in self.lost]

    def _free(self) -> list[str]:
        return [a for a in POOL if self.w.emu.member(a) is None and a not in self.contacts]

    @precondition(lambda self: bool(self._renamable()) and bool(self._free()))
    @rule(data=st.data())
    def esp_upemail(self, data: st.DataObject) -> None:
        old = data.draw(st.sampled_from(self._renamable()))
        new = data.draw(st.sampled_from(self._free()))
        self.rename(old, new)

    def _known_live(self) -> list[str]:
        """Members syncd knows as live under their current address (push_state)."""
        with transaction(self.w.ctx.sessions) as session:
            known = set(session.scalars(select(PushState.esp_email).where(
                PushState.esp_status.in_(LIVE))))
        return [a for a in self._renamable() if a in known and a in self.contacts]

    @precondition(lambda self: bool(self._free()))
    @rule(data=st.data())
    def esp_upemail_lost(self, data: st.DataObject) -> None:
        """An address change at Mailchimp whose `upemail` never arrives: syncd keeps the
        old address. No write may ever create a member there again (I12)."""
        known = self._known_live()
        if not known:
            return
        old = data.draw(st.sampled_from(known))
        new = data.draw(st.sampled_from(self._free()))
        self.tick()
        self.w.emu.fire_upemail(old, new, deliver=False)
        self.renamed_away.add(old)
        self.pre_existing.discard(old)

    def rename(self, old: str, new: str) -> None:
        self.tick()
        self._delivered(self.w.emu.fire_upemail(old, new))
        if old in self.pre_existing:
            self.pre_existing.discard(old)
            self.pre_existing.add(new)
        carried = self.suppressed_at.get(old)
        if carried is not None:
            self.suppress(new, carried)
        if old in self.erased:
            self.erased.add(new)
        if old in self.contacts:
            person = self.contacts.pop(old)
            person.undeliverable = False  # rule 9: only until the address changes
            self.contacts[new] = person

    @precondition(lambda self: self.last_body is not None)
    @rule()
    def replay_last_webhook(self) -> None:
        """I5: the same body again (a Mailchimp retry or an attacker's replay)."""
        assert self.last_body is not None
        before = state_hash(self.w.ctx)
        response = self.w.served.post(self.last_body)
        assert response.status_code == 200, response.text
        assert state_hash(self.w.ctx) == before, "a replayed webhook changed the database"

    @rule(hours=st.integers(1, 12))
    def time_passes(self, hours: int) -> None:
        self.tick(hours * 3600)

    # -- runs -----------------------------------------------------------------------

    def _sync(self) -> SyncReport | None:
        before = self.w.statuses()
        start = len(self.w.writes.writes)
        try:
            report: SyncReport | None = run_sync(self.w.ctx)
        except EspError:
            report = None  # the run failed part-way: a crash as far as the ESP is concerned
        self.check_transitions(before, self.w.statuses())
        _note(f"sync: {report.counts() if report else 'failed'}; "
              f"writes {len(self.w.writes.writes) - start}")
        return report

    @rule()
    def sync(self) -> None:
        report = self._sync()
        if report is not None and not self.faults_on and report.outcome == "succeeded" \
                and report.failed == 0 and report.parked == 0:
            self.check_converged()

    @rule(after=st.integers(0, 4))
    def crashed_sync(self, after: int) -> None:
        """The ESP dies after `after` writes (every call then fails, retries included):
        the run stops part-way with some members written and not checkpointed."""
        calls = [0]

        def die_after(_request: object) -> None:
            calls[0] += 1
            if calls[0] > after:
                raise RuntimeError("emulated outage")

        self.w.emu.set_hook(die_after, match=WRITES)
        try:
            self._sync()
        finally:
            self.w.clear_faults()
            self.faults_on = False

    @rule()
    def timed_out_sync(self) -> None:
        """Every write outlives the client's timeout and is applied all the same: the
        run fails with adds that landed but were never confirmed (a crash after push)."""
        self.w.emu.inject_fault("slow", count=None, seconds=SLOW_SECONDS, match=WRITES)
        try:
            self._sync()
        finally:
            self.w.clear_faults()
            self.faults_on = False
            time.sleep(SLOW_SECONDS)  # the slow requests finish and land

    @rule(kind=st.sampled_from(FAULTS))
    def faults_on_esp(self, kind: str) -> None:
        # A fixed count, not a probability: replayable. Two in a row outlast one retry.
        self.w.emu.inject_fault(kind, count=2)  # type: ignore[arg-type]
        self.faults_on = True

    @precondition(lambda self: self.faults_on)
    @rule()
    def faults_off(self) -> None:
        self.w.clear_faults()
        self.faults_on = False

    @rule()
    def reconcile(self) -> None:
        try:
            run_reconcile(self.w.ctx)
        except EspError:
            assert self.faults_on
            return
        for address in sorted(self.lost):
            member = self.w.emu.member(address)
            if member is not None and member["status"] in ("unsubscribed", "cleaned"):
                self._withdraw_in_model(address, parse_timestamp(member["last_changed"]))
        self.lost.clear()

    # -- checks ---------------------------------------------------------------------

    def check_transitions(self, before: dict[str, str], after: dict[str, str]) -> None:
        for address, status in after.items():
            was = before.get(address)
            if status in LIVE and was not in LIVE:
                # I1 / I10: only a confirmed consent newer than every block gets in.
                assert self.eligible(address), (
                    f"I1: {address} became {status} at the ESP (was {was}) without a "
                    f"confirmed consent newer than every withdrawal/suppression; "
                    f"erased={address in self.erased}")
            if was in ("unsubscribed", "cleaned"):
                assert status != "subscribed", f"I2: {address} re-subscribed ({was})"
            if was is None and address in self.renamed_away:
                raise AssertionError(f"I12: a member was created at {address}, an address "
                                     "the person left at Mailchimp")

    @invariant()
    def never_resubscribed(self) -> None:
        assert self.w.writes.resubscribes() == [], "I2"

    def check_purged(self, address: str) -> None:
        """I3: in ONE read, after the 2xx: withdrawn, off the lists, suppressed."""
        ctx = self.w.ctx
        with transaction(ctx.sessions) as session:
            mac = ctx.keyring.address_hmac(address)
            suppressed = session.scalars(select(Suppression.purpose).where(
                Suppression.address_hmac == mac)).all()
            contact = store.find_contact(session, address)
            lists: list[str] = []
            eligible = False
            if contact is not None:
                lists = list(session.scalars(
                    select(InternalList.name).join(ListMembership,
                                                   ListMembership.list_id == InternalList.id)
                    .where(ListMembership.contact_id == contact.id,
                           InternalList.name.in_(NEWSLETTER_LISTS))))
                eligible = decide_for(session, contact, purpose="newsletter",
                                      keyring=ctx.keyring, now=utcnow()).eligible
        assert set(suppressed) & {"newsletter", "*"}, f"I3: {address} not suppressed"
        assert lists == [], f"I3: {address} still on {lists}"
        assert not eligible, f"I3: {address} still eligible after the unsubscribe"

    def check_converged(self) -> None:
        """I8: after a clean run the audience is where a crash-free history puts it."""
        statuses = self.w.statuses()
        for address, status in statuses.items():
            if status in LIVE:
                assert self.eligible(address) or address not in self.contacts or \
                    self._live_without_news(address) or self._unconsented_from_before(
                        address), (
                        f"I8/I1/I11: {address} is {status} after a clean run, not eligible")
        for address in self.contacts:
            if self.eligible(address) and address not in statuses \
                    and address not in self.renamed_away:
                raise AssertionError(f"I8: eligible {address} not at the ESP after a clean run")
        with transaction(self.w.ctx.sessions) as session:
            claimed = session.execute(select(PushState.esp_email, PushState.esp_status).where(
                PushState.esp_status.in_(LIVE))).all()
        for email, status in claimed:
            # After a lost upemail syncd learns of the move only at its next write there.
            assert statuses.get(email) is not None or email in self.renamed_away, (
                f"I8: push_state says {email} is {status}; the ESP has no such member")
        start = len(self.w.writes.writes)
        again = run_sync(self.w.ctx)
        assert (again.write_calls, len(self.w.writes.writes) - start) == (0, 0), (
            f"I5/I8: a second clean run still wrote: {again.counts()}")

    def _unconsented_from_before(self, address: str) -> bool:
        """Rule 12: a member from before syncd with no consent in the ledger is a finding
        for the audit, not unsubscribed behind the operator's back, unless the person
        withdrew or is suppressed (then I11: it must be unsubscribed)."""
        return address in self.pre_existing and self.blocked_at(address) is None

    def _live_without_news(self, address: str) -> bool:
        """Live at the ESP, not eligible, and syncd cannot know: the address was erased
        (its push state went with the contact; erasure at Mailchimp is the separate
        `--at-esp` step, see the gaps in docs/threats.md) or the unsubscribe is still
        lost in transit."""
        return address in self.lost or address in self.erased


def _note(text: str) -> None:
    """Shown with a failing example; a no-op when a test drives the machine by hand."""
    with contextlib.suppress(InvalidArgument):
        note(text)


def checked_model(world: World) -> type[SystemModel]:
    return type("SystemModelRun", (SystemModel,), {"world": world})
