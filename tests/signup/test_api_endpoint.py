"""POST /api/v1/signups, the JSON API for apps: bearer tokens (rotation), every answer,
CORS for configured origins only, and the OpenAPI description it serves."""

from __future__ import annotations

from typing import Any

import requests
from sqlalchemy import func, select

from syncd.context import AppContext
from syncd.schema import ConsentEvent, Contact
from syncd.service.app import create_app
from tests.service.conftest import served
from tests.signup.conftest import API_TOKEN, OLD_API_TOKEN, signup_settings
from tests.smtp_sink import SmtpSink

BODY = {"email": "ada@example.com", "purposes": ["newsletter"], "text_version": "app-2",
        "privacy_notice_version": "2026-01"}


def _post(site: str, body: Any, token: str | None = API_TOKEN, **headers: str
          ) -> requests.Response:
    auth = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.post(site + "/api/v1/signups", json=body, headers={**auth, **headers},
                         timeout=10)


def _events(ctx: AppContext) -> list[ConsentEvent]:
    with ctx.sessions() as session:
        return list(session.scalars(select(ConsentEvent)))


def test_an_app_sign_up_is_accepted_and_recorded_with_the_persons_stated_ip(
        site: str, signup_ctx: AppContext) -> None:
    answer = _post(site, BODY | {"ip": "198.51.100.7", "user_agent": "Mobile app 3.1"})

    assert answer.status_code == 202
    assert answer.json()["status"] == "accepted"
    [event] = _events(signup_ctx)
    assert (event.source, event.ip, event.user_agent, event.text_version) == (
        "api", "198.51.100.7", "Mobile app 3.1", "app-2")


def test_the_previous_token_still_works_during_a_rotation(site: str) -> None:
    assert _post(site, BODY, token=OLD_API_TOKEN).status_code == 202


def test_a_missing_or_wrong_token_is_refused_with_401(site: str,
                                                      signup_ctx: AppContext) -> None:
    missing = _post(site, BODY, token=None)
    wrong = _post(site, BODY, token=API_TOKEN[:-1] + "x")
    prefix = _post(site, BODY, token=API_TOKEN[:10])

    assert [a.status_code for a in (missing, wrong, prefix)] == [401, 401, 401]
    assert missing.headers["WWW-Authenticate"] == "Bearer"
    assert _events(signup_ctx) == []


def test_a_pre_ticked_consent_is_refused_with_422_naming_the_field(
        site: str, signup_ctx: AppContext) -> None:
    answer = _post(site, BODY | {"prechecked": True})

    assert answer.status_code == 422
    [problem] = answer.json()["detail"]
    assert problem["field"] == "prechecked"
    assert "pre-ticked" in problem["message"]
    assert _events(signup_ctx) == []


def test_unknown_fields_and_wrong_types_are_refused_each_by_name(site: str) -> None:
    answer = _post(site, BODY | {"newsletter": True, "first_name": 7})

    assert answer.status_code == 422
    assert {p["field"] for p in answer.json()["detail"]} == {"newsletter", "first_name"}


def test_a_body_that_is_not_json_is_refused_with_400(site: str) -> None:
    answer = requests.post(site + "/api/v1/signups", data=b"{email:",
                           headers={"Authorization": f"Bearer {API_TOKEN}",
                                    "Content-Type": "application/json"}, timeout=10)

    assert answer.status_code == 400


def test_a_form_body_is_refused_with_415(site: str) -> None:
    answer = requests.post(site + "/api/v1/signups", data={"email": "ada@example.com"},
                           headers={"Authorization": f"Bearer {API_TOKEN}"}, timeout=10)

    assert answer.status_code == 415


def test_no_purpose_records_nothing_and_says_so(site: str, signup_ctx: AppContext) -> None:
    answer = _post(site, BODY | {"purposes": []})

    assert (answer.status_code, answer.json()["status"]) == (200, "nothing_recorded")
    with signup_ctx.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Contact)) == 0


def test_an_address_signed_up_too_often_answers_429_with_retry_after(
        database_url: str, smtp: SmtpSink) -> None:
    ctx = AppContext.open(signup_settings(database_url, smtp,
                                          signup_rate_per_address_per_hour=1))
    ctx.sync_lists()
    with served(create_app(ctx, webhooks=False)) as url:
        answers = [_post(url, BODY), _post(url, BODY)]
    ctx.close()
    assert [a.status_code for a in answers] == [202, 429]
    assert int(answers[1].headers["Retry-After"]) > 0


def test_cors_answers_a_configured_origin_and_no_other(database_url: str,
                                                       smtp: SmtpSink) -> None:
    ctx = AppContext.open(signup_settings(database_url, smtp,
                                          signup_cors_origins=["https://shop.example.org"]))
    ctx.sync_lists()
    preflight = {"Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization,content-type"}
    with served(create_app(ctx, webhooks=False)) as url:
        allowed = requests.options(url + "/api/v1/signups", timeout=10, headers={
            "Origin": "https://shop.example.org", **preflight})
        other = requests.options(url + "/api/v1/signups", timeout=10, headers={
            "Origin": "https://evil.example", **preflight})
    ctx.close()
    assert allowed.headers.get("Access-Control-Allow-Origin") == "https://shop.example.org"
    assert "Access-Control-Allow-Origin" not in other.headers


def test_no_origin_gets_cors_headers_unless_configured(site: str) -> None:
    answer = _post(site, BODY, Origin="https://shop.example.org")

    assert "Access-Control-Allow-Origin" not in answer.headers


def test_the_openapi_description_documents_the_endpoint_and_its_purposes(site: str) -> None:
    schema = requests.get(site + "/api/v1/openapi.json", timeout=10).json()

    operation = schema["paths"]["/signups"]["post"]
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    assert set(body["properties"]["purposes"]["items"]["enum"]) >= {"newsletter", "offers"}
    assert {"202", "200", "401", "422", "429"} <= set(operation["responses"])


def test_a_control_character_in_any_field_is_refused_naming_the_field(
        site: str, signup_ctx: AppContext) -> None:
    answer = _post(site, BODY | {"text_version": "v\x003", "user_agent": "x\x00"})

    assert answer.status_code == 422
    assert {p["field"] for p in answer.json()["detail"]} == {"text_version", "user_agent"}
    assert _events(signup_ctx) == []
