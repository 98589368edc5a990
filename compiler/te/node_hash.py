"""Structural hashing of immutable expression nodes, computed once per node.

Nodes are frozen dataclasses compared structurally; trees are hashed often (by the
simplifier, by caches keyed on expressions), so each node keeps its hash after the
first call. Shared by the tensor-expression nodes and the loop IR's `Load`.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

_FIELDS: dict[type, Callable[[Any], tuple]] = {}


def cached_hash(self: Any) -> int:
    """Structural hash, computed once per node (trees are hashed often by the simplifier;
    about a fifth of lowering time went to this function when it used a generator and
    a KeyError for each new node)."""
    d = self.__dict__
    h = d.get("_hash")
    if h is None:
        cls = type(self)
        fields = _FIELDS.get(cls) or _fields_getter(cls)
        h = d["_hash"] = hash((cls.__name__, fields(self)))
    return h


def state_without_hash(self: Any) -> dict:
    """Pickled state minus the cached hash: string hashes differ between processes."""
    return {k: v for k, v in self.__dict__.items() if k != "_hash"}


def _fields_getter(cls: type) -> Callable[[Any], tuple]:
    """A function giving the tuple of a node's field values (subclasses, such as the
    loop IR's nodes, get theirs on first use)."""
    names = list(cls.__dataclass_fields__)  # type: ignore[attr-defined]
    if len(names) > 1:
        getter: Callable[[Any], tuple] = operator.attrgetter(*names)
    else:  # attrgetter of one name gives the value, not a tuple
        getter = lambda x: tuple(getattr(x, n) for n in names)
    _FIELDS[cls] = getter
    return getter


def hash_structurally(*classes: type) -> None:
    """Give each (frozen dataclass) node class the cached hash and hash-free pickling."""
    for cls in classes:
        cls.__hash__ = cached_hash  # type: ignore[method-assign]
        cls.__getstate__ = state_without_hash  # type: ignore[method-assign,assignment]
