"""What every layer type shares: the `Op` base class, the registry, and `Call`.

A layer type is one frozen dataclass subclassing `Op`, registered with
`@register`, and it says everything archdsl knows about that layer in one place:

  * how a spec writes it: `family`, `aliases`, `example`, the `options` it takes
    (name, default, doc), whether a kernel size may be glued to its name, and
    `from_call`, which reads a written token into the dataclass;
  * its shape rule, `output_shape`;
  * its tensors, `weights`: name → `Weight` (shape, role, trainable or a buffer),
    in the order PyTorch registers them. Parameter counts are derived from it,
    the TVM backend reads state_dicts by it, initialisation follows its roles;
  * its cost, `macs`, and its sliding `window` (receptive fields, the fit check);
  * its `kind` (the diagram's colour group) and its `traits`, the facts other
    passes and backends ask instead of keeping lists of op classes.

Backends map op classes to small emitters; nothing else needs the list of ops.
"""
from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..errors import ShapeError, Span, SpecArgumentError, SpecNameError, did_you_mean
from ..shapes import MAX_SIZE, Shape, fmt_shape

REGISTRY: dict[str, type["Op"]] = {}
HIDDEN: list[type["Op"]] = []  # ops archdsl builds itself and a spec cannot write (input, split's parts)


def register(cls: type["Op"]) -> type["Op"]:
    if cls.hidden:
        HIDDEN.append(cls)
        return cls
    for name in (cls.family, *cls.aliases):
        assert name not in REGISTRY, f"two ops claim the family {name!r}"
        REGISTRY[name] = cls
    return cls


def all_ops() -> list[type["Op"]]:
    """Every op class, the ones a spec writes and the hidden ones, each once."""
    return list(dict.fromkeys([*REGISTRY.values(), *HIDDEN]))


class Kind(enum.Enum):
    """What a layer is, in one word: diagrams colour by it, tables group by it."""

    INPUT = "input"
    CONVOLUTION = "convolution"
    POOLING = "pooling"
    FC = "fc"
    NORMALIZATION = "normalization"
    ACTIVATION = "activation"
    REGULARIZATION = "regularization"
    RESHAPE = "reshape"
    RESIZE = "resize"
    MERGE = "merge"


class Trait(enum.Enum):
    """Facts about an op that passes and backends ask, instead of lists of op classes."""

    # y = f(x) element by element: same shape, no mixing of positions or channels
    # (activations, dropout). Diagrams fold such layers into the box before them.
    ELEMENTWISE = "elementwise"
    # Output channel c is input channel c, transformed (elementwise ops, pooling, a
    # per-channel norm, softmax's class order, flatten after a global pool): a
    # classifier head is looked for through such layers.
    KEEPS_CHANNELS = "keeps_channels"
    # Subtracts each channel's mean: a bias in the convolution before it is cancelled,
    # so archdsl leaves that bias out (batch norm).
    CANCELS_BIAS = "cancels_bias"
    # Its gradient does not read its output, so a consumer may overwrite that output
    # in place (ReLU(inplace=True) after a conv); sigmoid and tanh keep theirs.
    OUTPUT_OVERWRITABLE = "output_overwritable"


class Role(enum.Enum):
    """What a tensor of a layer is; initialisation schemes and weight converters go by it."""

    KERNEL = "kernel"  # a convolution's weight: (out, in/groups, *k)
    TRANSPOSED_KERNEL = "transposed_kernel"  # a transposed convolution's: (in, out/groups, *k)
    DENSE = "dense"  # a fully connected layer's weight: (out, in)
    BIAS = "bias"
    SCALE = "scale"  # a norm's γ: starts at 1
    SHIFT = "shift"  # a norm's β: starts at 0
    RUNNING_MEAN = "running_mean"
    RUNNING_VAR = "running_var"
    STEP_COUNT = "step_count"  # batch norm's num_batches_tracked
    CONSTANT = "constant"  # a learned value that starts at `Weight.fill` in every scheme (PReLU's slope)


