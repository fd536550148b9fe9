"""The execution plan: the IR as a straight line of statements `var = expression`.

Built once, from the graph, before any torch code exists; `codegen` prints it as the
body of `forward`. The interesting part is naming the tensors so that the code
reads like the paper (torchvision's resnet.py is the model):

  * the main chain is `x`; a residual body is `out`, its shortcut `shortcut`;
    inception branches are `b1`, `b2`, …; squeeze-and-excitation's weights are `s`.
    A block's closing merge (add, concat, se's mul) goes back to the enclosing name.
  * a statement overwrites a variable only when the value it held is dead; a value
    that must outlive the next write of its preferred name is stored under its
    tensor name from the spec (`-> e1`), else under its layer name.
"""
from __future__ import annotations

import keyword
import re
from dataclasses import dataclass

from ...errors import ArchError
from ...ir import BlockInstance, BlockKind, Layer
from ...naming import flat_module_name
from ...ops import Input, Trait
from ...shapes import Shape
from .ctor import Ctor, LocalModule
from .lower import emit

# Names a generated variable or submodule must not take: the generated module's own
# globals and the attributes every nn.Module has.
RESERVED_VARIABLES = {"self", "torch", "nn", "F"}
MODULE_ATTRIBUTES = {
    "forward", "training", "train", "eval", "modules", "children", "parameters", "buffers", "state_dict",
    "load_state_dict", "to", "cpu", "cuda", "type", "float", "double", "half", "bfloat16", "apply", "zero_grad",
    "add_module", "register_buffer", "register_parameter", "register_module", "get_submodule", "requires_grad_",
    "named_modules", "named_parameters", "named_buffers", "named_children", "extra_repr", "compile",
    "init_weights", "input_shape", "output_names", "dump_patches", "call_super_init",
}


@dataclass(frozen=True)
class Step:
    """One statement of `forward`: `target = expr  # shape`."""

    layer: Layer
    attr: str | None  # the submodule's name, or None for an op written inline
    module: Ctor | None
    expr: str
    target: str

    @property
    def shape(self) -> Shape:
        return self.layer.shape


@dataclass(frozen=True)
class Plan:
    class_name: str
    network: str
    input_var: str
    input_shape: Shape
    steps: tuple[Step, ...]
    outputs: tuple[tuple[str, str], ...]  # (output name, variable); the main output first

    @property
    def modules(self) -> list[Step]:
        return [s for s in self.steps if s.module is not None]

    @property
    def local_modules(self) -> list[LocalModule]:
        """The classes the generated file defines itself, in the order of first use."""
        return list(dict.fromkeys(s.module.local for s in self.modules if s.module.local is not None))


def class_name(network: str) -> str:
    """`resnet18` → `Resnet18`, `vgg_16` → `Vgg16`, `ResNet-50` → `ResNet50`."""
    parts = [p for p in re.split(r"[^0-9A-Za-z]+", network) if p]
    name = "".join(p[0].upper() + p[1:] for p in parts) or "Network"
    return name if name[0].isalpha() else "Net" + name


def _identifier(name: str) -> str:
    name = re.sub(r"\W", "_", name)
    if keyword.iskeyword(name) or name in RESERVED_VARIABLES or not name.isidentifier():
        name += "_"
    return name


# The variable a composite's body computes into, as torchvision writes it.
_BODY_VARIABLES = {BlockKind.RESIDUAL: "out", BlockKind.SE: "s", BlockKind.SHORTCUT: "shortcut"}


def _past_merge(layer: Layer, block: BlockInstance, index: dict[str, int]) -> bool:
    """Whether `layer` is a composite's closing merge (add, concat, mul) or comes after it
    in the same scope: its output belongs to the enclosing chain, not to the composite's body."""
    return block.merge is not None and block.merge in index and index[layer.name] >= index[block.merge]


