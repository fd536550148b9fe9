"""The execution plan: the IR as nested modules, each a straight line of statements `var = expression`.

Built once, from the graph, before any torch code exists; `codegen` prints it. The
modules follow `naming.layout` (torchvision's resnet.py is the model): the network's
class calls its stages and block instances, and each block becomes a class of its own,
one per distinct expansion of the block (a bottleneck with archdsl's projection
shortcut and a plain one), whose numbers that differ from call to call are its
constructor's parameters (`Bottleneck(256, c=128, s=2)`), named after the block's
parameters where the numbers are theirs.

Naming the tensors so that the code reads like the paper:

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
from dataclasses import dataclass, replace

import networkx as nx

from ...errors import ArchError
from ...ir import BlockInstance, BlockKind, Layer
from ...naming import Role, flat_module_name
from ...ops import Input, Trait
from ...shapes import Shape, fmt_shape
from .ctor import Ctor, LocalModule
from .lower import CALL, emit
from .templates import Parameters, as_expr, fill, identifier, slot_names, slots, symbolic_shape

# Names a submodule must not take: the attributes every nn.Module has (and nn.ModuleDict's and
# nn.Sequential's, which hold a composite's layers).
MODULE_ATTRIBUTES = {
    "forward", "training", "train", "eval", "modules", "children", "parameters", "buffers", "state_dict",
    "load_state_dict", "to", "cpu", "cuda", "type", "float", "double", "half", "bfloat16", "apply", "zero_grad",
    "add_module", "register_buffer", "register_parameter", "register_module", "get_submodule", "requires_grad_",
    "named_modules", "named_parameters", "named_buffers", "named_children", "extra_repr", "compile",
    "init_weights", "input_shape", "output_names", "dump_patches", "call_super_init",
    "keys", "items", "values", "update", "pop", "clear", "append", "extend", "insert",
}


@dataclass(frozen=True)
class Step:
    """One statement of a `forward`: `target = expr  # shape`."""

    layer: Layer  # the layer whose value it computes (a submodule call: the submodule's last layer)
    attr: str | None  # the submodule, relative to the module whose forward this is; None: written inline
    module: Ctor | None
    expr: str
    target: str
    paragraph: str | None = None  # the inline composite it belongs to, for the blank lines between them

    @property
    def shape(self) -> Shape:
        return self.layer.shape


@dataclass(frozen=True)
class Member:
    """One line of `__init__`: `self.attr = module  # comment`."""

    attr: str
    module: Ctor
    comment: str = ""
    layer: Layer | None = None  # None for a container of layers (nn.Sequential(), nn.ModuleDict())


@dataclass(frozen=True)
class Forward:
    """What one module computes: its submodules and its forward's statements."""

    owner: str | None  # the block instance (None: the network)
    input_var: str
    members: tuple[Member, ...]
    steps: tuple[Step, ...]
    outputs: tuple[tuple[str, str], ...]  # (output name, variable); the main output first


@dataclass(frozen=True)
class BlockClass:
    """A generated nn.Module class: one distinct expansion of a block, its numbers made parameters."""

    name: str
    block: BlockInstance  # the first instance
    instances: tuple[str, ...]
    params: tuple[str, ...]
    forward: Forward  # the first instance's, with parameters where the numbers differ
    shapes: tuple[str, ...]  # each statement's shape, in the parameters (`4*c×H/s×W/s`)
    input_shape: str
    arguments: tuple[dict[str, int], ...]  # each instance's value of each parameter


@dataclass(frozen=True)
class Plan:
    class_name: str
    network: str
    input_var: str
    input_shape: Shape
    steps: tuple[Step, ...]
    outputs: tuple[tuple[str, str], ...]  # (output name, variable); the main output first
    members: tuple[Member, ...] = ()
    classes: tuple[BlockClass, ...] = ()
    layer_modules: tuple[tuple[Layer, str, Ctor], ...] = ()  # every layer's module: (layer, path, ctor)

    @property
    def local_modules(self) -> list[LocalModule]:
        """The classes the generated file defines itself, in the order of first use."""
        return list(dict.fromkeys(m.local for _, _, m in self.layer_modules if m.local is not None))


