"""The language's constructs, each through a small spec: what it expands to, and what the IR remembers."""
from __future__ import annotations

import math

import pytest

import archdsl
from archdsl.ir import BlockKind
from archdsl import ArchError
from archdsl import ops
from archdsl.ops import BatchNorm, Conv, ReLU


def families(net) -> list[str]:
    return [layer.op.family for layer in net.layers[1:]]


def shapes(net) -> list[tuple[int, ...]]:
    return [layer.shape for layer in net.layers[1:]]


# ---------------------------------------------------------------- repetition and grouping

def test_repetition_of_a_layer():
    net = archdsl.load("input 3x8x8\nconv3-4 * 3")
    assert families(net) == ["conv"] * 3
    assert [l.name for l in net.layers[1:]] == ["conv1", "conv2", "conv3"]


def test_repetition_of_a_group():
    net = archdsl.load("input 3x32x32\n[conv3-4 relu maxpool] * 3")
    assert families(net) == ["conv", "relu", "maxpool"] * 3
    assert net.outputs["output"] == (4, 4, 4)


def test_nested_groups_and_counts_from_parameters():
    net = archdsl.load(
        "input 3x8x8\n"
        "block stage(c, n) = [[conv3-c relu] * n maxpool]\n"
        "stage(8, 2) stage(16, (1 + 2))\n"
    )
    assert families(net) == ["conv", "relu"] * 2 + ["maxpool"] + ["conv", "relu"] * 3 + ["maxpool"]
    assert net.outputs["output"] == (16, 2, 2)


@pytest.mark.parametrize("count", ["(1 - 3)", "(2.5)", "true"])
def test_repetition_count_must_be_a_whole_number(count):
    with pytest.raises(ArchError, match=r"repetition count must be a whole number ≥ 0"):
        archdsl.load(f"input 3x8x8\nconv3-4 * {count}")


def test_a_repetition_of_zero_is_nothing():
    # EfficientNet's stages: the first block, then the rest `* (n - 1)`, which may be none
    net = archdsl.load("input 3x8x8\nblock stage(n) = [conv3-4/2 conv3-4 * (n - 1)]\nstage(1) stage(3)")
    assert families(net) == ["conv"] * 4
    with pytest.raises(ArchError, match=r"no layers: its body expands to nothing"):
        archdsl.load("input 3x8x8\nconv3-4 * 0")


# ---------------------------------------------------------------- blocks and arithmetic

@pytest.mark.parametrize(
    "expr, channels",
    [
        ("4*c", 64),
        ("c/2", 8),          # exact division
        ("c//3", 5),         # floor division
        ("c % 5 + 1", 2),
        ("(c + 2) * 2 - 4", 32),
        ("-c + 20", 4),
        ("c*c//16", 16),
    ],
)
def test_block_parameter_arithmetic(expr, channels):
    net = archdsl.load(f"input 3x8x8\nblock b(c) = [conv1-({expr})]\nb(16)")
    assert net.outputs["output"] == (channels, 8, 8)


def test_exact_division_refuses_a_remainder():
    with pytest.raises(ArchError, match=r"16/3 is not a whole number; use // to round down") as info:
        archdsl.load("input 3x8x8\nblock b(c) = [conv1-(c/3)]\nb(16)")
    assert info.value.span.line == 2


def test_division_by_zero():
    with pytest.raises(ArchError, match=r"division by zero"):
        archdsl.load("input 3x8x8\nblock b(c) = [conv1-(c//0)]\nb(16)")


def test_block_defaults_keyword_arguments_and_stride_expressions():
    net = archdsl.load(
        "input 16x32x32\n"
        "block down(c, s=2, k=3) = [conv3-c/s conv1-(c*k)]\n"
        "down(8) down(8, 1) down(c=8, k=1) down(8, s=4, k=2)\n"
    )
    assert shapes(net)[1::2] == [(24, 16, 16), (24, 16, 16), (8, 8, 8), (16, 2, 2)]


