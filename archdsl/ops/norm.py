"""Normalization: `bn` (batch norm) and `lrn` (local response normalization, AlexNet/VGG A-LRN)."""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import SpecArgumentError
from ..shapes import Shape
from .base import Call, Op, positive_int, register, spatial_rank


def _positive_number(value, name: str, family: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise SpecArgumentError(f"{family}: {name} must be a positive number. Received: {name}={value!r}")
    return float(value)


@register
@dataclass(frozen=True)
class BatchNorm(Op):
    family = "bn"
    aliases = ("batchnorm",)
    kind = "normalization"
    eps: float = 1e-5
    momentum: float = 0.1

    @classmethod
    def from_call(cls, call: Call, inputs: tuple[Shape, ...]) -> "BatchNorm":
        eps = _positive_number(call.take_option("eps", 1e-5), "eps", "bn")
        momentum = _positive_number(call.take_option("momentum", 0.1), "momentum", "bn")
        call.finish()
        return cls(eps, momentum)

    def params(self, inputs: tuple[Shape, ...]) -> int:
        return 2 * inputs[0][0]  # scale and shift; running statistics are buffers, not parameters


@register
@dataclass(frozen=True)
class LRN(Op):
    """Across-channel LRN with Krizhevsky et al.'s constants (n=5, α=1e-4, β=0.75, k=2).

    α is divided by n as in PyTorch's LocalResponseNorm and Caffe.
    """

    family = "lrn"
    kind = "normalization"
    size: int = 5
    alpha: float = 1e-4
    beta: float = 0.75
    k: float = 2.0

    @classmethod
    def from_call(cls, call: Call, inputs: tuple[Shape, ...]) -> "LRN":
        spatial_rank(inputs[0], "lrn")
        size = positive_int(call.take_option("size", 5, position=0), "size", call.span, "lrn")
        alpha = _positive_number(call.take_option("alpha", 1e-4), "alpha", "lrn")
        beta = _positive_number(call.take_option("beta", 0.75), "beta", "lrn")
        k = _positive_number(call.take_option("k", 2.0), "k", "lrn")
        call.finish()
        return cls(size, alpha, beta, k)