def class_name(network: str) -> str:
    """`resnet18` → `Resnet18`, `vgg_16` → `Vgg16`, `ResNet-50` → `ResNet50`."""
    parts = [p for p in re.split(r"[^0-9A-Za-z]+", network) if p]
    name = "".join(p[0].upper() + p[1:] for p in parts) or "Network"
    return name if name[0].isalpha() else "Net" + name


def attribute(path: str) -> str:
    """`layer1.0.conv1` → `layer1[0].conv1`: a dotted module path as Python attribute access."""
    out = ""
    for part in path.split("."):
        out += f"[{part}]" if part.isdigit() else (f".{part}" if out else part)
    return out


# The variable a composite's body computes into, as torchvision writes it.
_BODY_VARIABLES = {BlockKind.RESIDUAL: "out", BlockKind.SE: "s", BlockKind.SHORTCUT: "shortcut"}


def _past_merge(layer: Layer, block: BlockInstance, index: dict[str, int]) -> bool:
    """Whether `layer` is a composite's closing merge (add, concat, mul) or comes after it
    in the same scope: its output belongs to the enclosing chain, not to the composite's body."""
    return block.merge is not None and block.merge in index and index[layer.name] >= index[block.merge]


def preferred_name(net, layer: Layer, chain: tuple[str, ...], index: dict[str, int]) -> str:
    blocks = net.blocks
    for instance in reversed(chain):
        block = blocks[instance]
        if _past_merge(layer, block, index):
            continue
        if block.kind is BlockKind.BRANCH:
            return block.name  # b1, b2, …
        if block.kind in _BODY_VARIABLES:
            return _BODY_VARIABLES[block.kind]
    return "x"


# ---- what one forward computes -----------------------------------------------------------------


@dataclass
class _Unit:
    """One statement before its variables are named: a layer, or a call of a submodule."""

    layer: Layer  # the value it computes
    inputs: tuple[str, ...]
    attr: str | None
    module: Ctor | None
    template: str  # with {m} and {0}, {1}, …
    chain: tuple[str, ...]  # the block instances around it, inside the forward's module (for its variable's name)
    containers: tuple[str, ...]  # the container instances it sits in, outermost first
    members: list[Member]  # the __init__ lines it brings (a chain container: its layers)
    comment: str = ""
    is_call: bool = False


def _relative(path: str, owner_path: str) -> str:
    return path[len(owner_path) + 1:] if owner_path else path


def _layer_unit(net, layer: Layer, chain, containers, owner_path: str, may_overwrite=False) -> _Unit:
    shapes = tuple(net.layer(n).shape for n in layer.inputs)
    emitted = emit(layer, shapes, may_overwrite)
    attr = _relative(net.module_path(layer.name), owner_path) if emitted.module is not None else None
    comment = "" if layer.inserted and containers else layer.token
    members = [Member(attr, emitted.module, comment, layer)] if attr else []
    return _Unit(layer, layer.inputs, attr, emitted.module, emitted.expr, chain, containers, members, comment)


