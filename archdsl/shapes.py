"""Shape arithmetic as small pure functions (cf. Keras' ops/operation_utils.py).

A shape is a tuple of ints, channels first, no batch: (C,), (C, L), (C, H, W),
(C, D, H, W). Functions here work on one spatial dimension at a time.
"""
from __future__ import annotations

import math

Shape = tuple[int, ...]

# The largest size of one dimension, stride or kernel: keeps every count a float can show.
MAX_SIZE = 10**15


def fmt_shape(shape: Shape) -> str:
    return "x".join(str(d) for d in shape)


def effective_kernel(kernel: int, dilation: int = 1) -> int:
    """The extent a dilated kernel covers: (k − 1)·d + 1."""
    return (kernel - 1) * dilation + 1


def same_padding(kernel: int, dilation: int = 1) -> int:
    """'same' as the papers' code writes it: (K − 1)/2 on each side (rounded down for even K)."""
    return (effective_kernel(kernel, dilation) - 1) // 2


def full_padding(kernel: int, dilation: int = 1) -> int:
    return effective_kernel(kernel, dilation) - 1


def window_output_size(size: int, kernel: int, stride: int, padding: int, dilation: int = 1, ceil: bool = False) -> int:
    """⌊(W − F + 2P)/S⌋ + 1, or ⌈…⌉ + 1 in ceil mode (Caffe's pooling).

    In ceil mode the last window must still start inside the input or the left
    padding, as in Caffe and PyTorch, so that no window sees only padding.
    """
    span = size + 2 * padding - effective_kernel(kernel, dilation)
    if span < 0:
        return 0
    out = (math.ceil(span / stride) if ceil else span // stride) + 1
    if ceil and (out - 1) * stride >= size + padding:
        out -= 1
    return out


def transposed_output_size(size: int, kernel: int, stride: int, padding: int, output_padding: int = 0, dilation: int = 1) -> int:
    """(W − 1)·S − 2P + (K − 1)·d + 1 + output padding."""
    return (size - 1) * stride - 2 * padding + effective_kernel(kernel, dilation) + output_padding


def uncovered_input_rows(size: int, kernel: int, stride: int, padding: int, dilation: int = 1, ceil: bool = False) -> int:
    """How many real input rows (not padding) at the far end no window covers.

    Windows cover (out − 1)·S + F of the padded extent W + 2P; what is left is at
    the far end, where the last P rows are padding. A kernel narrower than its
    stride skips S − F rows between every two windows; skipping as many at the
    end is the same regular pattern, not a misfit (ResNet's 1×1/2 projection).
    """
    if ceil:
        return 0
    extent = effective_kernel(kernel, dilation)
    out = window_output_size(size, kernel, stride, padding, dilation)
    leftover = size + 2 * padding - ((out - 1) * stride + extent)
    regular_gap = max(0, stride - extent)
    return max(0, leftover - padding - regular_gap)


def nearest_fitting_sizes(size: int, kernel: int, stride: int, padding: int, dilation: int = 1) -> tuple[int | None, int | None]:
    """The closest input sizes below and above `size` that the window fits exactly.

    Arithmetic, not a search (sizes reach 10^15): a size c fits when the window
    fits at least once, c + 2P ≥ F, and the remainder r(c) = (c + 2P − F) mod S
    falls on padding or the regular gap, r(c) ≤ P + max(0, S − F) (see
    `uncovered_input_rows`). r grows by one per size and wraps at S, so the
    nearest fitting size below is at most S − 1 away, and so is the one above.
    """
    extent = effective_kernel(kernel, dilation)
    allowed = padding + max(0, stride - extent)  # the largest remainder that fits
    smallest = max(1, extent - 2 * padding)  # below it no window fits at all

    def remainder(candidate: int) -> int:
        return (candidate + 2 * padding - extent) % stride

    below = size - 1
    if remainder(below) > allowed:
        below -= remainder(below) - allowed  # down to the last size whose remainder is `allowed`
    above = max(size + 1, smallest)
    if remainder(above) > allowed:
        above += stride - remainder(above)  # up to the next size whose remainder is 0
    return (below if below >= smallest else None), above
