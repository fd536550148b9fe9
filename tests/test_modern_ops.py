"""The ops of the mobile and modern CNN families (issue 10 §2), each held to a PyTorch reference
written here from the papers' and torchvision's code: layer and group norm, layer scale,
stochastic depth, channel split and shuffle, the broadcasting product, adaptive pooling,
PReLU, squeeze-and-excitation's forms, and the arithmetic's rounding functions.

torchvision itself does not install beside the CPU build of torch here, so its functions
(`channel_shuffle`, `stochastic_depth`, `_make_divisible`, `SqueezeExcitation`) are
written out below as torchvision writes them.
"""
from __future__ import annotations

import math

import pytest

import archdsl
from archdsl import ArchError
from archdsl.evaluate import divisible

torch = pytest.importorskip("torch")
F = torch.nn.functional


def model_of(text: str):
    net = archdsl.load(text)
    torch.manual_seed(0)
    return net, net.to_torch()


def module(net, model, layer: str):
    return model.get_submodule(net.module_path(layer))


def perturb(model) -> None:
    """Move every parameter off its initial value, so that a reference that ignored one would differ."""
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.5)


# ---- torchvision's functions, as torchvision writes them -------------------------------------


def channel_shuffle(x, groups: int):
    """torchvision.models.shufflenetv2.channel_shuffle."""
    batchsize, num_channels, height, width = x.size()
    channels_per_group = num_channels // groups
    x = x.view(batchsize, groups, channels_per_group, height, width)
    x = torch.transpose(x, 1, 2).contiguous()
    return x.view(batchsize, num_channels, height, width)


def stochastic_depth(x, p: float, mode: str, training: bool = True):
    """torchvision.ops.stochastic_depth."""
    if not training or p == 0.0:
        return x
    survival_rate = 1.0 - p
    size = [x.shape[0]] + [1] * (x.ndim - 1) if mode == "row" else [1] * x.ndim
    noise = torch.empty(size, dtype=x.dtype, device=x.device).bernoulli_(survival_rate)
    if survival_rate > 0.0:
        noise.div_(survival_rate)
    return x * noise


def make_divisible(v: float, divisor: int, min_value: int | None = None) -> int:
    """torchvision.models._utils._make_divisible."""
    if min_value is None:
        min_value = divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


# ---- normalization and scale ----------------------------------------------------------------


def test_layernorm_normalises_the_channels_at_each_position():
    net, model = model_of("input 6x5x7\nlayernorm(eps=1e-6)")
    perturb(model)
    ln = module(net, model, "layernorm1")
    x = torch.randn(3, 6, 5, 7)
    # ConvNeXt's LayerNorm2d: permute to channels last, F.layer_norm over C, permute back
    expected = F.layer_norm(x.permute(0, 2, 3, 1), (6,), ln.weight, ln.bias, 1e-6).permute(0, 3, 1, 2)
    torch.testing.assert_close(model(x), expected)
    assert dict((k, tuple(v.shape)) for k, v in model.state_dict().items()) == {
        "layernorm1.weight": (6,), "layernorm1.bias": (6,)}


def test_layernorm_on_vectors_is_nn_layernorm():
    net, model = model_of("input 10\nlayernorm")
    assert type(module(net, model, "layernorm1")) is torch.nn.LayerNorm
    perturb(model)
    ln = module(net, model, "layernorm1")
    x = torch.randn(4, 10)
    torch.testing.assert_close(model(x), F.layer_norm(x, (10,), ln.weight, ln.bias, 1e-5))


def test_layernorm_on_a_1d_signal():
    net, model = model_of("input 4x9\nln")
    perturb(model)
    ln = module(net, model, "layernorm1")
    x = torch.randn(2, 4, 9)
    torch.testing.assert_close(model(x), F.layer_norm(x.transpose(1, 2), (4,), ln.weight, ln.bias).transpose(1, 2))


