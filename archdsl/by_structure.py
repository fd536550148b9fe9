"""Weights from elsewhere, mapped onto a spec by structure: a torchvision or timm state_dict,
or any {name: tensor}, whose names match nothing archdsl writes.

    map_by_structure(net, [(key, shape), …]) -> StructureMap
        .keys     their key → the spec's state_dict key (`net.module_path(layer).weight`)
        .rows     what did not map, one `Mismatch` per module: their name, their shape, the
                  spec layer it would go to, what differs; `.table()` prints them

The file's tensors are grouped by module (`layer1.0.conv1`), in the file's order, and each
group's roles are read off its tensors (a norm has running statistics; a kernel has three or
more dimensions, a fully connected weight two). The spec's layers with weights are taken in
the graph's topological order, each with the roles its op declares (`Op.weights`). A layer
takes a group with the same roles and shapes; where the file registers a block's modules in
another order than they run (a shortcut before the main path), the layer looks ahead among
the file's next groups, as many as its block still needs, and prefers, among groups that fit
alike, the norm registered right after the conv it follows, the side (shortcut or main path)
its name says, the same nesting depth within the block, and the same name; then the first.

Nothing here imports torch: shapes are tuples, so the core can say what fits before anything
is loaded.
"""
from __future__ import annotations

from dataclasses import dataclass

from .ops import Role

STATISTICS = {"running_mean": Role.RUNNING_MEAN, "running_var": Role.RUNNING_VAR,
              "num_batches_tracked": Role.STEP_COUNT}
# Words reference code uses for a residual's shortcut (torchvision: downsample; timm: shortcut, downsample).
SHORTCUT_WORDS = ("shortcut", "downsample", "proj", "skip", "sc", "identity", "residual_conv")
# Roles that mean the same tensor to a file that cannot tell them apart by its names.
_KIND = {Role.KERNEL: "kernel", Role.TRANSPOSED_KERNEL: "kernel", Role.DENSE: "dense", Role.BIAS: "bias",
         Role.SCALE: "scale", Role.SHIFT: "shift", Role.RUNNING_MEAN: "mean", Role.RUNNING_VAR: "var",
         Role.CONSTANT: "constant"}


def _fmt(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape)) or "scalar"


@dataclass(frozen=True)
class Group:
    """The tensors of one module of the file, in the file's order."""

    prefix: str  # `layer1.0.conv1` ('' for tensors at the top)
    tensors: tuple[tuple[str, tuple[int, ...]], ...]  # (leaf name, shape)
    position: int

    @property
    def roles(self) -> dict[str, Role]:
        """Leaf name → role, read off the names and shapes as PyTorch's modules register them."""
        leaves = dict(self.tensors)
        norm = "running_mean" in leaves or "running_var" in leaves
        roles = {}
        for leaf, shape in self.tensors:
            if leaf in STATISTICS:
                roles[leaf] = STATISTICS[leaf]
            elif norm or (leaf in ("weight", "bias") and len(leaves.get("weight", ())) == 1 and "bias" in leaves
                          and len(leaves.get("bias", ())) == 1):
                roles[leaf] = Role.SCALE if leaf == "weight" else Role.SHIFT  # a norm: bn, layer norm, group norm
            elif leaf == "bias":
                roles[leaf] = Role.BIAS
            elif not leaf.endswith("weight"):
                roles[leaf] = Role.CONSTANT  # ConvNeXt's layer_scale, a gamma: a learned value, not a layer's kernel
            elif len(shape) >= 3:
                roles[leaf] = Role.KERNEL
            elif len(shape) == 2:
                roles[leaf] = Role.DENSE
            else:
                roles[leaf] = Role.CONSTANT  # PReLU's slope
        return roles

    @property
    def signature(self) -> tuple:
        return _signature((_KIND[r], dict(self.tensors)[leaf]) for leaf, r in self.roles.items()
                          if r is not Role.STEP_COUNT)

    @property
    def depth(self) -> int:
        return self.prefix.count(".") + 1 if self.prefix else 0

    @property
    def words(self) -> tuple[str, ...]:
        return tuple(self.prefix.split(".")) if self.prefix else ()

    def describe(self) -> str:
        roles = self.roles
        shapes = dict(self.tensors)
        main = next((leaf for leaf, r in roles.items() if r in (Role.KERNEL, Role.DENSE, Role.CONSTANT)), None)
        if main is not None:
            extra = ", bias" if "bias" in roles and roles["bias"] is Role.BIAS else ""
            return _fmt(shapes[main]) + extra
        scale = next((leaf for leaf, r in roles.items() if r is Role.SCALE), None)
        if scale is not None:
            return f"norm {_fmt(shapes[scale])}" + (" with statistics" if "running_mean" in roles else "")
        return ", ".join(f"{leaf} {_fmt(s)}" for leaf, s in self.tensors)


