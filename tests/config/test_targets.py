"""Sync targets: the single-audience settings are one target; [[targets]] describe
several, each checked for what would route or admit people wrongly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from syncd.config import DEFAULT_TARGET, Settings, load_settings
from syncd.errors import ConfigError


def _target(**over: Any) -> dict[str, Any]:
    return {"name": "newsletter", "audience_id": "aud1", "purposes": ["newsletter"]} | over


def test_single_audience_settings_are_one_default_target() -> None:
    settings = Settings(mailchimp_audience_id="aud1", sync_max_unsubscribe_share=0.2,
                        mailchimp_merge_fields={"first_name": "FNAME"})
    (target,) = settings.sync_targets
    assert (target.name, target.audience_id, target.purposes) == (
        DEFAULT_TARGET, "aud1", ("newsletter",))
    assert target.max_unsubscribe_share == 0.2
    assert target.merge_fields == {"first_name": "FNAME"}


def test_no_audience_means_no_target() -> None:
    assert Settings().sync_targets == ()


def test_targets_and_the_single_audience_id_together_are_refused() -> None:
    with pytest.raises(ValidationError, match="either"):
        Settings(mailchimp_audience_id="aud1", targets=[_target()])


def test_two_targets_on_one_audience_are_refused() -> None:
    with pytest.raises(ValidationError, match="audience id 'aud1'"):
        Settings(targets=[_target(), _target(name="offers", purposes=["offers"])])


def test_two_targets_with_one_name_are_refused() -> None:
    with pytest.raises(ValidationError, match="name 'newsletter'"):
        Settings(targets=[_target(), _target(audience_id="aud2")])


def test_a_permission_mapped_to_a_purpose_the_target_does_not_send_is_refused() -> None:
    with pytest.raises(ValidationError, match="does not send: offers"):
        Settings(targets=[_target(marketing_permissions={"Email": "offers"})])


def test_an_interest_of_an_unknown_list_is_refused() -> None:
    with pytest.raises(ValidationError, match="unknown lists: nope"):
        Settings(targets=[_target(interests={"nope": "Topics/Nope"})])


def test_an_interest_without_a_category_is_refused() -> None:
    with pytest.raises(ValidationError, match="Category/Interest name"):
        Settings(targets=[_target(interests={"newsletter": "Dutch"})])


def test_a_soft_opt_in_target_names_one_purpose() -> None:
    with pytest.raises(ValidationError, match="exactly one"):
        Settings(targets=[_target(basis="soft_opt_in", purposes=["offers", "promo"])])


def test_target_by_name_and_by_audience() -> None:
    settings = Settings(targets=[_target(), _target(name="offers", audience_id="aud2",
                                                    purposes=["offers"])])
    assert settings.target("offers").audience_id == "aud2"
    assert settings.target_of_audience("aud1") is settings.target("newsletter")
    assert settings.target_of_audience("other") is None


def test_an_unknown_target_name_is_an_error_naming_the_known_ones() -> None:
    settings = Settings(targets=[_target()])
    with pytest.raises(ConfigError, match="no target is called 'x'; configured: newsletter"):
        settings.target("x")


def test_several_targets_need_a_name() -> None:
    settings = Settings(targets=[_target(), _target(name="b", audience_id="aud2")])
    with pytest.raises(ConfigError, match="--target"):
        settings.target()


def test_target_purposes_are_known_purposes() -> None:
    settings = Settings(targets=[_target(name="offers", purposes=["offers"],
                                         basis="soft_opt_in")])
    assert "offers" in settings.purposes


def test_targets_load_from_toml_array_of_tables(tmp_path: Path) -> None:
    path = tmp_path / "syncd.toml"
    path.write_text('[[targets]]\nname = "nl"\naudience_id = "a1"\npurposes = ["newsletter"]\n'
                    'marketing_permissions = { Email = "newsletter" }\n'
                    '[[targets]]\nname = "offers"\naudience_id = "a2"\npurposes = ["offers"]\n'
                    'basis = "soft_opt_in"\n', encoding="utf-8")
    settings = load_settings(path)
    assert [t.name for t in settings.sync_targets] == ["nl", "offers"]
    assert settings.target("nl").marketing_permissions == {"Email": "newsletter"}
    assert settings.target("offers").basis == "soft_opt_in"
