"""The groups a person left ticked, as the parser reads them from a profile or subscribe
body (`data[merges][GROUPINGS][n][name]` and `[groups]`, docs/mailchimp.md section 6):
per category the body reports, the group names, comma-separated with `\\,` for a comma
in a name; a category the body does not carry is absent (nothing is known of it), and
odd shapes are passed over, never an error. Each test through `parse_body` and
`chosen_groups`, the functions a profile webhook runs (member_events)."""

from __future__ import annotations

from urllib.parse import urlencode

from syncd.webhooks.mailchimp_form import chosen_groups, parse_body

GROUPINGS = "data[merges][GROUPINGS]"


def groups_of(*fields: tuple[str, str]) -> dict[str, frozenset[str]]:
    body = urlencode([("type", "profile"), ("data[email]", "ada@example.com"), *fields])
    return chosen_groups(parse_body(body.encode()))


def test_the_groups_ticked_are_read_per_category() -> None:
    assert groups_of((f"{GROUPINGS}[0][name]", "Language"),
                     (f"{GROUPINGS}[0][groups]", "Dutch,English"),
                     (f"{GROUPINGS}[1][name]", "Topics"),
                     (f"{GROUPINGS}[1][groups]", "Music")) == {
        "Language": frozenset({"Dutch", "English"}), "Topics": frozenset({"Music"})}


def test_group_names_with_an_escaped_comma_are_read_whole() -> None:
    assert groups_of((f"{GROUPINGS}[0][name]", "Topics"),
                     (f"{GROUPINGS}[0][groups]", "Arts\\, crafts,Music")) == {
        "Topics": frozenset({"Arts, crafts", "Music"})}


def test_category_and_group_names_are_trimmed_and_empty_names_dropped() -> None:
    assert groups_of((f"{GROUPINGS}[0][name]", " Language "),
                     (f"{GROUPINGS}[0][groups]", " Dutch , ,English ,")) == {
        "Language": frozenset({"Dutch", "English"})}


def test_a_category_without_groups_has_none_ticked() -> None:
    assert groups_of((f"{GROUPINGS}[0][name]", "Topics")) == {"Topics": frozenset()}


def test_a_category_whose_groups_are_no_text_has_none_ticked() -> None:
    assert groups_of((f"{GROUPINGS}[0][name]", "Topics"),
                     (f"{GROUPINGS}[0][groups][0]", "Music")) == {"Topics": frozenset()}


def test_an_entry_without_a_name_is_passed_over_and_the_next_one_read() -> None:
    assert groups_of((f"{GROUPINGS}[0][groups]", "Dutch"),
                     (f"{GROUPINGS}[1][name]", " "),
                     (f"{GROUPINGS}[1][groups]", "English"),
                     (f"{GROUPINGS}[2][name]", "Topics"),
                     (f"{GROUPINGS}[2][groups]", "Music")) == {"Topics": frozenset({"Music"})}


def test_an_entry_that_is_no_group_is_passed_over_and_the_next_one_read() -> None:
    assert groups_of((f"{GROUPINGS}[0]", "Language"),
                     (f"{GROUPINGS}[1][name]", "Topics"),
                     (f"{GROUPINGS}[1][groups]", "Music")) == {"Topics": frozenset({"Music"})}


def test_a_body_without_groupings_reports_no_category() -> None:
    assert groups_of(("data[merges][FNAME]", "Ada")) == {}


def test_a_data_that_is_no_group_reports_no_category() -> None:
    assert chosen_groups(parse_body(b"type=profile&data=x")) == {}


def test_merges_that_are_no_group_report_no_category() -> None:
    assert groups_of(("data[merges]", "x")) == {}


def test_groupings_that_are_no_group_report_no_category() -> None:
    assert groups_of((GROUPINGS, "x")) == {}
