"""Config spaces of AutoTVM-style templates (docs/autotvm.md#knobs).

A template is a plain function `(cfg, dag) -> State` that declares knobs on
`cfg` and schedules with the chosen values. Run on a fresh `ConfigSpace`, the
`define_*` calls build the space and `cfg[name]` returns the knob's fallback
choice, so the same run yields the fallback schedule; run on a `ConfigEntity`
(`space.get(index)`), the `define_*` calls only return that config's choices.

The space is the product of its knobs; index <-> config is mixed-radix decoding
with the first-defined knob as the fastest digit.

    >>> cfg = ConfigSpace()
    >>> _ = cfg.define_split("tile_i", 64, num_outputs=3, max_factor=16)
    >>> _ = cfg.define_knob("unroll", [0, 16, 64])
    >>> entity = cfg.get(5)
    >>> entity["tile_i"].size, entity["unroll"].val, cfg.index_of(entity.point) == 5
    ((32, 2, 1), 0, True)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from compiler.autotvm.knobs import (
    AnnotateEntity,
    Entity,
    Knob,
    OtherEntity,
    ReorderEntity,
    SpaceError,
    SplitEntity,
    annotate_choices,
    reorder_perms,
    split_sizes,
)


class ConfigSpace:
    """The knobs a template defines, their fallback choices and index arithmetic."""

    def __init__(self) -> None:
        self.knobs: dict[str, Knob] = {}
        self.fallback_point: dict[str, int] = {}
        self._tables: list[np.ndarray] | None = None

    # -------------------------------------------------------------- defining

    def define_split(
        self,
        name: str,
        extent: int,
        *,
        num_outputs: int = 2,
        policy: str = "factors",
        max_factor: int | None = None,
        candidate: Sequence[Sequence[int]] | None = None,
        filter: Callable[[SplitEntity], bool] | None = None,
        fallback: Sequence[int] | None = None,
    ) -> SplitEntity:
        """A split of a loop of `extent` into `num_outputs` loops (outer to inner).

        policy: factors (exact divisors), power2 (inner extents powers of two, the
        outer one rounded up), verbose (both), candidate (the given size lists; -1
        as the outer size means "the rest"). `max_factor` caps every inner extent;
        `filter` drops entities; `fallback` (e.g. [-1, 8, 32]) picks the nearest.
        """
        entities = split_sizes(
            name, extent, num_outputs, policy,
            max_factor=max_factor, candidate=candidate, filter=filter,
        )  # fmt: skip
        return self._add(Knob(name, "split", entities), fallback)  # type: ignore[return-value]

    def define_reorder(
        self,
        name: str,
        axes: Sequence[Any],
        policy: str = "identity",
        *,
        candidate: Sequence[Sequence[Any]] | None = None,
        interval: tuple[int, int] | None = None,
        spatial: Sequence[Sequence[Any]] | None = None,
        reduce: Sequence[Sequence[Any]] | None = None,
        fallback: Sequence[Any] | None = None,
    ) -> ReorderEntity:
        """An order of `axes` (any values: loop names, uids); see `knobs.reorder_perms`.
        `fallback` is an order (of the axes); the default is the first choice."""
        entities = reorder_perms(
            name, axes, policy,
            candidate=candidate, interval=interval, spatial=spatial, reduce=reduce,
        )  # fmt: skip
        want = None
        if fallback is not None:
            want = tuple(list(axes).index(a) for a in fallback)
        return self._add(Knob(name, "reorder", entities), want)  # type: ignore[return-value]

    def define_annotate(
        self,
        name: str,
        axes: Sequence[Any],
        policy: str = "try_unroll",
        *,
        fallback: Sequence[str] | None = None,
    ) -> AnnotateEntity:
        """Per axis "none" / "unroll" / "vec": try_unroll, try_vec or try_unroll_vec."""
        entities = annotate_choices(name, len(axes), policy)
        return self._add(Knob(name, "annotate", entities), fallback)  # type: ignore[return-value]

    def define_knob(
        self, name: str, candidates: Sequence[Any], *, fallback: Any = None
    ) -> OtherEntity:
        """A free choice among `candidates` (`cfg[name].val`)."""
        if not candidates:
            raise SpaceError(f"knob {name}: no candidates")
        entities = tuple(OtherEntity(c) for c in candidates)
        return self._add(Knob(name, "other", entities), fallback)  # type: ignore[return-value]

    def _add(self, knob: Knob, fallback: Any) -> Entity:
        if knob.name in self.knobs:
            raise SpaceError(f"knob {knob.name} is defined twice")
        self.knobs[knob.name] = knob
        self.fallback_point[knob.name] = 0 if fallback is None else knob.nearest(fallback)
        self._tables = None
        return self[knob.name]

    def __getitem__(self, name: str) -> Entity:
        """While defining: the knob's fallback choice."""
        return self.knobs[name].entities[self.fallback_point[name]]

    # --------------------------------------------------------- index <-> config

    @property
    def dims(self) -> list[int]:
        return [len(k) for k in self.knobs.values()]

    def __len__(self) -> int:
        return math.prod(self.dims)

    def point(self, index: int) -> tuple[int, ...]:
        """Mixed-radix digits of `index`, one entity index per knob (first knob fastest)."""
        if not 0 <= index < len(self):
            raise IndexError(f"config index {index} outside a space of {len(self)}")
        out = []
        for d in self.dims:
            index, digit = divmod(index, d)
            out.append(digit)
        return tuple(out)

    def index_of(self, point: Sequence[int]) -> int:
        index, scale = 0, 1
        for digit, d in zip(point, self.dims, strict=True):
            if not 0 <= digit < d:
                raise IndexError(f"knob choice {digit} outside 0..{d - 1}")
            index += int(digit) * scale
            scale *= d
        return index

    def get(self, index: int) -> ConfigEntity:
        return ConfigEntity(self, index)

    def fallback(self) -> ConfigEntity:
        """The deterministic config for untuned workloads (each knob's fallback choice)."""
        point = [self.fallback_point[n] for n in self.knobs]
        return ConfigEntity(self, self.index_of(point), is_fallback=True)

    def random_index(self, rng: np.random.Generator) -> int:
        """A uniform index (digits drawn per knob, so spaces beyond int64 work)."""
        return self.index_of([int(rng.integers(d)) for d in self.dims])

    # --------------------------------------------------------------- features

    def feature_tables(self) -> list[np.ndarray]:
        if self._tables is None:
            self._tables = [k.feature_table() for k in self.knobs.values()]
        return self._tables

    def points_features(self, points: np.ndarray) -> np.ndarray:
        """Knob features of configs given as digit rows [n, n_knobs] -> [n, n_features]."""
        tables = self.feature_tables()
        if not tables:
            return np.zeros((len(points), 0))
        return np.concatenate([t[points[:, k]] for k, t in enumerate(tables)], axis=1)

    def features(self, indices: Iterable[int]) -> np.ndarray:
        points = np.asarray([self.point(i) for i in indices], dtype=np.int64)
        return self.points_features(points.reshape(-1, len(self.knobs)))

    @property
    def signature(self) -> str:
        """Knob names and kinds: configs of spaces with one signature share features."""
        return ";".join(f"{k.name}:{k.kind}" for k in self.knobs.values())

    def __repr__(self) -> str:
        knobs = ", ".join(f"{k.name}({k.kind}, {len(k)})" for k in self.knobs.values())
        return f"ConfigSpace(len={len(self)}: {knobs})"


