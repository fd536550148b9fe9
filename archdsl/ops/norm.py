"""Normalization: `bn` (batch norm) and `lrn` (local response normalization, AlexNet/VGG A-LRN)."""
from __future__ import annotations

from dataclasses import dataclass

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