def preferred_name(net, layer: Layer, index: dict[str, int]) -> str:
    blocks = net.blocks
    for instance in reversed(layer.scope):
        block = blocks[instance]
        if _past_merge(layer, block, index):
            continue
        if block.kind is BlockKind.BRANCH:
            return block.name  # b1, b2, …
        if block.kind in _BODY_VARIABLES:
            return _BODY_VARIABLES[block.kind]
    return "x"


def build_plan(net) -> Plan:
    graph = net.graph
    layers = net.layers
    index = {layer.name: i for i, layer in enumerate(layers)}
    outputs = net.output_nodes
    end = len(layers)  # outputs live until `return`
    output_nodes = set(outputs.values())
    last_use = {  # the index of the statement that reads a value for the last time
        layer.name: end if layer.name in output_nodes
        else max((index[s] for s in graph.successors(layer.name)), default=index[layer.name])
        for layer in layers
    }
    preferred = [preferred_name(net, layer, index) for layer in layers]
    tensor_names = graph.tensor_names

    _check_module_names(net)
    variable: dict[str, str] = {}
    live: dict[str, str] = {}  # variable → the node whose value it holds
    steps: list[Step] = []
    for i, layer in enumerate(layers):
        for var, node in list(live.items()):
            if last_use[node] <= i:  # read here for the last time (or earlier): free to overwrite
                del live[var]

        def taken(name: str) -> bool:
            """Held by a live value, or wanted by a statement that runs while this value is still needed."""
            later_writer = any(preferred[j] == name for j in range(i + 1, min(last_use[layer.name], end)))
            return name in live or later_writer

        name = preferred[i]
        if taken(name):
            base = _identifier(tensor_names.get(layer.name) or flat_module_name(layer.name))
            name, n = base, 1
            while taken(name):
                n += 1
                name = f"{base}_{n}"
        variable[layer.name] = name
        live[name] = layer.name
        if isinstance(layer.op, Input):
            continue
        steps.append(_step(net, layer, i, variable, last_use))
    input_node = graph.input
    name = class_name(net.name)
    if name in {s.module.local.name for s in steps if s.module is not None and s.module.local is not None}:
        name += "Net"  # a network called layer_scale must not shadow the LayerScale class it uses
    return Plan(
        class_name=name,
        network=net.name,
        input_var=variable[input_node],
        input_shape=net.input_shape,
        steps=tuple(steps),
        outputs=tuple((name, variable[node]) for name, node in outputs.items()),
    )


def _step(net, layer: Layer, i: int, variable: dict[str, str], last_use: dict[str, int]) -> Step:
    graph = net.graph
    shapes = tuple(net.layer(n).shape for n in layer.inputs)
    source = layer.inputs[0]
    may_overwrite = (
        len(layer.inputs) == 1
        and graph.out_degree(source) == 1  # no other consumer saved it for the backward pass
        and last_use[source] == i
        and net.layer(source).op.has(Trait.OUTPUT_OVERWRITABLE)
    )
    emitted = emit(layer, shapes, may_overwrite)
    attr = net.module_path(layer.name) if emitted.module is not None else None
    expr = emitted.expr.format(*(variable[n] for n in layer.inputs), m=f"self.{attr}")
    return Step(layer, attr, emitted.module, expr, variable[layer.name])


def _check_module_names(net) -> None:
    seen: dict[str, str] = {}
    for layer in net.layers:
        name = net.module_path(layer.name)
        if name in MODULE_ATTRIBUTES or keyword.iskeyword(name):
            raise ArchError(
                f"the layer name '{layer.name}' is taken by PyTorch's nn.Module; name the tensor differently"
                f" (-> {name}_)",
                layer.span,
            )
        if name in seen:
            raise ArchError(
                f"layers '{seen[name]}' and '{layer.name}' would both be the submodule '{name}' in PyTorch;"
                " rename one of them",
                layer.span,
            )
        seen[name] = layer.name
