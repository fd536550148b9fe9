"""Shape rules, table-driven: the pure functions of archdsl.shapes and each op's output shape,
and the "doesn't fit" rule ((W − F + 2P)/S must not leave real input rows uncovered)."""
from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import archdsl
from archdsl import ArchError
from archdsl.shapes import (
    effective_kernel,
    full_padding,
    nearest_fitting_sizes,
    same_padding,
    transposed_output_size,
    uncovered_input_rows,
    window_output_size,
)


def out(text: str):
    """The main output shape of a small spec (asserts it checks without warnings)."""
    net = archdsl.load(text)
    assert net.warnings == [], [w.format() for w in net.warnings]
    return net.outputs["output"]


# ---------------------------------------------------------------- ⌊(W − F + 2P)/S⌋ + 1

@pytest.mark.parametrize(
    "size, kernel, stride, pad, dilation, ceil, expected",
    [
        (227, 11, 4, 0, 1, False, 55),   # AlexNet conv1
        (224, 11, 4, 0, 1, False, 54),   # ... on 224: 54.25 floors to 54
        (224, 7, 2, 3, 1, False, 112),   # ResNet stem
        (112, 3, 2, 1, 1, False, 56),    # ResNet's maxpool3/2 pad 1
        (56, 1, 2, 0, 1, False, 28),     # ResNet's 1x1/2 projection
        (32, 5, 1, 0, 1, False, 28),     # LeNet C1
        (7, 3, 1, 0, 1, False, 5),
        (7, 3, 2, 0, 1, False, 3),
        (7, 3, 3, 0, 1, False, 2),       # (7 − 3)/3 + 1 = 2.33
        (7, 3, 3, 1, 1, False, 3),
        (224, 3, 1, 1, 1, False, 224),   # VGG's conv3 pad 1 keeps the size
        (224, 2, 2, 0, 1, False, 112),   # VGG's maxpool
        (32, 3, 1, 0, 2, False, 28),     # dilation 2: extent 5
        (32, 3, 1, 2, 2, False, 32),
        (32, 3, 1, 0, 3, False, 26),     # extent 7
        (112, 3, 2, 0, 1, False, 55),    # GoogLeNet's pool without ceil ...
        (112, 3, 2, 0, 1, True, 56),     # ... and with Caffe's ceil: 112 → 56
        (56, 3, 2, 0, 1, True, 28),
        (28, 3, 2, 0, 1, True, 14),
        (14, 3, 2, 0, 1, True, 7),
        (5, 2, 2, 1, 1, True, 3),        # ceil: the last window may not start in the right padding
        (6, 2, 2, 0, 1, True, 3),        # exact: ceil changes nothing
        (4, 5, 1, 0, 1, False, 0),       # window larger than the input: no output
    ],
)
def test_window_output_size(size, kernel, stride, pad, dilation, ceil, expected):
    assert window_output_size(size, kernel, stride, pad, dilation, ceil) == expected


@settings(max_examples=300, deadline=None)
@given(
    size=st.integers(1, 300),
    kernel=st.integers(1, 12),
    stride=st.integers(1, 6),
    pad=st.integers(0, 6),
    dilation=st.integers(1, 4),
)
def test_window_output_size_counts_the_windows(size, kernel, stride, pad, dilation):
    """Brute force: count the window positions that fit inside the padded input."""
    extent = (kernel - 1) * dilation + 1
    positions = sum(1 for start in range(0, size + 2 * pad, stride) if start + extent <= size + 2 * pad)
    assert window_output_size(size, kernel, stride, pad, dilation) == positions


@pytest.mark.parametrize(
    "kernel, dilation, extent, same, full",
    [(1, 1, 1, 0, 0), (3, 1, 3, 1, 2), (5, 1, 5, 2, 4), (7, 1, 7, 3, 6), (3, 2, 5, 2, 4), (3, 4, 9, 4, 8), (4, 1, 4, 1, 3)],
)
def test_padding_rules(kernel, dilation, extent, same, full):
    assert effective_kernel(kernel, dilation) == extent
    assert same_padding(kernel, dilation) == same
    assert full_padding(kernel, dilation) == full


