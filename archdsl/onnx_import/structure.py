"""The imported graph's structure as a person writes it: composites, named tensors, blocks.

  * `composites`: a merge (add, concat, SE's scale) whose inputs are chains from one tensor — its
    immediate dominator, found with networkx's `immediate_dominators` — and whose layers nothing
    outside reads, is a composite: `residual<…>` (an add of a path and its input, or of two paths;
    archdsl's own projection shortcut is left for archdsl to insert), `inception<…>` (branches
    that meet in a concat; an empty branch passes the input through: DenseNet's layer), `se<r>`.
  * `sequence`: the rest, in the program's order, with `-> name` and `@name` where a tensor is read
    away from where it was made (U-Net's skips, GoogLeNet's auxiliary heads).
  * `blocks`: a composite with the activations after it that occurs several times with the same
    wiring — networkx's isomorphism on the layers as written, labelled by op but not by the
    numbers that differ between occurrences — is a parametrised `block`, its numbers the block's
    parameters (`c`, `4*c`, `s`), called once per occurrence and `* n` where calls repeat.
"""
from __future__ import annotations

import dataclasses
import re
from collections import Counter
from dataclasses import dataclass, field

import networkx as nx
from networkx.algorithms import isomorphism

from ..errors import ArchError
from ..ops import (
    FC, REGISTRY, Activation, Add, AvgPool, BatchNorm, ChannelSlice, Concat, Conv, Deconv, GlobalAvgPool, MaxPool, Mul,
    Trait,
)
from .convert import Layer

# ---- the items of a spec ---------------------------------------------------------------------------------


@dataclass
class LayerItem:
    node: str


@dataclass
class MergeItem:
    """A merge written with named tensors: `add(@a)`, `concat(@a, @b)` (the current tensor first)."""

    node: str
    refs: list[str]


@dataclass
class Residual:
    fork: str
    merge: str
    body: list
    shortcut: list | None  # None: archdsl's own projection, left for it to insert; []: the identity
    inserted: list[str] = field(default_factory=list)  # the projection's layers, when archdsl inserts them


@dataclass
class Inception:
    fork: str
    merge: str
    branches: list[list]


@dataclass
class SqueezeExcite:
    fork: str
    merge: str
    ratio: int | None  # se<r>: the squeeze is C/r
    squeeze: int | None  # se<squeeze=n> where no whole r gives it
    act: str  # the activation between (relu) and the gate (sigmoid), as archdsl's families
    gate: str
    form: str  # fc, or conv (torchvision's 1×1 convolutions)
    layers: list[str]

    def options(self, slots: dict | None = None) -> str:
        """`16`, `squeeze=8, act=silu, form=conv`: what se<…> needs written."""
        slots = slots or {}
        if self.ratio is not None:
            parts = [str(slots.get((self.merge, "ratio"), self.ratio))]
        else:
            parts = [f"squeeze={slots.get((self.merge, 'squeeze'), self.squeeze)}"]
        parts += [f"{k}={v}" for k, v, d in (("act", self.act, "relu"), ("gate", self.gate, "sigmoid"),
                                                 ("form", self.form, "fc")) if v != d]
        return ", ".join(parts)


@dataclass
class SplitItem:
    """`split(24, 40) -> a, b`: the channels of one tensor cut into parts, each named."""

    nodes: list[str]  # the parts' layers, in channel order
    names: list[str] = field(default_factory=list)


@dataclass
class Name:
    name: str


@dataclass
class Ref:
    name: str


@dataclass
class Call:
    block: "Block"
    args: tuple  # one value per parameter
    nodes: list[str]  # the layers of this occurrence


@dataclass
class Repeat:
    call: Call
    count: int


@dataclass
class Block:
    name: str
    params: list[str]
    defaults: dict[str, int]
    template: list  # the first occurrence's items
    slots: dict  # (node of the template, field) → a number, or the expression text of a parameter
    values: dict = field(default_factory=dict)  # parameter → its value in each occurrence
    calls: list[Call] = field(default_factory=list)


Composite = (Residual, Inception, SqueezeExcite)


