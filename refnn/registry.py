"""The one registry of components: every layer, loss and optimizer class, by name (NOTE-REGISTRY).

A component class registers where it is defined, with the :func:`register` decorator; a user's
own layer registers the same way. Everything that needs to know the components reads this
registry instead of a list of names: ``refnn.io`` (which classes a file may name, their
parameter and buffer shapes), ``make check`` (each layer's ``examples()``), the kit
(``refnn.testing``) and the test tables. This module imports nothing of refnn, so every floor
of the package can use it.
"""

from __future__ import annotations

import inspect
from typing import Any, Literal, TypeVar

Kind = Literal["layer", "loss", "optimizer"]
KINDS: tuple[Kind, ...] = ("layer", "loss", "optimizer")

_COMPONENTS: dict[str, type[Any]] = {}

C = TypeVar("C", bound=type[Any])


def kind_of(cls: type[Any]) -> Kind:
    """The kind of a component class, from its base class's ``component_kind``."""
    kind = getattr(cls, "component_kind", None)
    if kind not in KINDS:
        raise TypeError(
            f"only subclasses of refnn's Layer, Loss or Optimizer can be registered, got {cls!r}"
        )
    out: Kind = kind
    return out


def register(cls: C) -> C:
    """Register a concrete component class under its name; returns it (a class decorator).

    Raises
    ------
    TypeError
        For anything but a concrete subclass of Layer, Loss or Optimizer.
    ValueError
        When another class is registered under the same name.
    """
    if not isinstance(cls, type) or inspect.isabstract(cls):
        raise TypeError(f"register() takes a concrete component class, got {cls!r}")
    kind_of(cls)
    known = _COMPONENTS.get(cls.__name__, cls)
    if known is not cls:
        raise ValueError(
            f"a component named {cls.__name__!r} is already registered ({known.__module__}."
            f"{known.__qualname__}); names must be unique: rename {cls.__qualname__}"
        )
    _COMPONENTS[cls.__name__] = cls
    return cls


def components(kind: Kind | None = None) -> dict[str, type[Any]]:
    """The registered classes by name, in registration order; only those of ``kind`` if given."""
    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    return {n: c for n, c in _COMPONENTS.items() if kind is None or kind_of(c) == kind}


def component(name: object, kind: Kind | None = None) -> type[Any]:
    """The registered class called ``name`` (of ``kind`` if given); ValueError names the known."""
    found = components(kind)
    if not isinstance(name, str):
        raise TypeError(f"a component name must be a str, got {type(name).__name__}")
    if name not in found:
        raise ValueError(
            f"unknown {kind or 'component'} {name!r}; registered: {', '.join(found) or 'none'}"
        )
    return found[name]