@pytest.mark.parametrize(
    "size, kernel, stride, pad, output_padding, expected",
    [
        (32, 2, 2, 0, 0, 64),   # U-Net's up-conv doubles
        (7, 4, 2, 1, 0, 14),    # DCGAN-style
        (7, 3, 2, 1, 1, 14),
        (7, 3, 2, 1, 0, 13),
        (1, 4, 1, 0, 0, 4),
        (5, 3, 1, 1, 0, 5),
    ],
)
def test_transposed_output_size(size, kernel, stride, pad, output_padding, expected):
    assert transposed_output_size(size, kernel, stride, pad, output_padding) == expected


# ---------------------------------------------------------------- ops, through specs

@pytest.mark.parametrize(
    "spec, expected",
    [
        # padding: same (default for conv), valid, full, numbers, per-dim sizes
        ("input 3x10x10\nconv3-8", (8, 10, 10)),
        ("input 3x10x10\nconv3-8(pad=same)", (8, 10, 10)),
        ("input 3x10x10\nconv3-8(pad=valid)", (8, 8, 8)),
        ("input 3x10x10\nconv3-8(pad=full)", (8, 12, 12)),
        ("input 3x10x10\nconv5-8(pad=0)", (8, 6, 6)),
        ("input 3x10x10\nconv5-8(pad=1)", (8, 8, 8)),
        ("input 3x10x12\nconv1x7-8(pad=0x3)", (8, 10, 12)),
        ("input 3x10x12\nconv1x7-8(pad=valid)", (8, 10, 6)),
        ("input 3x10x10\nconv4-8", (8, 9, 9)),  # 'same' is (K − 1)//2 per side: even kernels shrink by one
        # strides
        ("input 3x224x224\nconv7-64/2(pad=3)", (64, 112, 112)),
        ("input 3x227x227\nconv11-96/4(pad=valid)", (96, 55, 55)),
        ("input 3x10x12\nconv3-8/1x2", (8, 10, 6)),
        # dilation
        ("input 3x32x32\nconv3-8(dilation=2)", (8, 32, 32)),  # same pads the dilated extent
        ("input 3x32x32\nconv3-8(dilation=2, pad=valid)", (8, 28, 28)),
        ("input 3x32x32\nconv3-8(dilation=3, pad=full)", (8, 38, 38)),
        # groups keep the shape
        ("input 64x8x8\nconv3-128(groups=32)", (128, 8, 8)),
        # pooling: default 2x2/2, ceil, pad
        ("input 3x224x224\nmaxpool", (3, 112, 112)),
        ("input 3x112x112\nmaxpool3/2(ceil=true)", (3, 56, 56)),
        ("input 3x112x112\nmaxpool3/2(pad=1)", (3, 56, 56)),
        ("input 3x112x112\ndefaults maxpool(ceil=true)\nmaxpool3/2", (3, 56, 56)),
        ("input 3x28x28\nmaxpool3/1(pad=1)", (3, 28, 28)),
        ("input 3x28x28\navgpool2/2", (3, 14, 14)),
        ("input 3x14x14\navgpool5/3", (3, 4, 4)),
        # transposed convolution
        ("input 8x32x32\ndeconv2-4/2", (4, 64, 64)),
        ("input 8x7x7\ndeconv4-4/2(pad=1)", (4, 14, 14)),
        ("input 8x7x7\ndeconv3-4/2(pad=1, output_padding=1)", (4, 14, 14)),
        # upsampling
        ("input 8x5x5\nupsample(2)", (8, 10, 10)),
        ("input 8x5x5\nupsample", (8, 10, 10)),
        ("input 8x5x5\nupsample(3, mode=bilinear)", (8, 15, 15)),
        ("input 8x5x5\nupsample(2x3)", (8, 10, 15)),
        ("input 8x50\nupsample(4)", (8, 200)),
        # concat on channels, add keeps the shape
        ("input 8x5x5\nconv1-3 -> a\n@input conv1-5\nconcat(@a)", (8, 5, 5)),
        ("input 8x5x5\n-> x\nconv3-8\nadd(@x)", (8, 5, 5)),
        ("input 8x5x5\n-> x\nconv3-8 -> y\nconv3-8\nadd(@x, @y)", (8, 5, 5)),
        ("input 8x5x5\n-> x\nconv3-4 -> y\nconv3-2\nconcat(@x, @y)", (14, 5, 5)),
        # global average pooling and fc flattening
        ("input 512x7x7\ngap", (512, 1, 1)),
        ("input 512x7x7\ngap fc-10", (10,)),
        ("input 16x5x5\nfc-120", (120,)),
        ("input 16x5x5\nflatten", (400,)),
        ("input 120\nfc-84", (84,)),
        # 1-D and 3-D: a square kernel takes the input's rank
        ("input 1x16000\nconv80-128/4(pad=valid)", (128, 3981)),
        ("input 1x100\nconv3-8 maxpool gap fc-2", (2,)),
        ("input 3x16x112x112\nconv3-64", (64, 16, 112, 112)),
        ("input 3x16x112x112\nmaxpool1x2x2/1x2x2", (3, 16, 56, 56)),
        ("input 3x16x32x32\nconv3-8 maxpool gap", (8, 1, 1, 1)),
    ],
)
def test_op_output_shapes(spec, expected):
    assert out(spec) == expected