def test_default_may_use_earlier_parameters():
    net = archdsl.load("input 3x8x8\nblock b(c, d=2*c) = [conv1-d]\nb(5)")
    assert net.outputs["output"] == (10, 8, 8)


def test_blocks_are_called_with_their_name_and_remember_their_instance():
    net = archdsl.load(
        "input 8x16x16\n"
        "block inner(c) = [conv3-c relu]\n"
        "block outer(c) = [inner(c) inner(2*c) maxpool]\n"
        "outer(8) outer(16)\n"
    )
    names = [l.name for l in net.layers[1:]]
    assert names[:5] == ["outer1.inner1.conv1", "outer1.inner1.relu1", "outer1.inner2.conv1", "outer1.inner2.relu1", "outer1.maxpool1"]
    assert names[5] == "outer2.inner1.conv1"
    assert net.layer("outer2.inner2.conv1").scope == ("outer2", "outer2.inner2")
    assert net.layer("outer2.inner2.conv1").shape == (32, 8, 8)
    assert net.layer("outer1.maxpool1").scope == ("outer1",)
    block = net.blocks["outer2.inner2"]
    assert (block.kind, block.name, block.parent, block.span.line) == (BlockKind.BLOCK, "inner", "outer2", 3)  # the call site
    assert block.user and block.entry == "outer2.inner1.relu1"
    assert net.blocks["outer1"].parent is None and net.blocks["outer1"].depth == 1
    assert block.depth == 2
    assert {b for b in net.blocks} == {"outer1", "outer1.inner1", "outer1.inner2", "outer2", "outer2.inner1", "outer2.inner2"}


# ---------------------------------------------------------------- defaults

def test_after_appends_layers_to_every_layer_of_a_family():
    net = archdsl.load("input 3x8x8\nafter conv = [bn relu]\nconv3-4 maxpool conv3-8")
    assert families(net) == ["conv", "bn", "relu", "maxpool", "conv", "bn", "relu"]
    # the bn and relu that `after` adds point at the `after` statement
    assert [l.line for l in net.layers[1:]] == [3, 2, 2, 3, 3, 2, 2]


def test_after_false_skips_the_defaults():
    net = archdsl.load("input 3x8x8\nafter conv = [bn relu]\nconv3-4 conv1-2(after=false)")
    assert families(net) == ["conv", "bn", "relu", "conv"]
    assert net.layers[-1].op.bias is True  # no bn follows: the bias stays


def test_after_true_is_not_an_option():
    with pytest.raises(ArchError, match=r"after=false is the only use"):
        archdsl.load("input 3x8x8\nafter conv = relu\nconv3-4(after=true)")


def test_defaults_set_options_and_the_layer_wins():
    net = archdsl.load("input 3x112x112\ndefaults maxpool(ceil=true)\nmaxpool3/2 maxpool3/2(ceil=false)")
    assert shapes(net) == [(3, 56, 56), (3, 27, 27)]


def test_defaults_for_conv_padding():
    net = archdsl.load("input 1x32x32\ndefaults conv(pad=valid)\nconv5-6 conv5-16(pad=2)")
    assert shapes(net) == [(6, 28, 28), (16, 28, 28)]


def test_after_and_defaults_name_a_layer_type():
    with pytest.raises(ArchError, match=r"`after cnov` names no layer type; did you mean 'conv'\?") as info:
        archdsl.load("input 3x8x8\nafter cnov = relu\nconv3-8")
    assert info.value.span.line == 2
    with pytest.raises(ArchError, match=r"`defaults maxpol` names no layer type; did you mean 'maxpool'\?"):
        archdsl.load("input 3x8x8\ndefaults maxpol(ceil=true)\nmaxpool")
    with pytest.raises(ArchError, match=r"a second `after conv` \(the first is at line 2\)"):
        archdsl.load("input 3x8x8\nafter conv = relu\nafter conv = bn\nconv3-8")


def test_after_follows_aliases():
    net = archdsl.load("input 3x8x8\nafter upconv = relu\ndeconv2-4/2 upconv2-4/2")
    assert families(net) == ["deconv", "relu", "deconv", "relu"]


