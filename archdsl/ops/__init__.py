"""Layer types. To add one: write a frozen dataclass subclassing `Op` in the file of its
family (or a new file imported here), decorate it with `@register`, and give it a
shape rule; then add an emitter to each backend's table (`backends/torch/lower.py`,
`backends/tvm/lower.py`). See docs/language.md for how the spec spells it."""
from .activation import GELU, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from .base import REGISTRY, Call, Op, Value, Window, register
from .conv import Conv, Deconv
from .dense import FC, Flatten
from .merge import Add, Concat, Input, Scale
from .norm import LRN, BatchNorm
from .pool import AvgPool, GlobalAvgPool, MaxPool
from .regularization import Dropout
from .resize import Upsample

__all__ = [
    "REGISTRY", "Call", "Op", "Value", "Window", "register",
    "Input", "Conv", "Deconv", "MaxPool", "AvgPool", "GlobalAvgPool", "FC", "Flatten",
    "BatchNorm", "LRN", "ReLU", "Sigmoid", "Tanh", "GELU", "LeakyReLU", "Softmax",
    "Dropout", "Upsample", "Add", "Concat", "Scale",
]
