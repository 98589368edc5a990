"""The dimensions of a template's config space: split, reorder, annotate and free knobs.

Each knob is an ordered, immutable list of entities (its choices) with a numeric
feature row per entity for the XGBoost tuner. A knob's entities are enumerated
once, when a template defines it; the config space (space.py) is their product.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np


class SpaceError(ValueError):
    """A knob that cannot be defined (bad policy, empty choice list, duplicate name)."""


# ------------------------------------------------------------------ entities


@dataclass(frozen=True)
class SplitEntity:
    """Loop extents of one split, outer to inner; the outer one is ceil(extent / rest)."""

    size: tuple[int, ...]

    @property
    def factors(self) -> tuple[int, ...]:
        """The inner extents: what a `Split` step takes."""
        return self.size[1:]

    def __getitem__(self, i: int) -> int:
        return self.size[i]


@dataclass(frozen=True)
class ReorderEntity:
    """A permutation: position p of the new order holds axis `perm[p]`."""

    perm: tuple[int, ...]

    def apply(self, axes: Sequence[Any]) -> list[Any]:
        """The axes in this order (`cfg["order"].apply([a, b, c])`)."""
        return [axes[p] for p in self.perm]


ANNOTATIONS = ("none", "unroll", "vec")


@dataclass(frozen=True)
class AnnotateEntity:
    """One of "none", "unroll", "vec" per axis."""

    anns: tuple[str, ...]

    def __getitem__(self, i: int) -> str:
        return self.anns[i]


@dataclass(frozen=True)
class OtherEntity:
    """A free knob's value (`cfg["unroll"].val`)."""

    val: Any


Entity = SplitEntity | ReorderEntity | AnnotateEntity | OtherEntity


# ------------------------------------------------------------------- knobs


@dataclass(frozen=True)
class Knob:
    """One dimension of a config space: a kind, its entities and their feature rows."""

    name: str
    kind: str  # split | reorder | annotate | other
    entities: tuple[Entity, ...]

    def __len__(self) -> int:
        return len(self.entities)

    def feature_table(self) -> np.ndarray:
        """[len(self), d]: the numbers the XGBoost tuner sees for each entity."""
        return _feature_table(self)

    def to_json(self, i: int) -> Any:
        e = self.entities[i]
        match e:
            case SplitEntity(size):
                return list(size)
            case ReorderEntity(perm):
                return list(perm)
            case AnnotateEntity(anns):
                return list(anns)
            case OtherEntity(val):
                return val if isinstance(val, (int, float, str, bool)) or val is None else str(val)
        raise AssertionError(e)

    def nearest(self, want: Any) -> int:
        """The entity closest to `want` (a size list with -1 outer, a value...): fallbacks."""
        if self.kind == "split":
            return _nearest_split(self, want)
        for i, e in enumerate(self.entities):
            if _same(e, want):
                return i
        raise SpaceError(f"knob {self.name}: fallback {want!r} is not one of its choices")


def _same(e: Entity, want: Any) -> bool:
    match e:
        case ReorderEntity(perm):
            return tuple(want) == perm
        case AnnotateEntity(anns):
            return tuple(want) == anns
        case OtherEntity(val):
            return val == want
    return e == want


def _nearest_split(knob: Knob, want: Sequence[int]) -> int:
    """Closest in log2 over the inner sizes (the outer one follows from them)."""
    inner = [max(int(w), 1) for w in list(want)[1:]]

    def distance(i: int) -> float:
        size = knob.entities[i].size  # type: ignore[union-attr]
        if len(size) != len(inner) + 1:
            raise SpaceError(f"knob {knob.name}: fallback {list(want)} has the wrong length")
        return sum(abs(math.log2(s) - math.log2(w)) for s, w in zip(size[1:], inner))

    return min(range(len(knob)), key=lambda i: (distance(i), i))


def _feature_table(knob: Knob) -> np.ndarray:
    rows: list[list[float]] = []
    for e in knob.entities:
        match e:
            case SplitEntity(size):
                # log2 of every loop extent, and of every inner tile (product inward)
                cum = [math.log2(math.prod(size[i:])) for i in range(1, len(size) - 1)]
                rows.append([math.log2(s) for s in size] + cum)
            case ReorderEntity(perm):
                rows.append([float(p) for p in perm])
            case AnnotateEntity(anns):
                rows.append([float(ANNOTATIONS.index(a)) for a in anns])
            case OtherEntity(val):
                rows.append([_number(knob, val)])
    return np.asarray(rows, dtype=np.float64).reshape(len(knob.entities), -1)


