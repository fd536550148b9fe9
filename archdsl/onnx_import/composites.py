"""Composites in the imported graph: `residual<…>`, `inception<…>`, `se<…>`.

A merge (add, concat, mul) whose inputs are chains from one tensor — its immediate dominator,
found with networkx's `immediate_dominators` — and whose layers nothing outside reads is a
composite: an add of a path and its input (or of two paths) is `residual<…>`, archdsl's own
projection shortcut left for archdsl to insert; branches that meet in a concat are
`inception<…>` (an empty branch passes the input through: DenseNet's layer); a gate that
squeezes and excites is `se<…>`. Two rewrites come first: torchvision's DenseNet concatenates
all earlier features again in every layer (read as one concatenation each), and exporters
flatten nested concatenations (nested again).
"""
from __future__ import annotations

import networkx as nx

from ..ops import FC, Activation, Add, BatchNorm, ChannelSlice, Concat, Conv, GlobalAvgPool, Mul
from .convert import Layer
from .items import Inception, LayerItem, Residual, SqueezeExcite, layer_of, nodes_of, output_of

# ---- composites --------------------------------------------------------------------------------------------


def nest_concats(graph: nx.DiGraph, source: str) -> None:
    """A concat whose neighbouring inputs branch off one tensor inside its branches reads them through
    a concat of their own: exporters flatten `cat([a, cat([b, c])])` into one concat of a, b and c
    (Inception-v3's expanded filter banks), which as written would be two branches with a layer each
    and the layer before them twice."""
    changed = True
    while changed:
        changed = False
        dominators = nx.immediate_dominators(graph, source)
        for node in list(nx.topological_sort(graph)):
            layer = layer_of(graph, node)
            if not isinstance(layer.op, Concat) or len(layer.inputs) < 3 or node not in dominators:
                continue
            fork = dominators[node]
            points = [_branch_point(graph, i, fork) for i in layer.inputs]
            for start in range(len(points)):
                end = start
                while end + 1 < len(points) and points[end + 1] == points[start] and points[start] is not None:
                    end += 1
                if end > start and end - start + 1 < len(points):
                    _nest(graph, node, start, end + 1)
                    changed = True
                    break
            if changed:
                break


def _branch_point(graph, tensor: str, fork: str) -> str | None:
    """Where the chain ending at `tensor` starts: the first tensor (walking back) read by others too, unless
    it is the concat's own input (`fork`)."""
    node = tensor
    while True:
        if node == fork:
            return None
        layer = layer_of(graph, node)
        if len(layer.inputs) != 1:
            return None
        parent = layer.inputs[0]
        if graph.out_degree(parent) > 1:
            return None if parent == fork else parent
        node = parent


def _nest(graph, node: str, start: int, end: int) -> None:
    layer = layer_of(graph, node)
    parts = layer.inputs[start:end]
    shapes = [layer_of(graph, p).shape for p in parts]
    name = f"{node}.inner{start}"
    inner = Layer(name, Concat(), tuple(parts), (sum(s[0] for s in shapes), *shapes[0][1:]), {}, layer.origin,
                  layer.hint, layer.classes, layer.index)
    graph.add_node(name, layer=inner)
    for p in parts:
        if p not in layer.inputs[:start] + layer.inputs[end:]:
            graph.remove_edge(p, node)
        graph.add_edge(p, name)
    graph.add_edge(name, node)
    layer.inputs = (*layer.inputs[:start], name, *layer.inputs[end:])


def normalise_concats(graph: nx.DiGraph) -> None:
    """A concat of a list that starts with the inputs of another concat reads that concat instead:
    torchvision's DenseNet concatenates all earlier features again in every layer, cat(x0, …, x(i-1)),
    which is cat(cat(x0, …, x(i-2)), x(i-1)); read so, each layer is an `inception< | … >`."""
    made: dict[tuple[str, ...], str] = {}
    for node in list(nx.topological_sort(graph)):
        layer = layer_of(graph, node)
        if not isinstance(layer.op, Concat):
            continue
        inputs = tuple(layer.inputs)
        prefix = max((p for p in made if len(p) < len(inputs) and inputs[: len(p)] == p), key=len, default=None)
        if prefix is not None:
            earlier = made[prefix]
            for source in set(prefix):
                if source not in layer.inputs[len(prefix):]:
                    graph.remove_edge(source, node)
            graph.add_edge(earlier, node)
            layer.inputs = (earlier, *inputs[len(prefix):])
        made.setdefault(inputs, node)


def composites(graph: nx.DiGraph, source: str, outputs: set[str]) -> dict[str, object]:
    """Merge node → its composite, for every merge that can be written as one (inner ones first)."""
    dominators = nx.immediate_dominators(graph, source)
    found: dict[str, object] = {}
    for node in nx.topological_sort(graph):
        layer = layer_of(graph, node)
        if not isinstance(layer.op, (Add, Concat, Mul)) or len(layer.inputs) != 2 and not isinstance(layer.op, Concat) \
                or node not in dominators:
            continue
        fork = dominators[node]
        branches = [_walk_back(graph, i, fork, found) for i in layer.inputs]
        if any(b is None for b in branches):
            continue
        region = {n for b in branches for n in nodes_of(b)}
        if any(n in outputs or any(s not in region and s != node for s in graph.successors(n)) for n in region):
            continue  # a layer inside is read elsewhere: named tensors, not a composite
        composite = _composite(graph, node, fork, branches)
        if composite is not None:
            found[node] = composite
    return found


