"""`Layer.field_start` against PyTorch: the pixels a unit's gradient reaches are exactly its receptive field.

With positive weights and no nonlinearity, ∂ unit / ∂ pixel is non-zero exactly where the
pixel is in the unit's field; the field the IR computes (start + i·jump, receptive_field)
must be that set's bounding box, clipped to the image.
"""
from __future__ import annotations

import pytest
import torch

import archdsl

DENSE = """input 1x37x41
conv3-2                    # pad 1
conv5-2/2(pad=2)
avgpool3/2(pad=1)
conv3-2(pad=valid)
conv1x3-2/1x2(pad=0x1)
"""
DILATED = """input 1x40x40
conv3-2/2(pad=2)
conv3-2(dilation=2)
avgpool2/2
conv3-2(pad=valid)
"""
TRANSPOSED = ["input 1x32x32\nconv3-2/2\ndeconv4-2/2(pad=1)\nconv3-2\n",
              "input 1x32x32\nconv3-2/2\ndeconv2-2/2\nconv3-2\n",
              "input 1x32x32\nconv3-2/2\nupsample(2)\nconv3-2\n"]


def _support(model, layer_shape, position):
    """Bounding box (top, left, bottom, right), end exclusive, of the input pixels the unit at `position` reads."""
    x = torch.zeros(1, *model.input_shape, requires_grad=True)
    out = model(x)
    out[(0, 0, *position)].backward()
    rows, cols = torch.nonzero(x.grad[0, 0], as_tuple=True)
    return int(rows.min()), int(cols.min()), int(rows.max()) + 1, int(cols.max()) + 1


def _positive_model(net):
    model = net.to_torch().eval()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.abs() + 0.1)
    return model


def _field(layer, position, image):
    box = []
    for axis, i in enumerate(position):
        start = layer.field_start[axis] + i * layer.jump[axis]
        box.append((round(start), round(start) + layer.receptive_field[axis]))
    (top, bottom), (left, right) = box
    height, width = image
    return max(top, 0), max(left, 0), min(bottom, height), min(right, width)


def _positions(shape):
    height, width = shape[1:]
    return {(0, 0), (height - 1, width - 1), (height // 2, width // 3), (0, width - 1), (height - 1, 0)}


def test_the_field_is_the_gradients_support():
    net = archdsl.load(DENSE)
    model = _positive_model(net)
    last = net.layers[-1]
    for position in _positions(last.shape):
        assert _support(model, last.shape, position) == _field(last, position, net.input_shape[1:]), position


@pytest.mark.parametrize("spec", TRANSPOSED)
def test_after_a_transposed_layer_the_field_is_right_within_one_input_step(spec):
    # A transposed layer's outputs do not step evenly over its inputs (outputs 0 and 1 of an
    # upsample(2) read the same input), so no start + i·jump is exact; it is within one step
    # of the transposed layer's input (2 pixels here) at every position.
    net = archdsl.load(spec)
    model = _positive_model(net)
    last = net.layers[-1]
    for y in range(last.shape[1]):
        top, left, bottom, right = _support(model, last.shape, (y, 5))
        field_top, field_left, field_bottom, field_right = _field(last, (y, 5), net.input_shape[1:])
        assert abs(top - field_top) <= 2 and abs(bottom - field_bottom) <= 2, y
        assert bottom - top <= last.receptive_field[0]


def test_a_dilated_field_contains_the_gradients_support():
    net = archdsl.load(DILATED)
    model = _positive_model(net)
    last = net.layers[-1]
    for position in _positions(last.shape):
        top, left, bottom, right = _support(model, last.shape, position)
        field_top, field_left, field_bottom, field_right = _field(last, position, net.input_shape[1:])
        assert field_top <= top and field_left <= left and bottom <= field_bottom and right <= field_right


def test_padding_moves_the_start_and_stride_does_not():
    resnet = archdsl.load("specs/resnet18.arch")
    assert resnet.layer("stem1.conv1").field_start == (-3, -3)  # conv7/2, pad 3
    assert resnet.layer("stem1.maxpool1").field_start == (-5, -5)  # maxpool3/2, pad 1 at jump 2
    lenet = archdsl.load("specs/lenet5.arch")
    assert {layer.field_start for layer in lenet.layers} == {(0, 0)}  # valid convolutions only
