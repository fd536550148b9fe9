"""The torchvision-style reference models in tests/reference/ against torchvision's published figures.

These models are the oracle for archdsl's zoo (their weight shapes, parameter counts and MACs) and
for loading foreign state_dicts, so they are pinned here to what torchvision publishes for its own
models: the parameter counts (`num_params`) and GFLOPS (`_ops`) of its model cards, the state_dict
keys its code gives, its BatchNorm settings, and the structure the papers describe. Most checks build the models on the
meta device (shapes only, no memory, no initialisation) to stay fast.
"""
from __future__ import annotations

import functools
from collections import Counter

import pytest
import torch
from torch import nn

import reference
from reference import (
    INPUT_SIZES, NAMES, PUBLISHED_GFLOPS, PUBLISHED_PARAMS, build, input_shape, macs, param_count,
    weight_layout, weight_shapes,
)
from reference.misc import SqueezeExcitation, StochasticDepth, _make_divisible

# Built for real (with torchvision's initialisation) and run on real numbers: one network per
# code path. The others share their code with one of these (ResNeXt, Wide ResNet and ResNet-50;
# EfficientNet-B1…B7 and B0) or are a plain stack (VGG) and are only checked on the meta device.
REAL_FORWARD = [
    "alexnet", "convnext_tiny", "densenet121", "efficientnet_b0", "googlenet", "inception_v3", "mnasnet1_0",
    "mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small", "regnet_x_400mf", "resnet18", "resnet50",
    "shufflenet_v2_x1_0", "squeezenet1_1",
]


@functools.lru_cache(maxsize=None)
def meta(name: str) -> nn.Module:
    return build(name, device="meta").eval()


@functools.lru_cache(maxsize=None)
def real(name: str) -> nn.Module:
    torch.manual_seed(0)
    return build(name).eval()