def _signature(items) -> tuple:
    return tuple(sorted(items))


@dataclass(frozen=True)
class Target:
    """A layer of the spec with weights."""

    layer: str
    token: str
    path: str  # its module path: the prefix of its keys
    weights: tuple[tuple[str, Role, tuple[int, ...]], ...]  # (name, role, shape) in PyTorch's order
    block: str | None  # the block instance whose layers it is looked for among
    shortcut: bool  # in a residual's shortcut
    follows: str | None  # the layer with weights it reads directly (a conv before its bn)

    @property
    def signature(self) -> tuple:
        return _signature((_KIND[r], s) for _, r, s in self.weights if r is not Role.STEP_COUNT)

    @property
    def depth(self) -> int:
        return self.path.count(".") + 1

    def describe(self) -> str:
        main = next((s for _, r, s in self.weights if r in (Role.KERNEL, Role.TRANSPOSED_KERNEL, Role.DENSE,
                                                          Role.CONSTANT)), None)
        if main is not None:
            return _fmt(main) + (", bias" if any(r is Role.BIAS for _, r, _s in self.weights) else "")
        scale = next((s for _, r, s in self.weights if r is Role.SCALE), None)
        if scale is not None:
            return f"norm {_fmt(scale)}" + (" with statistics" if any(r is Role.RUNNING_MEAN for _, r, _s in self.weights) else "")
        return ", ".join(f"{n} {_fmt(s)}" for n, _, s in self.weights)


@dataclass(frozen=True)
class Mismatch:
    their: str | None  # the file's module, or None: the spec's layer found nothing
    their_shape: str
    layer: str | None  # the spec's layer it would go to, or None: nothing is left to take it
    token: str
    why: str


@dataclass(frozen=True)
class StructureMap:
    keys: dict[str, str]  # the file's key → the spec's state_dict key
    rows: tuple[Mismatch, ...]
    layers: dict[str, str]  # spec layer → the file's module it took

    def table(self, rows: tuple[Mismatch, ...] | None = None, limit: int = 30) -> str:
        rows = self.rows if rows is None else rows
        more = len(rows) - limit if len(rows) > limit else 0
        rows = rows[:limit]
        header = ("their name", "their shape", "spec layer", "what differs")
        body = [(r.their or "—", r.their_shape or "—", f"{r.layer} ({r.token})" if r.layer else "—", r.why)
                for r in rows]
        widths = [max(len(row[i]) for row in [header, *body]) for i in range(3)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(row[:3], widths)) + "  " + row[3] for row in [header, *body]]
        lines.insert(1, "  ".join("-" * w for w in widths) + "  " + "-" * len(header[3]))
        if more:
            lines.append(f"… and {more} more")
        return "\n".join(line.rstrip() for line in lines)


def groups_of(layout: list[tuple[str, tuple[int, ...]]]) -> list[Group]:
    """The file's tensors grouped by module, each group where its first tensor stands."""
    order: dict[str, list[tuple[str, tuple[int, ...]]]] = {}
    for key, shape in layout:
        prefix, _, leaf = key.rpartition(".")
        order.setdefault(prefix, []).append((leaf, tuple(shape)))
    return [Group(prefix, tuple(tensors), i) for i, (prefix, tensors) in enumerate(order.items())]


def targets_of(net) -> list[Target]:
    """The spec's layers with weights, in the graph's (topological) order."""
    from .naming import Role as ModuleRole

    layout = net.module_layout
    blocks = net.blocks
    weighted = {}
    targets = []
    for layer in net.layers:
        shapes = tuple(net.layer(i).shape for i in layer.inputs)
        weights = layer.op.weights(shapes)
        if not weights:
            continue
        block = next((i for i in layer.scope if layout.roles[i] is not ModuleRole.SEQUENTIAL), None)
        shortcut = any(blocks[i].kind.value == "shortcut" for i in layer.scope)
        source = layer.inputs[0] if len(layer.inputs) == 1 else None
        targets.append(Target(layer.name, layer.token, net.module_path(layer.name),
                              tuple((n, w.role, w.shape) for n, w in weights.items()), block, shortcut,
                              source if source in weighted else None))
        weighted[layer.name] = True
    return targets


def state_keys(net) -> list[str]:
    """The keys of the state_dict of `net.to_torch()`, from the IR alone."""
    return [f"{t.path}.{name}" for t in targets_of(net) for name, _, _ in t.weights]


