"""Pretrained weights by structure: a state_dict written by other code (torchvision's, timm's, a plain
{name: tensor}) loads into a zoo spec although none of its names match, and computes what that code
computes. The oracles are the torchvision-faithful models in tests/reference/, randomly initialised and
with random batch-norm statistics (so that a norm loaded into the wrong place shows).
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import torch
from torch import nn

import archdsl
import reference
from archdsl.backends.torch.foreign import adopt, is_foreign
from archdsl.by_structure import map_by_structure, state_keys
from archdsl.cli import main
from archdsl.errors import ArchError

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"


def randomised(model: nn.Module) -> nn.Module:
    """Batch norms that are not the identity, so that every tensor matters to the output."""
    torch.manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    return model.eval()


def reference_model(name: str) -> nn.Module:
    torch.manual_seed(0)
    return randomised(reference.build(name))


def layout(state: dict) -> list[tuple[str, tuple[int, ...]]]:
    return [(k, tuple(v.shape)) for k, v in state.items()]


def loaded(spec: Path | str, state: dict) -> nn.Module:
    net = archdsl.load(spec)
    with torch.device("meta"):
        model = net.to_torch(init="torch")
    renamed, mapping = adopt(net, state)
    assert not mapping.rows, mapping.table()
    model.load_state_dict(renamed, assign=True)  # strict: every tensor of the spec came from the file
    return model.eval()


# The zoo's specs that are torchvision's networks. Two zoo specs are other networks of the same name:
# the zoo's AlexNet is the paper's (96 filters first), torchvision's the "one weird trick" variant, and
# the zoo's GoogLeNet is the 2014 network without batch norm; their files are refused (a table).
OTHER_NETWORKS = {"alexnet", "googlenet"}
SAME = [n for n in reference.NAMES if (SPECS / f"{n}.arch").exists() and n not in OTHER_NETWORKS]
SIZES = {"inception_v3": 96, "vgg16_bn": 224}  # the input each network takes (VGG: its fc reads 7x7); else 64


def test_the_zoo_has_torchvisions_networks():
    assert {"resnet18", "resnet50", "densenet121"} <= set(SAME)


@pytest.mark.parametrize("name", SAME)
def test_torchvision_state_dict_loads_into_the_zoo_spec(name, tmp_path):
    ref = reference_model(name)
    path = tmp_path / f"{name}.pth"
    torch.save(ref.state_dict(), path)
    state = torch.load(path, weights_only=True)
    net = archdsl.load(SPECS / f"{name}.arch")
    assert is_foreign(state_keys(net), state)  # torchvision's names are not all archdsl's
    model = loaded(SPECS / f"{name}.arch", state)
    size = SIZES.get(name, 64)
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        got = model(x)
        got = got["output"] if isinstance(got, dict) else got
        torch.testing.assert_close(got, ref(x), rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", sorted(OTHER_NETWORKS))
def test_another_network_of_the_same_name_is_refused(name):
    net = archdsl.load(SPECS / f"{name}.arch")
    with pytest.raises(ArchError, match=f"does not fit spec '{name}' by structure"):
        adopt(net, reference_model(name).state_dict())


class ShortcutFirst(nn.Module):
    """A basic block whose code registers its shortcut before its main path, under flat names: the
    shortcut's bn and the main path's bns have one shape, so only the structure tells them apart."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.proj = stride != 1 or cin != cout
        if self.proj:
            self.sc_conv = nn.Conv2d(cin, cout, 1, stride, bias=False)
            self.sc_bn = nn.BatchNorm2d(cout)
        self.conv_a = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn_a = nn.BatchNorm2d(cout)
        self.conv_b = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn_b = nn.BatchNorm2d(cout)

    def forward(self, x):
        out = torch.relu(self.bn_a(self.conv_a(x)))
        out = self.bn_b(self.conv_b(out))
        return torch.relu(out + (self.sc_bn(self.sc_conv(x)) if self.proj else x))


class ShortcutFirstNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        self.blocks = nn.Sequential(ShortcutFirst(16, 16, 1), ShortcutFirst(16, 32, 2), ShortcutFirst(32, 32, 1))
        self.head = nn.Linear(32, 10)

    def forward(self, x):
        x = self.blocks(self.stem(x))
        return self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


SHORTCUT_SPEC = """
network small_resnet
input 3x32x32
after conv = bn
block basic(c, s=1) = [residual< conv3-c/s relu conv3-c > relu]
conv3-16 relu
basic(16) basic(32, s=2) basic(32)
gap fc-10
"""


def test_a_shortcut_registered_before_the_main_path_still_maps():
    ref = randomised(ShortcutFirstNet())
    keys = list(ref.state_dict())
    assert keys.index("blocks.1.sc_bn.weight") < keys.index("blocks.1.bn_a.weight")  # the order this is about
    model = loaded(SHORTCUT_SPEC, ref.state_dict())
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(x), ref(x), rtol=0, atol=1e-5)


