"""The zoo against the published numbers (papers, torchvision's model cards, the lecture)."""
from __future__ import annotations

import functools
from pathlib import Path

import pytest

import archdsl
from archdsl.ir import BlockKind
from archdsl.ops import BatchNorm, Conv, MaxPool

SPECS = Path(__file__).resolve().parents[1] / "specs"
ZOO = sorted(p.stem for p in SPECS.glob("*.arch"))


@functools.lru_cache(maxsize=None)
def zoo(name: str) -> archdsl.Network:
    return archdsl.load(SPECS / f"{name}.arch")


def test_the_zoo_is_all_there():
    expected = {
        "lenet5", "alexnet", "vgg11", "vgg11_lrn", "vgg13", "vgg16", "vgg16_c", "vgg19",
        "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "se_resnet50",
        "inception_naive", "inception_bottleneck", "googlenet", "unet_small", "audio_1d", "c3d",
        # torchvision's networks, pinned to tests/reference/ by test_zoo_reference.py
        "densenet121", "inception_v3", "mnasnet1_0", "regnet_x_400mf", "resnext50_32x4d", "squeezenet1_1",
        "vgg16_bn", "wide_resnet50_2", "mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large",
        "efficientnet_b0", "efficientnet_b1", "shufflenet_v2_x1_0", "convnext_tiny",
    }
    assert expected <= set(ZOO)


@pytest.mark.parametrize("name", ZOO)
def test_every_zoo_spec_checks_without_warnings(name):
    net = zoo(name)
    assert net.warnings == [], [w.format() for w in net.warnings]
    assert net.params > 0 and net.macs > 0
    assert list(net.outputs)[0] == "output"


@pytest.mark.parametrize(
    "name, params",
    [
        ("lenet5", 61_706),
        ("alexnet", 62_378_344),
        ("vgg11", 132_863_336),
        ("vgg13", 133_047_848),
        ("vgg16", 138_357_544),
        ("vgg19", 143_667_240),
        ("resnet18", 11_689_512),
        ("resnet34", 21_797_672),
        ("resnet50", 25_557_032),
        ("resnet101", 44_549_160),
        ("resnet152", 60_192_808),
        ("se_resnet50", 28_088_024),
    ],
)
def test_published_parameter_counts(name, params):
    assert zoo(name).params == params


@pytest.mark.parametrize(
    "name, macs",
    [
        ("vgg16", 15_470_264_320),
        ("resnet18", 1_814_073_344),   # torchvision: 1.814 GFLOPS (multiply-adds)
    ],
)
def test_published_mac_counts(name, macs):
    assert zoo(name).macs == macs


def test_resnet50_macs_are_4_089_giga():
    assert round(zoo("resnet50").macs / 1e9, 3) == 4.089


def test_vgg_a_lrn_has_the_parameters_of_a_and_c_is_between_b_and_d():
    assert zoo("vgg11_lrn").params == zoo("vgg11").params
    assert any(layer.op.family == "lrn" for layer in zoo("vgg11_lrn").layers)
    assert zoo("vgg13").params < zoo("vgg16_c").params < zoo("vgg16").params
    # C replaces three of D's 3x3 convolutions by 1x1 ones: 8·C_in·C_out fewer weights each.
    assert zoo("vgg16").params - zoo("vgg16_c").params == 8 * (256 * 256 + 512 * 512 + 512 * 512)
    # The paper's Table 2: 133, 133, 134, 138, 144 million.
    millions = [round(zoo(n).params / 1e6) for n in ("vgg11", "vgg11_lrn", "vgg13", "vgg16_c", "vgg16", "vgg19")]
    assert millions == [133, 133, 133, 134, 138, 144]


