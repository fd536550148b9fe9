"""Where each layer lives in the PyTorch module: one function, used by every backend.

`Network.module_paths` maps an archdsl layer name (`bottleneck5.conv2`) to the dotted path
of its submodule in the module `to_torch()` builds, which is also the prefix of its
tensors in a state_dict (`layer2.1.conv2.weight`). The TVM backend reads state_dicts by
it, training freezes and transfers layers by it, and hooks find a layer's module by it
(`model.get_submodule(path)`). It lives in the core, not in the PyTorch backend, so that
reading a checkpoint's names never needs more than the IR.

The module is laid out as torchvision lays out its models (resnet.py is the model):

  * each call of a `block` is a submodule, an instance of a class generated for that
    block (`Bottleneck`), when it reads one tensor and gives one (`Role.CLASS`);
  * a stage the spec labels (`"conv3_x": [bottleneck(128, s=2) bottleneck(128) * 3]`) whose
    members are calls that each feed the next is an `nn.Sequential` named `layer1`, `layer2`, …;
    so are, where the spec labels none, consecutive calls of one block that each feed the next
    (a new stage starts where a call changes the shape): `layer2.0.conv1`. A block whose body is
    nothing but such calls is an `nn.Sequential` itself (`Role.SEQUENTIAL`);
  * a composite written inline, a part of a composite (a branch, a shortcut) and a block
    call that cannot be a class group their layers under their name (`shortcut.conv`),
    computed by the enclosing module's forward (`Role.CONTAINER`);
  * a layer is named within its innermost block instance: `conv2`, as `archdsl check`
    prints it after the instance's dot.

`layout(net)` holds all of it; its `paths` (layer → path) are `Network.module_paths`.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass


class Role(enum.Enum):
    """What a block instance is in the PyTorch module."""

    CLASS = "class"  # an instance of a generated nn.Module class: its own forward
    SEQUENTIAL = "sequential"  # an nn.Sequential of its block calls, indexed 0, 1, …
    CONTAINER = "container"  # its layers grouped under its name, computed by the enclosing forward


STAGE_NAME = "layer"  # torchvision's name for a stage: layer1 … layer4


@dataclass(frozen=True)
class Stage:
    """Consecutive calls of one block, each feeding the next: an nn.Sequential (`layer2`)."""

    path: str
    owner: str | None  # the block instance whose module holds it; None: the network's module
    instances: tuple[str, ...]


@dataclass(frozen=True)
class Layout:
    paths: dict[str, str]  # layer → dotted submodule path
    roles: dict[str, Role]  # block instance → what it is in the module
    instance_paths: dict[str, str]  # block instance → dotted path
    stages: tuple[Stage, ...]
    stage_of: dict[str, Stage]  # block instance → the stage it is in
    exits: dict[str, str]  # block instance with a module of its own → its last layer, the value it gives
    entries: dict[str, str | None]  # block instance → the tensor from outside its layers read (None: several)

    def owner(self, net, layer_name: str) -> str | None:
        """The block instance whose generated class computes `layer_name` (None: the network's class)."""
        for instance in reversed(net.layer(layer_name).scope):
            if self.roles[instance] is Role.CLASS:
                return instance
        return None


def flat_module_name(layer_name: str) -> str:
    """A layer's name with its dots, which nn.Module forbids in names, made '_' (a variable's name)."""
    return layer_name.replace(".", "_")


def _join(*parts: str) -> str:
    return ".".join(p for p in parts if p)


def _short(name: str, instance: str | None) -> str:
    """`bottleneck5.conv2` within `bottleneck5` → `conv2`; an instance's id within its parent likewise."""
    return name[len(instance) + 1:] if instance else name


def _members(net) -> dict[str, list[str]]:
    """Block instance → every layer inside it (nested instances included), in the graph's order."""
    members: dict[str, list[str]] = {instance: [] for instance in net.blocks}
    for layer in net.layers:
        for instance in layer.scope:
            members[instance].append(layer.name)
    return members


def _entry(net, inside: list[str]) -> str | None:
    """The one tensor from outside that a block call's layers read, or None. (A block built around
    one composite records the composite's entry, which may come after the block's first layers.)"""
    own = set(inside)
    outside = {i for name in inside for i in net.layer(name).inputs if i not in own}
    return outside.pop() if len(outside) == 1 else None


def _exit(net, inside: list[str]) -> str | None:
    """The one layer of a block call whose value leaves it, if the call reads one tensor and gives
    one (so that it can be a module of its own); else None."""
    graph = net.graph
    own = set(inside)
    outputs = set(net.output_nodes.values())
    if _entry(net, inside) is None:
        return None
    leaving = [name for name in inside if name in outputs or any(s not in own for s in graph.successors(name))]
    if len(leaving) != 1 or leaving[0] != inside[-1]:
        return None
    return leaving[0]


def layout(net) -> Layout:
    blocks = net.blocks
    members = _members(net)
    children: dict[str | None, list[str]] = {}
    for instance, block in blocks.items():  # instances in creation order: the graph's order
        children.setdefault(block.parent, []).append(instance)
    exits = {i: _exit(net, members[i]) if blocks[i].user and members[i] else None for i in blocks}
    entries = {i: _entry(net, members[i]) if members[i] else blocks[i].entry for i in blocks}

    roles: dict[str, Role] = {}
    for instance, block in blocks.items():
        roles[instance] = Role.CLASS if exits[instance] is not None else Role.CONTAINER

    def chained(calls: list[str]) -> bool:
        """Each call reads the previous one's exit, which nothing else reads."""
        outputs = set(net.output_nodes.values())
        for a, b in zip(calls, calls[1:]):
            inside_b = set(members[b])
            if (entries[b] != exits[a] or exits[a] in outputs
                    or any(s not in inside_b for s in net.graph.successors(exits[a]))):
                return False
        return True

    # A block made only of block calls that chain is an nn.Sequential (deepest first, so nesting composes).
    for instance in sorted(blocks, key=lambda i: -blocks[i].depth):
        kids = children.get(instance, [])
        if (roles[instance] is Role.CLASS and kids and all(roles[k] in (Role.CLASS, Role.SEQUENTIAL) for k in kids)
                and sum(len(members[k]) for k in kids) == len(members[instance])
                and entries[kids[0]] == entries[instance] and chained(kids)):
            roles[instance] = Role.SEQUENTIAL

    attributes: dict[str | None, set[str]] = {}  # owner module → attribute names taken
    for layer in net.layers:
        if layer.scope:
            attributes.setdefault(layer.scope[-1], set()).add(_short(layer.name, layer.scope[-1]))
        else:
            attributes.setdefault(None, set()).add(layer.name)
    for instance, block in blocks.items():
        attributes.setdefault(block.parent, set()).add(_short(instance, block.parent))

    stages: list[Stage] = []
    stage_of: dict[str, Stage] = {}
    instance_paths: dict[str, str] = {}

    def path_of(instance: str | None) -> str:
        if instance is None:
            return ""
        if instance not in instance_paths:
            block = blocks[instance]
            if instance in stage_of:
                stage = stage_of[instance]
                instance_paths[instance] = _join(stage.path, str(stage.instances.index(instance)))
            elif block.parent is not None and roles[block.parent] is Role.SEQUENTIAL:
                instance_paths[instance] = _join(path_of(block.parent), str(children[block.parent].index(instance)))
            else:
                instance_paths[instance] = _join(path_of(block.parent), _short(instance, block.parent))
        return instance_paths[instance]

    labelled = [
        list(stage.members) for stage in getattr(net.graph, "stages", {}).values()
        if len(stage.members) > 1 and all(m in blocks and roles[m] is Role.CLASS for m in stage.members)
        and len({blocks[m].parent for m in stage.members}) == 1 and chained(list(stage.members))
    ]
    in_labelled = {m for run in labelled for m in run}
    for owner in [None, *blocks]:
        if owner is not None and roles[owner] is Role.SEQUENTIAL:
            continue
        calls = children.get(owner, [])
        runs = [run for run in labelled if blocks[run[0]].parent == owner]  # the spec's own stages first
        runs += _stage_runs(net, [c for c in calls if c not in in_labelled], roles, chained, members)
        runs.sort(key=lambda run: calls.index(run[0]))
        for run in runs:
            taken = attributes.setdefault(owner, set())
            n = 1 + sum(1 for s in stages if s.owner == owner)
            while f"{STAGE_NAME}{n}" in taken:
                n += 1
            taken.add(f"{STAGE_NAME}{n}")
            stage = Stage(_join(path_of(owner), f"{STAGE_NAME}{n}"), owner, tuple(run))
            stages.append(stage)
            for instance in run:
                stage_of[instance] = stage

    paths = {}
    for layer in net.layers:
        inner = layer.scope[-1] if layer.scope else None
        paths[layer.name] = _join(path_of(inner), _short(layer.name, inner))
    for instance in blocks:
        path_of(instance)
    exits = {i: e for i, e in exits.items() if roles[i] is not Role.CONTAINER}
    return Layout(paths, roles, instance_paths, tuple(stages), stage_of, exits, entries)


def _stage_runs(net, calls: list[str], roles: dict[str, Role], chained, members) -> list[list[str]]:
    """Runs of at least two consecutive calls of one block that chain; a call that changes the
    shape starts a new run (the stride-2 first block of each ResNet stage)."""
    blocks = net.blocks
    runs: list[list[str]] = []
    current: list[str] = []
    for instance in calls:
        block = blocks[instance]
        entry = _entry(net, members[instance]) if members[instance] else None
        entry_shape = net.layer(entry).shape if entry else None
        exit_shape = net.layer(members[instance][-1]).shape if members[instance] else entry_shape
        joins = (
            current
            and roles[instance] is Role.CLASS
            and blocks[current[-1]].name == block.name
            and entry_shape == exit_shape
            and chained([current[-1], instance])
        )
        if joins:
            current.append(instance)
            continue
        if len(current) > 1:
            runs.append(current)
        current = [instance] if roles[instance] is Role.CLASS else []
    if len(current) > 1:
        runs.append(current)
    return runs


def layers_under(net, path: str) -> list[str]:
    """The layers whose submodule is `path` or lies inside it (`layer3` → every layer of that stage),
    or the layers of the block instance called `path`; in the graph's order."""
    prefix = path + "."
    found = [name for name, module in net.module_paths.items() if module == path or module.startswith(prefix)]
    if not found:
        found = [layer.name for layer in net.layers if path in layer.scope]
    return found
