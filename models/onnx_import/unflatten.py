"""Linear layers on flattened rows, as exporters write them, computed on the rows in place.

GPT-2's Conv1D layers and every `nn.Linear` that torch exports as Gemm flatten their
input `[B, S, K]` to `[B*S, K]`, multiply, add the bias and reshape back to `[B, S, N]`:

    r1 = reshape(x, (B*S, K));  m = matmul(r1, W);  b = bias_add(m, bias);  y = reshape(b, (B, S, N))

Each reshape is a copy of its own (a remap after an anchor starts a subgraph) and the
reshape back stops the element-wise epilogue (GPT-2's GELU, a residual add) from fusing
into the matmul. The same arithmetic as `batch_matmul(x, W)` (a 2-D weight broadcast over
the leading axes) has neither: the chain becomes `y = bias_add(batch_matmul(x, W), bias)`,
under the names of `m` and `y`, so every reader of `y` is unchanged.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import replace

from models.graph import Graph, Node, Value


def unflatten_linear_layers(graph: Graph) -> Graph:
    """The graph with every flattened linear layer computed on its unflattened rows."""
    uses = Counter(i for n in graph.nodes for i in n.inputs)
    uses.update(v.name for v in graph.outputs)
    producers = {n.output: n for n in graph.nodes}
    nodes, values = list(graph.nodes), dict(graph.values)
    for node in graph.nodes:
        chain = _chain(graph, node, producers, uses)
        if chain is not None:
            nodes, values = _rewrite(nodes, values, *chain)
    if len(nodes) == len(graph.nodes):
        return graph
    return replace(graph, nodes=nodes, values=values)


def _chain(
    graph: Graph, mm: Node, producers: dict[str, Node], uses: Counter
) -> tuple[Node, Node, Node | None, Node] | None:
    """(r1, matmul, bias_add or None, r2) when `mm` is a flattened linear layer."""
    if mm.op != "matmul" or mm.kwargs.get("transpose_a") or mm.inputs[1] not in graph.constants:
        return None
    r1 = producers.get(mm.inputs[0])
    if r1 is None or r1.op != "reshape" or uses[r1.output] != 1:
        return None
    x = graph.values[r1.inputs[0]].shape
    if len(x) < 3 or graph.values[r1.output].shape != (math.prod(x[:-1]), x[-1]):
        return None
    tail, bias = mm, None
    after = _sole_reader(graph, mm.output, uses)
    if after is not None and after.op == "bias_add" and after.inputs[0] == mm.output:
        tail, bias = after, after
    r2 = _sole_reader(graph, tail.output, uses)
    n = graph.values[mm.output].shape[1]
    if r2 is None or r2.op != "reshape" or graph.values[r2.output].shape != (*x[:-1], n):
        return None
    return r1, mm, bias, r2


def _sole_reader(graph: Graph, value: str, uses: Counter) -> Node | None:
    if uses[value] != 1:
        return None
    readers = graph.consumers(value)
    return readers[0] if len(readers) == 1 else None


def _rewrite(
    nodes: list[Node],
    values: dict[str, Value],
    r1: Node,
    mm: Node,
    bias: Node | None,
    r2: Node,
) -> tuple[list[Node], dict[str, Value]]:
    x = values[r1.inputs[0]]
    rows = x.shape[:-1]
    n = values[mm.output].shape[1]
    product = replace(mm, op="batch_matmul", inputs=(x.name, mm.inputs[1]))
    values[mm.output] = replace(values[mm.output], shape=(*rows, n))
    if bias is None:  # the matmul writes y itself
        product = replace(product, name=r2.output, output=r2.output)
        values.pop(mm.output)
        added = None
    else:
        added = replace(bias, name=r2.output, output=r2.output, attrs=(("axis", len(rows)),))
        values.pop(bias.output)
    values.pop(r1.output)
    out = []
    for node in nodes:
        if node is r1 or node is r2:
            continue
        if node is mm:
            out.append(product)
        elif node is bias:
            out.append(added)  # type: ignore[arg-type]
        else:
            out.append(node)
    return out, values
