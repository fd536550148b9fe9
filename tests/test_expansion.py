"""The expander's contracts: the layer budget bounds it from the syntax alone, blocks know
what they expanded to, and the constructs that make no sense are refused where written."""
from __future__ import annotations

import pytest

import archdsl
from archdsl import ArchError
from archdsl.budget import count_layers
from archdsl.ir import BlockKind
from archdsl.loader import Loader, load_source
from archdsl.parser import parse

from test_zoo import SPECS, ZOO


def budget(text_or_path, limit=10**9) -> int:
    source, path = load_source(text_or_path)
    spec = parse(source)
    ctx = Loader().context(spec, path.resolve() if path else None)
    return count_layers(spec, ctx, limit)


@pytest.mark.parametrize("name", ZOO)
def test_the_budget_is_never_below_what_the_zoo_expands_to(name):
    net = archdsl.load(SPECS / f"{name}.arch")
    assert budget(SPECS / f"{name}.arch") >= len(net.layers) - 1


@pytest.mark.parametrize("spec, layers", [
    ("input 16x8x8\nresidual< conv3-16/2 >", 3),  # conv, projection conv (no bn: the body has none), add
    ("input 16x8x8\nresidual< conv3-16 >", 2),  # identity: conv, add
    ("input 16x8x8\nafter conv = bn\nresidual< conv3-32/2 >", 5),  # conv bn, projection conv bn, add
    ("input 16x8x8\nse<4>", 6),
    ("input 16x8x8\ninception< conv1-4 | | maxpool3/1(pad=1) >", 3),
])
def test_budget_and_expansion_agree_on_composites(spec, layers):
    net = archdsl.load(spec)
    assert len(net.layers) - 1 == layers
    assert layers <= budget(spec) <= layers + 2  # a projection is counted before shapes say if it exists


def _exponential(levels: int, body: str) -> str:
    lines = ["input 3x8x8", f"block f0(a) = {body}"]
    lines += [f"block f{i}(a) = [f{i - 1}(a*2) f{i - 1}(a*2+1)]" for i in range(1, levels + 1)]
    return "\n".join(lines + [f"f{levels}(1)"])


@pytest.mark.timeout(60)
@pytest.mark.parametrize("body", ["relu", "-> t", "[relu * (a % 2)]"])  # layers, none, a count the arguments change
def test_blocks_calling_blocks_with_new_arguments_fail_at_once(body):
    with pytest.raises(ArchError, match=r"more than [\d,]+ (layers|steps)"):
        archdsl.load(_exponential(40, body))


def test_a_small_tree_of_calls_still_expands():
    assert len(archdsl.load(_exponential(6, "relu")).layers) - 1 == 2**6


# ---- what a block instance knows ----


def test_a_residual_knows_its_merge_its_skip_and_its_shortcut():
    net = archdsl.load("input 16x8x8\nafter conv = bn\nresidual< conv3-16 relu conv3-16 > residual< conv3-32/2 >")
    identity, projection = net.blocks["residual1"], net.blocks["residual2"]
    assert (identity.entry, identity.merge, identity.skip, identity.shortcut) == ("input", "residual1.add", "input", None)
    assert projection.entry == "residual1.add" and projection.merge == "residual2.add"
    assert projection.shortcut == "residual2.shortcut" and projection.skip == "residual2.shortcut.bn"
    assert net.blocks["residual2.shortcut"].inserted and net.blocks["residual2.shortcut"].kind is BlockKind.SHORTCUT


def test_a_user_block_built_around_a_composite_is_that_composite():
    net = archdsl.load("input 16x8x8\nblock b(c) = [conv1-c residual< conv3-c > relu]\nb(16)")
    block = net.blocks["b1"]
    assert block.kind is BlockKind.RESIDUAL and block.user and block.name == "b"
    assert block.entry == "b1.conv1"  # the composite's input, after the block's first layer
    assert block.merge == "b1.add" and block.skip == "b1.conv1"


def test_se_and_inception_know_their_merge():
    net = archdsl.load("input 16x8x8\nse<4> inception< conv1-4 | conv3-4 >")
    assert (net.blocks["se1"].merge, net.blocks["se1"].skip) == ("se1.scale", "input")
    assert net.blocks["inception1"].merge == "inception1.concat" and net.blocks["inception1"].skip is None


# ---- residuals on vectors, and constructs that are mistakes ----


def test_a_residual_on_vectors_projects_with_an_fc():
    net = archdsl.load("input 16x8x8\nfc-10 residual< fc-20 >")
    assert net.layer("residual1.shortcut.fc").token == "fc-20"
    assert net.outputs["output"] == (20,)
    assert net.params == (16 * 64 * 10 + 10) + (10 * 20 + 20) * 2


@pytest.mark.parametrize("spec, message", [
    ("input 3x8x8\nconv3-8 -> input", r"'input' names the network's input"),
    ("input 3x8x8\nresidual< >", r"a residual needs a body"),
    ("input 3x8x8\nresidual< | conv1-3 >", r"a residual needs a body"),
    ("input 3x8x8\ninception< >", r"an inception needs at least one branch with layers"),
    ("input 3x8x8\ninception< | >", r"an inception needs at least one branch with layers"),
    ("input 3x8x8\nrelu7", r"no layer type is called 'relu7' \(relu takes no size glued to its name\)"),
    ("input 3x8x8\nblock b = [conv3-8 * in_channels]\nb", r"repetition count cannot depend on a tensor's shape"),
])
def test_mistakes_are_refused_where_written(spec, message):
    with pytest.raises(ArchError, match=message) as info:
        archdsl.load(spec)
    assert info.value.span is not None and info.value.span.line >= 2


def test_an_unknown_layer_lists_every_layer_type():
    with pytest.raises(ArchError) as info:
        archdsl.load("input 3x8x8\ncnov3-8")
    assert "…" not in info.value.message
    assert all(family in info.value.message for family in ("conv", "upsample", "lrn", "softmax"))


def test_a_block_reads_its_input_channels():
    net = archdsl.load("input 24x8x8\nblock expand(t) = [conv1-(t*in_channels) relu conv1-in_channels]\nexpand(6)")
    assert [layer.shape[0] for layer in net.layers[1:]] == [144, 144, 24]
