"""The search policies by name: the registry above the sketch search and AutoTVM.

`compiler/search/policy.py` defines the interface (`SearchPolicy`) and the
sketch and random policies; `compiler/autotvm/policy.py` the template policy,
which subclasses it. This module, which may import both, picks one by name:

    >>> from compiler.policies import create
    >>> policy = create("sketch", dag, model=create_model("xgb"), seed=0)  # doctest: +SKIP
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from compiler.autotvm.policy import TemplatePolicy
from compiler.autotvm.templates import NoTemplateError, describe_op
from compiler.search.policy import RandomPolicy, SearchPolicy, SketchPolicy
from compiler.te.dag import ComputeDAG

POLICIES = ("sketch", "template", "random")


def create(kind: str, dag: ComputeDAG, **kwargs) -> SearchPolicy:
    """A search policy by name: "sketch" (needs model=...), "random", or "template"
    (kwargs tuner = grid | random | ga | xgb; NoTemplateError when no template matches)."""
    if kind == "sketch":
        return SketchPolicy(dag, **kwargs)
    if kind == "random":
        return RandomPolicy(dag, **kwargs)
    if kind == "template":
        kwargs.pop("model", None)  # templates are searched by their tuner's own model
        return TemplatePolicy(dag, **kwargs)
    raise ValueError(f"unknown search policy {kind!r}; choose from {', '.join(POLICIES)}")


def print_to_stderr(message: str) -> None:
    print(message, file=sys.stderr)


def policy_for_task(
    kind: str,
    dag: ComputeDAG,
    *,
    model,
    tuner: str = "xgb",
    seed: int = 0,
    cores: int | None = None,
    warn: Callable[[str], None] = print_to_stderr,
    name: str | None = None,
) -> SearchPolicy:
    """The policy for one task: `create(kind, ...)`, except that "template" falls back
    to the sketch policy when no template matches the DAG, saying so once with `warn`
    (one line naming the task, `name`, or its op)."""
    if kind == "template":
        try:
            return create("template", dag, tuner=tuner, seed=seed, cores=cores)
        except NoTemplateError:
            what = f"task {name} ({describe_op(dag)})" if name else describe_op(dag)
            warn(f"no template for {what}: using the sketch policy")
            kind = "sketch"
    if kind == "random":
        return create("random", dag, seed=seed, cores=cores)
    return create(kind, dag, model=model, seed=seed, cores=cores)
