"""Numbers as parameters: how a block class's constructor takes the numbers that differ between
the calls of its block (`Bottleneck(256, c=64)`), and its statements' shapes in those parameters.

The numbers of a module's constructor calls are its slots (`_slots`); a slot that takes the same
value in every call is a constant, any other an expression in the block's own parameters
(`Parameters.express`: `c`, `4 * c`, `in_channels`), written back with `_fill`.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import replace

from ...shapes import Shape
from .ctor import Ctor, Expr


# Names a generated variable must not take: the generated module's own globals.
RESERVED_VARIABLES = {"self", "torch", "nn", "F"}


def identifier(name: str) -> str:
    """`name` as a Python name that is not a keyword nor one of the file's globals."""
    import keyword

    name = re.sub(r"\W", "_", name)
    if keyword.iskeyword(name) or name in RESERVED_VARIABLES or not name.isidentifier():
        name += "_"
    return name


def slots(value, out: list) -> object:
    """The value with each whole number (or size of equal whole numbers) replaced by a slot
    marker; the numbers appended to `out`."""
    if isinstance(value, Ctor):
        return replace(value, args=tuple(slots(a, out) for a in value.args),
                       kwargs=tuple((k, slots(v, out)) for k, v in value.kwargs))
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        out.append(value)
        return Expr("#")
    if isinstance(value, tuple) and value and all(isinstance(v, int) and not isinstance(v, bool) for v in value) \
            and len(set(value)) == 1:
        out.append(value[0])
        return (Expr("#"),) * len(value)
    return value


def fill(value, exprs: list) -> object:
    """`_slots` undone: each slot marker takes the next of `exprs`."""
    if isinstance(value, Ctor):
        return replace(value, args=tuple(fill(a, exprs) for a in value.args),
                       kwargs=tuple((k, fill(v, exprs)) for k, v in value.kwargs))
    if isinstance(value, Expr) and value.text == "#":
        return exprs.pop(0)
    if isinstance(value, tuple) and value and all(isinstance(v, Expr) and v.text == "#" for v in value):
        e = exprs.pop(0)
        return (e,) * len(value)
    return value


class Parameters:
    """Names for the numbers of a block class that differ from call to call: the block's own
    parameters where a number is one of them (or a multiple: `4 * c`), `in_channels` for the
    input's channels, else a name after the slot."""

    def __init__(self, arguments: list[tuple[str, tuple[int, ...]]], in_channels: tuple[int, ...]):
        self.arguments = list(arguments)  # the block's parameters: (name, values over the instances)
        self.others = [("in_channels", in_channels)]  # then the input's channels, then names made here
        self.used: list[str] = []
        self.preferred: dict[tuple[int, ...], str] = {}  # values → the parameter the spec's tokens name for them

    def prefer(self, columns: list[tuple[int, ...]], tokens: list[str]) -> None:
        """Numbers equal to a parameter that a layer's token names (`conv1-width`) take that name
        wherever they appear (the batch norm after it), so that one number is one name in the class."""
        votes: dict[tuple[int, ...], Counter] = {}
        for values, token in zip(columns, tokens):
            for name in re.findall(r"[A-Za-z_]\w*", token):
                if (name, values) in self.arguments:
                    votes.setdefault(values, Counter())[name] += 1
        self.preferred = {values: counts.most_common(1)[0][0] for values, counts in votes.items()}

    @property
    def known(self) -> list[tuple[str, tuple[int, ...]]]:
        return self.arguments + self.others

    def express(self, values: tuple[int, ...], fallback: str, create: bool = True, reads_input: bool = False,
                token: str = ""):
        """The expression for a number that takes `values` over the instances: a constant, a parameter
        (`c`, `in_channels` first where the layer reads the block's input, one the spec's token names
        before others of equal value), a multiple (`4 * c`, the smallest factor first), or a new
        parameter called `fallback`."""
        if len(set(values)) == 1:
            return values[0]
        if reads_input and values == self.others[0][1]:
            return self._use("in_channels")
        if values in self.preferred:
            return self._use(self.preferred[values])
        named = set(re.findall(r"[A-Za-z_]\w*", token))
        for tier in (self.arguments, self.others):
            ordered = sorted(tier, key=lambda item: item[0] not in named)
            for name, known in ordered:
                if known == values:
                    return self._use(name)
            for factor in (2, 3, 4, 6, 8):
                for name, known in ordered:
                    if not all(known):
                        continue
                    if all(v == factor * b for v, b in zip(values, known)):
                        return f"{factor} * {self._use(name)}"
                    if all(b == factor * v for v, b in zip(values, known)):
                        return f"{self._use(name)} // {factor}"
        if not create:
            return "?"
        name = fallback
        n = 1
        while any(name == k for k, _ in self.known):
            n += 1
            name = f"{fallback}{n}"
        self.others.append((name, values))
        return self._use(name)

    def _use(self, name: str) -> str:
        if name not in self.used:
            self.used.append(name)
        return name


