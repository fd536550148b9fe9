"""The PyTorch backend: to_torch() agrees with the IR (parameters, shapes of every layer),
initializes as the papers train, and stays out of `archdsl check`'s way.

The zoo test builds every spec in specs/ on the meta device: parameters and a forward
pass cost no memory or arithmetic there, so even VGG-19 takes milliseconds.
"""
from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest

import torch
from torch import nn  # noqa: E402

import archdsl  # noqa: E402
from archdsl.backends.torch import build_plan, to_torch  # noqa: E402
from archdsl.errors import ArchError  # noqa: E402
from archdsl.ops import REGISTRY  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
ZOO = sorted((ROOT / "specs").glob("*.arch"))

# Every op, 2-D, with two outputs, named tensors, a residual with a projection,
# squeeze-and-excitation and an inception module.
ALL_OPS = """
network allops
input 3x20x20
conv3-8 bn relu -> a
lrn(3)
residual< conv3-8 bn relu conv3-8/2 bn > relu
leakyrelu(0.2)
se<2>
inception< conv1-4 | maxpool3/1(pad=1) conv1-4(bias=false) | avgpool3/1(pad=1, count_include_pad=false) conv1-4 tanh >
maxpool3/2(ceil=true)
deconv2-8/2(output_padding=1) gelu
upsample(2, mode=bilinear)
avgpool3/1
concat(@a)
-> c
conv1-16 add(@c)
sigmoid -> trunk
@a gap fc-3 -> side
@trunk gap flatten fc-10 dropout(0.2) softmax
"""
OPS_1D = """
network ops1d
input 2x32
conv3-4 bn relu maxpool avgpool3/1(pad=1) upsample(2) deconv2-4/2 lrn(3) gap fc-3
"""
OPS_3D = """
network ops3d
input 2x8x8x8
conv3-4 bn relu maxpool deconv2-4/2 avgpool upsample(2) lrn(3) gap fc-3
"""
# The ops of the mobile and modern families: a ShuffleNet unit, an SE of the conv form, a
# ConvNeXt-like residual with layer scale and stochastic depth, SE written by hand with mul.
MODERN_OPS = """
network modern
input 16x12x12
conv3-16 bn relu6 -> a
split -> l, r
@r conv1-8 bn hardswish conv3-8(groups=8) bn silu -> rb
@l concat(@rb) shuffle(2)
se<4, act=silu, gate=hardsigmoid, form=conv>
residual< conv-16(kernel=5, groups=16) layernorm(eps=1e-6) fc-32(pointwise=true) gelu fc-16(pointwise=true) layerscale droppath(0.5) >
groupnorm(4) mish elu(0.5) prelu(per_channel=true)
-> x gap fc-4 swish fc-16 hardsigmoid mul(@x)
adaptivemaxpool(5) -> m
adaptiveavgpool(3x2) -> pooled
@a prelu adaptiveavgpool(1) flatten layernorm fc-3 -> side
@m gap flatten fc-10
"""
SMALL = {"allops": ALL_OPS, "ops1d": OPS_1D, "ops3d": OPS_3D, "modern": MODERN_OPS}


def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def as_dict(net, y) -> dict:
    return y if isinstance(y, dict) else {next(iter(net.outputs)): y}


# ---- the zoo: parameter counts and output shapes equal the IR's ----------------------


@pytest.mark.parametrize("path", ZOO, ids=[p.stem for p in ZOO])
def test_zoo_params_and_output_shapes(path):
    net = archdsl.load(path)
    with torch.device("meta"):
        model = to_torch(net)
        y = as_dict(net, model(torch.empty(2, *net.input_shape)))
    assert n_params(model) == net.params
    assert list(y) == list(net.outputs)  # the main output first
    assert {k: tuple(v.shape) for k, v in y.items()} == {k: (2, *s) for k, s in net.outputs.items()}


def test_zoo_is_not_empty():
    assert len(ZOO) >= 5


# ---- an oracle: every layer's output shape, observed with hooks, equals the IR's -------


@pytest.mark.parametrize("name", SMALL)
def test_every_layer_shape_matches_the_ir(name):
    net = archdsl.load(SMALL[name])
    model = to_torch(net).eval()
    by_name = {net.module_path(layer.name): layer for layer in net.layers}
    seen_out, seen_in = {}, {}

    def hook(module_key):
        def record(module, inputs, output):
            seen_in[module_key] = tuple(inputs[0].shape[1:])
            seen_out[module_key] = tuple(output.shape[1:])

        return record

    for key, module in model.named_children():
        module.register_forward_hook(hook(key))
    with torch.no_grad():
        model(torch.randn(2, *net.input_shape))
    modules = {key for key, _ in model.named_children()}
    assert modules and seen_out.keys() == modules  # every module ran
    for key in modules:
        layer = by_name[key]
        expected_in, expected_out = net.layer(layer.inputs[0]).shape, layer.shape
        if isinstance(layer.op, REGISTRY["fc"]) and layer.op.pointwise:  # nn.Linear on channels last
            expected_in, expected_out = expected_in[1:] + expected_in[:1], expected_out[1:] + expected_out[:1]
        elif isinstance(layer.op, REGISTRY["fc"]):
            expected_in = (math.prod(expected_in),)  # fc flattens its input first
        assert seen_out[key] == expected_out, key
        assert seen_in[key] == expected_in, key
    # the ops written inline (add, concat, flatten, mul, split, shuffle) are checked by their
    # consumers' inputs above; check that each of them does reach a module (through other
    # inline ops: concat then shuffle) or is an output
    inline = {s.layer.name for s in build_plan(net).steps if s.module is None}

    def checked(node: str) -> bool:
        return node in net.output_nodes.values() or any(
            net.module_path(c) in modules or (c in inline and checked(c)) for c in net.graph.successors(node))

    assert all(checked(node) for node in inline)


