"""The template registry: a template is a plain function `(cfg, dag) -> State` plus a
matcher `dag -> bool` that says which DAGs it schedules.

`cfg` is a `ConfigSpace` while the space is being defined (the function then
returns the fallback schedule) or a `ConfigEntity` (one config of that space).
The function must define the same knobs for every config of one DAG.

    >>> @register_template("row_sum", matcher="reduce")     # doctest: +SKIP
    ... def row_sum(cfg, dag): ...
    >>> template = match_template(dag)                      # doctest: +SKIP
    >>> state = template.instantiate(dag, 17)               # config 17 of its space
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from compiler.autotvm.space import Config, ConfigEntity, ConfigSpace
from compiler.schedule.state import State
from compiler.te.dag import ComputeDAG

TemplateFunc = Callable[[Config, ComputeDAG], State]
Matcher = Callable[[ComputeDAG], bool]


class NoTemplateError(ValueError):
    """No registered template schedules this DAG (the message names its op)."""


@dataclass(frozen=True, eq=False)
class Template:
    """A named template function and the matcher that picks its DAGs."""

    name: str
    func: TemplateFunc
    matcher: Matcher
    _spaces: dict[str, ConfigSpace] = field(default_factory=dict, repr=False)

    def space(self, dag: ComputeDAG) -> ConfigSpace:
        """The config space of this template on `dag` (defined once per workload key)."""
        key = dag.workload_key
        if key not in self._spaces:
            cfg = ConfigSpace()
            self.func(cfg, dag)
            self._spaces[key] = cfg
        return self._spaces[key]

    def fallback_state(self, dag: ComputeDAG) -> State:
        """The schedule of the fallback config (for untuned workloads)."""
        return self.func(self.space(dag).fallback(), dag)

    def instantiate(self, dag: ComputeDAG, config: int | ConfigEntity) -> State:
        """The schedule of one config (an index of the space or an entity of it);
        ScheduleError if that config is illegal on this DAG."""
        entity = self.space(dag).get(config) if isinstance(config, int) else config
        return self.func(entity, dag)


TEMPLATES: dict[str, Template] = {}


def register_template(
    name: str, matcher: Matcher | str | Sequence[str], *, override: bool = False
) -> Callable[[TemplateFunc], TemplateFunc]:
    """Decorator: register `func` as template `name` for the DAGs `matcher` accepts.

    `matcher` is a function of the DAG, or one or more anchor tags (compiler/ops/tags.py):
    the DAG must then be that single anchor with element-wise stages around it.
    Templates registered later are tried first, so a user's template wins over a
    built-in one for the same op.
    """
    if name in TEMPLATES and not override:
        raise ValueError(f"template {name!r} is already registered (override=True replaces it)")
    test = matcher if callable(matcher) else _tag_matcher(matcher)

    def wrap(func: TemplateFunc) -> TemplateFunc:
        TEMPLATES.pop(name, None)
        TEMPLATES[name] = Template(name, func, test)
        return func

    return wrap


def _tag_matcher(tags: str | Sequence[str]) -> Matcher:
    from compiler.autotvm.templates.helpers import matches

    wanted = (tags,) if isinstance(tags, str) else tuple(tags)
    return lambda dag: matches(dag, wanted)


def match_template(dag: ComputeDAG) -> Template | None:
    """The most recently registered template whose matcher accepts `dag`."""
    for template in reversed(list(TEMPLATES.values())):
        if template.matcher(dag):
            return template
    return None


def get_template(name: str) -> Template:
    if name not in TEMPLATES:
        raise NoTemplateError(f"no template named {name!r}; known: {', '.join(TEMPLATES)}")
    return TEMPLATES[name]


def template_for(dag: ComputeDAG) -> Template:
    """The template for `dag`, or NoTemplateError naming the DAG's op."""
    template = match_template(dag)
    if template is None:
        raise NoTemplateError(f"no template for {describe_op(dag)}")
    return template


def describe_op(dag: ComputeDAG) -> str:
    """A short name of what the DAG computes: its reduction stages' names, else the output's."""
    names = [t.name for t in dag.tensors if not t.is_placeholder and t.reduce_axes]
    names = list(dict.fromkeys(names)) or [dag.outputs[0].name]
    return f"op {'+'.join(names)} ({'x'.join(map(str, dag.outputs[0].shape))})"