def test_what_does_not_fit_is_a_table_naming_both_sides():
    """ResNet-18's weights into ResNet-34: the first stage fits, the second block of each stage does not
    exist in the file at the depths the spec needs."""
    net = archdsl.load(SPECS / "resnet34.arch")
    state = reference_model("resnet18").state_dict()
    with pytest.raises(ArchError) as err:
        adopt(net, state)
    message = err.value.message
    assert "does not fit spec 'resnet34' by structure" in message
    assert re.search(r"^their name +their shape +spec layer +what differs$", message, re.M)
    assert "--strict false" in message
    # a row that names the file's module, its shape, the spec's layer and what differs
    mapping = map_by_structure(net, layout(state))
    assert mapping.rows and all(r.why for r in mapping.rows)
    assert any(r.their and r.layer for r in mapping.rows) or any(r.layer and not r.their for r in mapping.rows)


def test_a_new_head_is_expected_not_to_fit():
    """ImageNet's 1000-way fc against a 10-way spec: the one row, for the head; `fresh` accepts it."""
    ref = reference_model("resnet18")
    text = (SPECS / "resnet18.arch").read_text().replace("fc-1000", "fc-10")
    spec = SPECS / "resnet18_10.arch"
    net = archdsl.load(text.replace('use "lib/', f'use "{SPECS}/lib/'))
    del spec
    mapping = map_by_structure(net, layout(ref.state_dict()))
    (row,) = mapping.rows
    assert (row.their, row.layer) == ("fc", "fc1")
    assert row.their_shape == "1000x512, bias" and "weight 1000x512 in the file, 10x512 in the spec" in row.why
    renamed, _ = adopt(net, ref.state_dict(), fresh=["fc1"])
    assert "fc1.weight" not in renamed and "layer4.1.conv2.weight" in renamed
    with pytest.raises(ArchError):
        adopt(net, ref.state_dict())


def test_compile_with_a_foreign_checkpoint_reports_the_table_and_exits_1(tmp_path, capsys):
    state = reference_model("resnet18").state_dict()
    path = tmp_path / "resnet18.pth"
    torch.save(state, path)
    assert main(["compile", str(SPECS / "resnet18.arch"), "--checkpoint", str(path), "-o", str(tmp_path / "a.py")]) == 0
    assert "fits by structure" in capsys.readouterr().err
    code = main(["compile", str(SPECS / "resnet34.arch"), "--checkpoint", str(path), "-o", str(tmp_path / "b.py")])
    err = capsys.readouterr().err
    assert code == 1 and "their name" in err and "Traceback" not in err
    assert main(["compile", str(SPECS / "resnet34.arch"), "--checkpoint", str(path), "--strict", "false",
                 "-o", str(tmp_path / "c.py")]) == 0


@pytest.mark.slow
def test_fine_tune_from_a_torchvision_state_dict(tmp_path, capsys):
    """`archdsl train --init-from resnet18.pth --freeze layer3 --num-classes 10` on the digits: the file
    maps by structure, the 1000-way head is replaced by a fresh 10-way one, everything up to the stage
    `layer3` keeps the file's weights exactly, and the rest trains."""
    ref = reference_model("resnet18")
    weights = tmp_path / "resnet18.pth"
    torch.save(ref.state_dict(), weights)
    spec = tmp_path / "resnet18_16.arch"  # the zoo spec on 16x16 digits, to keep the test short
    spec.write_text((SPECS / "resnet18.arch").read_text().replace("input 3x224x224", "input 3x16x16"))
    shutil.copytree(SPECS / "lib", tmp_path / "lib")  # what it uses, beside it
    out = tmp_path / "run"
    code = main(["train", str(spec), "--init-from", str(weights), "--freeze", "layer3", "--num-classes", "10",
                 "--epochs", "1", "--batch-size", "64", "--out", str(out), "--no-progress"])
    log = capsys.readouterr().out
    assert code == 0, log
    assert "mapped by structure onto 40 layers; fresh: fc1" in log  # 20 convs, 20 batch norms; a new fc
    assert re.search(r"frozen: \d+ layers, up to and including basic6\.relu2", log)
    trained = torch.load(out / "last.pt", weights_only=True)["model"]
    source = ref.state_dict()
    for key in ("layer1.0.conv1.weight", "layer3.1.bn2.running_var", "layer2.0.downsample.0.weight"):
        ours = key.replace("downsample.0", "shortcut.conv")
        assert torch.equal(trained[ours], source[key]), key  # frozen: the file's weights, untouched
    assert not torch.equal(trained["layer4.1.conv2.weight"], source["layer4.1.conv2.weight"])  # trained
    assert trained["fc1.weight"].shape == (10, 512)