@pytest.mark.parametrize("name", SMALL)
def test_training_step_runs_backward(name):
    """In-place ReLUs must never overwrite a tensor autograd still needs."""
    net = archdsl.load(SMALL[name])
    model = to_torch(net).train()
    y = as_dict(net, model(torch.randn(4, *net.input_shape)))
    sum(v.float().pow(2).mean() for v in y.values()).backward()
    assert all(p.grad is not None for p in model.parameters())


# ---- names: the TVM backend and checkpoints rely on them ---------------------------------


def test_submodules_are_named_after_layers():
    net = archdsl.load(ALL_OPS)
    model = to_torch(net)
    with_params = {net.module_path(layer.name) for layer in net.layers if layer.params}
    children = dict(model.named_children())
    assert with_params <= set(children)
    for layer in net.layers:
        if layer.params:
            got = sum(p.numel() for p in children[net.module_path(layer.name)].parameters())
            assert got == layer.params, layer.name
    keys = set(model.state_dict())
    assert "residual1_shortcut_conv.weight" in keys and "residual1_shortcut_bn.running_var" in keys
    assert "se1_fc1.weight" in keys and "inception1_b2_conv1.weight" in keys
    assert "inception1_b2_conv1.bias" not in keys  # bias=false
    assert isinstance(children["conv1"], nn.Conv2d) and isinstance(children["bn1"], nn.BatchNorm2d)
    assert isinstance(children["deconv1"], nn.ConvTranspose2d) and isinstance(children["lrn1"], nn.LocalResponseNorm)


def test_several_outputs_come_back_as_a_dict_main_first():
    net = archdsl.load(ALL_OPS)
    y = to_torch(net).eval()(torch.randn(1, 3, 20, 20))
    assert isinstance(y, dict) and list(y) == ["output", "side"]
    torch.testing.assert_close(y["output"].sum(dim=1), torch.ones(1))  # softmax over classes


def test_single_output_is_a_tensor():
    net = archdsl.load(OPS_1D)
    assert isinstance(to_torch(net)(torch.randn(1, 2, 32)), torch.Tensor)


def test_forward_is_generated_source_without_interpretation():
    model = to_torch(archdsl.load(OPS_1D))
    assert "x = self.conv1(x)  # 4x32" in model.archdsl_source
    import inspect

    assert "self.fc1" in inspect.getsource(type(model).forward)  # linecache knows the generated code


def test_the_module_pickles_and_copies():
    for text in (ALL_OPS, MODERN_OPS):  # the second defines modules torch.nn lacks in its source
        _pickles_and_copies(text)


def _pickles_and_copies(text):
    import copy
    import io
    import pickle

    net = archdsl.load(text)
    model = to_torch(net).eval()
    buffer = io.BytesIO()
    torch.save(model, buffer)  # a whole module, as some training code saves it
    buffer.seek(0)
    x = torch.randn(2, *net.input_shape)
    expected = model(x)["output"]
    for other in (pickle.loads(pickle.dumps(model)), copy.deepcopy(model), torch.load(buffer, weights_only=False)):
        torch.testing.assert_close(other(x)["output"], expected)


# ---- initialization --------------------------------------------------------------------


def test_init_is_deterministic_under_manual_seed():
    net = archdsl.load(ALL_OPS)
    torch.manual_seed(3)
    a = to_torch(net).state_dict()
    torch.manual_seed(3)
    b = to_torch(net).state_dict()
    torch.manual_seed(4)
    c = to_torch(net).state_dict()
    for key in a:
        torch.testing.assert_close(a[key], b[key])
    assert not torch.equal(a["conv1.weight"], c["conv1.weight"])


def test_kaiming_init_as_the_papers_train():
    spec = "network k\ninput 64x16x16\nconv3-256 bn relu conv3-256(bias=true) relu fc-512 relu fc-10"
    net = archdsl.load(spec)
    torch.manual_seed(0)
    model = to_torch(net, init="kaiming")
    conv = model.conv1.weight
    assert conv.std().item() == pytest.approx(math.sqrt(2 / (256 * 9)), rel=0.05)  # fan_out, relu
    assert torch.count_nonzero(model.conv2.bias) == 0
    assert torch.equal(model.bn1.weight, torch.ones(256)) and torch.count_nonzero(model.bn1.bias) == 0
    fan_in = 256 * 16 * 16
    assert model.fc1.weight.std().item() == pytest.approx(math.sqrt(2 / fan_in), rel=0.05)  # before a relu
    assert model.fc2.weight.std().item() == pytest.approx(0.01, rel=0.05)  # the classifier
    assert torch.count_nonzero(model.fc1.bias) == 0


