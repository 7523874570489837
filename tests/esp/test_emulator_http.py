"""The HTTP side: auth, errors, the connection limit, latency, faults, hooks, stats."""

from __future__ import annotations

import base64
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.client import HTTPConnection
from typing import Any

import pytest
import requests
from mailchimp_marketing.api_client import ApiClientError

from mailchimp_emulator import DEFAULT_API_KEY, MailchimpEmulator, RequestInfo

PROBLEM_KEYS = {"type", "title", "status", "detail", "instance"}


def test_default_api_key_looks_like_a_mailchimp_key() -> None:
    secret, _, dc = DEFAULT_API_KEY.partition("-")

    assert (len(secret), dc) == (32, "us1")
    int(secret, 16)


def test_ping_answers_everything_is_chimpy(client: Any) -> None:
    assert client.ping.get() == {"health_status": "Everything's Chimpy!"}


def test_list_info_counts_subscribed_members(client: Any, emu: MailchimpEmulator) -> None:
    emu.seed_member("in@example.com", "subscribed")
    emu.seed_member("out@example.com", "unsubscribed")

    info = client.lists.get_list(emu.list_id)

    assert (info["id"], info["stats"]["member_count"]) == (emu.list_id, 1)
    assert info["stats"]["unsubscribe_count"] == 1


def test_wrong_api_key_is_401_api_key_invalid(emu: MailchimpEmulator) -> None:
    answer = requests.get(f"{emu.base_url}/ping", auth=("u", "0" * 32 + "-us1"), timeout=5)

    assert answer.status_code == 401
    assert answer.headers["Content-Type"].startswith("application/problem+json")
    assert answer.json()["title"] == "API Key Invalid"
    assert answer.json().keys() >= PROBLEM_KEYS


def test_missing_api_key_is_401(emu: MailchimpEmulator) -> None:
    assert requests.get(f"{emu.base_url}/ping", timeout=5).status_code == 401


def test_any_user_name_is_accepted_with_the_right_key(emu: MailchimpEmulator) -> None:
    answer = requests.get(f"{emu.base_url}/ping", auth=("whoever", emu.api_key), timeout=5)

    assert answer.status_code == 200


def test_unknown_list_is_404_resource_not_found(client: Any) -> None:
    with pytest.raises(ApiClientError) as exc:
        client.lists.get_list("0000000000")

    assert exc.value.status_code == 404
    assert '"Resource Not Found"' in exc.value.text


def test_invalid_json_body_is_400(emu: MailchimpEmulator, http: requests.Session) -> None:
    answer = http.post(f"{emu.base_url}/lists/{emu.list_id}", data=b"{not json")

    assert answer.status_code == 400


def test_eleventh_request_in_flight_is_429_too_many_requests(
    emu: MailchimpEmulator, http: requests.Session
) -> None:
    release = threading.Event()
    entered = threading.Semaphore(0)

    def hold(_: RequestInfo) -> None:
        entered.release()
        release.wait(5)

    emu.set_hook(hold, times=10)
    with ThreadPoolExecutor(10) as pool:
        held = [pool.submit(requests.get, f"{emu.base_url}/ping", auth=("u", emu.api_key),
                            timeout=10) for _ in range(10)]
        for _ in range(10):
            assert entered.acquire(timeout=5)

        eleventh = http.get(f"{emu.base_url}/ping")
        release.set()
        statuses = [f.result().status_code for f in held]

    assert eleventh.status_code == 429
    assert eleventh.json()["title"] == "Too Many Requests"
    assert statuses == [200] * 10
    assert emu.stats.peak_concurrency == 10
    assert emu.stats.throttled == 1


def test_max_connections_is_configurable(http: requests.Session) -> None:
    with MailchimpEmulator(max_connections=1, latency_ms=300) as emu, ThreadPoolExecutor(2) as pool:
        first = pool.submit(requests.get, f"{emu.base_url}/ping", auth=("u", emu.api_key))
        time.sleep(0.1)
        second = requests.get(f"{emu.base_url}/ping", auth=("u", emu.api_key), timeout=5)

        assert (first.result().status_code, second.status_code) == (200, 429)


def test_latency_holds_each_call_past_a_shorter_client_timeout(
        emu: MailchimpEmulator, http: requests.Session) -> None:
    # The client's read timeout is the clock: a busy machine only makes the answer later.
    emu.set_latency(2000)

    with pytest.raises(requests.exceptions.ReadTimeout):
        http.get(f"{emu.base_url}/ping", timeout=0.2)


def test_fault_429_answers_problem_json_then_recovers(client: Any, emu: MailchimpEmulator) -> None:
    emu.inject_fault("429")

    with pytest.raises(ApiClientError) as exc:
        client.ping.get()

    assert exc.value.status_code == 429
    assert client.ping.get()["health_status"] == "Everything's Chimpy!"


def test_fault_403_bodyless_reaches_the_official_client_as_a_plain_response(
    client: Any, emu: MailchimpEmulator
) -> None:
    emu.inject_fault("403_bodyless")

    answer = client.ping.get()

    assert isinstance(answer, requests.Response)
    assert (answer.status_code, answer.content) == (403, b"")


def test_fault_500_is_a_server_error(client: Any, emu: MailchimpEmulator) -> None:
    emu.inject_fault("500")

    with pytest.raises(ApiClientError) as exc:
        client.ping.get()

    assert exc.value.status_code == 500


def test_fault_slow_answers_normally_once_the_delay_is_over(
        emu: MailchimpEmulator, http: requests.Session) -> None:
    # That the delay holds the answer back is shown by the timeout test below.
    emu.inject_fault("slow", seconds=0.3)

    answer = http.get(f"{emu.base_url}/ping", timeout=30)

    assert (answer.status_code, answer.json()) == (200, {"health_status": "Everything's Chimpy!"})
    assert (emu.stats.faults_served, emu.pending_faults()) == (1, [])