@pytest.mark.parametrize(
    "spec, params",
    [
        ("input 3x32x32\nconv3-64", 3 * 3 * 3 * 64 + 64),
        ("input 3x32x32\nconv3-64 bn", 3 * 3 * 3 * 64 + 2 * 64),  # bias dropped before bn
        ("input 3x32x32\nconv3-64(bias=true) bn", 3 * 3 * 3 * 64 + 64 + 2 * 64),
        ("input 3x32x32\nconv3-64(bias=false)", 3 * 3 * 3 * 64),
        ("input 64x8x8\nconv3-128(groups=32)", 3 * 3 * (64 // 32) * 128 + 128),
        ("input 64x8x8\nconv3-64(groups=64)", 3 * 3 * 1 * 64 + 64),  # depthwise
        ("input 3x10x12\nconv1x7-8", 1 * 7 * 3 * 8 + 8),
        ("input 3x8x8x8\nconv3-4", 27 * 3 * 4 + 4),
        ("input 8x7x7\ndeconv2-4/2", 2 * 2 * 8 * 4 + 4),
        ("input 16x5x5\nfc-120", 16 * 5 * 5 * 120 + 120),
        ("input 16x5x5\nfc-120(bias=false)", 16 * 5 * 5 * 120),
        ("input 16x5x5\nbn", 32),
        ("input 16x5x5\nlrn maxpool relu dropout(0.5) upsample(2) gap", 0),
    ],
)
def test_params(spec, params):
    assert archdsl.load(spec).params == params


@pytest.mark.parametrize(
    "spec, macs",
    [
        ("input 3x32x32\nconv3-64", 64 * 32 * 32 * 3 * 3 * 3),
        ("input 64x8x8\nconv3-128(groups=32)", 128 * 8 * 8 * 3 * 3 * 2),
        ("input 16x5x5\nfc-120", 400 * 120),
        ("input 8x7x7\ndeconv2-4/2", 8 * 7 * 7 * 2 * 2 * 4),
        ("input 3x32x32\nmaxpool relu bn", 0),
    ],
)
def test_macs(spec, macs):
    assert archdsl.load(spec).macs == macs


@pytest.mark.parametrize(
    "spec, message",
    [
        ("input 3x4x4\nconv5-8(pad=valid)", r"shrinks the map below 1x1"),
        ("input 3x1x1\nmaxpool", r"shrinks the map below 1x1"),
        ("input 8x5x5\nconv1-3 -> a\n@input maxpool\nconcat(@a)", r"spatial size"),
        ("input 8x5x5\n-> x\nconv3-4\nadd(@x)", r"channels differ"),
        ("input 3x100\nconv3x3-64", r"2-D conv but its input is 1-D"),
        ("input 63x8x8\nconv3-64(groups=32)", r"groups must divide"),
        ("input 8x50\nupsample(2, mode=bilinear)", r"bilinear needs a 2-D input"),
        ("input 3x8x8\nconv3x3x3-8", r"3-D conv but its input is 2-D"),
    ],
)
def test_shape_errors(spec, message):
    with pytest.raises(ArchError, match=message):
        archdsl.load(spec)


# ---------------------------------------------------------------- the "doesn't fit" rule

@pytest.mark.parametrize(
    "size, kernel, stride, pad, lost",
    [
        (7, 3, 3, 0, 1),     # the lecture's example: (7 − 3)/3 + 1 = 2.33
        (224, 11, 4, 0, 1),  # AlexNet on 224: 54.25
        (227, 11, 4, 0, 0),
        (224, 7, 2, 3, 0),   # ResNet's stem: the remainder falls on padding
        (56, 1, 2, 0, 0),    # ResNet's projection: a 1x1/2 skips every other row by design
        (7, 3, 2, 0, 0),
        (112, 3, 2, 0, 1),
        (9, 3, 3, 0, 0),
        (10, 3, 3, 0, 1),
    ],
)
def test_uncovered_input_rows(size, kernel, stride, pad, lost):
    assert uncovered_input_rows(size, kernel, stride, pad) == lost


def test_nearest_fitting_sizes():
    assert nearest_fitting_sizes(224, 11, 4, 0) == (223, 227)
    assert nearest_fitting_sizes(7, 3, 3, 0) == (6, 9)


def test_warns_for_3x3_stride_3_on_7x7():
    net = archdsl.load("input 3x7x7\nconv3-8/3(pad=valid)")
    assert len(net.warnings) == 1
    warning = net.warnings[0]
    assert warning.span.line == 2 and warning.span.col == 1
    assert "(7 − 3 + 2·0)/3 + 1 = 2.33333" in warning.message
    assert re.search(r"an input of 6 or 9 would fit", warning.message)


def test_warns_for_alexnet_on_224():
    net = archdsl.load("input 3x224x224\nconv11-96/4(pad=valid)\n")
    assert net.outputs["output"] == (96, 54, 54)
    (warning,) = net.warnings
    assert "(224 − 11 + 2·0)/4 + 1 = 54.25" in warning.message
    assert "223 or 227" in warning.message
    assert warning.format().startswith("<spec>:2:1: warning: conv11-96/4(pad=valid) doesn't fit")


@pytest.mark.parametrize(
    "spec",
    [
        "input 3x224x224\nconv7-64/2(pad=3)",            # ResNet's stem
        "input 64x56x56\nconv1-128/2(pad=valid)",        # ResNet's projection
        "input 64x56x56\nconv1-128/2",
        "input 3x227x227\nconv11-96/4(pad=valid)",       # AlexNet on 227
        "input 3x112x112\nmaxpool3/2(ceil=true)",        # ceil mode covers everything
        "input 3x112x112\nmaxpool3/2(pad=1)",
        "input 3x224x224\nconv3-64 maxpool",
        "input 8x32x32\ndeconv3-4/2",                    # transposed windows never skip input
        "input 512x7x7\nfc-10",                          # a global window
        "input 512x7x7\navgpool7/1",
    ],
)
def test_does_not_warn_where_it_fits(spec):
    assert archdsl.load(spec).warnings == []


def test_maxpool_3_2_on_112_warns_without_ceil():
    (warning,) = archdsl.load("input 3x112x112\nmaxpool3/2").warnings
    assert "55.5" in warning.message and "111 or 113" in warning.message


def test_warning_names_the_axis_that_does_not_fit():
    (warning,) = archdsl.load("input 3x9x7\nconv3-8/3(pad=valid)").warnings
    assert "column" in warning.message and "7-wide" in warning.message


def test_strict_makes_the_warning_an_error():
    with pytest.raises(ArchError, match=r"doesn't fit its 224-wide input.*223 or 227") as info:
        archdsl.load("input 3x224x224\nconv11-96/4(pad=valid)", strict=True)
    assert (info.value.span.line, info.value.span.col) == (2, 1)
    archdsl.load("input 3x227x227\nconv11-96/4(pad=valid)", strict=True)  # fits: no error


def test_strict_cli_exits_1(tmp_path, run_archdsl):
    """(Without --strict the warning goes to stderr and the exit code is 0: see test_cli.py.)"""
    spec = tmp_path / "alexnet224.arch"
    spec.write_text("input 3x224x224\nconv11-96/4(pad=valid)\n")
    strict = run_archdsl("check", "--strict", spec)
    assert strict.returncode == 1
    assert re.search(r"alexnet224\.arch:2:1: error: .*doesn't fit.*54\.25", strict.stderr)
    assert "Traceback" not in strict.stderr


# ---------------------------------------------------------------- an independent oracle

def _conv_layer(draw):
    k, s, d, c = draw(st.integers(1, 7)), draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 16))
    pad = draw(st.sampled_from(["same", "valid", "full", 0, 1, 2, 3]))
    extent = d * (k - 1) + 1
    p = {"same": (extent - 1) // 2, "valid": 0, "full": extent - 1}.get(pad, pad)
    text = f"conv{k}-{c}/{s}(pad={pad}, dilation={d})"
    return text, lambda ch, n: (c, (n + 2 * p - extent) // s + 1), lambda ch: k * k * ch * c + c


def _pool_layer(draw):
    kind = draw(st.sampled_from(["maxpool", "avgpool"]))
    k, s, ceil = draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.booleans())
    p = draw(st.integers(0, k // 2))

    def size(ch, n):
        span = n + 2 * p - k
        if span < 0:
            return ch, 0
        out = (-(-span // s) if ceil else span // s) + 1
        if ceil and (out - 1) * s >= n + p:  # the last window must start inside the input or the left padding
            out -= 1
        return ch, out

    return f"{kind}{k}/{s}(pad={p}, ceil={'true' if ceil else 'false'})", size, lambda ch: 0


def _deconv_layer(draw):
    k, s, p, c = draw(st.integers(1, 4)), draw(st.integers(1, 3)), draw(st.integers(0, 2)), draw(st.integers(1, 8))
    return f"deconv{k}-{c}/{s}(pad={p})", lambda ch, n: (c, (n - 1) * s - 2 * p + k), lambda ch: k * k * ch * c + c


def _upsample_layer(draw):
    f = draw(st.integers(1, 3))
    return f"upsample({f})", lambda ch, n: (ch, n * f), lambda ch: 0


@st.composite
def stacks(draw):
    size, channels = draw(st.integers(1, 48)), draw(st.integers(1, 8))
    layers = [draw(st.sampled_from([_conv_layer, _pool_layer, _deconv_layer, _upsample_layer]))(draw) for _ in range(draw(st.integers(1, 5)))]
    return channels, size, layers


@settings(max_examples=150, deadline=None)
@given(stacks())
def test_shapes_and_params_against_an_independent_oracle(stack):
    """Square maps through random conv/pool/deconv/upsample stacks, computed here from the formulas alone."""
    channels, size, layers = stack
    expected_params, ch, n, fails = 0, channels, size, False
    for _, shape_of, params_of in layers:
        expected_params += params_of(ch)
        ch, n = shape_of(ch, n)
        if n < 1:
            fails = True
            break
    spec = f"input {channels}x{size}x{size}\n" + "\n".join(text for text, _, _ in layers)
    if fails:
        with pytest.raises(ArchError, match="shrinks the map below 1x1"):
            archdsl.load(spec)
        return
    net = archdsl.load(spec)
    assert net.outputs["output"] == (ch, n, n)
    assert net.params == expected_params
