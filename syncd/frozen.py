"""Frozen dataclasses that are cheap to build: the push builds about a dozen value
objects per contact (facts, decision, member data, change, outcome, checkpoint), and a
frozen dataclass's generated __init__ pays one `object.__setattr__` per field, about five
times the cost of the rest of building it (a 15-field one: ~6 us against ~1.2 us).

`quick_init` replaces only that __init__: same parameters, same defaults and default
factories, the fields written into the instance's dict in one update. Everything else
stays the dataclass's own: frozen (assignment raises FrozenInstanceError), __eq__,
__hash__, __repr__, `dataclasses.replace`, `fields`, `asdict`."""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar, cast

_T = TypeVar("_T")
_FACTORY = object()  # a parameter left out whose field has a default factory


def quick_init(cls: type[_T]) -> type[_T]:
    """Apply below @dataclass(frozen=True): a plain frozen dataclass only (no slots, no
    __post_init__, no init=False, keyword-only or InitVar fields), else TypeError."""
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen or "__slots__" in cls.__dict__ or hasattr(
            cls, "__post_init__"):
        raise TypeError(f"{cls.__name__}: quick_init takes a plain frozen dataclass")
    env: dict[str, Any] = {"_FACTORY": _FACTORY}
    args, body = [], []
    found = dataclasses.fields(cast(Any, cls))
    for f in found:
        if not f.init or f.kw_only or f.name.startswith("_"):
            raise TypeError(f"{cls.__name__}.{f.name}: not a plain init field")
        if f.default is not dataclasses.MISSING:
            env[f"_d_{f.name}"] = f.default
            args.append(f"{f.name}=_d_{f.name}")
        elif f.default_factory is not dataclasses.MISSING:
            env[f"_f_{f.name}"] = f.default_factory
            args.append(f"{f.name}=_FACTORY")
            body.append(f"    if {f.name} is _FACTORY:\n        {f.name} = _f_{f.name}()\n")
        else:
            args.append(f.name)
    names = [f.name for f in found]
    source = (f"def __init__(self, {', '.join(args)}):\n{''.join(body)}"
              f"    self.__dict__.update({', '.join(f'{n}={n}' for n in names)})\n")
    exec(source, env)  # noqa: S102 - our own text, built from the class's field names
    init = env["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    cls.__init__ = init  # type: ignore[method-assign]
    return cls