def test_defaults_take_named_options_only():
    with pytest.raises(ArchError, match=r"defaults take named options"):
        archdsl.load("input 3x8x8\ndefaults maxpool(3)\nmaxpool")


# ---------------------------------------------------------------- use: imports

def test_use_is_relative_to_the_importing_file(tmp_path, monkeypatch):
    (tmp_path / "models" / "lib" / "common").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "models" / "lib" / "common" / "act.arch").write_text("block act = [bn relu]\n")
    (tmp_path / "models" / "lib" / "blocks.arch").write_text(
        'use "common/act.arch"\n'
        "after conv = act\n"
        "block unit(c) = [conv3-c]\n"
    )
    main = tmp_path / "models" / "main.arch"
    main.write_text('network main\ninput 3x8x8\nuse "lib/blocks.arch"\nunit(4) conv3-2\n')
    monkeypatch.chdir(tmp_path / "elsewhere")  # the working directory must not matter
    net = archdsl.load(main)
    assert net.name == "main"
    # the library's `after conv` applies to the library's convs only, not to main's conv3-2
    assert families(net) == ["conv", "bn", "relu", "conv"]
    assert net.layers[1].op.bias is False
    assert net.layers[1].span.source.name.endswith("blocks.arch")
    assert archdsl.load("../models/main.arch").params == net.params  # a relative path string


def test_use_from_text_is_relative_to_the_working_directory(tmp_path, monkeypatch):
    (tmp_path / "b.arch").write_text("block two = [conv3-2 conv3-2]\n")
    monkeypatch.chdir(tmp_path)
    net = archdsl.load('input 3x8x8\nuse "b.arch"\ntwo\n')
    assert families(net) == ["conv", "conv"]


def test_a_file_imported_twice_is_fine(tmp_path):
    (tmp_path / "a.arch").write_text("block one = [conv3-2]\n")
    (tmp_path / "b.arch").write_text('use "a.arch"\nblock two = [one one]\n')
    main = tmp_path / "main.arch"
    main.write_text('input 3x8x8\nuse "a.arch"\nuse "b.arch"\none two\n')
    assert families(archdsl.load(main)) == ["conv"] * 3


# ---------------------------------------------------------------- named tensors, merges, outputs

def test_named_tensors_concat_and_add():
    net = archdsl.load(
        "input 3x16x16\n"
        "conv3-8 -> a\n"
        "conv3-8 -> b\n"
        "add(@a)\n"
        "concat(@b, @a)\n"
    )
    assert net.outputs == {"output": (24, 16, 16)}
    add = next(l for l in net.layers if l.op.family == "add")
    concat = next(l for l in net.layers if l.op.family == "concat")
    assert add.inputs == ("b", "a")  # the current tensor first, then the @names
    assert concat.inputs == (add.name, "b", "a")


def test_at_name_continues_from_a_named_tensor_and_several_outputs():
    net = archdsl.load(
        "input 3x16x16\n"
        "conv3-8 -> trunk\n"
        "conv3-4 gap -> aux\n"
        "@trunk\n"
        "maxpool conv3-16\n"
    )
    assert list(net.outputs) == ["output", "aux"]
    assert net.outputs == {"output": (16, 8, 8), "aux": (4, 1, 1)}
    assert net.layer(net.output_nodes["output"]).op.family == "conv"


def test_input_can_be_referred_to():
    net = archdsl.load("input 3x8x8\nconv3-5\nconcat(@input)")
    assert net.outputs["output"] == (8, 8, 8)


def test_a_tensor_name_is_given_once():
    with pytest.raises(ArchError, match=r"the tensor name 'a' is used twice"):
        archdsl.load("input 3x8x8\nconv3-4 -> a\nconv3-4 -> a")


def test_block_scopes_have_their_own_tensor_names():
    net = archdsl.load("input 3x8x8\nblock b = [-> x conv3-3 add(@x)]\nb b")
    assert families(net) == ["conv", "add", "conv", "add"]