def test_fault_slow_trips_a_client_timeout(emu: MailchimpEmulator, http: requests.Session) -> None:
    emu.inject_fault("slow", seconds=1.0)

    with pytest.raises(requests.exceptions.ReadTimeout):
        http.get(f"{emu.base_url}/ping", timeout=0.2)


def test_fault_reset_closes_the_connection_without_answer(
    emu: MailchimpEmulator, http: requests.Session
) -> None:
    emu.inject_fault("reset")

    with pytest.raises(requests.exceptions.ConnectionError):
        http.get(f"{emu.base_url}/ping")
    assert http.get(f"{emu.base_url}/ping").status_code == 200


def test_fault_hits_only_the_next_count_requests(
    emu: MailchimpEmulator, http: requests.Session
) -> None:
    emu.inject_fault("500", count=2)

    statuses = [http.get(f"{emu.base_url}/ping").status_code for _ in range(3)]

    assert statuses == [500, 500, 200]


def test_fault_with_match_spares_other_requests(
    emu: MailchimpEmulator, http: requests.Session
) -> None:
    emu.inject_fault("500", match=r"^POST /3\.0/lists/[^/]+$")

    ping = http.get(f"{emu.base_url}/ping")
    batch = http.post(f"{emu.base_url}/lists/{emu.list_id}", json={"members": []})

    assert (ping.status_code, batch.status_code) == (200, 500)


def test_fault_probability_hits_some_requests(http: requests.Session) -> None:
    with MailchimpEmulator(seed=7) as emu:
        emu.inject_fault("500", count=None, probability=0.5)

        statuses = [http.get(f"{emu.base_url}/ping", auth=("u", emu.api_key)).status_code
                    for _ in range(40)]

    assert 0 < statuses.count(500) < 40


def test_hook_runs_before_a_matching_request_is_handled(
    client: Any, emu: MailchimpEmulator
) -> None:
    seen: list[tuple[str, str]] = []
    emu.set_hook(lambda info: seen.append((info.method, info.path)), match=r"^POST ")

    client.ping.get()
    client.lists.batch_list_members(emu.list_id, {"members": []})

    assert seen == [("POST", f"/3.0/lists/{emu.list_id}")]


def test_hook_can_change_state_before_the_batch_lands(client: Any, emu: MailchimpEmulator) -> None:
    emu.seed_member("ada@example.com")
    emu.set_hook(lambda _: emu.fire_unsubscribe("ada@example.com"), match=r"^POST ", times=1)

    answer = client.lists.batch_list_members(emu.list_id, {
        "members": [{"email_address": "ada@example.com", "status": "subscribed"}],
        "update_existing": True,
    })

    assert answer["errors"][0]["error_code"] == "ERROR_GENERIC"
    assert emu.member("ada@example.com")["status"] == "unsubscribed"  # type: ignore[index]


def test_stats_count_calls_by_method_and_route(client: Any, emu: MailchimpEmulator) -> None:
    client.ping.get()
    client.lists.get_list(emu.list_id)
    client.lists.batch_list_members(emu.list_id, {"members": []})

    stats = emu.stats
    assert stats.calls == {"GET ping": 1, "GET list": 1, "POST batch": 1}
    assert stats.write_calls == 1


def test_reset_stats_zeroes_the_counters(client: Any, emu: MailchimpEmulator) -> None:
    client.ping.get()

    emu.reset_stats()

    assert (emu.stats.calls, emu.stats.write_calls, emu.stats.peak_concurrency) == ({}, 0, 0)


def test_keep_alive_connection_serves_several_requests(emu: MailchimpEmulator) -> None:
    connection = HTTPConnection("127.0.0.1", emu.port, timeout=5)
    auth = "Basic " + base64.b64encode(f"u:{emu.api_key}".encode()).decode()
    statuses = []
    sockets = set()

    for _ in range(3):
        connection.request("GET", "/3.0/ping", headers={"Authorization": auth})
        response = connection.getresponse()
        response.read()
        statuses.append(response.status)
        sockets.add(id(connection.sock))
    connection.close()

    assert (statuses, len(sockets)) == ([200, 200, 200], 1)


def test_emulator_writes_nothing_to_stderr(
    client: Any, emu: MailchimpEmulator, capfd: pytest.CaptureFixture[str]
) -> None:
    client.lists.batch_list_members(emu.list_id, {"members": [
        {"email_address": "secret.person@example.com", "status": "subscribed"}]})
    with pytest.raises(ApiClientError):
        client.lists.get_list_member(emu.list_id, "0" * 32)

    out, err = capfd.readouterr()
    assert "secret.person" not in out + err
    assert err == ""


def test_stop_refuses_new_connections() -> None:
    emu = MailchimpEmulator().start()
    url = emu.base_url

    emu.stop()

    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"{url}/ping", timeout=2)


def test_a_request_still_sleeping_at_reset_does_not_land_afterwards(
    emu: MailchimpEmulator, http: requests.Session
) -> None:
    emu.inject_fault("slow", seconds=0.3)
    batch = {"members": [{"email_address": "late@example.com", "status": "subscribed"}]}
    with ThreadPoolExecutor(1) as pool:
        late = pool.submit(http.post, f"{emu.base_url}/lists/{emu.list_id}", json=batch)
        time.sleep(0.1)
        emu.reset()

        with pytest.raises(requests.exceptions.ConnectionError):
            late.result()

    assert emu.members() == []
