"""syncd.frozen.quick_init: the same objects as the dataclass's own __init__ builds."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import pytest

from syncd.frozen import quick_init


@dataclass(frozen=True)
class Plain:
    name: str
    count: int = 3
    tags: tuple[str, ...] = ()
    extra: dict[str, str] = field(default_factory=dict)


@quick_init
@dataclass(frozen=True)
class Quick:
    name: str
    count: int = 3
    tags: tuple[str, ...] = ()
    extra: dict[str, str] = field(default_factory=dict)


def _values(obj: object) -> tuple[object, ...]:
    return tuple(getattr(obj, f.name) for f in dataclasses.fields(Plain))


def test_quick_init_builds_the_fields_the_dataclass_init_builds() -> None:
    cases: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
        (("a",), {}), (("a", 5), {"extra": {"k": "v"}}), ((), {"name": "b", "tags": ("x",)})]
    for args, kwargs in cases:
        assert _values(Quick(*args, **kwargs)) == _values(Plain(*args, **kwargs))


def test_quick_init_gives_each_instance_its_own_default_factory_value() -> None:
    assert Quick("a").extra is not Quick("b").extra


def test_quick_init_keeps_the_instance_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Quick("a").count = 4  # type: ignore[misc]


def test_quick_init_keeps_the_dataclass_replace() -> None:
    assert dataclasses.replace(Quick("a", 1), count=2) == Quick("a", 2)


def test_quick_init_keeps_the_dataclass_repr() -> None:
    assert repr(Quick("a", 1)) == "Quick(name='a', count=1, tags=(), extra={})"


def test_quick_init_refuses_a_missing_required_argument() -> None:
    with pytest.raises(TypeError):
        Quick()  # type: ignore[call-arg]


def test_quick_init_refuses_a_class_that_is_not_frozen() -> None:
    @dataclass
    class Mutable:
        name: str

    with pytest.raises(TypeError):
        quick_init(Mutable)


def test_quick_init_refuses_a_class_with_post_init() -> None:
    @dataclass(frozen=True)
    class Checked:
        name: str

        def __post_init__(self) -> None:
            pass

    with pytest.raises(TypeError):
        quick_init(Checked)