def test_comments_and_free_layout():
    net = archdsl.load(
        "# a comment line\n"
        "network   commented   # trailing comment\n"
        "input 3x8x8\n"
        "\n"
        "  conv3-4   # conv3-999 is commented out\n"
        "\tmaxpool # tabs are white space\n"
        "# conv3-7\n"
        "relu conv1-2 conv1-2\n"
    )
    assert net.name == "commented"
    assert families(net) == ["conv", "maxpool", "relu", "conv", "conv"]
    assert [l.line for l in net.layers[1:]] == [5, 6, 8, 8, 8]
    assert net.layers[1].span.col == 3


def test_paper_spellings():
    net = archdsl.load("input 3x8x8\nconv3x3-4 CONV3-4 maxpool FC-10 soft-max")
    assert families(net) == ["conv", "conv", "maxpool", "fc", "softmax"]
    assert [l.token for l in net.layers[1:]] == ["conv3x3-4", "CONV3-4", "maxpool", "FC-10", "soft-max"]


def test_one_and_three_dimensional_inputs():
    one = archdsl.load("input 2x100\nconv5-4 maxpool conv3-8/2 gap fc-3")
    assert shapes(one) == [(4, 100), (4, 50), (8, 25), (8, 1), (3,)]
    three = archdsl.load("input 3x8x16x16\nconv3-4 maxpool conv1x3x3-8 gap")
    assert shapes(three) == [(4, 8, 16, 16), (4, 4, 8, 8), (8, 4, 8, 8), (8, 1, 1, 1)]
    assert three.layers[1].params == 27 * 3 * 4 + 4
    assert three.layers[1].receptive_field == (3, 3, 3)


# ---------------------------------------------------------------- composites

def test_residual_identity_when_the_shape_is_kept():
    net = archdsl.load("input 64x8x8\nresidual< conv3-64 relu conv3-64 >")
    add = net.layer(net.output_nodes["output"])
    assert add.op.family == "add" and add.inputs[1] == "input"
    assert not any(l.inserted and isinstance(l.op, Conv) for l in net.layers)
    assert net.params == 2 * (9 * 64 * 64 + 64)
    assert net.blocks["residual1"].kind is BlockKind.RESIDUAL


def test_residual_projection_with_bn_where_the_body_uses_bn():
    net = archdsl.load("input 64x56x56\nresidual< conv3-128/2 bn relu conv3-128 bn >")
    projection = net.layer("residual1.shortcut.conv")
    assert projection.inserted
    assert projection.op.kernel == (1, 1) and projection.op.stride == (2, 2) and projection.op.padding == (0, 0)
    assert projection.shape == (128, 28, 28)
    assert projection.params == 64 * 128  # no bias: a bn follows
    bn = net.layer("residual1.shortcut.bn")
    assert isinstance(bn.op, BatchNorm) and bn.params == 256
    assert net.layer("residual1.add").inputs == ("residual1.bn2", "residual1.shortcut.bn")
    assert projection.scope == ("residual1", "residual1.shortcut")
    assert net.warnings == []


def test_residual_projection_without_bn_where_the_body_has_none():
    net = archdsl.load("input 64x56x56\nresidual< conv3-256/2 relu conv3-256 >")
    projection = net.layer("residual1.shortcut.conv")
    assert projection.params == 64 * 256 + 256  # with a bias
    assert not any(isinstance(l.op, BatchNorm) for l in net.layers)
    assert net.layer("residual1.add").inputs == ("residual1.conv2", "residual1.shortcut.conv")


def test_residual_projection_for_channels_only():
    net = archdsl.load("input 32x8x8\nresidual< conv3-64 >")
    projection = net.layer("residual1.shortcut.conv")
    assert projection.op.stride == (1, 1) and projection.params == 32 * 64 + 64