@pytest.fixture(autouse=True, scope="module")
def one_thread_and_no_leftovers():
    """The real passes are small (64×64 images, batch 2): a second intra-op thread gains nothing,
    and on a loaded machine its spin-waiting makes them 10-20 times slower. The real models (about
    a gigabyte together) are let go when this file is done."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
    real.cache_clear()


def submodules(model: nn.Module, kind: type) -> list:
    return [m for m in model.modules() if isinstance(m, kind)]


# --- the published figures ---------------------------------------------------------------------

def test_every_reference_has_published_figures():
    assert set(PUBLISHED_PARAMS) == set(NAMES) == set(PUBLISHED_GFLOPS) == set(INPUT_SIZES)
    assert len(NAMES) == 25


@pytest.mark.parametrize("name", NAMES)
def test_parameter_count_is_torchvisions(name):
    assert param_count(meta(name)) == PUBLISHED_PARAMS[name]


def test_inception_v3_with_its_auxiliary_head_has_torchvisions_published_count():
    # torchvision's model card (27,161,264) counts AuxLogits; the zoo's inception_v3 has none.
    with_aux = build("inception_v3", device="meta", aux_logits=True)
    assert param_count(with_aux) == reference.INCEPTION_V3_WITH_AUX_PARAMS == 27_161_264
    aux = with_aux.AuxLogits
    assert param_count(aux) == 27_161_264 - 23_834_568 == 3_326_696
    # Our arithmetic: 1x1 conv 768->128 + BN, 5x5 conv 128->768 + BN, fc 768->1000.
    assert param_count(aux) == (768 * 128 + 2 * 128) + (128 * 768 * 25 + 2 * 768) + (768 * 1000 + 1000)


def test_googlenet_with_its_auxiliary_classifiers():
    # torchvision's published 6,624,904 is GoogLeNet without aux1/aux2 (its builder drops them).
    # Our arithmetic for each head: 1x1 conv C->128 + BN, fc 2048->1024, fc 1024->1000.
    with_aux = build("googlenet", device="meta", aux_logits=True)
    head = lambda c: (c * 128 + 2 * 128) + (2048 * 1024 + 1024) + (1024 * 1000 + 1000)
    assert param_count(with_aux) == 6_624_904 + head(512) + head(528)


# Multiply-accumulates measured by reference.macs (forward hooks on convolutions and linear layers,
# one image at INPUT_SIZES) -- our own measurement, recorded exactly; torchvision publishes them
# rounded as GFLOPS (PUBLISHED_GFLOPS, its `_ops`, which count the same conv + linear multiply-adds),
# and test_macs_round_to_torchvisions_gflops ties the two together.
MACS = {
    "alexnet": 714_188_480,
    "convnext_tiny": 4_455_531_264,
    "densenet121": 2_834_161_664,
    "efficientnet_b0": 385_814_752,
    "efficientnet_b1": 686_802_832,
    "efficientnet_b2": 1_087_529_456,
    "efficientnet_b3": 1_827_141_392,
    "efficientnet_b4": 4_393_771_024,
    "efficientnet_b5": 10_266_384_752,
    "efficientnet_b6": 19_067_593_536,
    "efficientnet_b7": 37_745_884_192,
    "googlenet": 1_498_376_192,
    "inception_v3": 5_713_216_096,
    "mnasnet1_0": 314_415_872,
    "mobilenet_v2": 300_774_272,
    "mobilenet_v3_large": 216_589_760,
    "mobilenet_v3_small": 56_510_400,
    "regnet_x_400mf": 413_812_608,
    "resnet18": 1_814_073_344,
    "resnet50": 4_089_184_256,
    "resnext50_32x4d": 4_230_479_872,
    "shufflenet_v2_x1_0": 144_907_992,
    "squeezenet1_1": 349_151_936,
    "vgg16_bn": 15_470_264_320,
    "wide_resnet50_2": 11_398_021_120,
}


@pytest.mark.parametrize("name", NAMES)
def test_macs_round_to_torchvisions_gflops(name):
    measured = macs(meta(name), input_shape(name))
    assert measured == MACS[name]
    published = PUBLISHED_GFLOPS[name]
    decimals = len(published.split(".")[1])
    assert f"{measured / 1e9:.{decimals}f}" == published


def test_input_sizes_are_torchvisions_eval_crops():
    assert {n for n, s in INPUT_SIZES.items() if s != 224} == {"inception_v3"} | {
        f"efficientnet_b{i}" for i in range(1, 8)}
    assert INPUT_SIZES["inception_v3"] == 299
    # EfficientNet's crops as torchvision's transforms give them (B2: 288, not the paper's 260).
    assert [INPUT_SIZES[f"efficientnet_b{i}"] for i in range(8)] == [224, 240, 288, 300, 380, 456, 528, 600]


# --- outputs -----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_output_is_one_logit_per_class_at_the_published_input_size(name):
    with torch.no_grad():
        out = meta(name)(torch.zeros(2, *input_shape(name), device="meta"))
    assert out.shape == (2, 1000)


@pytest.mark.parametrize("name", REAL_FORWARD)
def test_a_real_forward_pass_gives_finite_logits(name):
    side = 75 if name == "inception_v3" else 64  # the smallest inputs torchvision allows are smaller
    with torch.no_grad():
        out = real(name)(torch.randn(2, 3, side, side))
    assert out.shape == (2, 1000)
    assert torch.isfinite(out).all()


def test_builders_take_torchvisions_keyword_arguments():
    assert build("resnet18", device="meta", num_classes=10).fc.out_features == 10
    assert build("efficientnet_b0", device="meta", dropout=0.5).classifier[0].p == 0.5
    assert meta("efficientnet_b2").classifier[0].p == 0.3  # torchvision's default for B2


def test_building_is_deterministic_under_manual_seed():
    def state(seed):
        torch.manual_seed(seed)
        return build("mobilenet_v3_small").state_dict()

    first, again, other = state(0), state(0), state(1)
    assert first.keys() == again.keys()
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not torch.equal(first["features.0.0.weight"], other["features.0.0.weight"])


def test_unknown_name_suggests_the_close_ones():
    with pytest.raises(KeyError, match="mobilenet_v2"):
        build("mobilenetv2")


def test_training_mode_returns_inception_v3s_auxiliary_logits():
    model = build("inception_v3", device="meta", aux_logits=True).train()
    logits, aux = model(torch.zeros(2, 3, 299, 299, device="meta"))
    assert logits.shape == aux.shape == (2, 1000)


# --- the helpers: what exactly is counted ------------------------------------------------------

def test_weight_layout_lists_parameters_and_running_statistics_but_not_the_batch_counter():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, bias=False), nn.BatchNorm2d(8), nn.Linear(8, 4))
    assert weight_layout(model) == [
        ("0.weight", (8, 3, 3, 3)),
        ("1.weight", (8,)), ("1.bias", (8,)), ("1.running_mean", (8,)), ("1.running_var", (8,)),
        ("2.weight", (4, 8)), ("2.bias", (4,)),
    ]
    assert "1.num_batches_tracked" in model.state_dict()
    assert weight_shapes(model) == Counter({(8,): 4, (8, 3, 3, 3): 1, (4, 8): 1, (4,): 1})
    assert param_count(model) == 8 * 27 + 2 * 8 + 4 * 8 + 4  # running statistics are not parameters


def test_weight_layout_refuses_a_buffer_it_cannot_name():
    model = nn.Linear(2, 2)
    model.register_buffer("mask", torch.ones(2))
    with pytest.raises(ValueError, match="mask"):
        weight_layout(model)


def test_macs_count_convolutions_and_linear_layers_per_output_element():
    class PerPixelLinear(nn.Module):  # as ConvNeXt applies its Linear layers channels-last
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3, padding=1)
            self.depthwise = nn.Conv2d(8, 8, 5, padding=2, groups=8)
            self.norm = nn.BatchNorm2d(8)
            self.fc = nn.Linear(8, 16)

        def forward(self, x):
            x = self.norm(self.depthwise(self.conv(x)))
            return self.fc(x.permute(0, 2, 3, 1))

    model = PerPixelLinear()
    assert macs(model, (3, 10, 10)) == 100 * (8 * 9 * 3 + 8 * 25 * 1 + 16 * 8)
    assert model.training  # macs() measures in eval mode and puts the mode back
    with pytest.raises(ValueError, match="C×H×W"):
        macs(model, (1, 3, 10, 10))


def test_stochastic_depth_drops_whole_samples_while_training_and_nothing_at_inference():
    layer = StochasticDepth(0.5, "row")
    x = torch.ones(64, 3, 2, 2)
    assert torch.equal(layer.eval()(x), x)
    torch.manual_seed(0)
    y = layer.train()(x)
    per_sample = y.flatten(1)
    assert set(per_sample.unique().tolist()) == {0.0, 2.0}  # dropped, or kept and rescaled by 1/(1-p)
    assert (per_sample == per_sample[:, :1]).all()  # the same decision for a whole sample


def test_make_divisible_rounds_to_the_nearest_multiple_but_never_10_percent_down():
    # 18 would round to 16, more than 10% below it, so it goes up to 24.
    assert [_make_divisible(v, 8) for v in (32 * 1.1, 16 * 1.1, 3, 40 * 1.4, 18, 12)] == [32, 16, 8, 56, 24, 16]


# --- torchvision's state_dict keys -------------------------------------------------------------

# A few state_dict keys of each torchvision model with their shapes, as torchvision's code names
# them (written down by hand, not generated from tests/reference): the loader of foreign weights
# meets these names in torchvision checkpoints.
LANDMARKS = {
    "alexnet": {"features.0.weight": (64, 3, 11, 11), "features.10.weight": (256, 256, 3, 3),
                "classifier.1.weight": (4096, 9216), "classifier.6.weight": (1000, 4096)},
    "convnext_tiny": {"features.0.0.weight": (96, 3, 4, 4), "features.0.0.bias": (96,),
                      "features.0.1.weight": (96,), "features.1.0.layer_scale": (96, 1, 1),
                      "features.1.0.block.0.weight": (96, 1, 7, 7), "features.1.0.block.2.weight": (96,),
                      "features.1.0.block.3.weight": (384, 96), "features.1.0.block.5.weight": (96, 384),
                      "features.2.0.weight": (96,), "features.2.1.weight": (192, 96, 2, 2),
                      "features.7.2.layer_scale": (768, 1, 1), "classifier.0.weight": (768,),
                      "classifier.2.weight": (1000, 768)},
    "densenet121": {"features.conv0.weight": (64, 3, 7, 7), "features.norm0.running_var": (64,),
                    "features.denseblock1.denselayer1.norm1.weight": (64,),
                    "features.denseblock1.denselayer1.conv1.weight": (128, 64, 1, 1),
                    "features.denseblock1.denselayer1.conv2.weight": (32, 128, 3, 3),
                    "features.transition1.conv.weight": (128, 256, 1, 1),
                    "features.denseblock4.denselayer16.conv1.weight": (128, 992, 1, 1),
                    "features.norm5.weight": (1024,), "classifier.weight": (1000, 1024)},
    "efficientnet_b0": {"features.0.0.weight": (32, 3, 3, 3), "features.1.0.block.0.0.weight": (32, 1, 3, 3),
                        "features.1.0.block.1.fc1.weight": (8, 32, 1, 1), "features.1.0.block.1.fc1.bias": (8,),
                        "features.1.0.block.2.0.weight": (16, 32, 1, 1),
                        "features.2.0.block.0.0.weight": (96, 16, 1, 1),
                        "features.2.0.block.2.fc1.weight": (4, 96, 1, 1),
                        "features.3.0.block.1.0.weight": (144, 1, 5, 5),
                        "features.8.0.weight": (1280, 320, 1, 1), "classifier.1.weight": (1000, 1280)},
    "efficientnet_b1": {"features.1.1.block.0.0.weight": (16, 1, 3, 3),
                        "features.1.1.block.1.fc1.weight": (4, 16, 1, 1),
                        "features.7.1.block.3.0.weight": (320, 1920, 1, 1)},
    "efficientnet_b2": {"features.8.0.weight": (1408, 352, 1, 1), "classifier.1.weight": (1000, 1408)},
    "googlenet": {"conv1.conv.weight": (64, 3, 7, 7), "conv1.bn.running_mean": (64,),
                  "inception3a.branch2.1.conv.weight": (128, 96, 3, 3),
                  "inception3a.branch3.1.conv.weight": (32, 16, 3, 3),  # the 3x3 "5x5" branch
                  "inception3a.branch4.1.conv.weight": (32, 192, 1, 1), "fc.weight": (1000, 1024)},
    "inception_v3": {"Conv2d_1a_3x3.conv.weight": (32, 3, 3, 3), "Conv2d_1a_3x3.bn.running_var": (32,),
                     "Mixed_5b.branch_pool.conv.weight": (32, 192, 1, 1),
                     "Mixed_6b.branch7x7_2.conv.weight": (128, 128, 1, 7),
                     "Mixed_7c.branch3x3dbl_3b.conv.weight": (384, 384, 3, 1), "fc.weight": (1000, 2048)},
    "mnasnet1_0": {"layers.0.weight": (32, 3, 3, 3), "layers.3.weight": (32, 1, 3, 3),
                   "layers.6.weight": (16, 32, 1, 1), "layers.8.0.layers.0.weight": (48, 16, 1, 1),
                   "layers.8.0.layers.3.weight": (48, 1, 3, 3), "layers.14.weight": (1280, 320, 1, 1),
                   "classifier.1.weight": (1000, 1280)},
    "mobilenet_v2": {"features.0.0.weight": (32, 3, 3, 3), "features.1.conv.0.0.weight": (32, 1, 3, 3),
                     "features.1.conv.1.weight": (16, 32, 1, 1), "features.1.conv.2.weight": (16,),
                     "features.2.conv.0.0.weight": (96, 16, 1, 1), "features.2.conv.3.running_mean": (24,),
                     "features.18.0.weight": (1280, 320, 1, 1), "classifier.1.weight": (1000, 1280)},
    "mobilenet_v3_large": {"features.0.0.weight": (16, 3, 3, 3), "features.1.block.0.0.weight": (16, 1, 3, 3),
                           "features.4.block.2.fc1.weight": (24, 72, 1, 1),
                           "features.16.0.weight": (960, 160, 1, 1), "classifier.0.weight": (1280, 960),
                           "classifier.3.weight": (1000, 1280)},
    "mobilenet_v3_small": {"features.1.block.1.fc1.weight": (8, 16, 1, 1),
                           "features.12.0.weight": (576, 96, 1, 1), "classifier.0.weight": (1024, 576)},
    "regnet_x_400mf": {"stem.0.weight": (32, 3, 3, 3),
                       "trunk_output.block1.block1-0.proj.0.weight": (32, 32, 1, 1),
                       "trunk_output.block1.block1-0.f.a.0.weight": (32, 32, 1, 1),
                       "trunk_output.block1.block1-0.f.b.0.weight": (32, 16, 3, 3),
                       "trunk_output.block4.block4-11.f.c.1.running_mean": (400,), "fc.weight": (1000, 400)},
    "resnet18": {"conv1.weight": (64, 3, 7, 7), "layer1.1.conv2.weight": (64, 64, 3, 3),
                 "layer2.0.downsample.1.weight": (128,), "fc.weight": (1000, 512)},
    "resnet50": {"layer1.0.downsample.0.weight": (256, 64, 1, 1), "layer4.2.bn3.running_var": (2048,),
                 "fc.weight": (1000, 2048)},
    "resnext50_32x4d": {"layer1.0.conv2.weight": (128, 4, 3, 3), "layer4.0.conv2.weight": (1024, 32, 3, 3)},
    "shufflenet_v2_x1_0": {"conv1.0.weight": (24, 3, 3, 3), "stage2.0.branch1.0.weight": (24, 1, 3, 3),
                           "stage2.0.branch1.2.weight": (58, 24, 1, 1), "stage2.0.branch2.0.weight": (58, 24, 1, 1),
                           "stage2.1.branch2.0.weight": (58, 58, 1, 1), "stage2.1.branch2.3.weight": (58, 1, 3, 3),
                           "conv5.0.weight": (1024, 464, 1, 1), "fc.weight": (1000, 1024)},
    "squeezenet1_1": {"features.0.weight": (64, 3, 3, 3), "features.3.squeeze.weight": (16, 64, 1, 1),
                      "features.3.expand3x3.weight": (64, 16, 3, 3), "features.12.expand1x1.weight": (256, 64, 1, 1),
                      "classifier.1.weight": (1000, 512, 1, 1)},
    "vgg16_bn": {"features.0.weight": (64, 3, 3, 3), "features.1.running_mean": (64,),
                 "features.40.weight": (512, 512, 3, 3), "features.41.weight": (512,),
                 "classifier.0.weight": (4096, 25088), "classifier.6.weight": (1000, 4096)},
    "wide_resnet50_2": {"layer1.0.conv1.weight": (128, 64, 1, 1), "layer4.0.conv2.weight": (1024, 1024, 3, 3),
                        "layer4.2.conv3.weight": (2048, 1024, 1, 1)},
}


@pytest.mark.parametrize("name", sorted(LANDMARKS))
def test_state_dict_keys_are_torchvisions(name):
    layout = dict(weight_layout(meta(name)))
    assert {key: layout.get(key) for key in LANDMARKS[name]} == LANDMARKS[name]


def test_registration_order_is_torchvisions():
    # A weight loader that goes by order must see RegNet's shortcut before its main path, and
    # ResNet's after it, as in torchvision's checkpoints.
    regnet = [k for k, _ in weight_layout(meta("regnet_x_400mf"))]
    assert regnet.index("trunk_output.block1.block1-0.proj.0.weight") < regnet.index(
        "trunk_output.block1.block1-0.f.a.0.weight")
    resnet = [k for k, _ in weight_layout(meta("resnet50"))]
    assert resnet.index("layer1.0.bn3.running_var") < resnet.index("layer1.0.downsample.0.weight")
    # ConvNeXt's layer scale is the block's own parameter: it comes before the block's layers.
    convnext = [k for k, _ in weight_layout(meta("convnext_tiny"))]
    assert convnext.index("features.1.0.layer_scale") + 1 == convnext.index("features.1.0.block.0.weight")


@pytest.mark.parametrize(
    "name, eps, momentum",
    [
        ("mobilenet_v2", 1e-5, 0.1),
        ("mobilenet_v3_large", 1e-3, 0.01),   # torchvision's port of the TensorFlow settings
        ("mobilenet_v3_small", 1e-3, 0.01),
        ("efficientnet_b0", 1e-5, 0.1),
        ("efficientnet_b4", 1e-5, 0.1),
        ("efficientnet_b5", 1e-3, 0.01),      # B5-B7's weights come from TensorFlow
        ("efficientnet_b7", 1e-3, 0.01),
        ("mnasnet1_0", 1e-5, 1 - 0.9997),
        ("inception_v3", 1e-3, 0.1),
        ("googlenet", 1e-3, 0.1),
        ("regnet_x_400mf", 1e-5, 0.1),
        ("densenet121", 1e-5, 0.1),
        ("vgg16_bn", 1e-5, 0.1),
    ],
)
def test_batch_norm_settings_are_torchvisions(name, eps, momentum):
    norms = submodules(meta(name), nn.BatchNorm2d)
    assert norms and {(n.eps, n.momentum) for n in norms} == {(eps, momentum)}


def test_convnext_normalises_with_layer_norm_eps_1e_6_and_no_batch_norm():
    model = meta("convnext_tiny")
    assert not submodules(model, nn.BatchNorm2d)
    norms = submodules(model, nn.LayerNorm)
    assert len(norms) == 1 + 18 + 3 + 1  # stem, every block, every downsampling, the head
    assert {n.eps for n in norms} == {1e-6}


# --- structure, as the papers describe it ------------------------------------------------------

def test_mobilenet_v2_has_17_inverted_residual_blocks():
    from reference.mobilenet import InvertedResidual

    blocks = submodules(meta("mobilenet_v2"), InvertedResidual)
    assert len(blocks) == 17  # Table 2: n = 1, 2, 3, 4, 3, 3, 1
    assert sum(b.use_res_connect for b in blocks) == 10  # every repeat after a stage's first
    assert [b.out_channels for b in blocks] == [16, 24, 24, 32, 32, 32, 64, 64, 64, 64, 96, 96, 96, 160, 160, 160, 320]
    assert not submodules(meta("mobilenet_v2"), nn.ReLU) and len(submodules(meta("mobilenet_v2"), nn.ReLU6)) == 35


@pytest.mark.parametrize("name, blocks, with_se", [("mobilenet_v3_large", 15, 8), ("mobilenet_v3_small", 11, 9)])
def test_mobilenet_v3_blocks_and_squeeze_excitation(name, blocks, with_se):
    from reference.mobilenet import InvertedResidualV3

    model = meta(name)
    assert len(submodules(model, InvertedResidualV3)) == blocks  # the paper's Tables 1 and 2
    se = submodules(model, SqueezeExcitation)
    assert len(se) == with_se
    for layer in se:  # squeeze to a quarter of the expanded width, rounded to 8; hard-sigmoid gate
        assert layer.fc1.out_channels == _make_divisible(layer.fc1.in_channels // 4, 8)
        assert isinstance(layer.scale_activation, nn.Hardsigmoid)


@pytest.mark.parametrize(
    "name, repeats, head",
    [
        ("efficientnet_b0", [1, 2, 2, 3, 3, 4, 1], 1280),   # Table 1
        ("efficientnet_b1", [2, 3, 3, 4, 4, 5, 2], 1280),   # depth 1.1, repeats rounded up
        ("efficientnet_b2", [2, 3, 3, 4, 4, 5, 2], 1408),   # width 1.1: 320 -> 352, head 4 x 352
        ("efficientnet_b7", [4, 7, 7, 10, 10, 13, 4], 2560),
    ],
)
def test_efficientnet_compound_scaling(name, repeats, head):
    features = meta(name).features
    assert [len(stage) for stage in features[1:8]] == repeats
    assert features[8][0].out_channels == head
    for stage in features[1:8]:
        for block in stage:
            se = block.block[-2]
            assert isinstance(se, SqueezeExcitation) and isinstance(se.activation, nn.SiLU)
            # the squeeze is a quarter of the block's input width (not of its expanded width)
            block_input = block.block[0][0].in_channels  # the expansion, or the depthwise conv at ratio 1
            assert se.fc1.out_channels == max(1, block_input // 4)


def test_efficientnet_b0_feature_maps_follow_table_1():
    model = meta("efficientnet_b0")
    shapes = []
    x = torch.zeros(1, 3, 224, 224, device="meta")
    for stage in model.features:
        x = stage(x)
        shapes.append(tuple(x.shape[1:]))
    assert shapes == [(32, 112, 112), (16, 112, 112), (24, 56, 56), (40, 28, 28), (80, 14, 14),
                      (112, 14, 14), (192, 7, 7), (320, 7, 7), (1280, 7, 7)]


def test_shufflenet_v2_stages_repeat_4_8_4():
    model = meta("shufflenet_v2_x1_0")
    assert [len(model.stage2), len(model.stage3), len(model.stage4)] == [4, 8, 4]  # Table 5
    x = model.maxpool(model.conv1(torch.zeros(1, 3, 224, 224, device="meta")))
    sizes = []
    for stage in (model.stage2, model.stage3, model.stage4):
        x = stage(x)
        sizes.append(tuple(x.shape[1:]))
    assert sizes == [(116, 28, 28), (232, 14, 14), (464, 7, 7)]
    # Only a stage's first unit has a first branch; the others split their input in halves.
    assert [len(unit.branch1) > 0 for unit in model.stage3] == [True] + [False] * 7


def test_shufflenet_v2_channel_shuffle_interleaves_the_two_halves():
    from reference.shufflenet import channel_shuffle

    x = torch.arange(6.0).view(1, 6, 1, 1)
    assert channel_shuffle(x, 2).flatten().tolist() == [0, 3, 1, 4, 2, 5]


def test_convnext_tiny_stages_are_3_3_9_3_at_96_to_768():
    from reference.convnext import CNBlock

    features = meta("convnext_tiny").features
    stages = [features[i] for i in (1, 3, 5, 7)]
    assert [len(s) for s in stages] == [3, 3, 9, 3]
    assert [s[0].block[0].in_channels for s in stages] == [96, 192, 384, 768]
    blocks = submodules(features, CNBlock)
    assert len(blocks) == 18
    assert all(b.layer_scale.shape == (b.block[0].in_channels, 1, 1) for b in blocks)
    initial = submodules(real("convnext_tiny"), CNBlock)
    assert all(torch.equal(b.layer_scale, torch.full_like(b.layer_scale, 1e-6)) for b in initial)


def test_densenet121_has_58_dense_layers_in_blocks_of_6_12_24_16():
    from reference.densenet import _DenseBlock, _DenseLayer, _Transition

    model = meta("densenet121")
    assert [len(b) for b in submodules(model, _DenseBlock)] == [6, 12, 24, 16]
    assert len(submodules(model, _DenseLayer)) == 58
    assert len(submodules(model, _Transition)) == 3
    # The "121": the first conv, two convs per dense layer, three transitions, the classifier.
    weighted = submodules(model, nn.Conv2d) + submodules(model, nn.Linear)
    assert len(weighted) == 1 + 2 * 58 + 3 + 1 == 121
    assert model.classifier.in_features == 1024


@pytest.mark.parametrize(
    "name, blocks, depth, widths",
    [
        ("resnet18", [2, 2, 2, 2], 18, None),
        ("resnet50", [3, 4, 6, 3], 50, [64, 128, 256, 512]),
        ("resnext50_32x4d", [3, 4, 6, 3], 50, [128, 256, 512, 1024]),  # 32 groups x 4 channels
        ("wide_resnet50_2", [3, 4, 6, 3], 50, [128, 256, 512, 1024]),  # twice ResNet-50's width
    ],
)
def test_resnet_family_depth_and_bottleneck_widths(name, blocks, depth, widths):
    from reference.resnet import Bottleneck

    model = meta(name)
    stages = [model.layer1, model.layer2, model.layer3, model.layer4]
    assert [len(s) for s in stages] == blocks
    shortcut_convs = {id(s[0].downsample[0]) for s in stages if s[0].downsample is not None}
    weighted = [m for m in submodules(model, nn.Conv2d) if id(m) not in shortcut_convs] + [model.fc]
    assert len(weighted) == depth  # the "18" and "50": layers with weights on the main path
    if widths is not None:
        assert [s[0].conv2.out_channels for s in stages] == widths
        assert [s[-1].conv3.out_channels for s in stages] == [256, 512, 1024, 2048]
        groups = {b.conv2.groups for b in submodules(model, Bottleneck)}
        assert groups == ({32} if name.startswith("resnext") else {1})


def test_squeezenet1_1_has_eight_fire_modules_and_no_linear_layer():
    from reference.squeezenet import Fire

    model = meta("squeezenet1_1")
    fires = submodules(model, Fire)
    assert [f.squeeze.out_channels for f in fires] == [16, 16, 32, 32, 48, 48, 64, 64]
    assert not submodules(model, nn.Linear)


def test_mnasnet1_0_stacks():
    from reference.mnasnet import _InvertedResidual

    stacks = meta("mnasnet1_0").layers[8:14]
    assert [len(s) for s in stacks] == [3, 3, 3, 2, 4, 1]
    assert [s[0].layers[3].kernel_size[0] for s in stacks] == [3, 5, 5, 3, 5, 3]
    assert [s[0].layers[0].out_channels // s[0].layers[0].in_channels for s in stacks] == [3, 3, 6, 6, 6, 6]
    assert sum(b.apply_residual for b in submodules(stacks, _InvertedResidual)) == 16 - 6


def test_inception_v3_modules_and_grid_sizes():
    from reference.inception import InceptionA, InceptionB, InceptionC, InceptionD, InceptionE

    model = meta("inception_v3")
    kinds = [InceptionA, InceptionB, InceptionC, InceptionD, InceptionE]
    assert [len(submodules(model, k)) for k in kinds] == [3, 1, 4, 1, 2]
    assert model.AuxLogits is None
    x = torch.zeros(1, 3, 299, 299, device="meta")
    grids = {}
    for name, child in model.named_children():
        if name in ("avgpool", "dropout", "fc"):
            break
        x = child(x)
        grids[name] = tuple(x.shape[1:])
    # Table 1: 35x35x288 after the A modules, 17x17x768 after the C modules, 8x8x2048 at the end.
    assert grids["Mixed_5d"] == (288, 35, 35)
    assert grids["Mixed_6e"] == (768, 17, 17)
    assert grids["Mixed_7c"] == (2048, 8, 8)


def test_regnet_x_400mf_stages_from_the_quantised_linear_rule():
    model = meta("regnet_x_400mf")
    stages = list(model.trunk_output.children())
    assert [len(s) for s in stages] == [1, 2, 7, 12]
    assert [s[0].f.c[0].out_channels for s in stages] == [32, 64, 160, 400]
    for stage in stages:  # group width 16 throughout
        assert {b.f.b[0].out_channels // b.f.b[0].groups for b in stage} == {16}


def test_vgg16_bn_has_13_convolutions_and_3_fully_connected_layers():
    model = meta("vgg16_bn")
    assert len(submodules(model, nn.Conv2d)) == 13 and len(submodules(model, nn.BatchNorm2d)) == 13
    assert [fc.out_features for fc in submodules(model, nn.Linear)] == [4096, 4096, 1000]


def test_googlenet_and_alexnet_layers():
    from reference.inception import Inception

    assert len(submodules(meta("googlenet"), Inception)) == 9
    alexnet = meta("alexnet")
    assert [c.out_channels for c in submodules(alexnet, nn.Conv2d)] == [64, 192, 384, 256, 256]
    assert [fc.out_features for fc in submodules(alexnet, nn.Linear)] == [4096, 4096, 1000]