def test_groupnorm():
    net, model = model_of("input 8x5x5\ngroupnorm(4, eps=1e-3) gn(2)")
    perturb(model)
    g1, g2 = module(net, model, "groupnorm1"), module(net, model, "groupnorm2")
    x = torch.randn(2, 8, 5, 5)
    expected = F.group_norm(F.group_norm(x, 4, g1.weight, g1.bias, 1e-3), 2, g2.weight, g2.bias, 1e-5)
    torch.testing.assert_close(model(x), expected)
    assert net.params == 4 * 8
    with pytest.raises(ArchError, match=r"groups must divide the channels. Received: groups=3, in_channels=8"):
        archdsl.load("input 8x5x5\ngroupnorm(3)")


def test_layerscale_is_torchvisions_parameter():
    net, model = model_of("input 96x7x7\nlayerscale")
    gamma = module(net, model, "layerscale1").layer_scale
    # torchvision's CNBlock: nn.Parameter(torch.ones(dim, 1, 1) * layer_scale)
    assert tuple(gamma.shape) == (96, 1, 1) and torch.all(gamma == 1e-6)
    assert net.params == 96
    for init in ("kaiming", "xavier", "torch"):  # a Role.CONSTANT tensor starts at its fill in every scheme
        assert torch.all(net.to_torch(init=init).state_dict()["layerscale1.layer_scale"] == 1e-6)
    perturb(model)
    x = torch.randn(2, 96, 7, 7)
    torch.testing.assert_close(model(x), x * gamma)
    vector = archdsl.load("input 12\nlayerscale(0.5)")
    assert tuple(vector.to_torch().state_dict()["layerscale1.layer_scale"].shape) == (12,)


# ---- activations with weights ----------------------------------------------------------------


@pytest.mark.parametrize("text, slopes", [("prelu", 1), ("prelu(per_channel=true)", 6), ("prelu(init=0.1)", 1)])
def test_prelu(text, slopes):
    net, model = model_of(f"input 6x4x4\n{text}")
    weight = model.state_dict()["prelu1.weight"]
    assert tuple(weight.shape) == (slopes,) and net.params == slopes
    assert torch.all(weight == (0.1 if "0.1" in text else 0.25))
    perturb(model)
    x = torch.randn(2, 6, 4, 4)
    torch.testing.assert_close(model(x), F.prelu(x, module(net, model, "prelu1").weight))


# ---- stochastic depth -------------------------------------------------------------------------


def test_droppath_is_the_identity_at_inference():
    net, model = model_of("input 8x4x4\ndroppath(0.7)")
    x = torch.randn(16, 8, 4, 4)
    assert torch.equal(model.eval()(x), x)


@pytest.mark.parametrize("p, mode", [(0.3, "row"), (0.5, "batch"), (1.0, "row"), (0.0, "row")])
def test_droppath_while_training_is_torchvisions_stochastic_depth(p, mode):
    net, model = model_of(f"input 8x4x4\ndroppath({p}, mode={mode})")
    x = torch.randn(64, 8, 4, 4)
    torch.manual_seed(5)
    got = model.train()(x)
    torch.manual_seed(5)
    expected = stochastic_depth(x, p, mode)
    torch.testing.assert_close(got, expected)
    if mode == "row" and 0 < p < 1:  # whole samples dropped, the others scaled
        kept = got.flatten(1).abs().sum(1) > 0
        assert 0 < kept.sum() < 64
        torch.testing.assert_close(got[kept], x[kept] / (1 - p))


def test_droppath_inside_a_residual_drops_the_body_per_sample():
    net, model = model_of("input 4x4x4\nresidual< conv3-4 droppath(0.5) >")
    x = torch.randn(32, 4, 4, 4)
    torch.manual_seed(1)
    y = model.train()(x)
    taken_shortcut = (y - x).flatten(1).abs().sum(1) == 0
    assert 0 < taken_shortcut.sum() < 32  # some samples took the identity alone


