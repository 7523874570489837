"""The incremental read: each chunk carries exactly its own contacts' facts, read per
chunk by set-based queries over the chunk's filter (real database, both)."""

from __future__ import annotations

from sqlalchemy import select, update

from syncd.consent import ledger
from syncd.consent.policy import Action
from syncd.context import AppContext
from syncd.db import transaction
from syncd.schema import Contact
from syncd.store import address_history, push_checkpoint, suppressions
from syncd.sync import source
from syncd.sync.plan import PlanConfig
from tests.builders import add_contact, at, confirmed
from tests.conftest import TEST_AUDIENCE_ID


def _revision(ctx: AppContext, contact_id: int) -> int:
    with transaction(ctx.sessions) as session:
        return session.scalars(select(Contact.revision).where(Contact.id == contact_id)).one()


def test_each_chunk_carries_exactly_its_contacts_events_and_lists(
        app_context: AppContext) -> None:
    ctx = app_context
    first = add_contact(ctx, "first@example.org", events=confirmed(),
                        lists=["newsletter-nl", "offers"])
    settled = add_contact(ctx, "settled@example.org", events=confirmed(days=1),
                          lists=["newsletter-en"])
    left = add_contact(ctx, "left@example.org",
                       events=[*confirmed(days=2), ("newsletter", Action.WITHDRAWN, at(3))],
                       lists=["newsletter-en", "newsletter-nl"])
    bare = add_contact(ctx, "bare@example.org")
    ebook = add_contact(ctx, "ebook@example.org", events=confirmed("ebook", days=4),
                        lists=["ebook-leads"])
    # Settled at its revision: not a candidate, though its id lies between the first
    # chunk's two contacts; the chunk's bounds (by id) must still hold both of them.
    push_checkpoint.settle(ctx.engine, TEST_AUDIENCE_ID, [push_checkpoint.Settlement(
        settled, _revision(ctx, settled), None, "subscribed", "settled@example.org")])

    cfg = PlanConfig.for_target(ctx.settings.target(), ctx.settings)
    chunks = list(source.iter_candidates(ctx.engine, TEST_AUDIENCE_ID, ctx.keyring,
                                         chunk_size=2, purpose_lists=cfg.tag_lists))

    assert [[c.facts.contact_id for c in chunk] for chunk in chunks] == [[first, left],
                                                                         [bare, ebook]]
    with transaction(ctx.sessions) as session:
        expected = ledger.facts_by_contact(session, [first, left, bare, ebook])
    for candidate in (c for chunk in chunks for c in chunk):
        facts = candidate.facts
        assert sorted(facts.events, key=repr) == sorted(expected.get(facts.contact_id, []),
                                                        key=repr)
    lists = {c.facts.contact_id: sorted(c.facts.lists) for chunk in chunks for c in chunk}
    # Only the synced purpose's lists (offers and ebook-leads are other purposes).
    assert lists == {first: ["newsletter-nl"], left: ["newsletter-en", "newsletter-nl"],
                     bare: [], ebook: []}


def test_a_chunk_carries_the_suppressions_of_its_contacts_own_and_earlier_addresses(
        app_context: AppContext) -> None:
    ctx = app_context
    ids = [add_contact(ctx, f"person{i}@example.org", events=confirmed()) for i in range(40)]
    mac = ctx.keyring.address_hmac
    with transaction(ctx.sessions) as session:
        # person7 had another address before; that one is suppressed for the newsletter.
        address_history.remember(session, [(ids[7], mac("old@example.org"), at(1))])
        suppressions.add_or_renew(session, [
            suppressions.Entry(mac("person3@example.org"), "*", "abuse", at(2)),
            suppressions.Entry(mac("old@example.org"), "newsletter", "unsubscribe", at(2)),
            suppressions.Entry(mac("stranger@example.org"), "*", "abuse", at(2))],
            renew=False)

    chunks = list(source.iter_candidates(ctx.engine, TEST_AUDIENCE_ID, ctx.keyring,
                                         chunk_size=1000, purpose_lists=()))

    blocked = {c.facts.contact_id: [(s.purpose, s.reason) for s in c.facts.suppressions]
               for chunk in chunks for c in chunk if c.facts.suppressions}
    assert blocked == {ids[3]: [("*", "abuse")], ids[7]: [("newsletter", "unsubscribe")]}


def test_each_candidate_carries_its_stored_attributes(app_context: AppContext) -> None:
    ctx = app_context
    ada = add_contact(ctx, "ada@example.org", events=confirmed())
    bare = add_contact(ctx, "bare@example.org", events=confirmed(days=1))
    with transaction(ctx.sessions) as session:
        session.execute(update(Contact).where(Contact.id == ada)
                        .values(attributes={"city": "Delft"}))

    cfg = PlanConfig.for_target(ctx.settings.target(), ctx.settings)
    read = {c.facts.contact_id: dict(c.facts.attributes)
            for chunk in source.iter_candidates(ctx.engine, TEST_AUDIENCE_ID, ctx.keyring,
                                                chunk_size=10, purpose_lists=cfg.tag_lists)
            for c in chunk}

    assert read == {ada: {"city": "Delft"}, bare: {}}
