"""The pusher's reading of a batch answer that the emulator never gives (`responses`): a
member the answer does not mention is failed, not settled, so the next run tries it
again (I8: settled only on Mailchimp's confirmation)."""

from __future__ import annotations

import responses

from syncd.consent.policy import Action as Consent
from syncd.consent.policy import ConsentFact
from syncd.schema import PushOutcome
from syncd.sync.plan import Action, ContactFacts, PlanConfig, plan_contact
from syncd.sync.push import run_add_batch
from tests.builders import at
from tests.sync.test_mailchimp_client import AUDIENCE, BASE, client

CFG = PlanConfig(purpose="newsletter", merge_fields={}, sync_tags=False, tag_lists=(),
                 unconfirmed_as_pending=False)
NOW = at(30)


def _new(contact_id: int, email: str) -> ContactFacts:
    return ContactFacts(contact_id=contact_id, revision=1, email=email, events=(
        ConsentFact(purpose="newsletter", action=Consent.GIVEN, occurred_at=at(0),
                    source="web_form"),
        ConsentFact(purpose="newsletter", action=Consent.CONFIRMED, occurred_at=at(0.1),
                    source="web_form")))


@responses.activate
def test_a_member_the_batch_answer_leaves_out_is_failed_and_not_settled() -> None:
    responses.post(f"{BASE}/lists/{AUDIENCE}", json={
        "new_members": [{"email_address": "ada@example.org", "status": "subscribed"}],
        "updated_members": [], "errors": [], "error_count": 0})
    changes = [plan_contact(_new(1, "ada@example.org"), None, CFG, NOW),
               plan_contact(_new(2, "bob@example.org"), None, CFG, NOW)]
    assert [c.action for c in changes] == [Action.ADD, Action.ADD]

    added, left_out = run_add_batch(client(), changes, manage_foreign=False, now=NOW)

    assert (added.kind, added.settlement is not None) == (PushOutcome.ADDED, True)
    assert (left_out.kind, left_out.settlement) == (PushOutcome.FAILED, None)
    assert left_out.error is not None
    assert "no answer for member" in str(left_out.error)