def test_droppath_needs_a_probability_in_range():
    with pytest.raises(ArchError, match=r"droppath needs a probability, as in droppath\(0.2\)"):
        archdsl.load("input 4x4x4\ndroppath")
    with pytest.raises(ArchError, match=r"p must be a number in \[0, 1\]"):
        archdsl.load("input 4x4x4\ndroppath(1.5)")
    with pytest.raises(ArchError, match=r"mode must be one of row, batch"):
        archdsl.load("input 4x4x4\ndroppath(0.1, mode=rows)")


# ---- channels: split, shuffle, mul ----------------------------------------------------------


def test_shuffle_is_torchvisions_channel_shuffle():
    net, model = model_of("input 12x3x5\nshuffle(3)")
    x = torch.randn(2, 12, 3, 5)
    torch.testing.assert_close(model(x), channel_shuffle(x, 3))
    assert "shuffle" in archdsl.load("input 12x3x5\nshuffle(groups=4)").layers[-1].token


def test_shuffle_errors():
    with pytest.raises(ArchError, match=r"shuffle needs a number of groups, as in shuffle\(2\)"):
        archdsl.load("input 12x3x5\nshuffle")
    with pytest.raises(ArchError, match=r"whose channels the groups divide. Received: input shape 12x3x5"):
        archdsl.load("input 12x3x5\nshuffle(5)")


def test_split_names_its_parts_and_continues_from_the_last():
    net = archdsl.load("input 10x4x4\nsplit(4, 6) -> a, b\nconv1-3")
    assert [(layer.name, layer.shape) for layer in net.layers[1:3]] == [("a", (4, 4, 4)), ("b", (6, 4, 4))]
    assert net.layer("conv1").inputs == ("b",)
    assert net.outputs == {"a": (4, 4, 4), "output": (3, 4, 4)}
    model = net.to_torch().eval()
    x = torch.randn(2, 10, 4, 4)
    y = model(x)
    torch.testing.assert_close(y["a"], x[:, :4])
    torch.testing.assert_close(y["output"], model.conv1(x[:, 4:]))


def test_shufflenet_v2_unit_as_torchvision_computes_it():
    """InvertedResidual (stride 1): x1, x2 = x.chunk(2, dim=1); cat((x1, branch2(x2))); channel_shuffle(·, 2)."""
    net, model = model_of("""input 8x6x6
block unit = [
  split -> left, right
  @right conv1-4 bn relu conv3-4(groups=4) bn conv1-4 bn relu -> branch
  @left concat(@branch) shuffle(2)
]
unit""")
    perturb(model)
    model.eval()
    x = torch.randn(2, 8, 6, 6)
    x1, x2 = x.chunk(2, dim=1)
    branch = torch.nn.Sequential(*(module(net, model, f"unit1.{name}") for name in (
        "conv1", "bn1", "relu1", "conv2", "bn2", "conv3", "bn3", "branch")))
    torch.testing.assert_close(model(x), channel_shuffle(torch.cat((x1, branch(x2)), dim=1), 2))


def test_split_errors():
    with pytest.raises(ArchError, match=r"2 does not divide them"):
        archdsl.load("input 9x4x4\nsplit -> a, b")
    with pytest.raises(ArchError, match=r"summing to the 9 channels. Received: 2 sizes for 2 parts, summing to 8"):
        archdsl.load("input 9x4x4\nsplit(4, 4) -> a, b")
    with pytest.raises(ArchError, match=r"the tensor name 'a' is used twice"):
        archdsl.load("input 8x4x4\nsplit -> a, a")
    with pytest.raises(ArchError, match=r"split takes each part's channels"):
        archdsl.load("input 8x4x4\nsplit(size=4) -> a, b")
    with pytest.raises(ArchError, match=r"expected '->'"):
        archdsl.load("input 8x4x4\nsplit(4, 4)")
    with pytest.raises(ArchError, match=r"names each: split -> a, b. Received: one name, a"):
        archdsl.load("input 8x4x4\nsplit -> a")
    with pytest.raises(ArchError, match=r"split takes each part's channels.*Received: @input"):
        archdsl.load("input 8x4x4\nsplit(@input) -> a, b")