def _units(net, owner: str | None, ctors: dict[str, Ctor]) -> list[_Unit]:
    layout = net.module_layout
    owner_path = layout.instance_paths[owner] if owner else ""
    units: list[_Unit] = []
    called: set[str] = set()
    for layer in net.layers:
        if isinstance(layer.op, Input):
            continue
        scope = layer.scope
        if owner is not None:
            if owner not in scope:
                continue
            at = scope.index(owner)
            around, inner = scope[: at + 1], scope[at + 1:]
        else:
            around, inner = (), scope
        callee = next(((k, i) for k, i in enumerate(inner)
                       if i in layout.stage_of or layout.roles[i] is not Role.CONTAINER), None)
        if callee is None:
            units.append(_layer_unit(net, layer, around + inner, inner, owner_path))
            continue
        k, instance = callee
        stage = layout.stage_of.get(instance)
        key = stage.path if stage else instance
        if key in called:
            continue
        called.add(key)
        calls = stage.instances if stage else (instance,)
        exit_layer = net.layer(layout.exits[calls[-1]])
        module = Ctor("Sequential", tuple(ctors[i] for i in calls)) if stage else ctors[instance]
        attr = _relative(stage.path if stage else layout.instance_paths[instance], owner_path)
        comment = _call_comment(net, calls)
        units.append(_Unit(exit_layer, (layout.entries[calls[0]],), attr, module, CALL, around + inner[:k], inner[:k],
                           [Member(attr, module, comment)], comment, is_call=True))
    return _collapse_chains(net, units, owner_path)


def _call_comment(net, calls: tuple[str, ...]) -> str:
    """How the spec called the block: `bottleneck(c=128, s=2)`, or a stage's calls."""
    def call(instance: str) -> str:
        block = net.blocks[instance]
        args = ", ".join(f"{k}={v}" for k, v in block.args)
        return f"{block.name}({args})" if block.args else block.name

    written = [call(i) for i in calls]
    if len(set(written)) == 1:
        return written[0] + (f" * {len(written)}" if len(written) > 1 else "")
    if len(set(written[1:])) == 1:
        return f"{written[0]} {written[1]}" + (f" * {len(written) - 1}" if len(written) > 2 else "")
    return " ".join(written)


def _collapse_chains(net, units: list[_Unit], owner_path: str) -> list[_Unit]:
    """A container whose statements form a chain of module calls (a projection shortcut, an inception
    branch) becomes one nn.Sequential, called once: `shortcut = self.shortcut(x)`. Innermost first."""
    while True:
        candidates = {u.containers[-1] for u in units if u.containers}
        depth = lambda c: net.blocks[c].depth  # noqa: E731
        for container in sorted(candidates, key=depth, reverse=True):
            inside = [i for i, u in enumerate(units) if container in u.containers]
            group = [units[i] for i in inside]
            if any(u.containers[-1] != container for u in group):
                continue  # something nested in it is not a chain: it stays a container
            entry = net.module_layout.entries.get(container) or net.blocks[container].entry
            if not _is_chain(net, group, entry):
                continue
            collapsed = _Unit(group[-1].layer, (entry,),
                              _relative(net.module_layout.instance_paths[container], owner_path),
                              Ctor("Sequential"), CALL, group[0].chain[: group[0].chain.index(container) + 1],
                              group[0].containers[:-1], [], "", is_call=True)
            chain_members = [Member(collapsed.attr, Ctor("Sequential"))]
            for u in group:  # inside a chain each value dies at the next layer: in place where the op allows
                if not u.is_call:
                    dies_here = u.layer.inputs[0] not in net.output_nodes.values()
                    u = _layer_unit(net, u.layer, u.chain, u.containers, owner_path, _may_overwrite(net, u.layer, dies_here))
                chain_members += u.members
            collapsed.members = chain_members
            units = units[: inside[0]] + [collapsed] + units[inside[-1] + 1:]
            break
        else:
            return units


def _is_chain(net, group: list[_Unit], entry: str) -> bool:
    graph = net.graph
    outputs = set(net.output_nodes.values())
    previous = entry
    for k, unit in enumerate(group):
        if unit.template != CALL or unit.module is None or unit.inputs != (previous,):
            return False
        if k < len(group) - 1:
            next_inside = _layers_of(net, group[k + 1])
            if unit.layer.name in outputs or any(s not in next_inside for s in graph.successors(unit.layer.name)):
                return False
        previous = unit.layer.name
    return True