def _walk_back(graph, tensor: str, fork: str, found: dict) -> list | None:
    """The items from `fork` (excluded) to `tensor` (included), if they are one chain; else None."""
    items = []
    node = tensor
    while node != fork:
        if node in found:
            items.insert(0, found[node])
            node = found[node].fork
            continue
        layer = layer_of(graph, node)
        if len(layer.inputs) != 1 or isinstance(layer.op, ChannelSlice):
            return None  # a merge, or a part of a split: named tensors
        items.insert(0, LayerItem(node))
        node = layer.inputs[0]
    return items


def _changes_size(graph, items) -> tuple[bool, bool]:
    """(whether the items shrink the map somewhere, whether they grow it somewhere)."""
    shrink = grow = False
    for node in nodes_of(items):
        layer = layer_of(graph, node)
        before = layer_of(graph, layer.inputs[0]).shape if layer.inputs else layer.shape
        if len(before) > 1 and len(layer.shape) == len(before):
            shrink |= any(o < i for o, i in zip(layer.shape[1:], before[1:]))
            grow |= any(o > i for o, i in zip(layer.shape[1:], before[1:]))
    return shrink, grow


def _composite(graph, merge: str, fork: str, branches: list[list]):
    layer = layer_of(graph, merge)
    if any(not b for b in branches) and any(all(_changes_size(graph, b)) for b in branches):
        return None  # an encoder-decoder's skip (U-Net): clearer with named tensors
    if isinstance(layer.op, Add) and len(branches) == 2:
        body, shortcut = sorted(branches, key=lambda b: -len(nodes_of(b)))
        if branches[0] is body or len(nodes_of(branches[0])) == len(nodes_of(branches[1])):
            body, shortcut = branches
        fork_shape, body_shape = layer_of(graph, fork).shape, layer_of(graph, output_or_fork(body, fork)).shape
        if not body:
            return None
        if shortcut and body_shape != fork_shape and _is_projection(graph, shortcut, body, fork):
            return Residual(fork, merge, body, None, nodes_of(shortcut))
        if not shortcut and body_shape != fork_shape:
            return None
        return Residual(fork, merge, body, shortcut)
    if isinstance(layer.op, Concat):
        return Inception(fork, merge, branches)
    if isinstance(layer.op, Mul):
        x, s = branches
        return _se(graph, fork, merge, x, s)
    return None


def output_or_fork(items, fork):
    return output_of(items[-1]) if items else fork


def _is_projection(graph, shortcut, body, fork) -> bool:
    """Whether the shortcut is exactly what archdsl inserts: a 1×1 conv with the body's stride and no bias,
    then a bn with PyTorch's defaults where the body has a batch norm."""
    nodes = nodes_of(shortcut)
    if not all(isinstance(item, LayerItem) for item in shortcut):
        return False
    x, y = layer_of(graph, fork).shape, layer_of(graph, output_of(body[-1])).shape
    uses_bn = any(isinstance(layer_of(graph, n).op, BatchNorm) for n in nodes_of(body))
    if len(nodes) != 1 + uses_bn or len(x) < 2 or len(x) != len(y):
        return False
    conv = layer_of(graph, nodes[0]).op
    rank = len(x) - 1
    stride = tuple(-(-i // o) for i, o in zip(x[1:], y[1:]))
    expected = Conv(y[0], (1,) * rank, stride, (0,) * rank, (1,) * rank, 1, not uses_bn)
    if not isinstance(conv, Conv) or conv != expected:
        return False
    return not uses_bn or layer_of(graph, nodes[1]).op == BatchNorm()


def _se(graph, fork: str, merge: str, x: list, s: list) -> SqueezeExcite | None:
    """se<…> as archdsl expands it: pool, a squeeze (fc, or a 1×1 conv with a bias), an activation,
    back to C, a gate, then the map times the gate."""
    nodes = nodes_of(s)
    if x or len(nodes) != 5 or not all(isinstance(item, LayerItem) for item in s):
        return None
    pool, squeeze, act, expand, gate = (layer_of(graph, n).op for n in nodes)
    channels = layer_of(graph, fork).shape[0]
    if not isinstance(pool, GlobalAvgPool) or not isinstance(act, Activation) or not isinstance(gate, Activation):
        return None
    if type(act)() != act or type(gate)() != gate:
        return None  # se<…> builds its activations with their defaults
    if isinstance(squeeze, FC) and isinstance(expand, FC) and not squeeze.pointwise and not expand.pointwise:
        form, hidden, out = "fc", squeeze.out_features, expand.out_features
        if not (squeeze.bias and expand.bias):
            return None
    elif isinstance(squeeze, Conv) and isinstance(expand, Conv):
        form, hidden, out = "conv", squeeze.out_channels, expand.out_channels
        rank = len(squeeze.kernel)
        expected = [Conv(c, (1,) * rank, (1,) * rank, (0,) * rank, (1,) * rank, 1, True) for c in (hidden, out)]
        if [squeeze, expand] != expected:
            return None
    else:
        return None
    if out != channels:
        return None
    ratio = channels // hidden if channels % hidden == 0 else None
    return SqueezeExcite(fork, merge, ratio, None if ratio else hidden, act.family, gate.family, form, nodes)


