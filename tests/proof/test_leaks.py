"""I9 on the paths the service's own log test (tests/service/test_logs.py, `syncd serve`)
does not walk: import errors, syncs with every ESP fault and a refused member,
reconciliation failures, webhooks (real and forged secret, malformed bodies carrying an
address), a database outage, and the stdout/stderr of failing CLI commands (`syncd sync`
with a bad API key or an unreachable database with a password, `syncd import` of bad
lines, `syncd reconcile`).

Every sink is read: the rendered structlog/stdlib stream (uvicorn's loggers propagate to
the same root handler), the process's own stdout/stderr (the emulator writes there), and
each subprocess's stdout and stderr. None may hold a secret, the API key, the database
password, the pseudonym key or a test address (as given, lower or upper case,
URL-encoded)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
import requests

from mailchimp_emulator import DEFAULT_API_KEY, MailchimpEmulator
from syncd import logs
from syncd.context import AppContext
from syncd.crm.importer import import_file
from syncd.esp.errors import EspError
from syncd.inbound.reconcile import run_reconcile
from syncd.sync.run import run_sync
from tests.conftest import (
    TEST_AUDIENCE_ID,
    TEST_LISTS,
    TEST_OLD_WEBHOOK_SECRET,
    TEST_PSEUDONYM_KEY,
    TEST_WEBHOOK_SECRET,
)
from tests.proof.world import World, at_text, proof_settings

ADDRESSES = [f"Leak.Watch+{n}@Example.ORG" for n in range(6)]
BAD_ADDRESS = "Leak.Watch+Broken@@Example.ORG"
RENAMED = "Leak.Watch+Renamed@Example.ORG"
BAD_API_KEY = "0f1e2d3c4b5a69788796a5b4c3d2e1f0-us7"
DB_PASSWORD = "Pr00f-Db-Passw0rd-never-logged"
DOWN_DB = f"postgresql://syncd:{DB_PASSWORD}@127.0.0.1:1/syncd"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
REPO = Path(__file__).resolve().parents[2]


def forbidden() -> list[str]:
    words = [TEST_WEBHOOK_SECRET, TEST_OLD_WEBHOOK_SECRET, DEFAULT_API_KEY, BAD_API_KEY,
             DEFAULT_API_KEY.split("-", 1)[0], BAD_API_KEY.split("-", 1)[0], DB_PASSWORD,
             TEST_PSEUDONYM_KEY]
    for address in [*ADDRESSES, BAD_ADDRESS, RENAMED]:
        for form in (address, address.lower(), address.upper()):
            words += [form, quote(form, safe=""), quote(form), form.replace("@", "%40")]
    return words


def leaks(text: str) -> list[str]:
    lowered = text.lower()
    return sorted({w for w in forbidden() if w.lower() in lowered})


def _configure_like_the_cli(ctx: AppContext, stream: io.StringIO) -> None:
    """What `open_context` sets up, at debug level, into a stream we can read."""
    settings = ctx.settings
    secrets = tuple(s.get_secret_value() for s in settings.webhook_secrets)
    assert settings.mailchimp_api_key is not None
    assert settings.pseudonym_key is not None
    secrets += (settings.mailchimp_api_key.get_secret_value(),
                settings.pseudonym_key.get_secret_value())
    logs.configure(level="debug", fmt="json", keyring=ctx.keyring, secrets=secrets,
                   stream=stream)


def _consents(given: str, confirmed: str) -> list[dict[str, str]]:
    return [{"purpose": "newsletter", "action": "given", "at": given},
            {"purpose": "newsletter", "action": "confirmed", "at": confirmed}]


def test_no_sink_holds_a_secret_or_an_address_on_any_in_process_path(
        world: World, database_url: str, tmp_path: Path,
        capfd: pytest.CaptureFixture[str]) -> None:
    stream = io.StringIO()
    _configure_like_the_cli(world.ctx, stream)
    shown: list[str] = []  # what the CLI would print: error texts, HTTP answers
    given, confirmed = at_text(world.clock.advance(60)), at_text(world.clock.advance(60))
    try:
        # Import: a refused file (bad address, pre-ticked box), then a good one.
        bad = tmp_path / "bad.jsonl"
        bad.write_text(json.dumps({"email": BAD_ADDRESS}) + "\n" + json.dumps(
            {"email": ADDRESSES[0], "consents": [
                {"purpose": "newsletter", "action": "given", "at": given,
                 "prechecked": True}]}) + "\n", encoding="utf-8")
        shown += [str(e) for e in import_file(world.ctx, bad).errors]
        world.import_lines([{"email": a, "first_name": "Leak", "lists": ["newsletter-nl"],
                             "consents": _consents(given, confirmed)} for a in ADDRESSES])

        # Sync through every fault, with one member Mailchimp refuses by address.
        world.emu.configure(refused_addresses=[ADDRESSES[5]])
        for kind in ("429", "403_bodyless", "500", "reset"):
            world.emu.inject_fault(kind, count=1)  # type: ignore[arg-type]
        report = run_sync(world.ctx)
        assert report.parked == 1
        world.emu.inject_fault("500", count=50)
        with pytest.raises(EspError) as failed:
            run_sync(world.ctx)
        shown.append(str(failed.value))
        world.clear_faults()

        # Webhooks: the real secret, a forged one, a malformed body with an address.
        world.emu.fire_unsubscribe(ADDRESSES[0])
        world.emu.fire_cleaned(ADDRESSES[1], "abuse")
        world.emu.fire_cleaned(ADDRESSES[2], "hard")
        world.emu.fire_profile(ADDRESSES[3], {"FNAME": "Watch"})
        world.emu.fire_upemail(ADDRESSES[4], RENAMED)
        encoded = quote(ADDRESSES[3])
        for url, body in (
                (world.served.url(TEST_WEBHOOK_SECRET[:-1]) + f"?email={encoded}",
                 f"type=unsubscribe&data[email]={encoded}"),
                (world.served.url() + f"?email={encoded}", f"type=unsubscribe&data[email]="
                                                          f"{encoded}%zz"),
                (world.served.url(), f"data[email]={encoded}"),
                (world.served.url(), f"type=unsubscribe&data[email]={encoded}&data[list_id]="
                                     f"{TEST_AUDIENCE_ID}")):
            shown.append(requests.post(url, data=body.encode(), headers=FORM, timeout=10).text)

        # Reconciliation: failing, then succeeding (it applies what it finds).
        world.emu.fire_unsubscribe(ADDRESSES[3], deliver=False)
        world.emu.inject_fault("500", count=50)
        with pytest.raises(EspError) as pulled:
            run_reconcile(world.ctx)
        shown.append(str(pulled.value))
        world.clear_faults()
        run_reconcile(world.ctx)
        run_sync(world.ctx)

        # A bad API key.
        bad_key = AppContext.open(proof_settings(database_url, world.emu,
                                                 mailchimp_api_key=BAD_API_KEY))
        with pytest.raises(EspError) as refused:
            run_sync(bad_key)
        shown.append(str(refused.value))
        bad_key.close()

        # The database down while a webhook arrives (a URL with a password).
        from tests.webhooks.conftest import app_for, serve_app

        down = AppContext.open(proof_settings(DOWN_DB, world.emu))
        served = serve_app(app_for(down))
        answer = requests.post(served.url(), data=f"type=unsubscribe&data[email]={encoded}",
                               headers=FORM, timeout=10)
        served.stop()
        down.close()
        assert answer.status_code == 503
        shown.append(answer.text)
    finally:
        logs.configure(level="warning", fmt="json")
    out, err = capfd.readouterr()
    text = stream.getvalue()
    assert '"esp_retry"' in text  # the paths were walked and logged
    assert "webhook refused" in text
    for line in text.splitlines():
        json.loads(line)  # every line structured
    assert leaks(text) == []
    assert leaks(out + err) == []
    assert leaks("\n".join(shown)) == []


# -- the CLI, as processes ------------------------------------------------------------

def _env(database_url: str, base_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCD_")}
    env.update({
        "SYNCD_DATABASE_URL": database_url, "SYNCD_PSEUDONYM_KEY": TEST_PSEUDONYM_KEY,
        "SYNCD_WEBHOOK_SECRETS": f"{TEST_WEBHOOK_SECRET},{TEST_OLD_WEBHOOK_SECRET}",
        "SYNCD_LISTS": json.dumps({n: c.model_dump() for n, c in TEST_LISTS.items()}),
        "SYNCD_MAILCHIMP_API_KEY": DEFAULT_API_KEY,
        "SYNCD_MAILCHIMP_AUDIENCE_ID": TEST_AUDIENCE_ID, "SYNCD_MAILCHIMP_BASE_URL": base_url,
        "SYNCD_MAILCHIMP_RETRY_MAX_WAIT_SECONDS": "0.01", "SYNCD_MAILCHIMP_MAX_RETRIES": "1",
        "SYNCD_LOG_LEVEL": "debug", "SYNCD_LOG_FORMAT": "json", "PYTHONUNBUFFERED": "1"})
    env.update(extra)
    return env


def _start(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "syncd", *args], cwd=REPO, env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_failing_cli_commands_print_no_secret_or_address(tmp_path: Path) -> None:
    """Bad key, unreachable database with a password, a refused import, a failing pull:
    each exits non-zero with one clear line, and nothing on stdout or stderr leaks."""
    database = f"sqlite:///{tmp_path / 'syncd.db'}"
    bad_file = tmp_path / "bad.jsonl"
    bad_file.write_text(json.dumps({"email": BAD_ADDRESS, "consents": [
        {"purpose": "newsletter", "action": "given", "at": "2026-03-01T09:00:00Z",
         "prechecked": True}]}) + "\n" + json.dumps({"email": ADDRESSES[0], "consents": [
             {"purpose": "newsletter", "action": "confirmed", "at": "2026-03-01T09:00:00Z"}
         ]}) + "\n", encoding="utf-8")
    good_file = tmp_path / "good.jsonl"
    good_file.write_text("".join(json.dumps({"email": a, "consents": _consents(
        "2026-03-01T08:00:00Z", "2026-03-01T09:00:00Z")}) + "\n" for a in ADDRESSES),
        encoding="utf-8")
    with MailchimpEmulator(list_id=TEST_AUDIENCE_ID) as emu:
        ok = _env(database, emu.base_url)
        # Only `db upgrade` (and serve, sync) may create the database (issue 11, point 7).
        created = _start(["db", "upgrade"], ok)
        assert created.wait(timeout=60) == 0, created.communicate()
        first = _start(["import", str(good_file)], ok)
        assert first.wait(timeout=60) == 0, first.communicate()
        runs = {
            "import_refused": _start(["import", str(bad_file)], ok),
            "sync_bad_key": _start(["sync"], {**ok, "SYNCD_MAILCHIMP_API_KEY": BAD_API_KEY}),
            "reconcile_bad_key": _start(["reconcile"],
                                        {**ok, "SYNCD_MAILCHIMP_API_KEY": BAD_API_KEY}),
            "sync_db_down": _start(["sync"], {**ok, "SYNCD_DATABASE_URL": DOWN_DB}),
            "import_db_down": _start(["import", str(good_file)],
                                     {**ok, "SYNCD_DATABASE_URL": DOWN_DB}),
        }
        outputs = {name: (proc.wait(timeout=90), *proc.communicate())
                   for name, proc in runs.items()}
    codes = {name: code for name, (code, _, _) in outputs.items()}
    assert codes == {"import_refused": 3, "sync_bad_key": 1, "reconcile_bad_key": 1,
                     "sync_db_down": 1, "import_db_down": 1}, outputs
    for name, (_, out, err) in outputs.items():
        assert err.strip(), f"{name} failed without saying why"
        assert leaks(out + err) == [], (name, leaks(out + err))