def _layers_of(net, unit: _Unit) -> set[str]:
    if not unit.is_call:
        return {unit.layer.name}
    entry = unit.inputs[0]  # the layers between the call's entry and its exit
    return set(nx.descendants(net.graph, entry)) & (set(nx.ancestors(net.graph, unit.layer.name)) | {unit.layer.name})


def _forward(net, owner: str | None, ctors: dict[str, Ctor]) -> Forward:
    """The statements of one module's forward, its variables named, and its __init__ lines."""
    layout = net.module_layout
    graph = net.graph
    units = _units(net, owner, ctors)
    index = {layer.name: i for i, layer in enumerate(net.layers)}
    owner_path = layout.instance_paths[owner] if owner else ""
    if owner is None:
        entry = graph.input
        outputs = dict(net.output_nodes)
    else:
        entry = layout.entries[owner]
        outputs = {"output": layout.exits[owner]}
    end = len(units)
    last_use: dict[str, int] = {entry: -1}
    for k, unit in enumerate(units):
        last_use.setdefault(unit.layer.name, k)
        for i in unit.inputs:
            last_use[i] = max(last_use.get(i, -1), k)
    for node in outputs.values():
        last_use[node] = end
    preferred = [preferred_name(net, u.layer, u.chain, index) for u in units]
    tensor_names = graph.tensor_names

    variable: dict[str, str] = {entry: "x"}
    live: dict[str, str] = {"x": entry}
    steps: list[Step] = []
    members: list[Member] = []
    declared: set[str] = set()
    for k, unit in enumerate(units):
        for var, node in list(live.items()):
            if last_use.get(node, -1) <= k:
                del live[var]

        def taken(name: str) -> bool:
            later_writer = any(preferred[j] == name for j in range(k + 1, min(last_use[unit.layer.name], end)))
            return name in live or later_writer

        name = preferred[k]
        if taken(name):
            base = identifier(tensor_names.get(unit.layer.name) or flat_module_name(_relative_name(unit.layer.name, owner)))
            name, n = base, 1
            while taken(name):
                n += 1
                name = f"{base}_{n}"
        variable[unit.layer.name] = name
        live[name] = unit.layer.name
        if not unit.is_call:  # now that liveness is known: in place where the input dies here
            unit = _layer_unit(net, unit.layer, unit.chain, unit.containers, owner_path,
                               _may_overwrite(net, unit.layer, last_use.get(unit.layer.inputs[0]) == k))
        for member in unit.members:
            members += _containers_of(member, declared)
            members.append(member)
            declared.add(member.attr)
        expr = unit.template.format(*(variable[n] for n in unit.inputs),
                                    m=f"self.{attribute(unit.attr)}" if unit.attr else "")
        paragraph = _relative_name(unit.containers[0], owner) if unit.containers else None
        steps.append(Step(unit.layer, unit.attr, unit.module, expr, name, paragraph))
    _check_names(net, owner, members)
    return Forward(owner, "x", tuple(members), tuple(steps),
                   tuple((out, variable[node]) for out, node in outputs.items()))


def _relative_name(layer_name: str, owner: str | None) -> str:
    return layer_name[len(owner) + 1:] if owner and layer_name.startswith(owner + ".") else layer_name


def _containers_of(member: Member, declared: set[str]) -> list[Member]:
    """The containers a member's path goes through, declared before it: `self.se1 = nn.ModuleDict()`."""
    parts = member.attr.split(".")
    out = []
    for i in range(1, len(parts)):
        path = ".".join(parts[:i])
        if path not in declared:
            declared.add(path)
            out.append(Member(path, Ctor("ModuleDict")))
    return out