def test_residual_with_an_explicit_shortcut():
    net = archdsl.load("input 64x16x16\nresidual< conv3-128/2 | avgpool conv1-128 >")
    assert [l.name for l in net.layers[1:]] == [
        "residual1.conv1", "residual1.shortcut.avgpool1", "residual1.shortcut.conv1", "residual1.add",
    ]
    assert net.outputs["output"] == (128, 8, 8)
    assert not net.layer("residual1.shortcut.conv1").inserted


def test_residual_whose_body_grows_the_map_needs_a_shortcut():
    with pytest.raises(ArchError, match=r"needs an explicit shortcut"):
        archdsl.load("input 8x8x8\nresidual< upsample(2) >")


def test_residual_with_a_mismatched_explicit_shortcut():
    with pytest.raises(ArchError, match=r"body and its shortcut must have one shape.*body 16x4x4, shortcut 16x8x8"):
        archdsl.load("input 8x8x8\nresidual< conv3-16/2 | conv1-16 >")


def test_residual_block_named_after_the_block():
    net = archdsl.load("input 64x8x8\nafter conv = bn\nblock basic(c) = [residual< conv3-c relu conv3-c > relu]\nbasic(64) basic(128)")
    assert net.blocks["basic1"].kind is BlockKind.RESIDUAL and net.blocks["basic1"].name == "basic"
    assert "basic1.conv1" in net.graph and "basic2.shortcut.conv" in net.graph


@pytest.mark.parametrize("channels, r", [(64, 16), (256, 16), (96, 4), (10, 1), (2048, 16)])
def test_squeeze_excitation_parameters(channels, r):
    net = archdsl.load(f"input {channels}x7x7\nse<{r}>")
    assert net.params == 2 * channels**2 // r + channels // r + channels
    assert families(net) == ["gap", "fc", "relu", "fc", "sigmoid", "mul"]
    assert net.outputs["output"] == (channels, 7, 7)
    scale = net.layers[-1]
    assert scale.inputs == ("input", "se1.sigmoid")


def test_se_ratio_from_a_parameter_and_bad_ratios():
    assert archdsl.load("input 32x4x4\nblock b(r) = [se<r>]\nb(8)").params == 2 * 32 * 4 + 4 + 32
    with pytest.raises(ArchError, match=r"se<16> needs a channel count that r divides.*C=8, r=16"):
        archdsl.load("input 8x4x4\nse<16>")
    with pytest.raises(ArchError, match=r"se<3> needs a channel count that r divides.*C=10, r=3"):
        archdsl.load("input 10x4x4\nse<3>")
    with pytest.raises(ArchError, match=r"whole reduction ratio"):
        archdsl.load("input 8x4x4\nse<0>")


def test_inception_concatenates_its_branches():
    net = archdsl.load(
        "input 192x28x28\n"
        "inception< conv1-64 | conv1-96 conv3-128 | conv1-16 conv5-32 | maxpool3/1(pad=1) conv1-32 >"
    )
    concat = net.layer(net.output_nodes["output"])
    assert concat.name == "inception1.concat" and concat.shape == (256, 28, 28)
    assert [net.layer(i).shape[0] for i in concat.inputs] == [64, 128, 32, 32]
    assert [b for b, inst in net.blocks.items() if inst.kind is BlockKind.BRANCH] == [f"inception1.b{i}" for i in range(1, 5)]
    assert net.layer("inception1.b2.conv1").scope == ("inception1", "inception1.b2")


def test_inception_with_an_empty_branch_passes_the_input_through():
    net = archdsl.load("input 8x4x4\ninception< | conv1-4 >")
    assert net.outputs["output"] == (12, 4, 4)


# ---------------------------------------------------------------- bias, receptive field, memory

def test_conv_bias_is_dropped_before_bn_only():
    net = archdsl.load("input 3x8x8\nconv3-4 bn conv3-4 relu bn conv3-4(bias=true) bn conv3-4")
    convs = [l for l in net.layers if isinstance(l.op, Conv)]
    assert [c.op.bias for c in convs] == [False, True, True, True]
    assert [c.params for c in convs] == [108, 148, 148, 148]


