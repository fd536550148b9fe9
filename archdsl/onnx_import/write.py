"""The spec text of an imported network, written as a person writes one.

Each layer in the paper's tokens (`conv3-64/2`, `maxpool3/2(pad=1)`, `fc-1000`), an option only
where it differs from what archdsl assumes; `after conv = …` where (nearly) every convolution is
followed by the same layers, and `defaults conv(…)` where (nearly) every one takes the same
option; blocks first, then the network, one line per step of the paper's table.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from ..ops import (
    FC, LRN, Add, AvgPool, BatchNorm, Concat, Conv, Deconv, Flatten, GlobalAvgPool, Kind, LeakyReLU, MaxPool, Op, Trait,
    Upsample,
)
from ..ops.base import compact_sizes
from ..shapes import fmt_shape, full_padding, same_padding
from .items import (
    Block, Call, Inception, LayerItem, MergeItem, Name, Ref, Repeat, Residual, SplitItem, SqueezeExcite,
)

WIDTH = 90  # a composite longer than this is written over several lines
AFTER_FAMILIES = ("conv", "deconv", "fc")


def number(value) -> str:
    """A number as a spec writes it: 64, 0.5, 1e-05; exact, so that the spec gives the same op back."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return repr(value)
    return repr(value)


def sizes(value, slot=None) -> str:
    if slot is not None and not isinstance(slot, int):
        return slot
    return compact_sizes(value) if isinstance(value, tuple) else str(value)


@dataclass
class Token:
    head: str  # conv3-64/2
    options: list[tuple[str, str]]  # every option archdsl declares, as written: ("pad", "same")
    family: str