def _may_overwrite(net, layer: Layer, dies_here: bool) -> bool:
    """Whether `layer` may compute in place, over its input: its one input, which nothing else reads
    and which is dead after it (`dies_here`, as the caller's liveness says), comes from an op whose
    gradient does not need its output."""
    source = layer.inputs[0]
    return (
        len(layer.inputs) == 1
        and net.graph.out_degree(source) == 1  # no other consumer saved it for the backward pass
        and dies_here
        and net.layer(source).op.has(Trait.OUTPUT_OVERWRITABLE)
    )


def _check_names(net, owner: str | None, members: list[Member]) -> None:
    for member in members:
        name = member.attr.rsplit(".", 1)[-1]
        if name in MODULE_ATTRIBUTES or keyword.iskeyword(name):
            span = member.layer.span if member.layer else (net.blocks[owner].span if owner else None)
            what = member.layer.name if member.layer else name
            raise ArchError(
                f"the layer name '{what}' is taken by PyTorch's nn.Module; name the tensor differently (-> {name}_)",
                span,
            )


# ---- block classes ---------------------------------------------------------------------------------


def _skeleton(forward: Forward) -> tuple[tuple, list[int]]:
    numbers: list[int] = []
    members = tuple((m.attr, slots(m.module, numbers), m.comment) for m in forward.members)
    steps = tuple((s.target, s.expr) for s in forward.steps)
    return (members, steps, forward.outputs), numbers


def _block_classes(net, block_name: str, instances: list[str], forwards: dict[str, Forward],
                   taken: set[str]) -> list[BlockClass]:
    groups: dict[tuple, list[str]] = {}
    numbers: dict[str, list[int]] = {}
    for instance in instances:
        key, values = _skeleton(forwards[instance])
        groups.setdefault(key, []).append(instance)
        numbers[instance] = values
    base = class_name(block_name)
    classes = []
    ordered = sorted(groups.values(), key=len, reverse=True)  # the commonest expansion takes the plain name
    for k, group in enumerate(ordered):
        name = base if k == 0 else base + _variant_suffix(net, group, ordered[0], k)
        while name in taken:
            name += "_"
        taken.add(name)
        classes.append(_template(net, name, group, forwards, numbers))
    return sorted(classes, key=lambda c: net.module_layout.instance_paths[c.instances[0]])


def _variant_suffix(net, group: list[str], common: list[str], k: int) -> str:
    def has_projection(instance: str) -> bool:
        return any(b.inserted and b.parent == instance for b in net.blocks.values())

    if has_projection(group[0]) and not has_projection(common[0]):
        return "Projection"
    return str(k + 1)


def _template(net, name: str, group: list[str], forwards: dict[str, Forward], numbers: dict[str, list[int]]) -> BlockClass:
    first = net.blocks[group[0]]
    forward = forwards[group[0]]
    entries = [net.layer(net.module_layout.entries[i]).shape for i in group]
    arguments = []
    for param, _ in first.args:
        values = tuple(dict(net.blocks[i].args).get(param) for i in group)
        if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            arguments.append((param, values))
    params = Parameters(arguments, tuple(s[0] for s in entries))
    columns = list(zip(*(numbers[i] for i in group)))
    fallbacks, reads_input, tokens = slot_names(forward, net.module_layout.entries[first.id])
    params.prefer([tuple(col) for col in columns], tokens)
    exprs = [as_expr(params.express(tuple(col), fallbacks[j], reads_input=reads_input[j], token=tokens[j]))
             for j, col in enumerate(columns)]
    members = []
    queue = list(exprs)
    for member in forward.members:
        shadow: list[int] = []
        skeleton = slots(member.module, shadow)
        members.append(replace(member, module=fill(skeleton, queue[: len(shadow)])))
        del queue[: len(shadow)]
    steps = []
    for step in forward.steps:
        module = next((m.module for m in members if m.attr == step.attr), None)
        steps.append(replace(step, module=module))
    templated = replace(forward, members=tuple(members), steps=tuple(steps))
    order = [p for p, _ in first.args] + ["in_channels"]
    used = sorted(params.used, key=lambda p: order.index(p) if p in order else len(order))
    if "in_channels" in used:
        used.remove("in_channels")
        used.insert(0, "in_channels")
    if len(group) == 1:  # one instance: its own shapes
        shapes = tuple(fmt_shape(step.shape) for step in forward.steps)
        input_shape = fmt_shape(entries[0])
    else:
        shapes = tuple(symbolic_shape(net, params, [forwards[i].steps[j].layer.shape for i in group], entries)
                       for j in range(len(forward.steps)))
        input_shape = symbolic_shape(net, params, entries, entries)
    known = dict(params.known)
    arguments = tuple({p: known[p][i] for p in used} for i in range(len(group)))
    return BlockClass(name, first, tuple(group), tuple(used), templated, shapes, input_shape, arguments)


