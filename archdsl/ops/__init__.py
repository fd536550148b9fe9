"""Layer types, each one class that says everything about it (see `base`).

To add one: a frozen dataclass subclassing `Op` in the file of its family (or a new
file imported here), decorated with `@register`; an emitter in each backend's table
(`backends/torch/lower.py`, `backends/tvm/lower.py`); a row in docs/language.md.
`tests/test_op_coverage.py` fails until all of them are there.
"""
from .activation import (
    ELU, GELU, Activation, Hardsigmoid, Hardswish, LeakyReLU, PReLU, ReLU, ReLU6, Sigmoid, SiLU, Softmax, Tanh,
)
from .base import HIDDEN, REGISTRY, Call, Kind, Op, Option, Role, Trait, Value, Weight, Window, all_ops, register
from .channels import ChannelSlice, Shuffle
from .conv import Conv, Deconv
from .dense import FC, Flatten
from .merge import Add, Concat, Input, Mul
from .norm import LRN, BatchNorm, GroupNorm, LayerNorm, LayerScale
from .pool import AdaptiveAvgPool, AdaptiveMaxPool, AvgPool, GlobalAvgPool, MaxPool
from .regularization import DropPath, Dropout
from .resize import Upsample

__all__ = [
    "REGISTRY", "HIDDEN", "all_ops", "Call", "Op", "Option", "Kind", "Trait", "Role", "Weight", "Value", "Window",
    "register", "Input", "Conv", "Deconv", "MaxPool", "AvgPool", "GlobalAvgPool", "FC", "Flatten",
    "BatchNorm", "LRN", "Activation", "ReLU", "ReLU6", "Sigmoid", "Tanh", "GELU", "SiLU", "Hardswish", "Hardsigmoid",
    "ELU", "LeakyReLU", "PReLU", "Softmax",
    "Dropout", "DropPath", "Upsample", "Add", "Concat", "Mul", "LayerNorm", "GroupNorm", "LayerScale", "Shuffle",
    "ChannelSlice", "AdaptiveAvgPool", "AdaptiveMaxPool",
]
