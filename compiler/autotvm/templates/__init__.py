"""AutoTVM-style schedule templates: the registry and the built-in templates.

Built-in: matmul (matmul, dense, batch_matmul), conv2d_nchw, conv2d_nchwc,
depthwise_conv2d, pool2d (max / avg), global_pool2d and blocked (convs and pools
writing the blocked channel layout), each with the fused
element-wise epilogue the network partition produces.
"""

from compiler.autotvm.templates import blocked, conv, linalg, pool  # noqa: F401  (registers them)
from compiler.autotvm.templates.helpers import Sched, anchor_setup, find_anchor, matches
from compiler.autotvm.templates.registry import (
    TEMPLATES,
    NoTemplateError,
    Template,
    describe_op,
    get_template,
    match_template,
    register_template,
    template_for,
)

__all__ = [
    "TEMPLATES",
    "NoTemplateError",
    "Sched",
    "Template",
    "anchor_setup",
    "describe_op",
    "find_anchor",
    "get_template",
    "match_template",
    "matches",
    "register_template",
    "template_for",
]
