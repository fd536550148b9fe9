"""`archdsl compile --target onnx` (and the `compile` command's other plumbing: checkpoints,
the TVM delegation). The ONNX file must pass onnx.checker and onnxruntime must agree with
PyTorch to 1e-4, on a batch size other than the one exported (the batch axis is dynamic).
"""
from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest

import onnx
import onnxruntime as ort
import torch

import archdsl  # noqa: E402
from archdsl.backends.torch import export_onnx, load_checkpoint, to_torch  # noqa: E402
from archdsl.backends.torch.onnx_export import check_onnx  # noqa: E402
from archdsl.cli import main  # noqa: E402
from archdsl.errors import ArchError  # noqa: E402
from reference.zoo import SMALL_SIDES, load_spec, settle  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
LENET = ROOT / "specs" / "lenet5.arch"
# A residual with a projection, squeeze-and-excitation, an inception module and two outputs.
BRANCHY = """
network branchy
input 3x33x33
after conv = [bn relu]
conv3-8 -> stem
residual< conv3-16/2 conv3-16(after=false) bn > relu
se<4>
inception< conv1-8 | conv1-4 conv3-8 | maxpool3/1(pad=1) conv1-4 > -> mixed
@stem gap fc-5 -> side
@mixed avgpool lrn(3) gap fc-10 softmax
"""


def run_onnx(path: Path, x: torch.Tensor) -> list[np.ndarray]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x.numpy()})


def torch_outputs(model, x) -> list[torch.Tensor]:
    with torch.no_grad():
        y = model.eval()(x)
    return list(y.values()) if isinstance(y, dict) else [y]


def assert_matches(path: Path, model, input_shape, batch: int = 3, relative: bool = False):
    """onnx.checker passes and onnxruntime gives PyTorch's outputs to 1e-4; `relative`: to 1e-4 of
    their magnitude beyond 1, for outputs that must not have faded to nothing either."""
    onnx.checker.check_model(str(path), full_check=True)
    x = torch.randn(batch, *input_shape)
    got = run_onnx(path, x)
    expected = torch_outputs(model, x)
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        scale = float(b.abs().max())
        if relative:
            assert scale > 1e-2
        np.testing.assert_allclose(a, b.numpy(), atol=1e-4 * (max(1.0, scale) if relative else 1.0), rtol=0)


@pytest.mark.filterwarnings("error:ONNX export")  # the dynamo exporter itself must manage
def test_lenet5_through_the_cli_with_a_trainer_checkpoint(tmp_path):
    net = archdsl.load(LENET)
    torch.manual_seed(1)
    trained = to_torch(net)
    checkpoint = tmp_path / "best.pt"
    torch.save({"model": trained.state_dict(), "epoch": 3, "accuracy": 0.99}, checkpoint)  # the trainer's form
    out = tmp_path / "lenet5.onnx"
    assert main(["compile", str(LENET), "--target", "onnx", "-o", str(out), "--checkpoint", str(checkpoint), "--batch", "2"]) == 0
    model = onnx.load(str(out))
    assert [o.name for o in model.graph.output] == ["output"]
    assert_matches(out, trained, net.input_shape)


@pytest.mark.slow
@pytest.mark.filterwarnings("error:ONNX export")
def test_residual_inception_se_with_two_outputs(tmp_path):
    net = archdsl.load(BRANCHY)
    torch.manual_seed(0)
    model = to_torch(net)
    with torch.no_grad():  # move the batch norms off the identity, as training would
        for name, buffer in model.named_buffers():
            if name.endswith("running_var"):
                buffer.uniform_(0.5, 2.0)
            elif name.endswith("running_mean"):
                buffer.normal_(0, 0.1)
    out = export_onnx(net, tmp_path / "branchy.onnx", model=model)
    assert [o.name for o in onnx.load(str(out)).graph.output] == ["output", "side"]
    assert_matches(out, model, net.input_shape, batch=1)


@pytest.mark.slow
@pytest.mark.filterwarnings("error:ONNX export")  # no fallback: the dynamo exporter handles every new op
def test_the_modern_ops(tmp_path):
    """relu6, hardswish, silu, mish, elu, prelu, split, shuffle, the conv form of se, mul, pointwise fc, layer and group
    norm, layer scale, stochastic depth and adaptive pooling (to sizes that do not divide the input), traced
    at the default batch of 1 and run at 3."""
    from test_torch_backend import MODERN_OPS

    net = archdsl.load(MODERN_OPS)
    torch.manual_seed(0)
    model = to_torch(net)
    with torch.no_grad():  # off their starting values (layer scale 1e-6 would hide what follows it)
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.3)
    out = export_onnx(net, tmp_path / "modern.onnx", model=model)
    assert [o.name for o in onnx.load(str(out)).graph.output] == ["output", "pooled", "side"]
    assert_matches(out, model, net.input_shape, batch=3)


# What the zoo's torchvision networks are made of, in one small network: dense layers (an inception
# with an empty branch), a transition reading its input's channels, grouped and depthwise convs
# (the kernel a block parameter), factorised 1x7/7x1 and nested 1x3|3x1 inceptions, an empty
# repetition, and bn with another eps.
ZOO_CONSTRUCTS = """
network zoo_constructs
input 3x33x33
after conv = [bn(eps=0.001) relu]
block dense(k) = inception< | conv1-(4*k) conv3-k(after=false) >
block transition = [conv1-(in_channels/2) avgpool2/2]
block mbconv(c, k, s, t) = [conv1-(t*in_channels) conv-(t*in_channels)/s(kernel=k, groups=(t*in_channels)) conv1-c(after=false) bn]
conv3-16/2(pad=valid)
dense(4) * 2
transition
residual< conv1-16 conv3-16(groups=4) conv1-24(after=false) bn > relu
mbconv(24, 5, 2, 3) residual< mbconv(24, 3, 1, 6) > * 0 residual< mbconv(24, 3, 1, 6) >
inception< conv1x3-8 | conv3x1-8 | conv1-8 inception< conv1x3-4 | conv3x1-4 > | avgpool3/1(pad=1) conv1-8 >
gap dropout(0.2) fc-10
"""


