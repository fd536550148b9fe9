"""`archdsl compile --target torch`: the standalone file imports only torch, reads like the
paper (straight-line forward, a shape comment on every line), and computes exactly what
`to_torch()` computes once it has the same state_dict — for every spec in specs/.
"""
from __future__ import annotations

import ast
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

import torch

import archdsl  # noqa: E402
from archdsl.backends.torch import generate_source, to_torch  # noqa: E402
from archdsl.backends.torch.plan import class_name  # noqa: E402
from archdsl.cli import main  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
ZOO = sorted((ROOT / "specs").glob("*.arch"))
# Networks small enough to run for real on two CPU cores in a blink; the rest are compared
# on the meta device (the file and to_torch() execute the same source, so what can differ
# is the file's standalone imports, names and shapes, which meta tensors show).
MAX_MACS = 500_000_000
MAX_PARAMS = 10_000_000
# ResNet-18 written out here (not specs/resnet18.arch) so the expected lines below stay put.
RESNET18 = """
network resnet18
input 3x224x224
block basic(c, s=1) = [residual< conv3-c/s bn relu conv3-c bn > relu]
conv7-64/2 bn relu
maxpool3/2(pad=1)
basic(64) * 2
basic(128, 2) basic(128)
basic(256, 2) basic(256)
basic(512, 2) basic(512)
gap
FC-1000
"""


def import_file(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def compile_to(tmp_path: Path, spec: Path | str, name: str = "model") -> Path:
    out = tmp_path / f"{name}.py"
    assert main(["compile", str(spec), "--target", "torch", "-o", str(out)]) == 0
    return out


def outputs(y) -> dict:
    return y if isinstance(y, dict) else {"output": y}


@pytest.mark.parametrize("path", ZOO, ids=[p.stem for p in ZOO])
def test_round_trip_through_the_file(tmp_path, path):
    net = archdsl.load(path)
    generated = import_file(compile_to(tmp_path, path, path.stem), f"generated_{path.stem}")
    cls = getattr(generated, class_name(net.name))
    small = net.macs <= MAX_MACS and net.params <= MAX_PARAMS
    if not small:  # the big ones: same parameters and output shapes, on the meta device
        with torch.device("meta"):
            reference, standalone = to_torch(net), cls()
            x = torch.empty(1, *net.input_shape)
            got, expected = outputs(standalone(x)), outputs(reference(x))
        assert {k: v.shape for k, v in standalone.state_dict().items()} == {
            k: v.shape for k, v in reference.state_dict().items()
        }
        assert {k: v.shape for k, v in got.items()} == {k: v.shape for k, v in expected.items()}
        return
    torch.manual_seed(0)
    reference = to_torch(net).eval()
    standalone = cls()
    standalone.load_state_dict(reference.state_dict())
    standalone.eval()
    x = torch.randn(1, *net.input_shape)
    with torch.no_grad():
        got, expected = outputs(standalone(x)), outputs(reference(x))
    assert list(got) == list(expected)
    for key in expected:
        torch.testing.assert_close(got[key], expected[key])


def test_same_seed_same_weights_as_to_torch(tmp_path):
    net = archdsl.load(ROOT / "specs" / "lenet5.arch")
    generated = import_file(compile_to(tmp_path, ROOT / "specs" / "lenet5.arch"), "generated_seed")
    torch.manual_seed(7)
    a = getattr(generated, class_name(net.name))().state_dict()
    torch.manual_seed(7)
    b = to_torch(net).state_dict()
    for key in b:
        torch.testing.assert_close(a[key], b[key])


@pytest.fixture(scope="module")
def resnet_source() -> str:
    return generate_source(archdsl.load(RESNET18))


def test_the_file_imports_only_torch(resnet_source):
    tree = ast.parse(resnet_source)
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module.split(".")[0])
    assert imported == {"torch"}


def test_forward_is_straight_line_with_shape_comments(resnet_source):
    tree = ast.parse(resnet_source)
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    assert set(classes) == {"Resnet18", "Basic", "BasicProjection"}  # the network, a plain block, one with a projection
    lines = resnet_source.splitlines()
    for cls in classes.values():
        forward = next(n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "forward")
        assert all(isinstance(stmt, (ast.Assign, ast.Return)) for stmt in forward.body)
        body = lines[forward.lineno : forward.end_lineno]
        statements = [line for line in body if line.strip() and not line.strip().startswith(("#", "return"))]
        assert all(re.search(r"  # \S+$", line) for line in statements), statements
    # torchvision's reading: a body `out`, a shortcut, the main chain `x`; shapes in the block's parameters
    assert "        x = self.conv1(x)  # 64x112x112" in lines
    assert "        x = self.layer2(x)  # 128x28x28" in lines
    assert "        out = self.conv1(x)  # c×H×W" in lines
    assert "        x = out + x  # c×H×W" in lines
    assert "        shortcut = self.shortcut(x)  # c×H/2×W/2" in lines
    assert "    def forward(self, x):  # N×in_channels×H×W" in lines