def _number(knob: Knob, val: Any) -> float:
    """A numeric value as itself; anything else as its position among the choices."""
    if all(isinstance(e.val, (int, float)) for e in knob.entities):  # type: ignore[union-attr]
        return float(val)
    return float(next(i for i, e in enumerate(knob.entities) if e.val == val))  # type: ignore[union-attr]


# ------------------------------------------------------------ split choices

SPLIT_POLICIES = ("factors", "power2", "verbose", "candidate")


@cache
def ordered_factorizations(extent: int, parts: int) -> tuple[tuple[int, ...], ...]:
    """Every (p0, ..., p_{parts-1}) of positive integers with product == extent."""
    if parts == 1:
        return ((extent,),)
    out: list[tuple[int, ...]] = []
    for d in divisors(extent):
        out.extend((d,) + rest for rest in ordered_factorizations(extent // d, parts - 1))
    return tuple(out)


@cache
def divisors(n: int) -> tuple[int, ...]:
    small = [d for d in range(1, math.isqrt(n) + 1) if n % d == 0]
    return tuple(sorted(set(small + [n // d for d in small])))


def _power2_sizes(extent: int, parts: int) -> list[tuple[int, ...]]:
    """Inner extents powers of two (product <= extent), the outer one ceil(extent / product)."""
    pows = [1 << i for i in range(extent.bit_length()) if 1 << i <= extent]
    out = []
    for inner in itertools.product(pows, repeat=parts - 1):
        p = math.prod(inner)
        if p <= extent:
            out.append((-(-extent // p),) + inner)
    return out


def split_sizes(
    name: str,
    extent: int,
    parts: int,
    policy: str,
    *,
    max_factor: int | None = None,
    candidate: Sequence[Sequence[int]] | None = None,
    filter: Callable[[SplitEntity], bool] | None = None,
) -> tuple[SplitEntity, ...]:
    """The entities of a split knob under a policy, sorted by their inner extents."""
    if not isinstance(extent, int) or extent < 1:
        raise SpaceError(f"knob {name}: a split needs a positive extent, got {extent!r}")
    if parts < 2:
        raise SpaceError(f"knob {name}: num_outputs must be at least 2, got {parts}")
    if policy == "factors":
        sizes = list(ordered_factorizations(extent, parts))
    elif policy == "power2":
        sizes = _power2_sizes(extent, parts)
    elif policy == "verbose":
        sizes = list(set(ordered_factorizations(extent, parts)) | set(_power2_sizes(extent, parts)))
    elif policy == "candidate":
        sizes = [_complete(name, extent, parts, c) for c in candidate or ()]
    else:
        raise SpaceError(f"knob {name}: unknown split policy {policy!r}; one of {SPLIT_POLICIES}")
    if max_factor is not None:
        sizes = [s for s in sizes if max(s[1:]) <= max_factor]
    entities = [SplitEntity(tuple(s)) for s in sorted(set(sizes), key=lambda s: s[1:])]
    if filter is not None:
        entities = [e for e in entities if filter(e)]
    if not entities:
        raise SpaceError(f"knob {name}: no split of {extent} into {parts} is left ({policy})")
    return tuple(entities)


def _complete(name: str, extent: int, parts: int, size: Sequence[int]) -> tuple[int, ...]:
    """A candidate size list with -1 outermost made concrete."""
    size = [int(s) for s in size]
    if len(size) != parts or any(s < 1 for s in size[1:]):
        raise SpaceError(f"knob {name}: candidate {size} is not {parts} positive sizes")
    inner = math.prod(size[1:])
    outer = -(-extent // inner)
    if size[0] not in (-1, outer):
        raise SpaceError(f"knob {name}: candidate {size} does not cover an extent of {extent}")
    return (outer, *size[1:])


# ---------------------------------------------------------- reorder choices

REORDER_POLICIES = ("identity", "all", "interval_all", "candidate", "interleave")


def reorder_perms(
    name: str,
    axes: Sequence[Any],
    policy: str,
    *,
    candidate: Sequence[Sequence[Any]] | None = None,
    interval: tuple[int, int] | None = None,
    spatial: Sequence[Sequence[Any]] | None = None,
    reduce: Sequence[Sequence[Any]] | None = None,
) -> tuple[ReorderEntity, ...]:
    """The permutations of a reorder knob.

    identity: only the given order; all: every permutation; interval_all: every
    permutation of axes[lo:hi]; candidate: the listed orders; interleave: every
    merge of the `spatial` and `reduce` groups (lists of axes), each group kept
    together and each kind's groups kept in their order (outer to inner).
    """
    n = len(axes)
    if policy == "identity":
        perms = [tuple(range(n))]
    elif policy == "all":
        perms = list(itertools.permutations(range(n)))
    elif policy == "interval_all":
        lo, hi = interval or (0, n)
        perms = [
            tuple(range(lo)) + p + tuple(range(hi, n))
            for p in itertools.permutations(range(lo, hi))
        ]
    elif policy == "candidate":
        perms = [_positions(name, axes, c) for c in candidate or ()]
    elif policy == "interleave":
        perms = _interleavings(name, axes, spatial or (), reduce or ())
    else:
        raise SpaceError(f"knob {name}: unknown reorder policy {policy!r}; {REORDER_POLICIES}")
    unique = list(dict.fromkeys(perms))
    if not unique:
        raise SpaceError(f"knob {name}: no order to choose from")
    return tuple(ReorderEntity(p) for p in unique)


def _positions(name: str, axes: Sequence[Any], order: Sequence[Any]) -> tuple[int, ...]:
    pos = []
    for a in order:
        hits = [i for i, b in enumerate(axes) if b == a and i not in pos]
        if not hits:
            raise SpaceError(f"knob {name}: {a!r} in an order is not one of the axes")
        pos.append(hits[0])
    if len(pos) != len(axes):
        raise SpaceError(f"knob {name}: an order must list every axis once")
    return tuple(pos)


def _interleavings(
    name: str,
    axes: Sequence[Any],
    spatial: Sequence[Sequence[Any]],
    reduce: Sequence[Sequence[Any]],
) -> list[tuple[int, ...]]:
    s_groups = [_positions_of(name, axes, g) for g in spatial]
    r_groups = [_positions_of(name, axes, g) for g in reduce]
    flat = sorted(p for g in s_groups + r_groups for p in g)
    if flat != list(range(len(axes))):
        raise SpaceError(f"knob {name}: spatial and reduce groups must cover every axis once")
    ns, nr = len(s_groups), len(r_groups)
    out = []
    for r_slots in itertools.combinations(range(ns + nr), nr):
        s_it, r_it = iter(s_groups), iter(r_groups)
        order = [
            p for slot in range(ns + nr) for p in (next(r_it) if slot in r_slots else next(s_it))
        ]
        out.append(tuple(order))
    return out


def _positions_of(name: str, axes: Sequence[Any], group: Sequence[Any]) -> list[int]:
    out = []
    for a in group:
        hits = [i for i, b in enumerate(axes) if b == a]
        if not hits:
            raise SpaceError(f"knob {name}: {a!r} is not one of the axes")
        out.append(hits[0])
    return out


# --------------------------------------------------------- annotate choices

ANNOTATE_POLICIES = ("try_unroll", "try_vec", "try_unroll_vec")


def annotate_choices(name: str, n_axes: int, policy: str) -> tuple[AnnotateEntity, ...]:
    """try_unroll: each axis unrolled or not; try_vec: the last axis vectorized or not;
    try_unroll_vec: each axis unrolled or not, the last one also possibly vectorized."""
    if n_axes < 1:
        raise SpaceError(f"knob {name}: annotate needs at least one axis")
    per_axis: list[tuple[str, ...]]
    if policy == "try_unroll":
        per_axis = [("none", "unroll")] * n_axes
    elif policy == "try_vec":
        per_axis = [("none",)] * (n_axes - 1) + [("none", "vec")]
    elif policy == "try_unroll_vec":
        per_axis = [("none", "unroll")] * (n_axes - 1) + [("none", "unroll", "vec")]
    else:
        raise SpaceError(f"knob {name}: unknown annotate policy {policy!r}; {ANNOTATE_POLICIES}")
    return tuple(AnnotateEntity(tuple(c)) for c in itertools.product(*per_axis))
