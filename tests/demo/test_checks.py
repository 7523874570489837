"""A broken expectation fails the demo: each step's check function, handed a state that
breaks a rule, names the failed check; a real run whose audience holds a withdrawn person
exits non-zero."""

from __future__ import annotations

from dataclasses import replace

from syncd.demo import checks
from syncd.demo.cast import ANNA, BEN, GINA, TEST
from syncd.demo.report import exit_code
from syncd.demo.runner import run_demo
from syncd.demo.stage import Stage
from syncd.exit_codes import ExitCode

CONFIRMED = checks.Member("subscribed", ("newsletter-nl",), "2025-03-03T10:07:00+00:00")


def _good_sync_state() -> checks.SyncState:
    return checks.SyncState(
        report={"outcome": "succeeded", "added": 2, "parked": 1, "failed": 0},
        audience={ANNA.email: CONFIRMED,
                  BEN.email: replace(CONFIRMED, tags=("newsletter-en",))},
        parked={TEST.email: "400 Invalid Resource (<address> looks fake or invalid, ...)"})


def _failed(found: list[checks.Check]) -> list[str]:
    return [c.name for c in found if not c.passed]


def test_sync_check_passes_on_the_expected_state() -> None:
    assert _failed(checks.check_first_sync(_good_sync_state())) == []


def test_sync_check_fails_when_a_withdrawn_person_is_in_the_audience() -> None:
    state = _good_sync_state()
    broken = replace(state, audience={**state.audience, GINA.email: CONFIRMED})
    failed = _failed(checks.check_first_sync(broken))
    assert "exactly the confirmed subscribers are in the audience" in failed
    assert any(name.startswith(GINA.email) for name in failed)


def test_sync_check_fails_when_the_refused_address_is_not_parked() -> None:
    broken = replace(_good_sync_state(), parked={})
    assert any(name.startswith(TEST.email) for name in
               _failed(checks.check_first_sync(broken)))


def _good_purge_state() -> checks.PurgeState:
    return checks.PurgeState(
        registered=True, api_source_off=True, validated=True, deliveries=[200],
        lists_before=("newsletter-nl", "offers"), lists_after=("offers",),
        suppressions=[("newsletter", "unsubscribe")], withdrawal_recorded=True,
        inbox_status="applied", esp_status="unsubscribed", eligible_after=False)


def test_purge_check_passes_on_the_expected_state() -> None:
    assert _failed(checks.check_purge(_good_purge_state())) == []


def test_purge_check_fails_when_the_person_is_still_on_a_newsletter_list() -> None:
    broken = replace(_good_purge_state(), lists_after=("newsletter-nl", "offers"))
    assert _failed(checks.check_purge(broken)) == ["off every newsletter list at once"]


def test_purge_check_fails_when_the_webhook_was_not_answered_2xx() -> None:
    broken = replace(_good_purge_state(), deliveries=[503])
    assert _failed(checks.check_purge(broken)) == [
        "Mailchimp's unsubscribe webhook was answered 2xx, once"]


def test_resync_check_fails_on_a_resubscribe_write() -> None:
    state = checks.ResyncState(
        first={"outcome": "succeeded", "added": 0, "reconsent_pending": 0, "failed": 0,
               "parked": 0},
        resubscribe_writes=1, esp_status_after="unsubscribed",
        audience_after={BEN.email: CONFIRMED},
        second={"outcome": "succeeded", "write_calls": 0}, second_esp_writes=0)
    failed = _failed(checks.check_resync(state))
    assert failed == [f"{ANNA.email} is not re-added: no write subscribes or re-confirms them"]


def test_resync_check_fails_when_a_no_change_run_writes() -> None:
    state = checks.ResyncState(
        first={"outcome": "succeeded", "added": 0, "reconsent_pending": 0, "failed": 0,
               "parked": 0},
        resubscribe_writes=0, esp_status_after="unsubscribed",
        audience_after={BEN.email: CONFIRMED},
        second={"outcome": "succeeded", "write_calls": 1}, second_esp_writes=1)
    assert _failed(checks.check_resync(state)) == [
        "a re-sync with nothing changed makes zero write calls"]


def test_demo_fails_when_the_audience_holds_a_withdrawn_person() -> None:
    def withdrawn_person_in_audience(stage: Stage) -> None:
        stage.emulator.seed_member(GINA.email, "subscribed")

    report = run_demo(prepare=withdrawn_person_in_audience)
    assert not report.ok
    assert exit_code(report) is ExitCode.FAILED
    failed = [(step, check.name) for step, check in report.failed_checks()]
    assert ("sync", "exactly the confirmed subscribers are in the audience") in failed
    # Later steps build on the failed one: the demo stops there.
    assert [s.key for s in report.steps] == ["import", "sync"]