class Writer:
    def __init__(self, graph, blocks: list[Block]):
        self.graph = graph
        self.blocks = blocks
        self.after: dict[str, list[str]] = {}  # family → the tokens `after` adds
        self.defaults: dict[str, dict[str, str]] = {}  # family → option → value

    def layer(self, node: str):
        return self.graph.nodes[node]["layer"]

    # ---- tokens -------------------------------------------------------------------------------------------
    def token(self, node: str, slots: dict) -> Token:
        op = self.layer(node).op
        slot = lambda name: slots.get((node, name))  # noqa: E731
        if isinstance(op, Conv):
            head = f"conv{compact_sizes(op.kernel)}-{_dim(op.out_channels, slot('out_channels'))}"
            head += _stride(op.stride, slot("stride"))
            pad = _padding(op.padding, op.kernel, op.dilation)
            options = [("pad", pad), ("dilation", sizes(op.dilation)), ("groups", sizes(op.groups, slot("groups"))),
                       ("bias", self._bias(node, op))]
            return Token(head, options, "conv")
        if isinstance(op, Deconv):
            head = f"deconv{compact_sizes(op.kernel)}-{_dim(op.out_channels, slot('out_channels'))}"
            head += "/" + sizes(op.stride, slot("stride"))
            options = [("pad", sizes(op.padding)), ("output_padding", sizes(op.output_padding)),
                       ("groups", sizes(op.groups, slot("groups"))), ("bias", self._bias(node, op))]
            return Token(head, options, "deconv")
        if isinstance(op, (MaxPool, AvgPool)):
            family = op.family
            stride = slot("stride")
            stride = None if isinstance(stride, int) else stride  # a constant: the op's own
            if stride is None and op.kernel == op.stride:
                head = family if set(op.kernel) == {2} else f"{family}{compact_sizes(op.kernel)}"
            else:
                head = f"{family}{compact_sizes(op.kernel)}/{sizes(op.stride, stride)}"
            options = [("pad", sizes(op.padding)), ("ceil", number(op.ceil_mode))]
            if isinstance(op, AvgPool):
                options.append(("count_include_pad", number(op.count_include_pad)))
            return Token(head, options, family)
        if isinstance(op, FC):
            return Token(f"fc-{_dim(op.out_features, slot('out_features'))}",
                         [("bias", number(op.bias)), ("pointwise", number(op.pointwise))], "fc")
        if isinstance(op, BatchNorm):
            return Token("bn", [("eps", number(op.eps)), ("momentum", number(op.momentum))], "bn")
        if isinstance(op, LRN):
            return Token("lrn", [("size", str(op.size)), ("alpha", number(op.alpha)), ("beta", number(op.beta)),
                                 ("k", number(op.k))], "lrn")
        if isinstance(op, LeakyReLU):
            return Token("leakyrelu", [("slope", number(op.negative_slope))], "leakyrelu")
        if isinstance(op, Upsample):
            return Token("upsample", [("scale", sizes(op.scale)), ("mode", op.mode)], "upsample")
        if isinstance(op, (GlobalAvgPool, Flatten)):
            return Token(op.family, [], op.family)
        return _generic(op)

    def _bias(self, node: str, op) -> str:
        """`bias` as written: archdsl's rule (none where a bn alone reads the output) unless it differs."""
        consumers = [self.layer(s).op for s in self.graph.successors(node)]
        automatic = not (len(consumers) == 1 and consumers[0].has(Trait.CANCELS_BIAS))
        return "auto" if op.bias == automatic else number(op.bias)

    def render(self, node: str, slots: dict, follows: bool = True) -> str:
        token = self.token(node, slots)
        declared = _declared_defaults(token.family)
        written = []
        for name, value in token.options:
            default = self.defaults.get(token.family, {}).get(name, declared.get(name))
            if value != default and value != "auto":
                written.append((name, value))
        if token.family in self.after and not follows:
            written.append(("after", "false"))
        if not written:
            return token.head
        parts = [f"{k}={v}" for k, v in written]
        if written[0][0] == _positional(token.family):
            parts[0] = written[0][1]  # lrn(3), leakyrelu(0.1), shuffle(2)
        return f"{token.head}({', '.join(parts)})"

    # ---- after and defaults -------------------------------------------------------------------------------
    def sequences(self, items: list):
        """Every sequence of items written in the spec: the top level, blocks' bodies, composites' parts."""
        yield items
        for item in items:
            if isinstance(item, Residual):
                yield from self.sequences(item.body)
                if item.shortcut:
                    yield from self.sequences(item.shortcut)
            elif isinstance(item, Inception):
                for branch in item.branches:
                    yield from self.sequences(branch)

    def _followers(self, sequence: list, i: int, slots: dict) -> list[str]:
        """The tokens of the layers that follow item i in its sequence, each reading the one before."""
        out = []
        previous = sequence[i].node
        for item in sequence[i + 1:]:
            if not isinstance(item, LayerItem):
                break
            layer = self.layer(item.node)
            if layer.inputs != (previous,) or not (layer.op.has(Trait.ELEMENTWISE) or isinstance(layer.op, BatchNorm)):
                break
            out.append(self.render(item.node, slots))
            previous = item.node
        return out

    def decide(self, top: list) -> None:
        """`defaults` first (they change how followers are written), then `after`."""
        written = list(self._written(top))
        by_option: dict[tuple[str, str], Counter] = {}
        count: Counter = Counter()
        for sequence, i, slots in written:
            token = self.token(sequence[i].node, slots)
            count[token.family] += 1
            for name, value in token.options:
                by_option.setdefault((token.family, name), Counter())[value] += 1
        for (family, name), values in by_option.items():
            value, n = values.most_common(1)[0]
            declared = _declared_defaults(family).get(name)
            if declared is None:
                continue  # an option the layer needs written (shuffle's groups)
            if value not in (declared, "auto") and n >= 3 and n * 4 >= count[family] * 3:
                self.defaults.setdefault(family, {})[name] = value
        for family in AFTER_FAMILIES:
            chains = [self._followers(seq, i, slots) for seq, i, slots in written
                      if self.token(seq[i].node, slots).family == family]
            if len(chains) < 2:
                continue
            best, saving = None, 2
            for length in range(1, max(len(c) for c in chains) + 1):
                candidates = Counter(tuple(c[:length]) for c in chains if len(c) >= length)
                for prefix, covered in candidates.items():
                    gain = covered * len(prefix) - 2 * (len(chains) - covered)
                    if gain > saving:
                        best, saving = list(prefix), gain
            if best:
                self.after[family] = best

    def _written(self, top: list):
        """(sequence, index, slots) of every layer written in the spec, blocks' templates once."""
        for block in self.blocks:
            for sequence in self.sequences(block.template):
                for i, item in enumerate(sequence):
                    if isinstance(item, LayerItem):
                        yield sequence, i, block.slots
        for sequence in self.sequences(top):
            for i, item in enumerate(sequence):
                if isinstance(item, LayerItem):
                    yield sequence, i, {}

    def after_lines(self) -> list[str]:
        lines = []
        for family, tokens in self.after.items():
            term = tokens[0] if len(tokens) == 1 else f"[{' '.join(tokens)}]"
            lines.append(f"after {family} = {term}")
        for family, options in self.defaults.items():
            lines.append(f"defaults {family}({', '.join(f'{k}={v}' for k, v in options.items())})")
        return lines

    # ---- terms ---------------------------------------------------------------------------------------------
    def terms(self, sequence: list, slots: dict) -> list[tuple[str, str]]:
        """(kind, text) for each term of a sequence; kind says how lines are broken around it."""
        out: list[tuple[str, str]] = []
        skip = 0
        for i, item in enumerate(sequence):
            if skip:
                skip -= 1
                continue
            if isinstance(item, LayerItem):
                token = self.token(item.node, slots)
                after = self.after.get(token.family)
                follows = after is not None and self._followers(sequence, i, slots)[: len(after)] == after
                if follows:
                    skip = len(after)
                text = self.render(item.node, slots, follows or after is None)
                op = self.layer(item.node).op
                kind = "follower" if op.kind is Kind.ACTIVATION or isinstance(op, (BatchNorm, Flatten)) else \
                    "pool" if isinstance(op, (MaxPool, AvgPool)) else "layer"
                out.append((kind, text))
            elif isinstance(item, MergeItem):
                op = self.layer(item.node).op
                refs = ", ".join(f"@{r}" for r in item.refs)
                out.append(("layer", f"{'add' if isinstance(op, Add) else 'concat' if isinstance(op, Concat) else op.family}({refs})"))
            elif isinstance(item, Residual):
                out.append(("composite", self.residual(item, slots)))
            elif isinstance(item, Inception):
                out.append(("composite", self.inception(item, slots)))
            elif isinstance(item, SqueezeExcite):
                out.append(("follower", f"se<{item.options(slots)}>"))
            elif isinstance(item, SplitItem):
                sizes = [self.layer(n).shape[0] for n in item.nodes]
                cut = "split" if len(set(sizes)) == 1 else f"split({', '.join(map(str, sizes))})"
                out.append(("layer", f"{cut} -> {', '.join(item.names)}"))
            elif isinstance(item, Name):
                out.append(("name", f"-> {item.name}"))
            elif isinstance(item, Ref):
                out.append(("ref", f"@{item.name}"))
            elif isinstance(item, Call):
                out.append(("call", self.call(item)))
            elif isinstance(item, Repeat):
                call = self.call(item.call)
                out.append(("call", f"{call} * {item.count}" if item.count > 1 else call))
        return out

    def flat(self, sequence: list, slots: dict) -> str:
        return " ".join(text for _, text in self.terms(sequence, slots))

    def residual(self, item: Residual, slots: dict) -> str:
        body = self.flat(item.body, slots)
        shortcut = None if item.shortcut is None or not item.shortcut and item.body else self.flat(item.shortcut, slots)
        if item.shortcut == [] and self.layer(item.fork).shape != self.layer(item.merge).shape:
            shortcut = ""
        one = f"residual< {body} >" if shortcut is None else f"residual< {body} | {shortcut} >"
        if len(one) <= WIDTH and "\n" not in one:
            return one
        lines = ["residual<", f"    {body}"] + ([f"  | {shortcut}"] if shortcut is not None else []) + [">"]
        return "\n".join(lines)

    def inception(self, item: Inception, slots: dict) -> str:
        branches = [self.flat(branch, slots) for branch in item.branches]
        one = "inception< " + " | ".join(branches) + " >"
        one = one.replace("<  |", "< |").replace("|  |", "| |").replace("|  >", "| >")
        if len(one) <= WIDTH and "\n" not in one:
            return one
        lines = ["inception<"]
        for k, branch in enumerate(branches):
            text = branch or "# the input, as it is"
            lines.append(("    " if k == 0 else "  | ") + text)
        lines.append(">")
        return "\n".join(lines)

    def call(self, call: Call) -> str:
        block = call.block
        positional, keywords = [], []
        for param, value in zip(block.params, call.args):
            if param in block.defaults:
                if value != block.defaults[param]:
                    keywords.append(f"{param}={value}")
            else:
                positional.append(str(value))
        args = positional + keywords
        return f"{block.name}({', '.join(args)})" if args else block.name

    # ---- the file -------------------------------------------------------------------------------------------
    def block_lines(self, block: Block) -> list[str]:
        params = ", ".join(f"{p}={block.defaults[p]}" if p in block.defaults else p for p in block.params)
        head = f"block {block.name}({params}) = " if params else f"block {block.name} = "
        terms = self.terms(block.template, block.slots)
        if len(terms) == 1 and terms[0][0] == "composite":
            return (head + terms[0][1]).split("\n")
        lines = [head + "["]
        for line in _lines(terms):
            lines += ["  " + part for part in line.split("\n")]
        lines.append("]")
        return lines

    def body_lines(self, top: list) -> list[str]:
        return [part for line in _lines(self.terms(top, {})) for part in line.split("\n")]