def test_conv_bias_is_kept_when_its_output_also_feeds_a_branch():
    net = archdsl.load("input 3x8x8\nconv3-4 -> x\nbn\nadd(@x)")
    assert net.layer("x").op.bias is True


@pytest.mark.parametrize(
    "spec, field, jump",
    [
        ("input 1x64x64\nconv3-1", 3, 1),
        ("input 1x64x64\nconv3-1 conv3-1", 5, 1),
        ("input 1x64x64\nconv3-1/2 conv3-1", 7, 2),
        ("input 1x64x64\nconv7-1/2 maxpool3/2(pad=1)", 11, 4),   # ResNet's stem
        ("input 1x64x64\nconv3-1(dilation=2)", 5, 1),
        # a 2/2 transposed conv gives each output one input: the field stays 6 (2 + 2·2), the jump halves
        ("input 1x64x64\nmaxpool conv3-1 deconv2-1/2", 6, 1),
        # a 4/2 one gives each output two inputs, one input jump (2) apart
        ("input 1x64x64\nmaxpool conv3-1 deconv4-1/2(pad=1)", 8, 1),
        ("input 1x64x64\nmaxpool conv3-1 upsample(2)", 6, 1),
        ("input 1x64x64\nmaxpool upsample(2) conv3-1", 4, 1),
        # fields are measured on the padded input: 3 + (64 − 1)·1
        ("input 1x64x64\nconv3-1 gap", 66, 1),
    ],
)
def test_receptive_field_and_jump(spec, field, jump):
    last = archdsl.load(spec).layers[-1]
    assert last.receptive_field == (field, field)
    assert last.jump == (float(jump), float(jump))


def test_receptive_field_per_axis():
    last = archdsl.load("input 1x32x32\nconv1x7-1 conv3x1-1/1x2").layers[-1]
    assert last.receptive_field == (3, 7)
    assert last.jump == (1.0, 2.0)


def test_activation_memory():
    net = archdsl.load("input 3x4x4\nconv3-8 relu maxpool fc-10")
    expected = 4 * (3 * 16 + 8 * 16 + 8 * 16 + 8 * 4 + 10)
    assert net.activation_memory == expected
    assert [l.memory for l in net.layers] == [4 * math.prod(l.shape) for l in net.layers]


def test_every_layer_knows_its_line_and_token():
    net = archdsl.load("input 3x8x8\n\nconv3-4\n  maxpool3/2(pad=1)\n")
    assert [(l.token, l.line, l.span.col) for l in net.layers[1:]] == [("conv3-4", 3, 1), ("maxpool3/2(pad=1)", 4, 3)]
    assert isinstance(net.layers[0].op, archdsl.ops.Input)


def test_relu_after_a_fc_in_a_flat_network():
    net = archdsl.load("input 16x5x5\nfc-4 relu fc-2")
    assert isinstance(net.layers[2].op, ReLU)
    assert net.params == 400 * 4 + 4 + 4 * 2 + 2


def test_a_layer_type_passed_to_a_block_is_written_as_a_layer():
    net = archdsl.load(
        "input 16x8x8\nblock bneck(e, c, nl=relu) = [conv1-e nl conv3-e(groups=e) nl conv1-c]\n"
        "bneck(64, 24) bneck(72, 24, hardswish) bneck(24, 24, nl=leakyrelu)"
    )
    families = [layer.op.family for layer in net.layers if layer.op.kind is ops.Kind.ACTIVATION]
    assert families == ["relu"] * 2 + ["hardswish"] * 2 + ["leakyrelu"] * 2
    assert net.layer("bneck2.hardswish1").token == "hardswish"  # the table shows the layer, not the parameter


def test_a_misspelled_layer_type_argument_is_an_undefined_name():
    with pytest.raises(ArchError, match=r"undefined name 'hardswsh'; did you mean 'hardswish'\?"):
        archdsl.load("input 16x8x8\nblock b(nl) = [conv1-8 nl]\nb(hardswsh)")