def test_alexnet_shapes():
    net = zoo("alexnet")
    assert net.input_shape == (3, 227, 227)
    shapes = [layer.shape for layer in net.layers if isinstance(layer.op, (Conv, MaxPool))]
    assert shapes == [
        (96, 55, 55), (96, 27, 27),
        (256, 27, 27), (256, 13, 13),
        (384, 13, 13), (384, 13, 13), (256, 13, 13), (256, 6, 6),
    ]
    assert [l.shape for l in net.layers if l.op.family == "fc"] == [(4096,), (4096,), (1000,)]


def test_lenet5_layers():
    net = zoo("lenet5")
    convs = [(l.shape, l.params) for l in net.layers if isinstance(l.op, Conv)]
    assert convs == [((6, 28, 28), 156), ((16, 10, 10), 2_416), ((120, 1, 1), 48_120)]
    assert [l.params for l in net.layers if l.op.family == "fc"] == [10_164, 850]


def test_inception_naive_convolution_macs():
    net = zoo("inception_naive")
    conv_macs = sum(l.macs for l in net.layers if isinstance(l.op, Conv))
    assert conv_macs == 854_196_224
    # 28·28 positions × (128·1·1 + 192·3·3 + 96·5·5) filters × 256 input channels
    assert conv_macs == 28 * 28 * 256 * (128 + 192 * 9 + 96 * 25)
    assert net.outputs == {"output": (672, 28, 28)}


def test_inception_bottleneck_output():
    net = zoo("inception_bottleneck")
    assert net.outputs == {"output": (480, 28, 28)}
    assert net.macs < zoo("inception_naive").macs / 2


def test_googlenet_table_1():
    net = zoo("googlenet")
    aux = {i for i, b in net.blocks.items() if b.name == "auxiliary"}
    main = [l for l in net.layers if not (l.scope and l.scope[0] in aux)]
    # The table's rows: the top-level layers and each inception module's concatenation.
    rows = [
        l for l in main
        if (not l.scope and l.op.family in {"conv", "maxpool", "avgpool", "dropout", "fc", "softmax"})
        or (len(l.scope) == 1 and l.op.family == "concat")
    ]
    spatial = [(l.shape[1], l.shape[2], l.shape[0]) if len(l.shape) == 3 else l.shape for l in rows]
    assert spatial == [
        (112, 112, 64),    # convolution 7x7/2
        (56, 56, 64),      # max pool 3x3/2
        (56, 56, 64),      # convolution 3x3 reduce
        (56, 56, 192),     # convolution 3x3/1
        (28, 28, 192),     # max pool 3x3/2
        (28, 28, 256),     # inception (3a)
        (28, 28, 480),     # inception (3b)
        (14, 14, 480),     # max pool
        (14, 14, 512),     # 4a
        (14, 14, 512),     # 4b
        (14, 14, 512),     # 4c
        (14, 14, 528),     # 4d
        (14, 14, 832),     # 4e
        (7, 7, 832),       # max pool
        (7, 7, 832),       # 5a
        (7, 7, 1024),      # 5b
        (1, 1, 1024),      # avg pool 7x7/1
        (1, 1, 1024),      # dropout (40%)
        (1000,),           # linear
        (1000,),           # softmax
    ]
    assert list(net.outputs) == ["output", "aux1", "aux2"]
    assert net.outputs == {"output": (1000,), "aux1": (1000,), "aux2": (1000,)}
    # The auxiliary classifiers sit on 4a (512 channels) and 4d (528).
    aux_pools = [l for l in net.layers if l.op.family == "avgpool" and l.scope]
    assert [l.shape for l in aux_pools] == [(512, 4, 4), (528, 4, 4)]


@pytest.mark.parametrize(
    "name, stage_shapes",
    [
        ("resnet18", [(64, 56, 56), (128, 28, 28), (256, 14, 14), (512, 7, 7)]),
        ("resnet50", [(256, 56, 56), (512, 28, 28), (1024, 14, 14), (2048, 7, 7)]),
    ],
)
def test_resnet_stages(name, stage_shapes):
    net = zoo(name)
    adds = [l.shape for l in net.layers if l.op.family == "add"]
    assert sorted(set(adds), key=adds.index) == stage_shapes
    assert net.outputs == {"output": (1000,)}
    gap = next(l for l in net.layers if l.op.family == "gap")
    assert gap.shape == (stage_shapes[-1][0], 1, 1)