def as_expr(value) -> object:
    return value if isinstance(value, int) else Expr(value)


def slot_names(forward, entry: str) -> tuple[list[str], list[bool], list[str]]:
    """For each number of a forward's modules: a fallback name (`conv3_out`), whether it is the input
    channels of a layer that reads the block's input, and the layer's token as the spec wrote it."""
    names: list[str] = []
    reads: list[bool] = []
    tokens: list[str] = []
    for member in forward.members:
        reading = member.layer is not None and entry in member.layer.inputs
        before = len(names)
        _nameslots(member.module, member.attr.replace(".", "_"), names, reads, reading)
        tokens += [member.layer.token if member.layer is not None else ""] * (len(names) - before)
    return names, reads, tokens


def _nameslots(value, where: str, names: list[str], reads: list[bool], reading: bool, first: bool = False) -> None:
    if isinstance(value, Ctor):
        for i, a in enumerate(value.args):
            label = where if isinstance(a, Ctor) else f"{where}_{['in', 'out'][i] if i < 2 else i}"
            _nameslots(a, label, names, reads, reading, first=i == 0)
        for k, v in value.kwargs:
            _nameslots(v, f"{where}_{k}", names, reads, False)
        return
    numbers: list[int] = []
    slots(value, numbers)
    names.extend([identifier(where)] * len(numbers))
    reads.extend([reading and first] * len(numbers))


_SPATIAL = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}


def symbolic_shape(net, params: Parameters, shapes: list[Shape], entries: list[Shape]) -> str:
    """A statement's shape over all of a class's instances: `4*c×H/s×W/s`."""
    channels = params.express(tuple(s[0] for s in shapes), "", create=False, reads_input=shapes is entries)
    parts = [str(channels).replace(" ", "")]
    rank = len(entries[0]) - 1
    letters = _SPATIAL.get(rank, tuple(f"S{i}" for i in range(rank)))
    for d in range(1, len(shapes[0])):
        if rank < 1 or len(shapes[0]) != len(entries[0]):
            parts.append(str(shapes[0][d]) if len({s[d] for s in shapes}) == 1 else "?")
            continue
        sizes = tuple(s[d] for s in shapes)
        inputs = tuple(e[d] for e in entries)
        letter = letters[d - 1]
        if sizes == inputs:
            parts.append(letter)
        elif len(set(sizes)) == 1:
            parts.append(str(sizes[0]))
        elif all(o and i % o == 0 for i, o in zip(inputs, sizes)):
            ratio = params.express(tuple(i // o for i, o in zip(inputs, sizes)), "", create=False)
            parts.append(f"{letter}/{ratio}" if ratio != "?" else "?")
        elif all(i and o % i == 0 for i, o in zip(inputs, sizes)):
            ratio = params.express(tuple(o // i for i, o in zip(inputs, sizes)), "", create=False)
            parts.append(f"{letter}*{ratio}" if ratio != "?" else "?")
        else:
            parts.append("?")
    return "×".join(parts)
