"""Normalization: `bn` (batch norm), `lrn` (local response normalization, AlexNet/VGG A-LRN),
`layernorm`, `groupnorm`, and ConvNeXt's learned per-channel `layerscale`."""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import ShapeError
from ..shapes import Shape
from .base import Call, Kind, Op, Option, Role, Trait, Weight, number, positive_int, register, spatial_rank


def _positive(value, name: str, family: str) -> float:
    return number(value, name, family, low=0, low_open=True)


@register
@dataclass(frozen=True)
class BatchNorm(Op):
    family = "bn"
    aliases = ("batchnorm",)
    example = "bn"
    doc = "batch normalization: per channel, over the batch and the map"
    options = (Option("eps", 1e-5, "added to the variance"), Option("momentum", 0.1, "of the running statistics"))
    kind = Kind.NORMALIZATION
    traits = frozenset({Trait.KEEPS_CHANNELS, Trait.CANCELS_BIAS, Trait.OUTPUT_OVERWRITABLE})
    eps: float = 1e-5
    momentum: float = 0.1

    @classmethod
    def from_call(cls, call: Call, inputs: tuple[Shape, ...]) -> "BatchNorm":
        values = call.take_options(cls.options)
        call.finish()
        return cls(_positive(values["eps"], "eps", "bn"), _positive(values["momentum"], "momentum", "bn"))

    def weights(self, inputs: tuple[Shape, ...]) -> dict[str, Weight]:
        c = inputs[0][0]
        return {
            "weight": Weight((c,), Role.SCALE),
            "bias": Weight((c,), Role.SHIFT),
            "running_mean": Weight((c,), Role.RUNNING_MEAN, trainable=False),
            "running_var": Weight((c,), Role.RUNNING_VAR, trainable=False),
            "num_batches_tracked": Weight((), Role.STEP_COUNT, trainable=False, dtype="int64"),
        }


@register
@dataclass(frozen=True)
class LRN(Op):
    """Across-channel LRN with Krizhevsky et al.'s constants (n=5, α=1e-4, β=0.75, k=2).

    α is divided by n as in PyTorch's LocalResponseNorm and Caffe.
    """

    family = "lrn"
    example = "lrn"
    doc = "local response normalization across channels (AlexNet)"
    options = (
        Option("size", 5, "channels in the window", position=0),
        Option("alpha", 1e-4, "the scale (divided by size)"),
        Option("beta", 0.75, "the exponent"),
        Option("k", 2.0, "the additive constant"),
    )
    kind = Kind.NORMALIZATION
    traits = frozenset({Trait.KEEPS_CHANNELS})
    size: int = 5
    alpha: float = 1e-4
    beta: float = 0.75
    k: float = 2.0

    @classmethod
    def from_call(cls, call: Call, inputs: tuple[Shape, ...]) -> "LRN":
        spatial_rank(inputs[0], "lrn")
        values = call.take_options(cls.options)
        call.finish()
        size = positive_int(values["size"], "size", call.span, "lrn")
        return cls(size, *(_positive(values[n], n, "lrn") for n in ("alpha", "beta", "k")))


def _affine(channels: int) -> dict[str, Weight]:
    return {"weight": Weight((channels,), Role.SCALE), "bias": Weight((channels,), Role.SHIFT)}


@register
@dataclass(frozen=True)
class LayerNorm(Op):
    """Layer normalization over the channels: at each position of a C×H×W map (ConvNeXt's
    LayerNorm2d), or over the features of a vector (nn.LayerNorm). Learned γ and β per channel."""

    family = "layernorm"
    aliases = ("ln",)
    example = "layernorm(eps=1e-6)"
    doc = "layer normalization over the channels (at each position of a map)"
    options = (Option("eps", 1e-5, "added to the variance"),)
    kind = Kind.NORMALIZATION
    traits = frozenset({Trait.KEEPS_CHANNELS, Trait.OUTPUT_OVERWRITABLE})
    eps: float = 1e-5

    @classmethod
    def from_call(cls, call: Call, inputs: tuple[Shape, ...]) -> "LayerNorm":
        values = call.take_options(cls.options)
        call.finish()
        return cls(_positive(values["eps"], "eps", "layernorm"))

    def weights(self, inputs: tuple[Shape, ...]) -> dict[str, Weight]:
        return _affine(inputs[0][0])


@register
@dataclass(frozen=True)
class GroupNorm(Op):
    """Group normalization (Wu & He, 2018): the channels in `groups` groups, each normalised over its
    channels and positions; learned γ and β per channel (nn.GroupNorm(groups, C))."""

    family = "groupnorm"
    aliases = ("gn",)
    example = "groupnorm(4)"
    doc = "group normalization"
    options = (
        Option("groups", 32, "how many groups the channels form; it must divide them", position=0),
        Option("eps", 1e-5, "added to the variance"),
    )
    kind = Kind.NORMALIZATION
    traits = frozenset({Trait.KEEPS_CHANNELS, Trait.OUTPUT_OVERWRITABLE})
    groups: int = 32
    eps: float = 1e-5

    @classmethod
    def from_call(cls, call: Call, inputs: tuple[Shape, ...]) -> "GroupNorm":
        values = call.take_options(cls.options)
        call.finish()
        groups = positive_int(values["groups"], "groups", call.span, "groupnorm")
        channels = inputs[0][0]
        if channels % groups:
            raise ShapeError(
                f"groupnorm: groups must divide the channels. Received: groups={groups}, in_channels={channels}",
                call.span,
            )
        return cls(groups, _positive(values["eps"], "eps", "groupnorm"))

    def weights(self, inputs: tuple[Shape, ...]) -> dict[str, Weight]:
        return _affine(inputs[0][0])


@register
@dataclass(frozen=True)
class LayerScale(Op):
    """x · γ per channel, γ learned and starting at `init` (ConvNeXt's layer scale, 1e-6): a norm's
    learned scale without the norm, so it is drawn and counted as one."""

    family = "layerscale"
    aliases = ("layer_scale",)
    example = "layerscale(init=1e-6)"
    doc = "a learned scale per channel (ConvNeXt)"
    options = (Option("init", 1e-6, "the scale's starting value", position=0),)
    kind = Kind.NORMALIZATION
    traits = frozenset({Trait.KEEPS_CHANNELS})
    init: float = 1e-6

    @classmethod
    def from_call(cls, call: Call, inputs: tuple[Shape, ...]) -> "LayerScale":
        values = call.take_options(cls.options)
        call.finish()
        return cls(number(values["init"], "init", "layerscale", span=call.span))

    def weights(self, inputs: tuple[Shape, ...]) -> dict[str, Weight]:
        # (C, 1, 1) on a C×H×W map, as torchvision's CNBlock holds it; (C,) on a vector
        shape = inputs[0]
        return {"layer_scale": Weight((shape[0],) + (1,) * (len(shape) - 1), Role.CONSTANT, fill=self.init)}