def _lines(terms: list[tuple[str, str]]) -> list[str]:
    """Terms into lines: a layer, a composite or a block call starts a line, its activations and norms
    follow on it; calls of one block with the same first argument share a line (a ResNet stage); equal
    lines in a row are written once with `* n` (VGG's `conv3-256 * 3`), and a pooling layer closes the
    line of layers before it."""
    lines: list[list] = []  # [kind of the first term, text]
    last_kind = None
    last_call = None
    for kind, text in terms:
        if not lines:
            lines.append([kind, text])
        elif kind in ("follower", "name"):
            lines[-1][1] += " " + text
        elif kind == "call" and last_kind == "call" and last_call and _first_argument(text) == _first_argument(last_call) \
                and _callee(text) == _callee(last_call):
            lines[-1][1] += " " + text
        elif kind in ("layer", "pool") and last_kind == "ref":
            lines[-1][1] += " " + text
        else:
            lines.append([kind, text])
        last_kind = kind
        if kind == "call":
            last_call = text
    merged: list[list] = []
    for kind, text in lines:
        if merged and merged[-1][1] == text and kind in ("layer", "follower") and "->" not in text and "@" not in text:
            merged[-1][2] += 1
        else:
            merged.append([kind, text, 1])
    out: list[list] = []
    for kind, text, count in merged:
        if count > 1:
            text = f"{text} * {count}" if " " not in text else f"[{text}] * {count}"
        if kind == "pool" and out and out[-1][0] in ("layer", "follower") and "->" not in out[-1][1]:
            out[-1][1] += " " + text
            continue
        out.append([kind, text])
    return [text for _, text in out]


