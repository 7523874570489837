"""Single-member writes through the REAL official client, and Mailchimp's rules."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
from mailchimp_marketing.api_client import ApiClientError

from mailchimp_emulator import MailchimpEmulator, subscriber_hash

ADA = "Ada.Lovelace@example.com"


def put(client: Any, emu: MailchimpEmulator, email: str, **body: Any) -> dict[str, Any]:
    result: dict[str, Any] = client.lists.set_list_member(
        emu.list_id, subscriber_hash(email), {"email_address": email, **body}
    )
    return result


def problem(exc: pytest.ExceptionInfo[ApiClientError]) -> dict[str, Any]:
    """The official client hands problem+json back as a raw string in `.text`."""
    assert isinstance(exc.value.text, str)
    doc: dict[str, Any] = json.loads(exc.value.text)
    return doc


def test_put_creates_member_with_status_if_new(client: Any, emu: MailchimpEmulator) -> None:
    member = put(client, emu, ADA, status_if_new="pending", merge_fields={"FNAME": "Ada"})

    assert member["id"] == subscriber_hash(ADA)
    assert member["status"] == "pending"
    assert member["merge_fields"] == {"FNAME": "Ada", "LNAME": ""}
    assert member["list_id"] == emu.list_id


def test_member_json_carries_mailchimp_fields(client: Any, emu: MailchimpEmulator) -> None:
    member = put(client, emu, ADA, status_if_new="subscribed", ip_signup="203.0.113.7",
                 timestamp_signup="2026-03-01T10:00:00+00:00")

    for name in ("id", "email_address", "unique_email_id", "status", "merge_fields",
                 "ip_signup", "timestamp_signup", "ip_opt", "timestamp_opt", "last_changed",
                 "unsubscribe_reason", "tags", "list_id"):
        assert name in member
    assert len(member["unique_email_id"]) == 10
    assert member["ip_signup"] == "203.0.113.7"


def test_status_if_new_is_ignored_for_an_existing_member(
    client: Any, emu: MailchimpEmulator
) -> None:
    put(client, emu, ADA, status_if_new="subscribed")

    member = put(client, emu, ADA, status_if_new="pending")

    assert member["status"] == "subscribed"
    assert emu.confirmation_mails_sent(ADA) == 0


def test_status_applies_to_an_existing_member(client: Any, emu: MailchimpEmulator) -> None:
    put(client, emu, ADA, status_if_new="subscribed")

    member = put(client, emu, ADA, status_if_new="subscribed", status="unsubscribed")

    assert member["status"] == "unsubscribed"


def test_put_with_hash_of_another_address_is_rejected(client: Any, emu: MailchimpEmulator) -> None:
    with pytest.raises(ApiClientError) as exc:
        client.lists.set_list_member(emu.list_id, subscriber_hash("other@example.com"),
                                     {"email_address": ADA, "status_if_new": "pending"})

    assert exc.value.status_code == 400
    assert problem(exc)["errors"][0]["field"] == "email_address"


def test_identity_is_md5_of_lower_cased_address(client: Any, emu: MailchimpEmulator) -> None:
    put(client, emu, ADA, status_if_new="subscribed")

    member = client.lists.get_list_member(emu.list_id, subscriber_hash(ADA.lower()))

    assert member["email_address"] == ADA


def test_get_unknown_member_is_404(client: Any, emu: MailchimpEmulator) -> None:
    with pytest.raises(ApiClientError) as exc:
        client.lists.get_list_member(emu.list_id, subscriber_hash(ADA))

    assert exc.value.status_code == 404
    assert problem(exc)["title"] == "Resource Not Found"


def test_patch_updates_an_existing_member(client: Any, emu: MailchimpEmulator) -> None:
    put(client, emu, ADA, status_if_new="subscribed")

    member = client.lists.update_list_member(emu.list_id, subscriber_hash(ADA),
                                             {"merge_fields": {"LNAME": "King"}})

    assert member["merge_fields"]["LNAME"] == "King"


def test_patch_of_unknown_member_is_404(client: Any, emu: MailchimpEmulator) -> None:
    with pytest.raises(ApiClientError) as exc:
        client.lists.update_list_member(emu.list_id, subscriber_hash(ADA), {"status": "subscribed"})

    assert exc.value.status_code == 404


@pytest.mark.parametrize("before", ["unsubscribed", "cleaned"])
def test_subscribing_a_member_in_compliance_state_is_refused(
    client: Any, emu: MailchimpEmulator, before: str
) -> None:
    emu.seed_member(ADA, before)

    with pytest.raises(ApiClientError) as exc:
        put(client, emu, ADA, status_if_new="subscribed", status="subscribed")

    assert exc.value.status_code == 400
    assert problem(exc)["title"] == "Member In Compliance State"
    assert emu.member(ADA)["status"] == before  # type: ignore[index]


def test_allow_api_resubscribe_lets_an_unsubscribed_member_back(
    client: Any, emu: MailchimpEmulator
) -> None:
    emu.seed_member(ADA, "unsubscribed")
    emu.configure(allow_api_resubscribe=True)

    member = put(client, emu, ADA, status_if_new="subscribed", status="subscribed")

    assert member["status"] == "subscribed"


def test_pending_on_an_unsubscribed_member_is_allowed_and_sends_one_confirmation_mail(
    client: Any, emu: MailchimpEmulator
) -> None:
    emu.seed_member(ADA, "unsubscribed")

    member = put(client, emu, ADA, status_if_new="pending", status="pending")

    assert member["status"] == "pending"
    assert emu.confirmation_mails_sent(ADA) == 1


def test_api_cannot_subscribe_a_re_opted_in_member_before_they_confirm(
    client: Any, emu: MailchimpEmulator
) -> None:
    emu.seed_member(ADA, "unsubscribed")
    put(client, emu, ADA, status_if_new="pending", status="pending")

    with pytest.raises(ApiClientError) as exc:
        put(client, emu, ADA, status_if_new="pending", status="subscribed")

    assert problem(exc)["title"] == "Member In Compliance State"


def test_confirming_the_re_opt_in_mail_subscribes_the_member(
    client: Any, emu: MailchimpEmulator
) -> None:
    emu.seed_member(ADA, "unsubscribed")
    put(client, emu, ADA, status_if_new="pending", status="pending")

    emu.fire_subscribe(ADA)

    assert emu.member(ADA)["status"] == "subscribed"  # type: ignore[index]


def test_pending_on_a_cleaned_member_is_refused(client: Any, emu: MailchimpEmulator) -> None:
    emu.seed_member(ADA, "cleaned")

    with pytest.raises(ApiClientError) as exc:
        put(client, emu, ADA, status_if_new="pending", status="pending")

    assert problem(exc)["title"] == "Member In Compliance State"


def test_every_write_that_sets_pending_counts_a_confirmation_mail(
    client: Any, emu: MailchimpEmulator
) -> None:
    put(client, emu, ADA, status_if_new="pending")
    put(client, emu, ADA, status_if_new="pending")  # status_if_new only: no new mail
    put(client, emu, ADA, status_if_new="pending", status="pending")  # re-sent

    assert emu.confirmation_mails_sent(ADA) == 2


@pytest.mark.parametrize("address", ["someone@example.invalid", "x@mail.invalid"])
def test_invalid_tld_address_is_refused_as_fake(
    client: Any, emu: MailchimpEmulator, address: str
) -> None:
    with pytest.raises(ApiClientError) as exc:
        put(client, emu, address, status_if_new="pending")

    doc = problem(exc)
    assert doc["title"] == "Invalid Resource"
    assert doc["detail"].endswith("looks fake or invalid, please enter a real email address.")


def test_configured_refused_address_is_refused_as_fake(client: Any, emu: MailchimpEmulator) -> None:
    emu.configure(refused_addresses={"ADA.lovelace@example.com"})

    with pytest.raises(ApiClientError) as exc:
        put(client, emu, ADA, status_if_new="pending")

    assert "looks fake or invalid" in problem(exc)["detail"]


def test_recent_signup_address_is_refused_for_now(client: Any, emu: MailchimpEmulator) -> None:
    emu.configure(recent_signup_addresses={ADA})

    with pytest.raises(ApiClientError) as exc:
        put(client, emu, ADA, status_if_new="pending")

    doc = problem(exc)
    assert doc["title"] == "Invalid Resource"
    assert "signed up to a lot of lists very recently" in doc["detail"]


def test_missing_required_merge_field_is_a_field_error(client: Any, emu: MailchimpEmulator) -> None:
    emu.configure(required_merge_fields=["FNAME"])

    with pytest.raises(ApiClientError) as exc:
        put(client, emu, ADA, status_if_new="pending", merge_fields={"LNAME": "Lovelace"})

    doc = problem(exc)
    assert doc["title"] == "Invalid Resource"
    assert doc["errors"] == [{"field": "merge_fields.FNAME", "message": "Please enter a value"}]


def test_skip_merge_validation_accepts_a_missing_required_merge_field(
    emu: MailchimpEmulator, http: requests.Session
) -> None:
    emu.configure(required_merge_fields=["FNAME"])
    url = f"{emu.base_url}/lists/{emu.list_id}/members/{subscriber_hash(ADA)}"

    answer = http.put(url, params={"skip_merge_validation": "true"},
                      json={"email_address": ADA, "status_if_new": "pending"})

    assert answer.status_code == 200


def test_unknown_merge_tag_is_a_field_error(client: Any, emu: MailchimpEmulator) -> None:
    with pytest.raises(ApiClientError) as exc:
        put(client, emu, ADA, status_if_new="pending", merge_fields={"COMPANY": "Analytical"})

    assert problem(exc)["errors"][0]["field"] == "merge_fields.COMPANY"


def test_non_string_merge_value_is_a_field_error(client: Any, emu: MailchimpEmulator) -> None:
    with pytest.raises(ApiClientError) as exc:
        put(client, emu, ADA, status_if_new="pending", merge_fields={"FNAME": 1815})

    assert problem(exc)["errors"][0]["field"] == "merge_fields.FNAME"


def test_tags_endpoint_answers_204_with_empty_body(client: Any, emu: MailchimpEmulator) -> None:
    put(client, emu, ADA, status_if_new="subscribed")

    answer = client.lists.update_list_member_tags(
        emu.list_id, subscriber_hash(ADA),
        {"tags": [{"name": "donor", "status": "active"}], "is_syncing": True},
    )

    assert isinstance(answer, requests.Response)
    assert (answer.status_code, answer.content) == (204, b"")
    assert [t["name"] for t in emu.member(ADA)["tags"]] == ["donor"]  # type: ignore[index]


def test_inactive_tag_is_removed(client: Any, emu: MailchimpEmulator) -> None:
    emu.seed_member(ADA, tags=["donor", "vip"])

    client.lists.update_list_member_tags(
        emu.list_id, subscriber_hash(ADA), {"tags": [{"name": "vip", "status": "inactive"}]}
    )

    assert [t["name"] for t in emu.member(ADA)["tags"]] == ["donor"]  # type: ignore[index]


def test_delete_archives_the_member(client: Any, emu: MailchimpEmulator) -> None:
    put(client, emu, ADA, status_if_new="subscribed")

    answer = client.lists.delete_list_member(emu.list_id, subscriber_hash(ADA))

    assert answer.status_code == 204
    assert emu.member(ADA)["status"] == "archived"  # type: ignore[index]


def test_re_adding_an_archived_unsubscriber_keeps_the_compliance_rule(
    client: Any, emu: MailchimpEmulator
) -> None:
    emu.seed_member(ADA, "unsubscribed")
    client.lists.delete_list_member(emu.list_id, subscriber_hash(ADA))

    with pytest.raises(ApiClientError) as exc:
        put(client, emu, ADA, status_if_new="subscribed")

    assert problem(exc)["title"] == "Member In Compliance State"


def test_delete_permanent_removes_the_member(client: Any, emu: MailchimpEmulator) -> None:
    put(client, emu, ADA, status_if_new="subscribed")

    answer = client.lists.delete_list_member_permanent(emu.list_id, subscriber_hash(ADA))

    assert answer.status_code == 204
    assert emu.member(ADA) is None


def test_a_permanently_deleted_address_can_never_be_added_again(
    client: Any, emu: MailchimpEmulator
) -> None:
    put(client, emu, ADA, status_if_new="subscribed")
    client.lists.delete_list_member_permanent(emu.list_id, subscriber_hash(ADA))

    with pytest.raises(ApiClientError) as exc:
        put(client, emu, ADA, status_if_new="pending")

    assert problem(exc)["title"] == "Forgotten Email Not Subscribed"


def test_post_members_on_an_existing_address_is_member_exists(
    client: Any, emu: MailchimpEmulator
) -> None:
    put(client, emu, ADA, status_if_new="subscribed")

    with pytest.raises(ApiClientError) as exc:
        client.lists.add_list_member(emu.list_id, {"email_address": ADA, "status": "subscribed"})

    assert problem(exc)["title"] == "Member Exists"


def test_last_changed_increases_with_every_change(client: Any, emu: MailchimpEmulator) -> None:
    first = put(client, emu, ADA, status_if_new="subscribed")["last_changed"]
    second = put(client, emu, ADA, status_if_new="subscribed", merge_fields={"FNAME": "A"})

    assert second["last_changed"] > first


def test_a_write_that_changes_nothing_keeps_last_changed(
    client: Any, emu: MailchimpEmulator
) -> None:
    first = put(client, emu, ADA, status_if_new="subscribed")["last_changed"]

    again = put(client, emu, ADA, status_if_new="subscribed")["last_changed"]

    assert again == first
