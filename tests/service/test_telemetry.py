"""FastAPI's own OpenTelemetry is off (I9): FastAPI 0.142 and later record a span for
every request once any OpenTelemetry provider is configured in the process (by
`opentelemetry-instrument`, or FASTAPI_OTEL_AUTO_CONFIGURE with OTEL_* settings), and the
span's `url.path` would carry the webhook's shared secret to the tracing backend.

Each check runs in a child process: OpenTelemetry's global providers can be set only
once per process, and a recording provider would stay behind for every later test."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.conftest import TEST_PSEUDONYM_KEY, TEST_WEBHOOK_SECRET

ROOT = Path(__file__).resolve().parents[2]

# The child: recording tracer and meter providers set globally, then syncd's ASGI app
# answers the webhook validator's GET (on the path that holds the secret), /healthz and
# the mounted sign-up API's description (an app of its own).
CHILD = textwrap.dedent("""
    import json, sys
    from opentelemetry import metrics, trace

    asked = []

    class Tracers(trace.TracerProvider):
        def get_tracer(self, *args, **kwargs):
            asked.append("tracer")
            return trace.NoOpTracer()

    class Meters(metrics.MeterProvider):
        def get_meter(self, name, *args, **kwargs):
            asked.append("meter")
            return metrics.NoOpMeter(name)

    trace.set_tracer_provider(Tracers())
    metrics.set_meter_provider(Meters())

    import asyncio
    from syncd.config import load_settings
    from syncd.context import AppContext
    from syncd.service.app import create_app

    async def status_of(app, path):
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
                 "method": "GET", "scheme": "http", "path": path, "raw_path": path.encode(),
                 "query_string": b"", "root_path": "", "headers": [(b"host", b"127.0.0.1")],
                 "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 8080)}
        sent = []

        async def receive():
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message):
            sent.append(message)

        await app(scope, receive, send)
        return next(m["status"] for m in sent if m["type"] == "http.response.start")

    database, secret, key = sys.argv[1:4]
    ctx = AppContext.open(load_settings(None, database_url=database, webhook_secrets=[secret],
                                        pseudonym_key=key, mailchimp_audience_id="a1b2c3d4e5",
                                        smtp_host="127.0.0.1", mail_from="syncd@example.com",
                                        public_base_url="https://example.com"))
    app = create_app(ctx)
    statuses = [asyncio.run(status_of(app, path)) for path in (
        f"/webhooks/mailchimp/{secret}", "/healthz", "/api/v1/openapi.json")]
    app.state.probe.close()
    ctx.close()
    print(json.dumps({"statuses": statuses, "asked": asked}))
""")


def test_requests_reach_no_opentelemetry_provider_configured_in_the_process(
        tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, f"sqlite:///{tmp_path / 'telemetry.db'}",
         TEST_WEBHOOK_SECRET, TEST_PSEUDONYM_KEY],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["statuses"] == [200, 200, 200]
    assert found["asked"] == []
