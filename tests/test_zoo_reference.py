"""The zoo's torchvision networks against the reference implementations in tests/reference/.

Each spec in reference.zoo.PINNED must have torchvision's published parameter count, exactly the
reference's multiset of weight shapes (so that its weights load one to one), the reference's
multiply-accumulates (convolutions and linear layers, as both count them), one logit per
ImageNet class, and no warning; and with the reference's weights loaded into it, it must compute
the reference's logits. The backends' numerics on these specs are checked in test_tvm_backend.py
and test_onnx.py, at reference.zoo.SMALL_SIDES.
"""
from __future__ import annotations

import functools
import re
from collections import Counter

import pytest
import torch
from torch import nn

import reference
from reference.zoo import PINNED, SMALL_SIDES, SPECS, load_spec, load_text, settle

import archdsl


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """The forward passes here are small: a second intra-op thread gains nothing, and on a loaded
    machine its spin-waiting makes them many times slower (as in test_reference_models.py)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@functools.lru_cache(maxsize=None)
def spec(name: str) -> archdsl.Network:
    return load_spec(name)


@functools.lru_cache(maxsize=None)
def reference_on_meta(name: str) -> nn.Module:
    return reference.build(name, device="meta").eval()


def layout(module: nn.Module) -> list:
    """(key, shape) of the module's weights and running statistics, in state_dict order."""
    return [(key, tuple(value.shape)) for key, value in module.state_dict().items()
            if not key.endswith("num_batches_tracked")]


def spec_layout(name: str) -> list:
    with torch.device("meta"):
        return layout(spec(name).to_torch())


def test_the_pinned_specs_are_in_the_zoo_and_in_the_reference():
    assert {path.stem for path in SPECS.glob("*.arch")} >= set(PINNED)
    assert set(reference.NAMES) >= set(PINNED)
    assert len(PINNED) >= 10


@pytest.mark.parametrize("name", PINNED)
def test_parameter_count_is_torchvisions(name):
    net = spec(name)
    assert net.params == reference.PUBLISHED_PARAMS[name]
    with torch.device("meta"):
        assert reference.param_count(net.to_torch()) == net.params


@pytest.mark.parametrize("name", PINNED)
def test_weight_shapes_are_the_references(name):
    mine = Counter(shape for _, shape in spec_layout(name))
    theirs = reference.weight_shapes(reference_on_meta(name))
    assert mine - theirs == Counter() and theirs - mine == Counter(), (mine - theirs, theirs - mine)


@pytest.mark.parametrize("name", PINNED)
def test_macs_are_the_references(name):
    # Both count a convolution as output elements × kernel elements × in_channels/groups and a
    # linear layer as output elements × in_features: ConvNeXt's per-position linears (nn.Linear on
    # channels-last maps; fc(pointwise=true) in the spec) count at each of their H×W positions in
    # both, as torchvision's published 4.456 GFLOPS does. The reference runs at torchvision's eval crop;
    # squeezenet1_1's spec reads 223 where torchvision feeds 224: conv1's 3x3/2 windows give
    # 111x111 from both (224's last row and column are never read), so every later count agrees.
    net = spec(name)
    assert net.macs == reference.macs(reference_on_meta(name), reference.input_shape(name))


@pytest.mark.parametrize("name", PINNED)
def test_one_logit_per_imagenet_class_and_no_warning(name):
    net = spec(name)
    assert net.outputs == {"output": (1000,)}
    assert net.warnings == []
    side = reference.INPUT_SIZES[name]
    assert net.input_shape == ((3, 223, 223) if name == "squeezenet1_1" else (3, side, side))


def test_archdsl_check_prints_the_published_counts_without_a_warning(run_archdsl):
    result = run_archdsl("check", "--quiet", *(SPECS / f"{name}.arch" for name in PINNED))
    assert result.returncode == 0, result.stderr
    assert "warning" not in result.stderr + result.stdout
    for name in PINNED:
        assert f"{name}.arch: {reference.PUBLISHED_PARAMS[name]:,} params" in result.stdout


# --- the reference's weights in the spec's module --------------------------------------------

# Where a reference registers a block's tensors in another order than the spec's module does: a
# pattern cutting a key into its block and the part of the block it belongs to, and the parts in
# the order the spec's module registers them (a stable sort within each block).
REGISTRATION_ORDERS = {
    # RegNet registers a block's projection shortcut (`proj`) before its main path (`f`);
    # archdsl's residual registers the body first and the shortcut after it.
    "regnet_x_400mf": (re.compile(r"(?P<block>.*?)\.(?P<part>f|proj)\."), ("f", "proj")),
    # ConvNeXt's CNBlock holds its `layer_scale` itself, and a state_dict lists a module's own
    # tensors before its children's; the spec's layerscale is a layer after the block's linears.
    "convnext_tiny": (re.compile(r"(?P<block>.*?)\.(?P<part>block\.|layer_scale$)"), ("block.", "layer_scale")),
}