@pytest.mark.slow
@pytest.mark.filterwarnings("error:ONNX export")  # the dynamo exporter itself must manage
def test_the_zoos_constructs_through_the_dynamo_exporter(tmp_path):
    net = archdsl.load(ZOO_CONSTRUCTS)
    torch.manual_seed(0)
    model = settle(to_torch(net))
    out = export_onnx(net, tmp_path / "zoo_constructs.onnx", model=model, exporter="dynamo")
    assert_matches(out, model, net.input_shape, batch=1)


# The TorchScript exporter cannot write adaptive average pooling to a size that does not divide
# its input's, as VGG-16-bn's 1x1 → 7x7 at 32x32 (PyTorch's "output size that are not factor of
# input size"); the dynamo exporter can.
EXPORTERS = {"vgg16_bn": "dynamo"}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SMALL_SIDES))
def test_torchvisions_networks_from_the_zoo(name, tmp_path):
    """Every block of the zoo's torchvision networks, at a small input. Through the TorchScript
    exporter where it can: it writes the same ONNX operators ten to thirty times faster than the
    dynamo exporter (13 s for SqueezeNet, 26 s for RegNetX-400MF here), which the test above holds
    to the same constructs. One onnxruntime session (Wide ResNet's file is 270 MB): this test's."""
    net = load_spec(name, SMALL_SIDES[name])
    torch.manual_seed(0)
    model = settle(to_torch(net))
    exporter = EXPORTERS.get(name, "torchscript")
    out = export_onnx(net, tmp_path / f"{name}.onnx", model=model, exporter=exporter, check=False)
    assert_matches(out, model, net.input_shape, batch=2, relative=True)


def test_the_check_holds_large_outputs_to_their_magnitude(tmp_path):
    """Freshly initialised deep networks output values near 1e3 (DenseNet-121), where float32
    rounding alone is 1e-3 apart between two runtimes: the export's check bounds the difference
    by 1e-4 of the outputs' magnitude there, and by 1e-4 below 1."""
    net = archdsl.load("input 16\nfc-4")
    model = to_torch(net).eval()
    with torch.no_grad():
        model.fc1.weight.mul_(1e4)  # outputs near 1e4
    out = export_onnx(net, tmp_path / "big.onnx", model=model, check=False)
    near = copy.deepcopy(model)
    with torch.no_grad():
        near.fc1.bias.add_(0.05)  # 5e-6 of the outputs' magnitude: rounding, not a bug
    check_onnx(out, near, net)
    far = copy.deepcopy(model)
    with torch.no_grad():
        far.fc1.bias.add_(5.0)
    with pytest.raises(ArchError, match="disagrees with PyTorch on output 'output'"):
        check_onnx(out, far, net)


def test_the_torchscript_exporter_works_too(tmp_path):
    net = archdsl.load(LENET)
    model = to_torch(net)
    out = export_onnx(net, tmp_path / "lenet_ts.onnx", model=model, exporter="torchscript")
    assert_matches(out, model, net.input_shape)


def test_load_checkpoint_accepts_both_forms(tmp_path):
    state = to_torch(archdsl.load(LENET)).state_dict()
    torch.save(state, tmp_path / "raw.pt")
    torch.save({"model": state, "optimizer": {}}, tmp_path / "trainer.pt")
    torch.save({f"module.{k}": v for k, v in state.items()}, tmp_path / "ddp.pt")
    torch.save({"model": {f"_orig_mod.{k}": v for k, v in state.items()}}, tmp_path / "compiled.pt")  # --compile
    for name in ("raw.pt", "trainer.pt", "ddp.pt", "compiled.pt"):
        loaded = load_checkpoint(tmp_path / name)
        assert loaded.keys() == state.keys()
    with pytest.raises(ArchError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "garbage.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ArchError, match="cannot be read"):
        load_checkpoint(tmp_path / "garbage.pt")
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(ArchError, match="holds a list; expected a state_dict"):
        load_checkpoint(tmp_path / "list.pt")


def test_a_checkpoint_of_another_network_is_refused(tmp_path, capsys):
    other = to_torch(archdsl.load(BRANCHY)).state_dict()
    torch.save(other, tmp_path / "other.pt")
    out = tmp_path / "lenet.onnx"
    status = main(["compile", str(LENET), "--target", "onnx", "-o", str(out), "--checkpoint", str(tmp_path / "other.pt")])
    assert status == 1
    assert "does not fit spec 'lenet5'" in capsys.readouterr().err  # not by name, nor by structure
    assert not out.exists()


def test_target_tvm_delegates_to_the_tvm_backend(tmp_path, monkeypatch):
    import archdsl.backends.tvm as tvm_backend
    calls = []
    monkeypatch.setattr(tvm_backend, "compile_spec", lambda net, out, **kw: calls.append((net.name, out, kw)))
    out = tmp_path / "lenet_tvm"
    argv = ["compile", str(LENET), "--target", "tvm", "-o", str(out), "--batch", "4", "--device", "cpu", "--db", "db"]
    assert main(argv) == 0
    assert calls == [("lenet5", out, {"checkpoint": None, "device": "cpu", "batch": 4, "db": "db"})]