def nodes_of(items) -> list[str]:
    """Every layer in a sequence of items (composites' layers included), in order."""
    out = []
    for item in items:
        if isinstance(item, (LayerItem, MergeItem)):
            out.append(item.node)
        elif isinstance(item, SplitItem):
            out += item.nodes
        elif isinstance(item, Residual):
            out += nodes_of(item.body) + (nodes_of(item.shortcut) if item.shortcut else item.inserted) + [item.merge]
        elif isinstance(item, Inception):
            out += [n for b in item.branches for n in nodes_of(b)] + [item.merge]
        elif isinstance(item, SqueezeExcite):
            out += item.layers + [item.merge]
        elif isinstance(item, Call):
            out += item.nodes
    return out


def output_of(item) -> str:
    if isinstance(item, (LayerItem, MergeItem)):
        return item.node
    if isinstance(item, SplitItem):
        return item.nodes[-1]
    if isinstance(item, Composite):
        return item.merge
    raise TypeError(item)


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
            layer = _layer(graph, node)
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
        layer = _layer(graph, node)
        if len(layer.inputs) != 1:
            return None
        parent = layer.inputs[0]
        if graph.out_degree(parent) > 1:
            return None if parent == fork else parent
        node = parent


def _nest(graph, node: str, start: int, end: int) -> None:
    layer = _layer(graph, node)
    parts = layer.inputs[start:end]
    shapes = [_layer(graph, p).shape for p in parts]
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
        layer = _layer(graph, node)
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


def _layer(graph, node) -> Layer:
    return graph.nodes[node]["layer"]


def composites(graph: nx.DiGraph, source: str, outputs: set[str]) -> dict[str, object]:
    """Merge node → its composite, for every merge that can be written as one (inner ones first)."""
    dominators = nx.immediate_dominators(graph, source)
    found: dict[str, object] = {}
    for node in nx.topological_sort(graph):
        layer = _layer(graph, node)
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
        layer = _layer(graph, node)
        if len(layer.inputs) != 1 or isinstance(layer.op, ChannelSlice):
            return None  # a merge, or a part of a split: named tensors
        items.insert(0, LayerItem(node))
        node = layer.inputs[0]
    return items


def _changes_size(graph, items) -> tuple[bool, bool]:
    """(whether the items shrink the map somewhere, whether they grow it somewhere)."""
    shrink = grow = False
    for node in nodes_of(items):
        layer = _layer(graph, node)
        before = _layer(graph, layer.inputs[0]).shape if layer.inputs else layer.shape
        if len(before) > 1 and len(layer.shape) == len(before):
            shrink |= any(o < i for o, i in zip(layer.shape[1:], before[1:]))
            grow |= any(o > i for o, i in zip(layer.shape[1:], before[1:]))
    return shrink, grow


