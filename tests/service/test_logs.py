"""I9 on the real stderr of `syncd serve`: after syncs, webhooks (real secret, real test
addresses, echoes of our own writes), forged and odd requests, a bad API key and a
database outage, no log line holds a secret, the API key, the database password or an
address, raw or URL-encoded; and every line is structured (JSON)."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote

import pytest
import requests
from sqlalchemy.engine import make_url

from mailchimp_emulator import MailchimpEmulator
from syncd.context import AppContext
from tests.conftest import (
    TEST_AUDIENCE_ID,
    TEST_OLD_WEBHOOK_SECRET,
    TEST_PSEUDONYM_KEY,
    TEST_WEBHOOK_SECRET,
    make_settings,
)
from tests.service.conftest import (
    BlockablePostgres,
    ServeProcess,
    log_records,
    seed_confirmed,
    service_env,
    wait_until,
)

API_KEY = "0a1b2c3d4e5f60718293a4b5c6d7e8f9-us9"
OTHER_API_KEY = "ffeeddccbbaa99887766554433221100-us9"
DB_PASSWORD = "Db-Pa55word-not-logged"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def _forbidden(addresses: list[str]) -> list[str]:
    words = [TEST_WEBHOOK_SECRET, TEST_OLD_WEBHOOK_SECRET, API_KEY, OTHER_API_KEY,
             API_KEY.split("-", maxsplit=1)[0], DB_PASSWORD, TEST_PSEUDONYM_KEY]
    for address in addresses:
        words += [address, address.lower(), quote(address, safe=""), quote(address),
                  address.replace("@", "%40"), address.split("@")[0]]
    return words


def _failed_syncs_since(server: ServeProcess, line_index: int) -> list[dict[str, object]]:
    return [r for r in log_records(server.lines[line_index:])
            if r["event"] == "run finished" and r.get("kind") == "sync"
            and r.get("outcome") == "failed"]


@pytest.mark.slow
def test_no_log_line_of_the_service_holds_a_secret_or_an_address(
        blockable_postgres: BlockablePostgres,
        serve_process: Callable[..., ServeProcess]) -> None:
    url = make_url(blockable_postgres.url).set(password=DB_PASSWORD).render_as_string(
        hide_password=False)
    ctx = AppContext.open(make_settings(url))
    ctx.sync_lists()
    addresses = seed_confirmed(ctx, 4, prefix="I9.Leak+Watch")
    ctx.close()
    with MailchimpEmulator(list_id=TEST_AUDIENCE_ID, api_key=API_KEY) as emu:
        server = serve_process(service_env(
            url, emu.base_url, mailchimp_api_key=API_KEY, sync_interval_minutes=0.02,
            inbox_retry_interval_minutes=0.02, mailchimp_timeout_seconds=2,
            mailchimp_max_retries=1, log_level="debug"))
        server.wait_ready()
        hook_url = f"{server.base_url}/webhooks/mailchimp/{TEST_WEBHOOK_SECRET}"
        emu.audience.webhooks.add({"url": hook_url,
                                   "sources": {"user": True, "admin": True, "api": True}})
        wait_until(lambda: len(emu.members("subscribed")) == len(addresses), 30,
                   "the first sync")

        # Webhooks with real addresses: unsubscribe, profile, address change.
        emu.fire_unsubscribe(addresses[0])
        emu.fire_profile(addresses[1], {"FNAME": "Watch"})
        emu.fire_upemail(addresses[2], "I9.Leak+Renamed@example.org")
        # Forged and odd requests that carry an address or a secret in path or query.
        requests.post(f"{server.base_url}/webhooks/mailchimp/{TEST_WEBHOOK_SECRET[:-1]}"
                      f"?email={quote(addresses[3])}", data=b"type=unsubscribe", headers=FORM,
                      timeout=5)
        requests.get(f"{server.base_url}/contacts/{addresses[3]}?key={API_KEY}", timeout=5)
        requests.post(hook_url + f"?email={addresses[3]}",
                      data=f"type=unsubscribe&data[email]={quote(addresses[3])}&data[list_id]="
                           f"{TEST_AUDIENCE_ID}".encode(), headers=FORM, timeout=5)
        requests.put(hook_url, timeout=5)

        # A bad API key: the next scheduled sync fails, and says so.
        emu.api_key = OTHER_API_KEY
        mark = len(server.lines)
        wait_until(lambda: bool(_failed_syncs_since(server, mark)), 30,
                   "a sync failing on the bad key")
        bad_key_error = _failed_syncs_since(server, mark)[0]["error"]
        emu.api_key = API_KEY

        # A database outage: syncs fail, webhooks get 503, readiness fails.
        blockable_postgres.block()
        mark = len(server.lines)
        refused = emu.fire_unsubscribe(addresses[3])
        not_ready = requests.get(server.base_url + "/readyz", timeout=10)
        wait_until(lambda: bool(_failed_syncs_since(server, mark)), 30,
                   "a sync failing on the database outage")
        blockable_postgres.unblock()
        wait_until(lambda: requests.get(server.base_url + "/readyz", timeout=10).ok, 30,
                   "readiness after the outage")
        assert server.stop() == 0

    text = server.log_text()
    records = log_records(server.lines)  # every line parses: nothing unstructured
    leaks = sorted({word for word in _forbidden([*addresses, "I9.Leak+Renamed@example.org"])
                    if word.lower() in text.lower()})
    assert leaks == []
    assert "API key" in str(bad_key_error), bad_key_error  # says what is wrong, not the key
    assert [d.status for d in refused] == [503]
    assert not_ready.status_code == 503
    routes = {r.get("route") for r in records if r["event"] == "http request"}
    assert "/webhooks/mailchimp/{secret}" in routes
    assert any(r["event"] == "run finished" and r.get("outcome") == "succeeded"
               for r in records)
