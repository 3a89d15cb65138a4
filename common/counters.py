"""Records of named event counters (packets seen, refusals, errors...), one definition.

Controller cores and the PLC's request guard each count events in a record whose fields are
all integers starting at zero; :func:`counter_record` makes such a dataclass from the names,
so the shape (fields, zero defaults, ``as_dict`` for logs and stats replies) is written once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import field, fields, make_dataclass
from typing import Any


def _as_dict(self: Any) -> dict[str, int]:
    return {f.name: getattr(self, f.name) for f in fields(self)}


def counter_record(name: str, names: Sequence[str], doc: str, module: str) -> type:
    """A mutable dataclass ``name`` with one ``int`` field per name, each starting at 0, and
    ``as_dict()``. doc: the class docstring; module: the defining module's ``__name__`` (so
    the class's repr and pickling name it where it is used)."""
    if len(set(names)) != len(names) or not all(n.isidentifier() for n in names):
        raise ValueError(f"counter names must be distinct identifiers: {names}")
    cls = make_dataclass(name, [(n, int, field(default=0)) for n in names],
                         namespace={"as_dict": _as_dict, "__doc__": doc})
    cls.__module__ = module
    return cls