@pytest.mark.parametrize("gate", ["gap conv1-8 sigmoid", "gap fc-8 sigmoid"])  # C×1×1 and C
def test_mul_broadcasts_a_gate_over_the_map(gate):
    net, model = model_of(f"input 8x5x5\n-> x {gate} mul(@x)")
    perturb(model)
    model.eval()
    x = torch.randn(3, 8, 5, 5)
    layers = [module(net, model, layer.name) for layer in net.layers[1:-1] if layer.params or layer.op.family != "gap"]
    s = x.mean((2, 3), keepdim=True)
    for m in layers:
        s = m(s.flatten(1) if isinstance(m, torch.nn.Linear) else s)
    torch.testing.assert_close(model(x), x * s.reshape(3, 8, 1, 1))


def test_mul_shapes():
    assert archdsl.load("input 8x5x5\n-> x conv1-8 mul(@x, @input)").outputs["output"] == (8, 5, 5)
    with pytest.raises(ArchError, match=r"mul needs tensors that broadcast.*Received: 4, 8x5x5"):
        archdsl.load("input 8x5x5\n-> x gap fc-4 mul(@x)")


# ---- adaptive pooling -------------------------------------------------------------------------


@pytest.mark.parametrize("size", ["3", "7", "2x5", "1"])
@pytest.mark.parametrize("kind", ["avg", "max"])
def test_adaptive_pooling(kind, size):
    net, model = model_of(f"input 3x10x7\nadaptive{kind}pool({size})")
    out = tuple(int(v) for v in size.split("x")) if "x" in size else (int(size),) * 2
    x = torch.randn(2, 3, 10, 7)
    reference = F.adaptive_avg_pool2d if kind == "avg" else F.adaptive_max_pool2d
    torch.testing.assert_close(model(x), reference(x, out))
    assert net.outputs["output"] == (3, *out)


def test_adaptive_pooling_window_for_receptive_fields():
    net = archdsl.load("input 3x12x12\nadaptiveavgpool(4) -> a\n@input adaptivemaxpool(5)")
    assert net.layer("a").receptive_field == (3, 3)  # 12/4: windows of 3, exactly
    assert net.layers[-1].receptive_field == (4, 4)  # 12/5: windows of 3 and 4, the largest
    assert not net.warnings


# ---- squeeze-and-excitation's forms ----------------------------------------------------------


class SqueezeExcitation(torch.nn.Module):
    """torchvision.ops.SqueezeExcitation."""

    def __init__(self, input_channels, squeeze_channels, activation=torch.nn.ReLU, scale_activation=torch.nn.Sigmoid):
        super().__init__()
        self.avgpool = torch.nn.AdaptiveAvgPool2d(1)
        self.fc1 = torch.nn.Conv2d(input_channels, squeeze_channels, 1)
        self.fc2 = torch.nn.Conv2d(squeeze_channels, input_channels, 1)
        self.activation = activation()
        self.scale_activation = scale_activation()

    def forward(self, input):
        scale = self.scale_activation(self.fc2(self.activation(self.fc1(self.avgpool(input)))))
        return scale * input


def test_se_conv_form_is_torchvisions_squeeze_excitation():
    net, model = model_of("input 24x6x6\nse<squeeze=8, act=silu, gate=hardsigmoid, form=conv>")
    reference = SqueezeExcitation(24, 8, torch.nn.SiLU, torch.nn.Hardsigmoid)
    ours = {k.removeprefix("se1_"): v for k, v in model.state_dict().items()}
    assert {k: tuple(v.shape) for k, v in ours.items()} == {k: tuple(v.shape) for k, v in reference.state_dict().items()}
    reference.load_state_dict(ours)
    x = torch.randn(2, 24, 6, 6)
    torch.testing.assert_close(model(x), reference(x))
    assert [layer.name for layer in net.layers[1:]] == [
        "se1.squeeze", "se1.fc1", "se1.silu", "se1.fc2", "se1.hardsigmoid", "se1.scale"]


