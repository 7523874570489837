"""schemathesis against the served OpenAPI description of the sign-up API: generated
bodies that fit the schema and bodies that do not; no answer is a 5xx and every answer
is one the description documents (status, content type, body schema, headers).
Examples are bounded so the run takes seconds."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

# Loaded at collection, on a shallow stack: imported lazily inside a running test (deep
# in pytest, hypothesis and coverage frames) CPython 3.11 failed to parse this module
# ("AST constructor recursion depth mismatch") under pytest's assertion rewriting.
from schemathesis.specs.openapi import schemas as _schemas  # noqa: F401

from syncd.context import AppContext
from syncd.service.app import create_app
from tests.service.conftest import served
from tests.signup.conftest import API_TOKEN, signup_settings
from tests.smtp_sink import SmtpSink

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, response_headers_conformance]
EXAMPLES = 60


@pytest.fixture
def api(database_url: str, smtp: SmtpSink) -> Iterator[str]:
    # Limits high enough that the fuzzer reaches the validation, not only the 429.
    ctx = AppContext.open(signup_settings(database_url, smtp,
                                          signup_rate_per_ip_per_hour=100_000,
                                          signup_rate_per_address_per_hour=100_000))
    ctx.sync_lists()
    with served(create_app(ctx, webhooks=False)) as url:
        yield url
    ctx.close()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
@pytest.mark.parametrize("token", [API_TOKEN, "not-a-configured-token-xxxxxxxx"])
def test_every_answer_is_documented_and_none_is_a_server_error(
        api: str, mode: GenerationMode, token: str) -> None:
    schema = schemathesis.openapi.from_url(api + "/api/v1/openapi.json")
    operation = schema["/signups"]["POST"]
    seen: set[int] = set()

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(mode), data=st.data())
    def run(case: schemathesis.Case, data: st.DataObject) -> None:
        del data
        answer = case.call_and_validate(base_url=api + "/api/v1", checks=CHECKS,
                                        headers={"Authorization": f"Bearer {token}"})
        seen.add(answer.status_code)

    run()
    assert seen  # the fuzzer reached the server
    if token != API_TOKEN:
        assert seen == {401}
    elif mode is GenerationMode.POSITIVE:
        assert 202 in seen  # valid bodies got through to a recorded sign-up
    else:
        assert seen & {400, 415, 422}  # and invalid ones were refused as documented
