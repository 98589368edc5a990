"""AutoTVM-style search (docs/autotvm.md#knobs): schedule templates with tunable knobs,
and tuners that search their config spaces.

    >>> from compiler.autotvm import TemplatePolicy, match_template     # doctest: +SKIP
    >>> template = match_template(dag)              # from the anchor op's tag
    >>> space = template.space(dag)                 # ConfigSpace: knobs, len(space)
    >>> state = template.instantiate(dag, 1234)     # the schedule of config 1234
    >>> policy = TemplatePolicy(dag, tuner="xgb")   # a SearchPolicy for the tuning loop

Modules: space.py / knobs.py (config spaces), templates/ (registry and the
built-in templates), tuners/ (grid, random, GA, XGBoost), policy.py.
"""

from compiler.autotvm.knobs import (
    AnnotateEntity,
    OtherEntity,
    ReorderEntity,
    SpaceError,
    SplitEntity,
)
from compiler.autotvm.space import ConfigEntity, ConfigSpace
from compiler.autotvm.templates import (
    TEMPLATES,
    NoTemplateError,
    Sched,
    Template,
    get_template,
    match_template,
    register_template,
    template_for,
)
from compiler.autotvm.tuners import (
    TUNERS,
    GATuner,
    GridTuner,
    RandomTuner,
    Tuner,
    XGBTuner,
    create_tuner,
    run_tuner,
)


def __getattr__(name: str):
    if name == "TemplatePolicy":  # imported lazily: it depends on compiler.search
        from compiler.autotvm.policy import TemplatePolicy

        return TemplatePolicy
    raise AttributeError(name)


__all__ = [
    "TEMPLATES",
    "TUNERS",
    "AnnotateEntity",
    "ConfigEntity",
    "ConfigSpace",
    "GATuner",
    "GridTuner",
    "NoTemplateError",
    "OtherEntity",
    "RandomTuner",
    "ReorderEntity",
    "Sched",
    "SpaceError",
    "SplitEntity",
    "Template",
    "TemplatePolicy",
    "Tuner",
    "XGBTuner",
    "create_tuner",
    "get_template",
    "match_template",
    "register_template",
    "run_tuner",
    "template_for",
]