def _composite(graph, merge: str, fork: str, branches: list[list]):
    layer = _layer(graph, merge)
    if any(not b for b in branches) and any(all(_changes_size(graph, b)) for b in branches):
        return None  # an encoder-decoder's skip (U-Net): clearer with named tensors
    if isinstance(layer.op, Add) and len(branches) == 2:
        body, shortcut = sorted(branches, key=lambda b: -len(nodes_of(b)))
        if branches[0] is body or len(nodes_of(branches[0])) == len(nodes_of(branches[1])):
            body, shortcut = branches
        fork_shape, body_shape = _layer(graph, fork).shape, _layer(graph, output_or_fork(body, fork)).shape
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
    x, y = _layer(graph, fork).shape, _layer(graph, output_of(body[-1])).shape
    uses_bn = any(isinstance(_layer(graph, n).op, BatchNorm) for n in nodes_of(body))
    if len(nodes) != 1 + uses_bn or len(x) < 2 or len(x) != len(y):
        return False
    conv = _layer(graph, nodes[0]).op
    rank = len(x) - 1
    stride = tuple(-(-i // o) for i, o in zip(x[1:], y[1:]))
    expected = Conv(y[0], (1,) * rank, stride, (0,) * rank, (1,) * rank, 1, not uses_bn)
    if not isinstance(conv, Conv) or conv != expected:
        return False
    return not uses_bn or _layer(graph, nodes[1]).op == BatchNorm()


def _se(graph, fork: str, merge: str, x: list, s: list) -> SqueezeExcite | None:
    """se<…> as archdsl expands it: pool, a squeeze (fc, or a 1×1 conv with a bias), an activation,
    back to C, a gate, then the map times the gate."""
    nodes = nodes_of(s)
    if x or len(nodes) != 5 or not all(isinstance(item, LayerItem) for item in s):
        return None
    pool, squeeze, act, expand, gate = (_layer(graph, n).op for n in nodes)
    channels = _layer(graph, fork).shape[0]
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


# ---- the sequence, with named tensors ----------------------------------------------------------------------------


_COUNTER_NAME = re.compile(r"^([A-Za-z_]+?)_?\d*$")
# Module and value names exporters make up, which say nothing a reader could use as a tensor's name.
_GENERIC_NAMES = {"getitem", "cat", "val", "node", "x", "t", "out", "input", "output", "layer", "features",
                  "classifier", "add", "mul", "view", "flatten", "reshape", "identity", "sequential", "branch", "b",
                  "shortcut", "downsample", "block", "stem", "head", "module", "op", "relu", "conv", "bn", "fc"}


def _telling(name: str) -> bool:
    """Whether a module's name from the exporter is worth a tensor's name (`enc1`, not `relu3`)."""

    match = _COUNTER_NAME.match(name)
    if not name.isidentifier() or match is None:
        return False
    base = match.group(1).lower()
    return base not in REGISTRY and base not in _GENERIC_NAMES and not name.isdigit()


def sequence(graph: nx.DiGraph, source: str, outputs: dict[str, str], found: dict) -> list:
    """The top level in the program's order: layers, merges and composites, with `-> name` and `@name`."""
    owner: dict[str, str] = {}
    # the outermost composite owns its nodes: a node inside a nested one belongs to the outer one
    for merge in sorted(found, key=lambda m: len(nodes_of([found[m]]))):
        for n in nodes_of([found[merge]]):
            owner[n] = merge
    found = {m: c for m, c in found.items() if owner[m] == m}
    top = nx.DiGraph()
    for n in graph.nodes:
        if n == source:
            continue
        top.add_node(owner.get(n, n))
    for u, v in graph.edges:
        a, b = owner.get(u, u), owner.get(v, v)
        if a != b and u != source:
            top.add_edge(a, b)
    main = next(iter(outputs.values()))
    main_owner = owner.get(main, main)
    on_main = nx.ancestors(top, main_owner) | {main_owner}
    first_index = {n: min(_layer(graph, x).index for x in nodes_of([found[n]])) if n in found else _layer(graph, n).index
                   for n in top.nodes}
    order = list(nx.lexicographical_topological_sort(top, key=lambda n: (n in on_main, first_index[n])))

    items: list = []
    current = source
    wanted: dict[str, None] = {}  # tensors read away from where they were made
    split_done: set[str] = set()
    for n in order:
        if n in split_done:
            continue
        if n in found:
            item, inputs = found[n], [found[n].fork]
        elif isinstance(_layer(graph, n).op, ChannelSlice):
            parts = _split_parts(graph, n)
            split_done.update(parts)
            item, inputs = SplitItem(parts), [_layer(graph, n).inputs[0]]
            for part in parts:
                wanted[part] = None
        else:
            layer = _layer(graph, n)
            inputs = list(layer.inputs)
            if len(inputs) > 1 and isinstance(layer.op, Add) and current in inputs:
                inputs.remove(current)
                inputs.insert(0, current)  # addition commutes: no @ for the tensor at hand
            item = LayerItem(n) if len(inputs) == 1 else MergeItem(n, inputs[1:])
        if inputs[0] != current:
            items.append(Ref(inputs[0]))
            wanted[inputs[0]] = None
        for other in inputs[1:]:
            wanted[other] = None
        items.append(item)
        current = output_of(item)
    for name, node in list(outputs.items())[1:]:
        wanted[node] = None
    if current != main:
        items.append(Ref(main))
        wanted[main] = None
    return _named(graph, items, wanted, outputs, source)


def _split_parts(graph, node: str) -> list[str]:
    """The slices of one tensor that `node` is one of, in channel order; they must cut all its channels."""
    source = _layer(graph, node).inputs[0]
    parts = sorted((s for s in graph.successors(source) if isinstance(_layer(graph, s).op, ChannelSlice)),
                   key=lambda s: _layer(graph, s).op.start)
    edges = [(_layer(graph, p).op.start, _layer(graph, p).op.stop) for p in parts]
    channels = _layer(graph, source).shape[0]
    if edges[0][0] != 0 or edges[-1][1] != channels or any(a[1] != b[0] for a, b in zip(edges, edges[1:])):
        raise ArchError(f"channel slices {edges} of a {channels}-channel tensor do not cut it into parts one after"
                        " another; archdsl writes slices as a split of all the channels")
    return parts


def _named(graph, items: list, wanted: dict, outputs: dict[str, str], source: str) -> list:
    """Names for the tensors read away from where they were made: an output's own name, the module's
    name the exporter recorded (`enc1`), else t1, t2, …"""
    names: dict[str, str] = {source: "input"}
    taken = {"input", "output"}
    by_node = {node: name for name, node in outputs.items()}
    main = next(iter(outputs.values()))
    for node in sorted(wanted, key=lambda n: _layer(graph, n).index):
        if node in names:
            continue
        candidates = []
        if node in by_node and (node != main or by_node[node] != "output"):
            candidates.append(by_node[node])
        hint = _layer(graph, node).hint
        if hint and _telling(hint.rsplit(".", 1)[-1]):
            candidates.append(hint.rsplit(".", 1)[-1])
        name = next((_identifier(c) for c in candidates if _identifier(c) not in taken), None)
        if name is None:
            k = 1
            while f"t{k}" in taken:
                k += 1
            name = f"t{k}"
        taken.add(name)
        names[node] = name
    if main in by_node and by_node[main] != "output" and main not in names:
        names[main] = _identifier(by_node[main])
    out = []
    for item in items:
        if isinstance(item, Ref):
            out.append(Ref(names[item.name]))
            continue
        if isinstance(item, MergeItem):
            item = MergeItem(item.node, [names[r] for r in item.refs])
        if isinstance(item, SplitItem):
            out.append(SplitItem(item.nodes, [names[n] for n in item.nodes]))
            continue
        out.append(item)
        produced = output_of(item)
        if produced in names and produced != source:
            out.append(Name(names[produced]))
    return out


def _identifier(text: str) -> str:
    text = re.sub(r"\W", "_", text)
    if not text or text[0].isdigit():
        text = "t_" + text
    return text


# ---- blocks ---------------------------------------------------------------------------------------------------------

_KEYWORDS = {"block", "network", "input", "after", "defaults", "use", "train", "inception", "residual", "se"}
# The numbers of a layer that a block may take as parameters; the rest label the layer.
SLOTS = {Conv: ("out_channels", "stride", "groups"), Deconv: ("out_channels", "stride", "groups"),
         FC: ("out_features",), MaxPool: ("stride",), AvgPool: ("stride",)}
_PREFIX = {"out_channels": "c", "out_features": "n", "stride": "s", "groups": "g", "ratio": "r", "squeeze": "c"}


def _is_tail(graph, item, shape_kept: bool = False) -> bool:
    """An activation after a composite, taken into its block (ResNet's relu after the add); with
    `shape_kept`, any layer without weights that keeps the shape (ShuffleNet's shuffle after its concat)."""
    if not isinstance(item, LayerItem):
        return False
    layer = _layer(graph, item.node)
    if layer.op.has(Trait.ELEMENTWISE):
        return True
    return shape_kept and not layer.weights and len(layer.inputs) == 1 \
        and _layer(graph, layer.inputs[0]).shape == layer.shape


def units(graph, items: list) -> list[tuple[int, int]]:
    """(start, end) of each run that could be a block: a composite and the activations after it; and,
    where the exporter recorded module paths, the layers of one module that is a sibling of such a
    composite's (torchvision's InvertedResidual without its shortcut, beside those with one)."""
    spans = []
    i = 0
    while i < len(items):
        if isinstance(items[i], Composite) and not isinstance(items[i], SqueezeExcite):  # se<…> alone is short
            j = i + 1
            while j < len(items) and _is_tail(graph, items[j]):
                j += 1
            spans.append((i, j))
            i = j
        else:
            i += 1
    composite_spans = list(spans)
    covered = {k for a, b in spans for k in range(a, b)}
    for a, b in _named_segments(items):
        if covered & set(range(a, b)):
            continue
        while b < len(items) and b not in covered and _is_tail(graph, items[b], shape_kept=True):
            b += 1
        spans.append((a, b))
        covered |= set(range(a, b))
    paths = [_common_path(graph, nodes_of(items[a:b])) for a, b in composite_spans]
    siblings = {(p.rsplit(".", 1)[0] if "." in p else "", p.count(".")) for p in paths if p}
    k = 0
    while k < len(items):
        if k in covered or not isinstance(items[k], LayerItem):
            k += 1
            continue
        hint = _layer(graph, items[k].node).hint or ""
        parts = hint.split(".")
        prefix = next((".".join(parts[: depth + 1]) for parent, depth in sorted(siblings)
                       if len(parts) > depth + 1 and ".".join(parts[:depth]) == parent), None)
        end = k
        while prefix and end < len(items) and end not in covered \
                and isinstance(items[end], (LayerItem, SqueezeExcite)) \
                and all(((_layer(graph, n).hint or "") + ".").startswith(prefix + ".") for n in nodes_of([items[end]])):
            end += 1
        if prefix and len(nodes_of(items[k:end])) >= 3:
            spans.append((k, end))
            k = end
        else:
            k += 1
    return sorted(spans)


def _named_segments(items: list) -> list[tuple[int, int]]:
    """Runs of items written with named tensors that nothing outside them reads (ShuffleNetV2's unit:
    split, a branch, a concat): between two places where no name is still to be read. Names that
    are outputs stay outside blocks (a block's names are its own)."""
    defined: dict[str, int] = {}
    last_read: dict[str, int] = {}
    for k, item in enumerate(items):
        for name in _defines(item):
            defined[name] = k
        for name in _reads(item):
            last_read[name] = k
    outputs = {item.name for item in items if isinstance(item, Name) and item.name not in last_read}
    if "input" in last_read:
        return []  # @input is the network's own name: no block can read it
    open_until = [0] * (len(items) + 1)
    for name, k in defined.items():
        for p in range(k + 1, last_read.get(name, k) + 1):
            open_until[p] = 1
    cuts = [p for p in range(len(items) + 1) if not open_until[p]]
    spans = []
    for a, b in zip(cuts, cuts[1:]):
        segment = items[a:b]
        names = {n for item in segment for n in _defines(item)}
        if b - a >= 2 and names and not names & outputs and any(_reads(item) for item in segment):
            spans.append((a, b))
    return spans


def _defines(item) -> list[str]:
    if isinstance(item, Name):
        return [item.name]
    if isinstance(item, SplitItem):
        return list(item.names)
    return []


def _reads(item) -> list[str]:
    if isinstance(item, Ref):
        return [item.name]
    if isinstance(item, MergeItem):
        return list(item.refs)
    return []


def _common_path(graph, nodes: list[str], share: float = 1.0) -> str:
    """The longest module path that the recorded paths of (a `share` of) the layers start with ('' if none)."""
    hints = [(_layer(graph, n).hint or "").split(".") for n in nodes]
    if not hints or not all(h and h[0] for h in hints):
        return ""
    common: list[str] = []
    while True:
        depth = len(common)
        counts = Counter(tuple(h[: depth + 1]) for h in hints if len(h) > depth and h[:depth] == common)
        if not counts:
            break
        best, count = counts.most_common(1)[0]
        if count < share * len(hints):
            break
        common = list(best)
    return ".".join(common)


def _digest(g: nx.DiGraph) -> str:
    """Weisfeiler-Lehman hash of a unit's graph: equal for isomorphic units (a bucket before matching)."""
    import warnings

    if not len(g):
        return ""
    labelled = nx.DiGraph()
    labelled.add_nodes_from((n, {"label": repr(d["label"])}) for n, d in g.nodes(data=True))
    labelled.add_edges_from((u, v, {"port": str(d["port"])}) for u, v, d in g.edges(data=True))
    with warnings.catch_warnings():  # networkx 3.5 changed directed hashes; ours are compared with each other only
        warnings.simplefilter("ignore")
        return nx.weisfeiler_lehman_graph_hash(labelled, node_attr="label", edge_attr="port")


def _label(graph, node: str, se: dict) -> tuple:
    """What must agree for two layers to be one in a block: the op and its numbers but the slots',
    and for se<…>'s layers, what se<…> writes but its ratio."""
    op = _layer(graph, node).op
    if node in se:
        kind, _value, *options = se[node]
        return (type(op).__name__, "se", kind, tuple(options))
    if isinstance(op, ChannelSlice):  # a part of a split: which one, and the sizes where they differ
        layer = _layer(graph, node)
        parts = sorted((_layer(graph, s).op for s in graph.successors(layer.inputs[0])
                        if isinstance(_layer(graph, s).op, ChannelSlice)), key=lambda o: o.start)
        sizes = [o.stop - o.start for o in parts]
        return ("ChannelSlice", parts.index(op), len(parts), None if len(set(sizes)) == 1 else tuple(sizes))
    slots = SLOTS.get(type(op), ())
    fields = tuple((f.name, getattr(op, f.name)) for f in dataclasses.fields(op) if f.name not in slots)
    return (type(op).__name__, fields)


def _unit_graph(graph, items) -> tuple[nx.DiGraph, dict]:
    """The layers of a unit as written (archdsl's inserted projections left out), labelled for isomorphism."""
    se = {n: ("ratio" if item.ratio is not None else "squeeze", item.ratio or item.squeeze, item.act, item.gate,
              item.form) for item in _all_items(items) if isinstance(item, SqueezeExcite) for n in item.layers}
    written = set(nodes_of(items))
    for item in _all_items(items):
        if isinstance(item, Residual) and item.shortcut is None:
            written -= set(item.inserted)
    g = nx.DiGraph()
    for n in written:
        g.add_node(n, label=_label(graph, n, se))
    for n in written:
        layer = _layer(graph, n)
        commutes = isinstance(layer.op, Add)
        for port, i in enumerate(layer.inputs):
            if i in written:
                g.add_edge(i, n, port=0 if commutes else port)
    return g, se


def _all_items(items):
    for item in items:
        yield item
        if isinstance(item, Residual):
            yield from _all_items(item.body)
            yield from _all_items(item.shortcut or [])
        elif isinstance(item, Inception):
            for branch in item.branches:
                yield from _all_items(branch)


def blocks(graph, items: list, hints: bool = True) -> list:
    """The sequence with each unit that occurs at least twice replaced by a call of a block."""
    spans = units(graph, items)
    prepared = []
    for start, end in spans:
        g, se = _unit_graph(graph, items[start:end])
        digest = _digest(g)
        prepared.append((start, end, g, se, digest))
    groups: list[list] = []  # [(start, end, graph, se, mapping to the group's first)]
    for start, end, g, se, digest in prepared:
        for group in groups:
            first = group[0]
            if first[4] != digest:
                continue
            matcher = isomorphism.DiGraphMatcher(first[2], g, node_match=lambda a, b: a["label"] == b["label"],
                                                 edge_match=lambda a, b: a["port"] == b["port"])
            if matcher.is_isomorphic():
                group.append((start, end, g, se, digest, dict(matcher.mapping)))
                break
        else:
            groups.append([(start, end, g, se, digest, {n: n for n in g})])
    calls: dict[int, tuple[int, Call]] = {}
    made: list[Block] = []
    taken_names: set[str] = set()
    for group in groups:
        if len(group) < 2:
            continue
        block = _block(graph, items, group, taken_names)
        made.append(block)
        for (start, end, *_rest), args in zip(group, block_args(graph, block, group)):
            call = Call(block, args, nodes_of(items[start:end]))
            block.calls.append(call)
            calls[start] = (end, call)
    out = []
    i = 0
    while i < len(items):
        if i in calls:
            end, call = calls[i]
            if out and isinstance(out[-1], Repeat) and out[-1].call.block is call.block and out[-1].call.args == call.args:
                out[-1].count += 1
            else:
                out.append(Repeat(call, 1))
            i = end
        else:
            out.append(items[i])
            i += 1
    return [r.call if isinstance(r, Repeat) and r.count == 1 else r for r in out]


def _slot_values(graph, node: str, se: dict) -> list[tuple[str, int]]:
    op = _layer(graph, node).op
    values = []
    if node in se:
        return values  # se<…>'s layers: its ratio is the slot
    for name in SLOTS.get(type(op), ()):
        value = getattr(op, name)
        if isinstance(value, tuple):
            if len(set(value)) != 1:
                continue  # sizes like 1x2 stay part of the label
            value = value[0]
        values.append((name, value))
    return values


def _block(graph, items, group, taken_names: set[str]) -> Block:
    first_start, first_end, g, se, _d, _m = group[0]
    template = items[first_start:first_end]
    order = [n for n in nodes_of(template) if n in g]
    columns: list[tuple[tuple[str, str], tuple[int, ...]]] = []
    for n in order:
        for name, _ in _slot_values(graph, n, se):
            values = []
            for start, end, g2, se2, _d2, mapping in group:
                other = mapping[n]
                values.append(dict(_slot_values(graph, other, se2))[name])
            columns.append(((n, name), tuple(values)))
    for item in [i for i in _all_items(template) if isinstance(i, SqueezeExcite)]:
        kind = "ratio" if item.ratio is not None else "squeeze"
        values = []
        for start, end, g2, se2, _d2, mapping in group:
            values.append(se2[mapping[item.layers[0]]][1])
        columns.append(((item.merge, kind), tuple(values)))
    params: list[tuple[str, tuple[int, ...]]] = []
    slots: dict = {}
    for (node, name), values in columns:
        slots[(node, name)] = _express(values, params, _PREFIX.get(name, "p"))
    defaults = {}
    for param, values in params:
        common, count = Counter(values).most_common(1)[0]
        if param[0] in "sgr" and count * 2 > len(values):
            defaults[param] = common
    block_name = _block_name(graph, group, template, taken_names)
    order = [p for p, _ in params if p not in defaults] + [p for p, _ in params if p in defaults]
    return Block(block_name, order, defaults, template, slots, values=dict(params))


def block_args(graph, block: Block, group) -> list[tuple]:
    """Each occurrence's arguments, one per parameter."""
    return [tuple(block.values[p][k] for p in block.params) for k in range(len(group))]


def _express(values: tuple[int, ...], params: list, prefix: str):
    """A constant, an existing parameter, a multiple of one (`4*c`), or a new parameter."""
    if len(set(values)) == 1:
        return values[0]
    for name, known in params:
        if known == values:
            return name
    for name, known in params:
        if not all(known):
            continue
        for factor in (2, 3, 4, 6, 8):
            if all(v == factor * k for v, k in zip(values, known)):
                return f"({factor}*{name})"
            if all(k == factor * v for v, k in zip(values, known)):
                return f"({name}/{factor})"
    n = 1 + sum(1 for p, _ in params if p.rstrip("0123456789") == prefix)
    name = prefix if n == 1 else f"{prefix}{n}"
    params.append((name, values))
    return name


def _block_name(graph, group, template, taken: set[str]) -> str:
    """The PyTorch class the exporter recorded for the occurrences (`Bottleneck` → bottleneck), or the
    module's name in its path (`denselayer3` → denselayer), else what the block is (residual_block)."""
    candidates = []
    for start, end, g, *_ in group:
        common = None
        for n in g:
            classes = [c.rsplit(".", 1)[-1] for c in _layer(graph, n).classes[1:]
                       if not c.startswith(("torch.", "aten."))]
            common = classes if common is None else [c for c in common if c in classes]
        candidates.append(common[-1] if common else None)
    name = None
    if all(candidates):
        prefix = _common_prefix(candidates)
        name = _snake(prefix) if len(prefix) >= 3 else None
    if name is None:
        words = {re.sub(r"_?\d+[a-z]?$", "", _common_path(graph, list(g), 0.6).rsplit(".", 1)[-1]) for _s, _e, g, *_ in group}
        word = words.pop() if len(words) == 1 else ""
        if len(word) >= 3 and word.isidentifier() and word.lower() not in _GENERIC_NAMES:
            name = _snake(word)
    if name is None:
        kind = next((type(i).__name__ for i in template if isinstance(i, Composite)), "")
        name = {"Residual": "residual_block", "Inception": "inception_block", "SqueezeExcite": "se_block"}.get(kind, "unit")

    if name in REGISTRY or name in _KEYWORDS:
        name += "_block"  # a block may not take a layer type's name, nor a keyword's
    base, k = name, 1
    while name in taken:
        k += 1
        name = f"{base}{k}"
    taken.add(name)
    return name


def _common_prefix(names: list[str]) -> str:
    prefix = names[0]
    for name in names[1:]:
        while not name.startswith(prefix):
            prefix = prefix[:-1]
    # cut at a word boundary of CamelCase
    if prefix not in names:
        words = re.findall(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])", prefix)
        full = [re.findall(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])", n) for n in names]
        keep = []
        for i, word in enumerate(words):
            if all(i < len(f) and f[i] == word for f in full):
                keep.append(word)
            else:
                break
        prefix = "".join(keep)
    return prefix


def _snake(name: str) -> str:
    name = name.strip("_")
    name = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()
    return re.sub(r"\W", "_", name)
