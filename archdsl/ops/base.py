"""What every layer type shares: the `Op` base class, the registry, and `Call`.

A layer type is a frozen dataclass subclassing `Op`, registered with
`@register`. It says how the spec writes it (`family`, `from_call`), its shape
rule (`output_shape`), and what it costs (`params`, `macs`, `window`). Backends
map op classes to emitters; nothing else needs to know the list of ops.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..errors import ShapeError, Span, SpecArgumentError, SpecNameError, did_you_mean
from ..shapes import MAX_SIZE, Shape, fmt_shape

REGISTRY: dict[str, type["Op"]] = {}


def register(cls: type["Op"]) -> type["Op"]:
    for name in (cls.family, *cls.aliases):
        assert name not in REGISTRY, f"two ops claim the family {name!r}"
        REGISTRY[name] = cls
    return cls


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

    `kernel` comes from the digits glued to the family name (`conv3x3` → (3, 3)),
    `dimension` from after the dash, `stride` from after the slash. Ops take
    what they accept with the `take_*` methods; `finish()` then reports anything
    left over, so a misspelled option never passes silently.
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

    # ---- the parts of a token ----
    def take_kernel(self, default: int | tuple[int, ...] | None = None, example: str = "") -> int | tuple[int, ...]:
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


def positive_int(value: Any, what: str, span: Span | None, family: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SpecArgumentError(f"{family}: {what} must be a positive whole number. Received: {value!r}", span)
    if value > MAX_SIZE:
        raise SpecArgumentError(f"{family}: {what} must be at most {MAX_SIZE:,}. Received: {value:,}", span)
    return value


def positive_sizes(value: Any, what: str, span: Span | None, family: str) -> int | tuple[int, ...]:
    if isinstance(value, tuple):
        for v in value:
            positive_int(v, what, span, family)
        return value
    return positive_int(value, what, span, family)


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


class Op:
    """Base of every layer type. Subclasses are frozen dataclasses."""

    family: ClassVar[str] = ""
    aliases: ClassVar[tuple[str, ...]] = ()
    kind: ClassVar[str] = "other"  # colour group in diagrams: convolution, pooling, normalization, ...
    min_inputs: ClassVar[int] = 1
    max_inputs: ClassVar[int | None] = 1
    hidden: ClassVar[bool] = False  # built by archdsl itself (input, SE's scaling), never written in a spec

    @classmethod
    def from_call(cls, call: Call, inputs: tuple[Shape, ...]) -> "Op":
        call.finish()
        return cls()

    def output_shape(self, inputs: tuple[Shape, ...]) -> Shape:
        return inputs[0]

    def params(self, inputs: tuple[Shape, ...]) -> int:
        return 0

    def macs(self, inputs: tuple[Shape, ...], output: Shape) -> int:
        """Multiply-accumulates; counted for convolutions and fully connected layers only."""
        return 0

    def window(self, inputs: tuple[Shape, ...]) -> Window | None:
        """The sliding window, for receptive fields; None for pointwise ops."""
        return None

    def describe(self) -> str:
        """A short canonical token for layers archdsl inserted itself."""
        return self.family