def test_se_squeeze_widths_of_mobilenet_v3_and_efficientnet():
    # MobileNetV3: _make_divisible(expanded // 4, 8) on 72 expanded channels → 24
    net = archdsl.load("input 72x8x8\nse<squeeze=divisible(72 // 4, 8), gate=hardsigmoid, form=conv>")
    assert net.layer("se1.fc1").shape == (make_divisible(72 // 4, 8), 1, 1) == (24, 1, 1)
    # EfficientNet: max(1, block input channels // 4), the SE sitting on the expanded 96
    net = archdsl.load("input 16x8x8\nblock b = [conv1-(in_channels * 6) se<squeeze=max(1, in_channels // 4), form=conv>]\nb")
    assert net.layer("b1.fc1").shape == (4, 1, 1) and net.layer("b1.fc2").shape == (96, 1, 1)


def test_se16_is_unchanged():
    net = archdsl.load("input 64x7x7\nse<16>")
    assert [(layer.name, layer.op.family, layer.shape) for layer in net.layers[1:]] == [
        ("se1.squeeze", "gap", (64, 1, 1)), ("se1.fc1", "fc", (4,)), ("se1.relu", "relu", (4,)),
        ("se1.fc2", "fc", (64,)), ("se1.sigmoid", "sigmoid", (64,)), ("se1.scale", "mul", (64, 7, 7))]
    assert net.params == 2 * 64 * 4 + 4 + 64
    assert archdsl.load("input 64x7x7\nse<r=16>").params == net.params


@pytest.mark.parametrize("text, message", [
    ("se<4, squeeze=8>", r"the reduction ratio r or the squeezed channels, one of them.*Received: both"),
    ("se<>", r"Received: neither"),
    ("se<4, act=relux>", r"act must be an element-wise activation.*did you mean 'relu'"),
    ("se<4, gate=softmax>", r"gate must be an element-wise activation"),
    ("se<4, form=dense>", r"form must be one of fc, conv"),
    ("se<4, actv=silu>", r"se has no option 'actv'; did you mean 'act'"),
    ("se<squeeze=0>", r"squeeze must be a positive whole number"),
    ("se<5>", r"r divides"),
    ("se<4, @x>", r"se takes options, not tensors"),
])
def test_se_errors(text, message):
    with pytest.raises(ArchError, match=message):
        archdsl.load(f"input 16x4x4\n-> x {text}")


def test_se_with_the_same_activation_twice():
    net = archdsl.load("input 16x4x4\nse<4, act=sigmoid>")
    assert [layer.name for layer in net.layers[1:]][2:5] == ["se1.act", "se1.fc2", "se1.gate"]


# ---- the arithmetic's functions ---------------------------------------------------------------


@pytest.mark.parametrize("v", [1, 3.3, 8, 12, 16 * 1.1, 17.6, 20, 32 * 1.4, 36, 44.8, 71.9, 100, 232 * 0.75, 1280 * 1.1])
@pytest.mark.parametrize("divisor", [8, 4, 16])
def test_divisible_is_torchvisions_make_divisible(v, divisor):
    assert divisible(v, divisor) == make_divisible(v, divisor)
    assert divisible(v, divisor, 1) == make_divisible(v, divisor, 1)


def channels(expr: str) -> int:
    return archdsl.load(f"input 3x4x4\nconv1-({expr})").outputs["output"][0]


def test_functions_in_specs():
    assert channels("divisible(16 * 1.1, 8)") == 16
    assert channels("divisible(32 * 1.4, 8)") == 48
    assert channels("ceil(2 * 1.1)") == 3 and channels("floor(2.9)") == 2
    assert channels("max(1, 3 // 4)") == 1 and channels("min(7, 9, 8)") == 7
    assert channels("divisible(3, 8, 1)") == make_divisible(3, 8, 1)
    net = archdsl.load("input 3x4x4\nblock b(n, depth=1.0) = [conv1-4 * (ceil(n * depth))]\nb(3, depth=1.2)")
    assert len(net.layers) - 1 == math.ceil(3 * 1.2)


@pytest.mark.parametrize("expr, message", [
    ("celi(2.5)", r"unknown function 'celi'; did you mean 'ceil'"),
    ("max(1)", r"max takes max\(a, b, …\). Received: 1 arguments"),
    ("divisible(10, 8, least=1)", r"divisible takes positional arguments"),
    ("divisible(10, 2.5)", r"divisor \(and min_value\) must be whole numbers"),
    ("ceil(1e400)", r"ceil needs finite numbers"),
    ("16 * 1.1", r"must be a positive whole number; round it with divisible"),
])
def test_function_errors(expr, message):
    with pytest.raises(ArchError, match=message):
        archdsl.load(f"input 3x4x4\nconv1-({expr})")


def test_kernel_size_as_a_block_parameter():
    net = archdsl.load("input 8x16x16\nblock dw(k) = conv-8(kernel=k, groups=8)\ndw(3) dw(5) dw(k=1x7)")
    assert [layer.op.kernel for layer in net.layers[1:]] == [(3, 3), (5, 5), (1, 7)]
    assert net.params == 8 * (9 + 25 + 7) + 3 * 8


# ---- ConvNeXt's block, loaded one to one ----------------------------------------------------


class Permute(torch.nn.Module):
    def __init__(self, dims):
        super().__init__()
        self.dims = dims

    def forward(self, x):
        return torch.permute(x, self.dims)


class CNBlock(torch.nn.Module):
    """torchvision.models.convnext.CNBlock (nn.LayerNorm on channels last, nn.Linear, layer scale,
    stochastic depth)."""

    def __init__(self, dim, layer_scale=1e-6, stochastic_depth_prob=0.1):
        super().__init__()
        self.block = torch.nn.Sequential(
            torch.nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim, bias=True),
            Permute([0, 2, 3, 1]),
            torch.nn.LayerNorm(dim, eps=1e-6),
            torch.nn.Linear(dim, 4 * dim, bias=True),
            torch.nn.GELU(),
            torch.nn.Linear(4 * dim, dim, bias=True),
            Permute([0, 3, 1, 2]),
        )
        self.layer_scale = torch.nn.Parameter(torch.ones(dim, 1, 1) * layer_scale)
        self.p = stochastic_depth_prob

    def forward(self, input):
        result = self.layer_scale * self.block(input)
        return stochastic_depth(result, self.p, "row", self.training) + input


def test_convnext_block_loads_torchvisions_weights_one_to_one():
    net, model = model_of("""input 24x14x14
block cnblock(c, p) = residual< conv7-c(groups=c) layernorm(eps=1e-6) fc-(4*c)(pointwise=true) gelu
                                fc-c(pointwise=true) layerscale droppath(p) >
cnblock(24, 0.1)""")
    reference = CNBlock(24)
    with torch.no_grad():
        for p in reference.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    ours, theirs = list(model.state_dict().items()), list(reference.state_dict().items())
    shapes = lambda items: sorted(tuple(v.shape) for _, v in items)  # noqa: E731
    assert shapes(ours) == shapes(theirs)  # the same multiset of tensors
    # in order, except that torchvision's layer_scale is registered before the block's tensors
    theirs = theirs[1:] + theirs[:1]
    model.load_state_dict({k: v for (k, _), (_, v) in zip(ours, theirs)})
    x = torch.randn(4, 24, 14, 14)
    torch.testing.assert_close(model.eval()(x), reference.eval()(x))
    torch.manual_seed(3)
    got = model.train()(x)
    torch.manual_seed(3)
    torch.testing.assert_close(got, reference.train()(x))
    assert net.layer("cnblock1.fc1").macs == 14 * 14 * 24 * 96


def test_pointwise_fc_on_a_vector_is_a_plain_fc():
    assert archdsl.load("input 10\nfc-4(pointwise=true)").params == archdsl.load("input 10\nfc-4").params == 44


def test_a_family_ending_in_a_digit_numbers_its_layers_with_an_underscore():
    net = archdsl.load("input 4x4x4\nrelu6 relu6 relu")
    assert [layer.name for layer in net.layers[1:]] == ["relu6_1", "relu6_2", "relu1"]