def map_by_structure(net, layout: list[tuple[str, tuple[int, ...]]]) -> StructureMap:
    """Map a file's tensors (key, shape), in its order, onto the spec's layers by structure."""
    groups = groups_of(layout)
    targets = targets_of(net)
    left = list(groups)  # the file's groups not yet taken, in order
    remaining: dict[str | None, int] = {}
    for t in targets:
        remaining[t.block] = remaining.get(t.block, 0) + 1
    taken: dict[str, Group] = {}
    keys: dict[str, str] = {}
    rows: list[Mismatch] = []
    block_start: dict[str | None, tuple[int, int]] = {}  # block → (the spec's depth, the file's) where it starts
    for target in targets:
        window = left[: remaining[target.block] if target.block is not None else 1]
        remaining[target.block] -= 1
        if target.block not in block_start and window:
            block_start[target.block] = (target.depth, window[0].depth)
        fitting = [g for g in window if g.signature == target.signature]
        if fitting:
            choice = min(fitting, key=lambda g: _preference(g, target, taken, block_start[target.block]))
            left.remove(choice)
            taken[target.layer] = choice
            keys.update(_keys(choice, target))
            continue
        kind = _main_kind(target.signature)
        alike = [g for g in window if _main_kind(g.signature) == kind]
        if alike:  # the file's counterpart, with other shapes: reported, and consumed so that the rest stays aligned
            group = alike[0]
            left.remove(group)
            rows.append(Mismatch(group.prefix, group.describe(), target.layer, target.token, _difference(group, target)))
        else:
            rows.append(Mismatch(None, "", target.layer, target.token,
                                 f"the file has nothing for it here (the spec's layer: {target.describe()})"))
    for group in left:
        rows.append(Mismatch(group.prefix, group.describe(), None, "", "no layer of the spec is left to take it"))
    return StructureMap(keys, tuple(rows), {layer: g.prefix for layer, g in taken.items()})


def _preference(group: Group, target: Target, taken: dict[str, Group], start: tuple[int, int]) -> tuple:
    """Among the file's groups that fit a layer alike: the norm registered right after the conv it
    follows, the side (shortcut or main path) its name says, its depth within the block, its name."""
    after = taken.get(target.follows) if target.follows else None
    adjacent = 0 if after is not None and group.position == after.position + 1 else 1
    says_shortcut = any(w.lower().startswith(SHORTCUT_WORDS) for w in group.words)
    side = 0 if says_shortcut == target.shortcut else 1
    depth = abs((target.depth - start[0]) - (group.depth - start[1]))
    same_name = 0 if group.words and group.words[-1] == target.path.rsplit(".", 1)[-1] else 1
    return (adjacent, side, depth, same_name, group.position)


def _main_kind(signature: tuple) -> str:
    kinds = {k for k, _ in signature}
    for kind in ("kernel", "dense", "scale", "constant"):
        if kind in kinds:
            return kind
    return "other"


def _keys(group: Group, target: Target) -> dict[str, str]:
    """Their key → the spec's key, tensor by tensor, by role."""
    by_role: dict[str, str] = {}
    for name, role, _ in target.weights:
        by_role[_KIND.get(role, role.value)] = name
    out = {}
    for leaf, role in group.roles.items():
        kind = _KIND.get(role, role.value)
        if kind in by_role:
            theirs = f"{group.prefix}.{leaf}" if group.prefix else leaf
            out[theirs] = f"{target.path}.{by_role[kind]}"
    return out


def _difference(group: Group, target: Target) -> str:
    theirs = {(_KIND.get(r, r.value)): dict(group.tensors)[leaf] for leaf, r in group.roles.items()
              if r is not Role.STEP_COUNT}
    ours = {_KIND[r]: s for _, r, s in target.weights if r is not Role.STEP_COUNT}
    names = {"kernel": "weight", "dense": "weight", "scale": "weight", "shift": "bias"}
    differing: dict[tuple, list[str]] = {}  # (theirs, ours) → the tensors that differ so
    for kind in [k for k in ours if k in theirs]:
        if theirs[kind] != ours[kind]:
            differing.setdefault((theirs[kind], ours[kind]), []).append(names.get(kind, kind))
    parts = [f"{', '.join(tensors)} {_fmt(a)} in the file, {_fmt(b)} in the spec" for (a, b), tensors in differing.items()]
    missing = [k for k in ours if k not in theirs]
    extra = [k for k in theirs if k not in ours]
    if missing:
        parts.append(f"the file has no {', '.join(missing)}")
    if extra:
        parts.append(f"the spec's layer has no {', '.join(extra)}")
    if not parts:
        parts.append(f"{group.describe()} in the file, {target.describe()} in the spec")
    return "; ".join(parts)