class ConfigEntity:
    """One config of a space: `define_*` return its choice for the knob by name."""

    def __init__(self, space: ConfigSpace, index: int, *, is_fallback: bool = False) -> None:
        self.space = space
        self.index = index
        self.point = space.point(index)
        self.is_fallback = is_fallback
        self._choice = {
            name: knob.entities[d] for (name, knob), d in zip(space.knobs.items(), self.point)
        }

    def __getitem__(self, name: str) -> Entity:
        try:
            return self._choice[name]
        except KeyError:
            raise SpaceError(f"knob {name} is not in this config's space") from None

    def _defined(self, name: str, kind: str) -> Entity:
        knob = self.space.knobs.get(name)
        if knob is None or knob.kind != kind:
            raise SpaceError(f"the template defines {kind} knob {name}, not in its space")
        return self._choice[name]

    def define_split(self, name: str, *args: Any, **kwargs: Any) -> SplitEntity:
        return self._defined(name, "split")  # type: ignore[return-value]

    def define_reorder(self, name: str, *args: Any, **kwargs: Any) -> ReorderEntity:
        return self._defined(name, "reorder")  # type: ignore[return-value]

    def define_annotate(self, name: str, *args: Any, **kwargs: Any) -> AnnotateEntity:
        return self._defined(name, "annotate")  # type: ignore[return-value]

    def define_knob(self, name: str, *args: Any, **kwargs: Any) -> OtherEntity:
        return self._defined(name, "other")  # type: ignore[return-value]

    def features(self) -> np.ndarray:
        return self.space.points_features(np.asarray([self.point], dtype=np.int64))[0]

    def to_json(self) -> dict[str, Any]:
        """{knob name: choice} in plain JSON values."""
        return {
            name: knob.to_json(d) for (name, knob), d in zip(self.space.knobs.items(), self.point)
        }

    def __repr__(self) -> str:
        return f"ConfigEntity({self.index}: {self.to_json()})"


Config = ConfigSpace | ConfigEntity