def test_resnet_blocks_per_stage():
    for name, blocks in {"resnet34": 16, "resnet50": 16, "resnet101": 33, "resnet152": 50}.items():
        residuals = [b for b in zoo(name).blocks.values() if b.kind is BlockKind.RESIDUAL]
        assert len(residuals) == blocks, name


def test_se_resnet50_adds_the_excitation_parameters():
    # per block: 2·C²/16 + C/16 + C for C = 4c, over [3, 4, 6, 3] blocks of c = 64, 128, 256, 512
    extra = sum(n * (2 * (4 * c) ** 2 // 16 + 4 * c // 16 + 4 * c) for n, c in [(3, 64), (4, 128), (6, 256), (3, 512)])
    assert zoo("se_resnet50").params - zoo("resnet50").params == extra


def test_unet_small_shapes():
    net = zoo("unet_small")
    assert net.outputs == {"output": (2, 64, 64)}
    concats = [l.shape for l in net.layers if l.op.family == "concat"]
    assert concats == [(128, 32, 32), (64, 64, 64)]
    assert [l.shape for l in net.layers if l.op.family == "deconv"] == [(64, 32, 32)]
    assert [l.shape for l in net.layers if l.op.family == "upsample"] == [(64, 64, 64)]
    # `after=false` keeps the bn/relu off the upsampling path's conv1-32 and the head
    head = net.layer(net.output_nodes["output"])
    assert head.op.family == "conv" and head.op.bias is True


def test_audio_1d_shapes():
    net = zoo("audio_1d")
    assert net.input_shape == (1, 16000)
    assert [l.shape for l in net.layers if l.op.family == "maxpool"] == [(128, 1000), (128, 250), (256, 125), (512, 25)]
    assert net.layers[1].shape == (128, 4000)
    assert net.outputs == {"output": (35,)}


def test_c3d_shapes():
    net = zoo("c3d")
    pools = [l.shape for l in net.layers if l.op.family == "maxpool"]
    assert pools == [(64, 16, 56, 56), (128, 8, 28, 28), (256, 4, 14, 14), (512, 2, 7, 7), (512, 1, 4, 4)]
    assert net.outputs == {"output": (487,)}
    first = next(l for l in net.layers if isinstance(l.op, Conv))
    assert first.op.kernel == (3, 3, 3) and first.params == 27 * 3 * 64 + 64


def test_vgg16_receptive_field_and_jump():
    """Computed independently from configuration D: RF 212 and jump 32 at pool5."""
    config = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
    field, jump, expected = 1, 1, []
    for item in config:
        kernel, stride = (2, 2) if item == "M" else (3, 1)
        field += (kernel - 1) * jump
        jump *= stride
        expected.append((field, jump))
    assert expected[-1] == (212, 32)
    net = zoo("vgg16")
    got = [(l.receptive_field, l.jump) for l in net.layers if isinstance(l.op, (Conv, MaxPool))]
    assert got == [((f, f), (float(j), float(j))) for f, j in expected]


def test_resnet_bn_and_bias():
    net = zoo("resnet18")
    convs = [l for l in net.layers if isinstance(l.op, Conv)]
    assert all(l.op.bias is False for l in convs)  # every conv is followed by bn
    assert sum(isinstance(l.op, BatchNorm) for l in net.layers) == len(convs)
    projections = [l for l in convs if l.inserted]
    assert [(l.shape, l.params) for l in projections] == [
        ((128, 28, 28), 64 * 128), ((256, 14, 14), 128 * 256), ((512, 7, 7), 256 * 512)
    ]