def reference_order(name: str, keys: list) -> list:
    """The reference's weight keys in the order the spec's module registers the same tensors."""
    if name not in REGISTRATION_ORDERS:
        return keys
    pattern, parts = REGISTRATION_ORDERS[name]
    blocks: dict = {}
    for key in keys:
        match = pattern.match(key)
        blocks.setdefault(match["block"] if match else key, []).append((parts.index(match["part"]) if match else 0, key))
    return [key for group in blocks.values() for _, key in sorted(group, key=lambda ranked: ranked[0])]


def load_reference_weights(module: nn.Module, ref: nn.Module, name: str) -> None:
    """Copy the reference's weights into the spec's module one to one, in registration order."""
    ours = [key for key, _ in layout(module)]
    theirs = reference_order(name, [key for key, _ in layout(ref)])
    assert len(ours) == len(theirs)
    source, target = ref.state_dict(), module.state_dict()
    state = {}
    for mine, their in zip(ours, theirs):
        assert target[mine].shape == source[their].shape, (mine, their)
        state[mine] = source[their]
    missing, unexpected = module.load_state_dict(state, strict=False)
    assert not unexpected and all(key.endswith("num_batches_tracked") for key in missing)


def random_weights(module: nn.Module, seed: int = 0) -> nn.Module:
    """Fill a module built on the meta device with weights that keep activations of order 1:
    N(0, 1/fan_in) kernels, small biases, trained-looking batch norms (a torchvision-style
    initialisation of 138 million parameters costs seconds and proves nothing more here)."""
    module = module.to_empty(device="cpu")
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in module.named_parameters():
            if tensor.dim() > 1:
                fan_in = tensor[0].numel()
                tensor.copy_(torch.randn(tensor.shape, generator=generator) / fan_in ** 0.5)
            else:
                tensor.copy_(torch.randn(tensor.shape, generator=generator) * 0.1)
    return settle(module, seed)


# At SMALL_SIDES: the networks and their references pool adaptively before their classifiers
# (VGG-16-bn to 7x7, the others to 1x1), so the weights do not depend on the input's size.
LOGIT_SIDES = {**SMALL_SIDES, "resnet18": 64, "resnet50": 64}


@pytest.mark.parametrize("name", PINNED)
def test_the_references_weights_give_the_references_logits(name):
    assert_computes_the_references_logits(load_spec(name, LOGIT_SIDES[name]), name)


def assert_computes_the_references_logits(net: archdsl.Network, name: str) -> None:
    """`net`'s module, given reference `name`'s (random, trained-looking) weights one to one,
    computes its logits to 1e-5 of their magnitude."""
    ref = random_weights(reference.build(name, device="meta")).eval()
    with torch.device("meta"):
        module = net.to_torch()
    module = module.to_empty(device="cpu").eval()
    load_reference_weights(module, ref, name)
    x = torch.randn(2, *net.input_shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want, got = ref(x), module(x)
    scale = float(want.abs().max())
    assert 1e-2 < scale < 1e8  # the comparison means something: the logits have not faded away
    assert float((got - want).abs().max()) <= 1e-5 * scale


# --- compound scaling: EfficientNet-B2 from B0's table ----------------------------------------

def efficientnet_b2(side: int) -> archdsl.Network:
    """B2 as the zoo's B0 and B1 are written: specs/lib/efficientnet.arch's table at width 1.1 and
    depth 1.2 (Tan & Le, 2019, section 3.3), with torchvision's dropout for B2."""
    return load_text(f"""use "lib/efficientnet.arch"
network efficientnet_b2
input 3x{side}x{side}
efficientnet(width=1.1, depth=1.2, dropout=0.3)
""")


def test_efficientnet_b2_is_b0s_table_scaled_in_width_and_depth():
    # The paper evaluates B2 at 260x260, torchvision at 288x288 (the crop of the weights it
    # ported): the parameters are torchvision's at either, the MACs are compared at 288.
    net = efficientnet_b2(260)
    assert net.params == reference.PUBLISHED_PARAMS["efficientnet_b2"] == 9_109_994
    assert net.outputs == {"output": (1000,)} and net.warnings == []
    assert [layer.op.p for layer in net.layers if layer.op.family == "dropout"] == [0.3]
    ref = reference_on_meta("efficientnet_b2")
    with torch.device("meta"):
        mine = Counter(shape for _, shape in layout(net.to_torch()))
    assert mine == reference.weight_shapes(ref)
    at_torchvisions_crop = efficientnet_b2(reference.INPUT_SIZES["efficientnet_b2"])
    assert at_torchvisions_crop.macs == reference.macs(ref, reference.input_shape("efficientnet_b2"))
    assert_computes_the_references_logits(efficientnet_b2(SMALL_SIDES["efficientnet_b1"]), "efficientnet_b2")