@dataclass(frozen=True)
class Weight:
    """One tensor of a layer: its shape and role; `trainable=False` for a buffer."""

    shape: tuple[int, ...]
    role: Role
    trainable: bool = True
    fill: float | None = None  # the starting value of a Role.CONSTANT tensor
    dtype: str = "float32"

    @property
    def size(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class Option:
    """An option an op takes, declared once: the spec, the docs and editors read it."""

    name: str
    default: Any
    doc: str = ""
    position: int | None = None  # also accepted as the n-th positional argument: dropout(0.5)


@dataclass(frozen=True)
class Window:
    """A sliding window per spatial dim: what receptive fields and the fit check need."""

    kernel: tuple[int, ...]  # effective extent, dilation included
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    ceil: bool = False
    transposed: bool = False

    @classmethod
    def covering(cls, spatial: tuple[int, ...]) -> "Window":
        """One window over the whole input: what gap and a flattening fc see."""
        return cls(tuple(spatial), (1,) * len(spatial), (0,) * len(spatial))


@dataclass(frozen=True)
class Value:
    value: Any
    span: Span


@dataclass
class Call:
    """A layer as written, with its arguments evaluated: `conv3x3-64/2(pad=valid)`.

    `kernel` comes from the digits glued to the family name (`conv3x3` → (3, 3)) or
    from a `kernel=` option (`conv-64(kernel=k)`, for a kernel size that is a block
    parameter), `dimension` from after the dash, `stride` from after the slash. Ops
    take what they accept with the `take_*` methods; `finish()` then reports
    anything left over, so a misspelled option never passes silently.
    """

    family: str
    text: str
    span: Span
    kernel: Value | None = None
    dimension: Value | None = None
    stride: Value | None = None
    positional: list[Value] = field(default_factory=list)
    keywords: dict[str, Value] = field(default_factory=dict)
    follow_defaults: bool = True  # False for `after=false`: skip the file's `after` layers
    _known: list[str] = field(default_factory=list)

    def give(self, keyword: str | None, value: Value) -> None:
        """A written argument: positional, or an option, which may be given once."""
        if keyword is None:
            self.positional.append(value)
        elif keyword in self.keywords:
            raise SpecArgumentError(
                f"{self.family}: the option '{keyword}' is given twice. Received: {keyword}={value.value!r}", value.span
            )
        else:
            self.keywords[keyword] = value

    # ---- the parts of a token ----
    def take_kernel(self, default: int | tuple[int, ...] | None = None, example: str = "") -> int | tuple[int, ...]:
        self._known.append("kernel")
        if "kernel" in self.keywords:
            written = self.keywords.pop("kernel")
            if self.kernel is not None:
                raise SpecArgumentError(
                    f"{self.family}: the kernel size is given twice, in the name and as kernel=. Received: {self.text}",
                    written.span,
                )
            self.kernel = written
        if self.kernel is None:
            if default is None:
                raise SpecArgumentError(
                    f"{self.family} needs a kernel size{f', as in {example}' if example else ''}. Received: {self.text}",
                    self.span,
                )
            return default
        value, self.kernel = self.kernel, None
        return positive_sizes(value.value, "the kernel size", value.span, self.family)

    def take_dimension(self, what: str, example: str) -> int:
        if self.dimension is None:
            raise SpecArgumentError(f"{self.family} needs {what}, as in {example}. Received: {self.text}", self.span)
        value = self.dimension
        self.dimension = None
        return positive_int(value.value, what, value.span, self.family)

    def take_stride(self, default: int | tuple[int, ...] = 1) -> int | tuple[int, ...]:
        if self.stride is None:
            return default
        value, self.stride = self.stride, None
        return positive_sizes(value.value, "the stride", value.span, self.family)

    def take_option(self, name: str, default: Any = None, position: int | None = None) -> Any:
        """A keyword option, or the positional argument at `position` (`dropout(0.5)`)."""
        self._known.append(name)
        if name in self.keywords:
            return self.keywords.pop(name).value
        if position is not None and position < len(self.positional) and self.positional[position] is not None:
            value = self.positional[position]
            self.positional[position] = None
            return value.value
        return default

    def take_options(self, options: tuple[Option, ...]) -> dict[str, Any]:
        """Every declared option's value: as written, else its declared default."""
        return {o.name: self.take_option(o.name, o.default, o.position) for o in options}

    def finish(self) -> None:
        """Reject whatever the op did not take, with the options it does know."""
        if self.kernel is not None:
            raise SpecArgumentError(f"{self.family} takes no kernel size. Received: {self.text}", self.kernel.span)
        if self.dimension is not None:
            raise SpecArgumentError(
                f"{self.family} takes no '-{self.dimension.value}'. Received: {self.text}", self.dimension.span
            )
        if self.stride is not None:
            raise SpecArgumentError(f"{self.family} takes no stride. Received: {self.text}", self.stride.span)
        for value in self.positional:
            if value is not None:
                raise SpecArgumentError(
                    f"{self.family} takes no further positional argument. Received: {value.value!r}", value.span
                )
        for name, value in self.keywords.items():
            known = ", ".join(self._known) or "none"
            raise SpecNameError(
                f"{self.family} has no option '{name}'{did_you_mean(name, self._known)} (its options: {known})."
                f" Received: {name}={value.value!r}",
                value.span,
            )


# ---- small validators shared by the ops (cf. Keras' operation_utils) ----


def positive_int(value: Any, what: str, span: Span | None, family: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        # a width multiplier's product (conv1-(40 * 1.1)) is rounded the way the papers do it, never silently
        computed = isinstance(value, float) and value >= 1 and "number of" in what
        hint = "; round it with divisible(…, 8), ceil(…) or floor(…)" if computed else ""
        raise SpecArgumentError(f"{family}: {what} must be a positive whole number{hint}. Received: {value!r}", span)
    if value > MAX_SIZE:
        raise SpecArgumentError(f"{family}: {what} must be at most {MAX_SIZE:,}. Received: {value:,}", span)
    return value


def positive_sizes(value: Any, what: str, span: Span | None, family: str) -> int | tuple[int, ...]:
    if isinstance(value, tuple):
        for v in value:
            positive_int(v, what, span, family)
        return value
    return positive_int(value, what, span, family)


def number(value: Any, name: str, family: str, *, low: float | None = None, high: float | None = None,
           low_open: bool = False, high_open: bool = False, span: Span | None = None) -> float:
    """A finite number within [low, high] (an end excluded where `*_open`), as a float."""
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        lo = "" if low is None else f"{'(' if low_open else '['}{low:g}"
        hi = "" if high is None else f"{high:g}{')' if high_open else ']'}"
        where = f" in {lo or '(-inf'}, {hi or 'inf)'}" if (low is not None or high is not None) else ""
        raise SpecArgumentError(f"{family}: {name} must be a number{where}. Received: {name}={value!r}", span)
    return float(value)


def flag(value: Any, name: str, family: str, span: Span | None = None) -> bool | None:
    """true, false, or None (left to archdsl) for an option such as bias."""
    if value is None or isinstance(value, bool):
        return value
    raise SpecArgumentError(f"{family}: {name} must be true or false. Received: {name}={value!r}", span)


def choice(value: Any, name: str, choices: tuple[str, ...], family: str, span: Span | None = None) -> str:
    if isinstance(value, str) and value.lower() in choices:
        return value.lower()
    hint = did_you_mean(value, choices) if isinstance(value, str) else ""
    raise SpecArgumentError(
        f"{family}: {name} must be one of {', '.join(choices)}{hint or '.'} Received: {name}={value!r}", span
    )


def per_dim(value: int | tuple[int, ...], rank: int, what: str, family: str) -> tuple[int, ...]:
    """Broadcast `3` to (3, 3) for a 2-D op; check that `1x7` has as many dims as the op."""
    if isinstance(value, tuple):
        if len(value) != rank:
            raise ShapeError(
                f"{family}: {what} {fmt_shape(value)} has {len(value)} dims but the op is {rank}-D."
                f" Received: {what}={fmt_shape(value)}"
            )
        return value
    return (value,) * rank


def spatial_rank(shape: Shape, family: str, need: str = "a C×H×W (or C×L, C×D×H×W) input") -> int:
    rank = len(shape) - 1
    if rank < 1:
        raise ShapeError(f"{family} needs {need}. Received: input shape {fmt_shape(shape)}")
    return rank


def kernel_rank(kernel: int | tuple[int, ...], input_shape: Shape, family: str, text: str) -> int:
    """The op's rank: a square kernel (`conv3`) takes the input's; `conv3x3` says 2-D itself."""
    rank = spatial_rank(input_shape, family)
    if isinstance(kernel, tuple) and len(kernel) != rank:
        raise ShapeError(
            f"{text} is a {len(kernel)}-D {family} but its input is {rank}-D."
            f" Received: input shape {fmt_shape(input_shape)}"
        )
    return rank


def compact_sizes(sizes: tuple[int, ...]) -> str:
    """(3, 3) → '3'; (1, 7) → '1x7': how a token writes a per-dimension size."""
    return str(sizes[0]) if len(set(sizes)) == 1 else "x".join(map(str, sizes))


class Op:
    """Base of every layer type. Subclasses are frozen dataclasses (see the module's doc)."""

    family: ClassVar[str] = ""
    aliases: ClassVar[tuple[str, ...]] = ()
    # A spec fragment that uses the op after `input 8x16x16` (docs, editors and the
    # test that every op reaches every backend build it).
    example: ClassVar[str] = ""
    doc: ClassVar[str] = ""
    options: ClassVar[tuple[Option, ...]] = ()
    takes_kernel: ClassVar[bool] = False  # whether digits glued to the name are a kernel size (`conv3`)
    kind: ClassVar[Kind] = Kind.ACTIVATION
    traits: ClassVar[frozenset[Trait]] = frozenset()
    min_inputs: ClassVar[int] = 1
    max_inputs: ClassVar[int | None] = 1
    hidden: ClassVar[bool] = False  # built by archdsl itself (input, split's parts), never written as a token

    @classmethod
    def from_call(cls, call: Call, inputs: tuple[Shape, ...]) -> "Op":
        values = call.take_options(cls.options)
        call.finish()
        return cls(**values)

    @classmethod
    def has(cls, trait: Trait) -> bool:
        return trait in cls.traits

    def output_shape(self, inputs: tuple[Shape, ...]) -> Shape:
        return inputs[0]

    def weights(self, inputs: tuple[Shape, ...]) -> dict[str, Weight]:
        """The layer's tensors by PyTorch's names, in PyTorch's order; {} for ops without any."""
        return {}

    def params(self, inputs: tuple[Shape, ...]) -> int:
        """Trainable parameters: derived from `weights`, never written twice."""
        return sum(w.size for w in self.weights(inputs).values() if w.trainable)

    def macs(self, inputs: tuple[Shape, ...], output: Shape) -> int:
        """Multiply-accumulates; counted for convolutions and fully connected layers only."""
        return 0

    def window(self, inputs: tuple[Shape, ...]) -> Window | None:
        """The sliding window, for receptive fields; None for pointwise ops."""
        return None

    def describe(self) -> str:
        """A short canonical token: how archdsl writes this layer (tables, inserted layers)."""
        return self.family