def test_blocks_become_classes_and_stages_sequentials(resnet_source):
    """torchvision's layout: `layer2` is an nn.Sequential of block instances, whose parameters are
    the block's own (`c`) and its input's channels; state_dict keys read `layer2.0.conv1.weight`."""
    assert "self.layer2 = nn.Sequential(BasicProjection(64, c=128), Basic(128, c=128))" in resnet_source
    assert "    def __init__(self, in_channels, c):" in resnet_source
    assert "        self.conv1 = nn.Conv2d(in_channels, c, kernel_size=3, stride=2, padding=1, bias=False)  # conv3-c/s" in resnet_source
    assert "        self.shortcut.conv = nn.Conv2d(in_channels, c, kernel_size=1, stride=2, bias=False)" in resnet_source
    net = archdsl.load(RESNET18)
    model = to_torch(net)
    keys = list(model.state_dict())
    assert keys[:2] == ["conv1.weight", "bn1.weight"]
    assert "layer2.0.conv1.weight" in keys and "layer2.0.shortcut.conv.weight" in keys and "layer4.1.bn2.running_var" in keys
    assert isinstance(model.layer3, torch.nn.Sequential) and len(model.layer3) == 2
    assert net.module_path("basic3.conv1") == "layer2.0.conv1"
    assert model.get_submodule(net.module_path("basic3.shortcut.conv")) is model.layer2[0].shortcut.conv
    with torch.no_grad():  # a stage can be run on its own, as torchvision's can
        assert model.layer2(torch.randn(1, 64, 56, 56)).shape == (1, 128, 28, 28)


def test_init_lists_the_spec_layers(resnet_source):
    assert "self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)  # conv7-64/2" in resnet_source
    assert "self.maxpool1 = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)" in resnet_source
    assert "self.relu1 = nn.ReLU(inplace=True)" in resnet_source


def test_branches_and_kept_tensors_get_their_names(tmp_path):
    net = archdsl.load(ROOT / "specs" / "unet_small.arch")
    source = generate_source(net)
    assert re.search(r"^        enc1 = self\.enc1\(x\)", source, re.M)  # kept for the skip connection
    assert re.search(r"torch\.cat\(\[x, enc2\], 1\)", source)
    googlenet = generate_source(archdsl.load(ROOT / "specs" / "googlenet.arch"))
    assert "x = torch.cat([b1, b2, b3, b4], 1)" in googlenet
    assert "return {'output': x, 'aux1': aux1, 'aux2': aux2}" in googlenet
    se = generate_source(archdsl.load(ROOT / "specs" / "se_resnet50.arch"))
    assert "out = out * s[:, :, None, None]" in se


@pytest.mark.parametrize(
    "network, expected", [("resnet18", "Resnet18"), ("vgg_16", "Vgg16"), ("ResNet-50", "ResNet50"), ("3d", "Net3d")]
)
def test_class_names(network, expected):
    assert class_name(network) == expected


@pytest.mark.slow
def test_the_file_runs_as_a_script(tmp_path):
    out = compile_to(tmp_path, ROOT / "specs" / "lenet5.arch")
    result = subprocess.run([sys.executable, str(out)], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "tensor(" in result.stdout


def test_compile_reports_spec_errors(tmp_path, capsys):
    bad = tmp_path / "bad.arch"
    bad.write_text("network bad\ninput 3x8x8\ncnov3-4\n")
    assert main(["compile", str(bad), "-o", str(tmp_path / "bad.py")]) == 1
    assert "unknown layer 'cnov3'" in capsys.readouterr().err
    assert not (tmp_path / "bad.py").exists()


def test_freeze_takes_module_paths_and_layer_names():
    """`--freeze layer2` freezes up to the last layer of that stage; layer names and block instances work as before."""
    from archdsl.errors import ArchError
    from archdsl.train.model import freeze_up_to

    net = archdsl.load(RESNET18)
    for name, last in (("layer2", "basic4.relu2"), ("layer2.0.conv1", "basic3.conv1"), ("basic3", "basic3.relu2"),
                       ("basic3.conv1", "basic3.conv1")):
        model = to_torch(net)
        frozen = freeze_up_to(model, net, name)
        assert frozen[-1] == last, name
        trainable = {k for k, p in model.named_parameters() if p.requires_grad}
        assert ("layer2.1.conv1.weight" in trainable) == (last != "basic4.relu2")
        assert "layer3.0.conv1.weight" in trainable and "conv1.weight" not in trainable
    with pytest.raises(ArchError, match="no layer or module 'layer9'"):
        freeze_up_to(to_torch(net), net, "layer9")