def _callee(text: str) -> str:
    return text.split("(")[0].split(" ")[0]


def _first_argument(text: str) -> str | None:
    if "(" not in text:
        return None
    return text.split("(", 1)[1].split(")")[0].split(",")[0].strip()


def _dim(value: int, slot) -> str:
    return str(value) if slot is None or isinstance(slot, int) else slot


def _stride(stride: tuple[int, ...], slot) -> str:
    if slot is not None and not isinstance(slot, int):
        return f"/{slot}"
    return "" if set(stride) == {1} else "/" + compact_sizes(stride)


def _padding(padding, kernel, dilation) -> str:
    if tuple(padding) == tuple(same_padding(k, d) for k, d in zip(kernel, dilation)):
        return "same"
    if set(padding) == {0}:
        return "valid"
    if tuple(padding) == tuple(full_padding(k, d) for k, d in zip(kernel, dilation)):
        return "full"
    return compact_sizes(tuple(padding))


def _positional(family: str) -> str | None:
    """The option a layer takes as its first positional argument, if any."""
    from ..ops import REGISTRY

    cls = REGISTRY.get(family)
    return next((o.name for o in cls.options if o.position == 0), None) if cls is not None else None


def _declared_defaults(family: str) -> dict[str, str]:
    from ..ops import REGISTRY

    cls = REGISTRY.get(family)
    if cls is None:
        return {}
    out = {}
    for option in cls.options:
        value = option.default
        if value is None:  # left to archdsl (a bias), or needed written (shuffle's groups)
            out[option.name] = "auto" if option.name == "bias" else None
        else:
            out[option.name] = number(value) if isinstance(value, (bool, float)) else str(value)
    return out


def _generic(op: Op) -> Token:
    """A layer type the writer has no rule for (an activation added to archdsl): its family, and each
    declared option whose value the op holds under the option's name."""
    import dataclasses

    fields = {f.name: getattr(op, f.name) for f in dataclasses.fields(op)}
    options = [(o.name, number(fields[o.name]) if isinstance(fields[o.name], (bool, float)) else str(fields[o.name]))
               for o in op.options if o.name in fields]
    return Token(op.family, options, op.family)


def header(name: str, input_shape) -> list[str]:
    return [f"network {name}", f"input {fmt_shape(tuple(input_shape))}"]