# ---- the whole plan -----------------------------------------------------------------------------------


def build_plan(net) -> Plan:
    layout = net.module_layout
    blocks = net.blocks
    from . import local_modules

    ctors: dict[str, Ctor] = {}
    classes: list[BlockClass] = []
    local_names = {v.name for v in vars(local_modules).values() if isinstance(v, LocalModule)}
    name = class_name(net.name)
    if name in local_names:
        name += "Net"  # a network called layer_scale must not shadow the LayerScale class it uses
    taken = {name} | local_names
    # blocks before the blocks that call them
    calls = nx.DiGraph()
    for instance, block in blocks.items():
        if block.user:
            calls.add_node(block.name)
            parent = block.parent
            while parent is not None and not blocks[parent].user:
                parent = blocks[parent].parent
            if parent is not None:
                calls.add_edge(blocks[parent].name, block.name)
    forwards: dict[str, Forward] = {}
    for block_name in reversed(list(nx.topological_sort(calls))):
        instances = [i for i, b in blocks.items() if b.user and b.name == block_name]
        as_class = [i for i in instances if layout.roles[i] is Role.CLASS]
        for instance in as_class:
            forwards[instance] = _forward(net, instance, ctors)
        for cls in _block_classes(net, block_name, as_class, forwards, taken) if as_class else ():
            classes.append(cls)
            for instance, values in zip(cls.instances, cls.arguments):
                positional = [values["in_channels"]] if "in_channels" in values else []
                kwargs = tuple((p, values[p]) for p in cls.params if p != "in_channels")
                ctors[instance] = Ctor(cls.name, tuple(positional), kwargs, namespace="")
        for instance in instances:
            if layout.roles[instance] is Role.SEQUENTIAL:
                kids = [i for i, b in blocks.items() if b.parent == instance]
                ctors[instance] = Ctor("Sequential", tuple(ctors[k] for k in kids))
    root = _forward(net, None, ctors)
    _check_unique_paths(net)
    layer_modules = tuple(_all_layer_modules(net, root, forwards))
    return Plan(
        class_name=name,
        network=net.name,
        input_var=root.input_var,
        input_shape=net.input_shape,
        steps=root.steps,
        outputs=root.outputs,
        members=root.members,
        classes=tuple(classes),
        layer_modules=layer_modules,
    )


def _all_layer_modules(net, root: Forward, forwards: dict[str, Forward]):
    """(layer, module path, its ctor) for every layer that has a module: what init_weights sets."""
    seen = set()
    for forward in (root, *forwards.values()):
        for member in forward.members:
            if member.layer is not None and member.layer.name not in seen:
                seen.add(member.layer.name)
                yield member.layer, net.module_path(member.layer.name), member.module


def _check_unique_paths(net) -> None:
    seen: dict[str, str] = {}
    for layer in net.layers:
        path = net.module_path(layer.name)
        if path in seen:
            raise ArchError(
                f"layers '{seen[path]}' and '{layer.name}' would both be the submodule '{path}' in PyTorch;"
                " rename one of them",
                layer.span,
            )
        seen[path] = layer.name