def test_init_schemes_are_selectable():
    net = archdsl.load("network k\ninput 16x8x8\nconv3-64 relu fc-10")
    torch.manual_seed(0)
    xavier = to_torch(net, init="xavier")
    bound = math.sqrt(6 / (16 * 9 + 64 * 9))
    assert xavier.conv1.weight.abs().max().item() <= bound
    assert xavier.conv1.weight.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.05)
    torch.manual_seed(0)
    default = to_torch(net, init="torch")
    assert torch.count_nonzero(default.conv1.bias) > 0  # PyTorch's uniform bias
    assert "init_weights" not in default.archdsl_source
    with pytest.raises(ArchError, match="unknown init scheme 'he'"):
        to_torch(net, init="he")


def test_auto_init_reads_the_train_section():
    net = archdsl.load("network k\ninput 16x8x8\nconv3-64 relu fc-10\ntrain { init = torch }")
    assert "init_weights" not in to_torch(net).archdsl_source
    assert "kaiming_normal_" in to_torch(net, init="kaiming").archdsl_source


# ---- devices ---------------------------------------------------------------------------


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_forward_on_cuda():
    net = archdsl.load(ALL_OPS)
    model = to_torch(net).cuda().eval()
    with torch.no_grad():
        y = model(torch.randn(2, *net.input_shape, device="cuda"))
    assert y["output"].is_cuda and tuple(y["output"].shape) == (2, 10)


# ---- torch stays out of `archdsl check` -------------------------------------------------


def test_check_never_imports_torch():
    code = (
        "import sys\n"
        "from archdsl.cli import main\n"
        f"status = main(['check', '--quiet', {str(ROOT / 'specs' / 'lenet5.arch')!r}])\n"
        "assert status == 0, status\n"
        "heavy = sorted(m for m in ('torch', 'onnx', 'onnxruntime', 'tvm') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_missing_torch_is_a_clear_error():
    code = (
        "import sys\n"
        "sys.modules['torch'] = None  # as if not installed\n"
        "import archdsl\n"
        "from archdsl.errors import ArchError\n"
        "net = archdsl.load('network t\\ninput 1x8x8\\nconv3-4')\n"
        "try:\n"
        "    net.to_torch()\n"
        "except ArchError as err:\n"
        "    print(err.message)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "needs PyTorch: pip install torch==2.13.0 'archdsl[torch]'" in result.stdout


# ---- property: random chains of layers agree with the IR ---------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

LAYER_TOKENS = [
    "conv3-8", "conv1-4/2", "conv3-6(dilation=2)", "conv3-8(groups=2)", "deconv2-4/2", "deconv3-4(pad=1)",
    "maxpool", "maxpool3/2(ceil=true)", "avgpool3/1(pad=1, count_include_pad=false)", "bn", "relu", "tanh",
    "gelu", "leakyrelu(0.2)", "sigmoid", "lrn(3)", "dropout(0.3)", "upsample(2)", "se<2>",
    "residual< conv3-8 bn relu >", "inception< conv1-4 | maxpool3/1(pad=1) >",
    "relu6", "hardswish", "mish", "elu(0.3)", "prelu", "prelu(per_channel=true)", "layernorm", "groupnorm(2)",
    "layerscale(0.5)", "shuffle(2)", "droppath(0.3)", "adaptiveavgpool(5)", "adaptivemaxpool(3x4)",
    "se<squeeze=3, act=silu, gate=hardsigmoid, form=conv>", "residual< conv3-8 layernorm droppath(0.5) >",
    "split -> p, q @q conv1-4 -> t @p concat(@t)", "-> g gap conv1-8 sigmoid mul(@g)",
]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(LAYER_TOKENS), min_size=1, max_size=6), st.booleans())
def test_random_chains_agree_with_the_ir(tokens, classify):
    text = "network chain\ninput 4x12x12\n" + "\n".join(tokens) + ("\ngap fc-3 softmax" if classify else "")
    try:
        net = archdsl.load(text)
    except ArchError:
        return  # a chain that shrinks the map away; the IR's business, not the backend's
    model = to_torch(net)
    assert n_params(model) == net.params
    shapes = {}
    for key, module in model.named_children():
        module.register_forward_hook(lambda m, i, o, key=key: shapes.__setitem__(key, tuple(o.shape[1:])))
    y = model.train()(torch.randn(2, *net.input_shape))
    assert tuple(y.shape[1:]) == net.outputs["output"]
    for layer in net.layers:
        if net.module_path(layer.name) in shapes:
            assert shapes[net.module_path(layer.name)] == layer.shape, layer.name
    if n_params(model):
        y.float().pow(2).mean().backward()  # in-place ReLUs never break autograd
