"""Batch subscribe (`POST /lists/{id}`) through the official client."""

from __future__ import annotations

from typing import Any

import pytest
from mailchimp_marketing.api_client import ApiClientError

from mailchimp_emulator import MailchimpEmulator


def item(email: str, status: str = "subscribed", **extra: Any) -> dict[str, Any]:
    return {"email_address": email, "status": status, **extra}


def batch(client: Any, emu: MailchimpEmulator, members: list[dict[str, Any]],
          **options: Any) -> dict[str, Any]:
    result: dict[str, Any] = client.lists.batch_list_members(
        emu.list_id, {"members": members, **options}
    )
    return result


def test_batch_creates_new_members_and_counts_them(client: Any, emu: MailchimpEmulator) -> None:
    answer = batch(client, emu, [item(f"p{i}@example.com", "pending") for i in range(3)])

    assert answer["total_created"] == 3
    assert [m["status"] for m in answer["new_members"]] == ["pending"] * 3
    assert (answer["total_updated"], answer["error_count"], answer["errors"]) == (0, 0, [])


def test_batch_of_500_members_is_accepted(client: Any, emu: MailchimpEmulator) -> None:
    answer = batch(client, emu, [item(f"p{i}@example.com") for i in range(500)])

    assert answer["total_created"] == 500


def test_batch_of_more_than_500_members_is_rejected(client: Any, emu: MailchimpEmulator) -> None:
    with pytest.raises(ApiClientError) as exc:
        batch(client, emu, [item(f"p{i}@example.com") for i in range(501)])

    assert exc.value.status_code == 400
    assert emu.members() == []


def test_batch_with_update_existing_false_reports_existing_member_as_contact_exists(
    client: Any, emu: MailchimpEmulator
) -> None:
    emu.seed_member("ada@example.com", "subscribed", merge_fields={"FNAME": "Ada"})

    answer = batch(client, emu, [item("ada@example.com", "unsubscribed",
                                      merge_fields={"FNAME": "Eve"})], update_existing=False)

    assert answer["errors"][0]["error_code"] == "ERROR_CONTACT_EXISTS"
    assert answer["errors"][0]["email_address"] == "ada@example.com"
    member = emu.member("ada@example.com")
    assert member is not None
    assert (member["status"], member["merge_fields"]["FNAME"]) == ("subscribed", "Ada")


def test_batch_with_update_existing_true_changes_status_of_existing_members(
    client: Any, emu: MailchimpEmulator
) -> None:
    emu.seed_member("ada@example.com", "subscribed")

    answer = batch(client, emu, [item("ada@example.com", "unsubscribed")], update_existing=True)

    assert answer["total_updated"] == 1
    assert answer["updated_members"][0]["status"] == "unsubscribed"


def test_batch_update_cannot_resubscribe_an_unsubscribed_member(
    client: Any, emu: MailchimpEmulator
) -> None:
    emu.seed_member("ada@example.com", "unsubscribed")

    answer = batch(client, emu, [item("ada@example.com")], update_existing=True)

    assert answer["errors"][0]["error_code"] == "ERROR_GENERIC"
    assert "compliance state" in answer["errors"][0]["error"]
    assert emu.member("ada@example.com")["status"] == "unsubscribed"  # type: ignore[index]


def test_batch_per_member_errors_do_not_stop_the_other_members(
    client: Any, emu: MailchimpEmulator
) -> None:
    emu.seed_member("gone@example.com")
    emu.audience.delete_permanent(emu.member("gone@example.com")["id"])  # type: ignore[index]
    emu.configure(required_merge_fields=["FNAME"])

    answer = batch(client, emu, [
        item("fake@example.invalid", merge_fields={"FNAME": "F"}),
        item("gone@example.com", merge_fields={"FNAME": "G"}),
        item("nofname@example.com"),
        item("fine@example.com", merge_fields={"FNAME": "Fine"}),
    ])

    assert [e["error_code"] for e in answer["errors"]] == ["ERROR_GENERIC"] * 3
    assert [m["email_address"] for m in answer["new_members"]] == ["fine@example.com"]
    assert answer["error_count"] == 3


def test_batch_merge_field_error_names_the_field(client: Any, emu: MailchimpEmulator) -> None:
    answer = batch(client, emu, [item("ada@example.com", merge_fields={"SHOE": "42"})])

    error = answer["errors"][0]
    assert error["field"] == "merge_fields.SHOE"
    assert error["field_message"]


def test_batch_items_use_status_not_status_if_new(client: Any, emu: MailchimpEmulator) -> None:
    answer = batch(client, emu, [{"email_address": "ada@example.com", "status_if_new": "pending"}])

    assert answer["errors"][0]["error_code"] == "ERROR_GENERIC"
    assert emu.member("ada@example.com") is None


def test_batch_pending_counts_a_confirmation_mail_per_member(
    client: Any, emu: MailchimpEmulator
) -> None:
    batch(client, emu, [item("ada@example.com", "pending")])

    assert emu.confirmation_mails_sent("ada@example.com") == 1


def test_batch_sync_tags_replaces_the_member_tags(client: Any, emu: MailchimpEmulator) -> None:
    emu.seed_member("ada@example.com", tags=["old"])

    batch(client, emu, [item("ada@example.com", tags=["new"])], update_existing=True,
          sync_tags=True)

    assert [t["name"] for t in emu.member("ada@example.com")["tags"]] == ["new"]  # type: ignore[index]


def test_batch_counts_members_per_call_in_stats(client: Any, emu: MailchimpEmulator) -> None:
    batch(client, emu, [item(f"p{i}@example.com") for i in range(7)])

    assert emu.stats.batch_sizes == [7]
    assert emu.stats.count("POST", "batch") == 1


def test_an_update_batch_of_500_writes_and_renders_each_member_once(
        emu: MailchimpEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    # The work done, not the time taken (timing belongs in benchmarks/): one write and one
    # rendering per member, so the emulator's batch cost grows with the batch, nothing more.
    members = [item(f"p{i}@example.com", merge_fields={"FNAME": "P"}) for i in range(500)]
    emu.audience.batch({"members": members})
    calls = {"_write": 0, "_render": 0}
    for name in calls:
        real = getattr(emu.audience, name)

        def counted(*args: Any, _real: Any = real, _name: str = name, **kwargs: Any) -> Any:
            calls[_name] += 1
            return _real(*args, **kwargs)

        monkeypatch.setattr(emu.audience, name, counted)

    answer = emu.audience.batch({"members": members, "update_existing": True})

    assert (len(answer["updated_members"]), answer["error_count"]) == (500, 0)
    assert calls == {"_write": 500, "_render": 500}
