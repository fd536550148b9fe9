"""Bad input: every kind gets one clear `file:line:col: error: …` message with the source line,
a caret, what was expected and what was received — and never a traceback."""
from __future__ import annotations

import os
import re
import time

import pytest

import archdsl
from archdsl import ArchError
from archdsl.errors import ExpansionError, ShapeError, SpecArgumentError, SpecImportError, SpecNameError, SpecSyntaxError


def error(text_or_path, kind=ArchError) -> ArchError:
    with pytest.raises(ArchError) as info:
        archdsl.load(text_or_path)
    assert isinstance(info.value, kind), f"{type(info.value).__name__}: {info.value.format()}"
    return info.value


def assert_located(err: ArchError, line: int, col: int, file: str = "<spec>", under: str | None = None):
    """`file:line:col: error: …`, then the source line, then `^~~~` under exactly `under`."""
    assert (err.span.line, err.span.col) == (line, col), err.format()
    text = err.format()
    head, *excerpt = text.split("\n")
    assert head.startswith(f"{file}:{line}:{col}: error: "), text
    assert text.count("error:") == 1, text
    if under is not None:
        assert len(excerpt) == 2, text
        source_line, marker = (part[4:] for part in excerpt)
        start = marker.index("^")
        assert marker[start:] == "^" + "~" * (len(under) - 1), text
        assert source_line[start : start + len(under)] == under, text
    return text


# ---------------------------------------------------------------- syntax

@pytest.mark.parametrize(
    "text, line, col, received",
    [
        ("input 3x8x8\nconv3-64 )\n", 2, 10, r"Received: '\)'"),
        ("input 3x8x8\n[conv3-64\n", 2, 9, r"Received: the end of the file"),
        ("input 3x8x8\ninception< conv1-8 | conv1-8\n", 2, 28, r"expected .*'>'.*Received: the end of the file"),
        ("input 3x8x8\nconv3-\n", 2, 6, r"expected .*a number.*Received: the end of the file"),
        ("input 3x8x8\nconv3-8 $\n", 2, 9, r"unexpected character '\$'.*Received: '\$'"),
        ("input 3x8x8\nconv3-8 \"str\" relu\n", 2, 15, r"expected ':'.*Received: 'relu'"),  # a label needs its colon
        ("input\nconv3-8\n", 2, 1, r"expected .*sizes like 3x224x224"),
        ("input 3x8x8\nblock = [relu]\n", 2, 7, r"expected a name"),
        # Numbers are ASCII digits: Python's \d would read Arabic-Indic four as 4 and check `conv3-4`.
        ("input 3x8x8\nconv3-\u0664\n", 2, 7, r"unexpected character '\u0664'"),
        ("input 3x\uff18x8\nrelu\n", 1, 9, r"unexpected character '\uff18'"),
    ],
)
def test_syntax_errors(text, line, col, received):
    err = error(text, SpecSyntaxError)
    message = assert_located(err, line, col)
    assert re.search(r"error: (unexpected .*|the spec ends too early); expected ", message), message
    assert re.search(received, message), message


def test_syntax_error_shows_the_line_and_a_caret():
    err = error("input 3x8x8\n  conv3-64 )  # oops\n")
    head, source_line, caret = err.format().split("\n")
    assert head.startswith("<spec>:2:12: error: unexpected ')'; expected the end of the file, ")
    assert head.endswith(". Received: ')'") and "a layer" in head
    assert source_line == "      conv3-64 )  # oops"
    assert caret == "               ^"


@pytest.mark.parametrize("odd", ["\f", "\v", "\x1c", "\x85", "\u2028", "\r"])
def test_excerpt_shows_the_right_line_after_odd_line_breaks(odd):
    """Only \\n ends a line for the parser; the excerpt must agree (str.splitlines() would not)."""
    err = error(f"input 3x8x8\n# a comment with {odd} in it\nconv3-64 )\n", SpecSyntaxError)
    assert (err.span.line, err.span.col) == (3, 10)
    assert err.format().split("\n")[1] == "    conv3-64 )"


def test_a_second_input_or_network_line():
    assert_located(error("input 3x8x8\ninput 3x8x8\nrelu", SpecSyntaxError), 2, 1, under="input 3x8x8")
    assert "named twice" in error("network a\nnetwork b\ninput 3x8x8\nrelu").message


# ---------------------------------------------------------------- names

def test_misspelled_layer():
    err = error("input 3x8x8\ncnov3-64\n", SpecNameError)
    text = assert_located(err, 2, 1, under="cnov3")
    assert "unknown layer 'cnov3'; did you mean 'conv'?" in text
    assert "Expected a layer type (" in text and "Received: cnov3-64" in text


@pytest.mark.parametrize(
    "layer, suggestion",
    [("maxpol", "maxpool"), ("dropuot(0.5)", "dropout"), ("rleu", "relu"), ("bacthnorm", "batchnorm"), ("FC_-10", None)],
)
def test_did_you_mean_for_layers(layer, suggestion):
    err = error(f"input 3x8x8\n{layer}\n", SpecNameError)
    if suggestion:
        assert f"did you mean '{suggestion}'?" in err.message
    assert err.span.line == 2


def test_unknown_block_suggests_a_block():
    err = error("input 3x32x32\nblock resblk(c) = [conv3-c]\nresblock(64)\n", SpecNameError)
    assert_located(err, 3, 1, under="resblock")
    assert "unknown layer 'resblock'; did you mean 'resblk'?" in err.message


def test_misspelled_option():
    err = error("input 3x8x8\nconv3-64(dilatoin=2)\n", SpecNameError)
    text = assert_located(err, 2, 10, under="dilatoin=2")
    assert "conv has no option 'dilatoin'; did you mean 'dilation'?" in text
    assert "(its options: kernel, pad, dilation, groups, bias)" in text and "Received: dilatoin=2" in text


def test_undefined_tensor():
    err = error("input 3x8x8\nconv3-64 -> enc3x\nconv3-64\nconcat(@enc3)\n", SpecNameError)
    text = assert_located(err, 4, 8, under="@enc3")
    assert "undefined tensor '@enc3'; did you mean 'enc3x'?" in text
    assert "Received: @enc3" in text


def test_undefined_tensor_in_a_block_does_not_see_the_callers_names():
    err = error("input 3x8x8\n-> x\nblock b = [add(@x)]\nb\n", SpecNameError)
    assert err.span.line == 3 and "undefined tensor '@x'" in err.message


def test_undefined_name_in_an_expression():
    err = error("input 3x8x8\nblock b(width) = [conv3-(2*widht)]\nb(4)\n", SpecNameError)
    assert_located(err, 2, 28, under="widht")
    assert "undefined name 'widht' (parameters here: width); did you mean 'width'? Received: widht" in err.message


# ---------------------------------------------------------------- arguments

def test_dropout_probability():
    err = error("input 3x8x8\ndropout(1.5)\n", SpecArgumentError)
    text = assert_located(err, 2, 1, under="dropout(1.5)")
    assert "p must be a number in [0, 1). Received: p=1.5" in text


def test_bad_padding_word():
    err = error("input 3x8x8\nconv3-64(pad=sane)\n", SpecArgumentError)
    text = assert_located(err, 2, 1)
    assert "pad must be same, valid, full, a number or sizes like 1x3; did you mean 'same'?" in text
    assert "Received: pad='sane'" in text


@pytest.mark.parametrize(
    "layer, message",
    [
        ("conv3-0", r"a number of filters must be a positive whole number. Received: 0"),
        ("conv0-8", r"conv: the kernel size must be a positive whole number. Received: 0"),
        ("conv3x0-8", r"conv: the kernel size must be a positive whole number. Received: 0"),
        ("maxpool0", r"maxpool: the kernel size must be a positive whole number. Received: 0"),
        ("conv3-8(dilation=0)", r"dilation must be a positive whole number. Received: 0"),
        ("conv3-8(dilation=1.5)", r"dilation must be a positive whole number. Received: 1.5"),
        ('conv3-8(dilation="2")', r"dilation must be a positive whole number. Received: '2'"),
        ("deconv2-8/2(output_padding=-1)", r"output_padding must be a whole number ≥ 0"),
        ("deconv2-8/2(output_padding=0.5)", r"output_padding must be a whole number ≥ 0"),
        ("conv1-8/" + "9" * 40, r"the stride must be at most 1,000,000,000,000,000"),
        ("conv3-" + "9" * 40, r"a number of filters must be at most 1,000,000,000,000,000"),
        ("upsample(1000000000000000) upsample(1000000000000000)", r"makes a dimension larger than 1,000,000,000,000,000"),
        ("conv3", r"conv needs a number of filters, as in conv3-64. Received: conv3"),
        ("conv-8", r"conv needs a kernel size, as in conv3-64"),
        ("relu-8", r"relu takes no '-8'"),
        ("relu(2)", r"relu takes no further positional argument. Received: 2"),
        ("conv3-8(groups=3)", r"groups must divide both the input and output channels"),
        ("conv3-8(bias=maybe)", r"bias must be true or false. Received: bias='maybe'"),
        ("conv3-8(pad=1, pad=2)", r"the option 'pad' is given twice"),
        ("conv3-8/0", r"the stride must be a positive whole number. Received: 0"),
        ("maxpool3/2(pad=2)", r"padding may be at most half the window"),
        ("upsample(2, mode=cubic)", r"mode must be one of nearest, bilinear. Received: mode='cubic'"),
        ("leakyrelu(-1)", r"slope must be a number in \[0, inf\)"),
        ("add", r"add needs the current tensor and at least one more, as in add\(@e1\)"),
        ("relu(@input)", r"relu takes one input, the current tensor"),
        ("fc-10(bias=@input)", r"a tensor is passed as @name, not as an option"),
    ],
)
def test_bad_arguments(layer, message):
    err = error(f"input 4x8x8\n{layer}\n", ArchError)
    assert err.span is not None and err.span.line == 2, err.format()
    assert re.search(message, err.message), err.message
    assert err.format().startswith("<spec>:2:")


def test_block_with_too_many_arguments():
    err = error("input 3x32x32\nblock b(c) = [conv3-c]\nb(64, 32)\n", SpecArgumentError)
    assert_located(err, 3, 7, under="32")
    assert "block 'b' takes 1 argument: b(c). Received: 2" in err.message


def test_block_with_too_few_arguments():
    err = error("input 3x32x32\nblock b(c, d) = [conv3-c conv3-d]\nb(64)\n", SpecArgumentError)
    assert_located(err, 3, 1, under="b(64)")
    assert "block 'b' needs a value for 'd': b(c, d). Received: b(64)" in err.message


def test_block_with_a_misspelled_keyword():
    err = error("input 3x32x32\nblock b(width) = [conv3-width]\nb(widht=3)\n", SpecNameError)
    assert_located(err, 3, 3)
    assert "block 'b' has no parameter 'widht'; did you mean 'width'?" in err.message


@pytest.mark.parametrize("definition, at, under", [("block b(c, c) = [conv3-c]", 12, "c"),
                                                   ("block b(c, s=1, c=2) = [conv3-c]", 17, "c=2")])
def test_a_parameter_named_twice(definition, at, under):
    """`block b(c, c)` once bound the second value and lost the first, silently."""
    err = error(f"input 3x32x32\n{definition}\nb(8, 16)\n", SpecNameError)
    assert_located(err, 2, at, under=under)
    assert "block 'b' names the parameter 'c' twice; give each parameter its own name. Received: block b(c, " in err.message


@pytest.mark.parametrize("call", ["b(@input)", "b(c=@input)"])
def test_a_tensor_as_a_block_argument(call):
    """Once "'RefArg' cannot be used as a value here", a class name of archdsl's, nothing expected or received."""
    err = error(f"input 3x32x32\nblock b(c) = [conv3-c]\n{call}\n", SpecArgumentError)
    assert_located(err, 3, call.index("@") + 1, under="@input")
    assert err.message.startswith("a tensor cannot be a value here: a block's arguments and arithmetic take numbers")
    assert err.message.endswith("Received: @input") and "RefArg" not in err.message


def test_block_called_like_a_layer():
    err = error("input 3x32x32\nblock b(c) = [conv3-c]\nb-64\n", SpecArgumentError)
    assert "block 'b' takes arguments in parentheses, as in b(c)" in err.message


def test_absurd_sizes_are_errors_and_huge_counts_still_print(capsys):
    assert "input sizes must be between 1 and 1,000,000,000,000,000" in error("input 3x" + "9" * 100 + "x8\nrelu").message
    # sixty dimensions of 10^15 each: the products pass any float; the table still prints
    net = archdsl.load("input " + "x".join(["999999999999999"] * 60) + "\nrelu")
    from archdsl.report import table
    assert "activations 8.00e+888 TB" in table(net)
    # strides of 10^15, thirty times over: the jump is exact, not an overflow
    net = archdsl.load("input 3x8x8\n[conv1-8/999999999999999] * 30")
    assert net.layers[-1].jump[0] == 999999999999999**30


def test_no_input_and_no_layers():
    assert_located(error("conv3-8\n", SpecArgumentError), 1, 1, under="conv3-8")
    assert "the spec has no input; expected a line like `input 3x224x224`" in error("conv3-8\n").message
    assert "no layers after its input" in error("input 3x8x8\n").message
    assert "input sizes must be between 1 and" in error("input 3x0x8\nrelu\n").message


# ---------------------------------------------------------------- shapes

def test_add_with_different_channels():
    err = error("input 3x32x32\nconv3-64 -> x\nconv3-32\nadd(@x)\n", ShapeError)
    text = assert_located(err, 4, 1, under="add(@x)")
    assert "add needs tensors of one shape, but their channels differ. Received: 32x32x32, 64x32x32" in text


def test_inception_branches_with_different_sizes():
    err = error("input 3x32x32\ninception< conv3-8 | conv3-8/2 >\n", ShapeError)
    assert_located(err, 2, 1)
    assert "inception branches must keep one spatial size" in err.message
    assert "branch 1: 8x32x32; branch 2: 8x16x16" in err.message


def test_2d_convolution_on_a_1d_input():
    err = error("input 3x100\nconv3x3-64\n", ShapeError)
    assert_located(err, 2, 1, under="conv3x3-64")
    assert "conv3x3-64 is a 2-D conv but its input is 1-D. Received: input shape 3x100" in err.message


def test_a_layer_that_shrinks_the_map_below_1x1():
    err = error("input 3x32x32\nmaxpool * 5\nconv3-8(pad=valid)\n", ShapeError)
    assert_located(err, 3, 1)
    assert "shrinks the map below 1x1" in err.message and "Received: input shape 3x1x1" in err.message


def test_shape_error_inside_a_block_points_at_the_layer_in_the_block():
    err = error("input 3x4x4\nblock down = [maxpool maxpool maxpool]\ndown\n", ShapeError)
    assert_located(err, 2, 31, under="maxpool")


# ---------------------------------------------------------------- expansion

def test_recursive_block():
    err = error("input 3x8x8\nblock a = [conv3-8 a]\na\n", ExpansionError)
    assert_located(err, 2, 20, under="a")
    assert "block 'a' calls itself (a → a); blocks cannot recurse" in err.message


def test_mutually_recursive_blocks():
    err = error("input 3x8x8\nblock a = [conv3-8 b]\nblock b = [relu a]\na\n", ExpansionError)
    assert "block 'a' calls itself (a → b → a)" in err.message


def test_expansion_to_billions_of_layers_fails_fast():
    text = "input 3x8x8\nblock a = [conv3-8 * 1000]\nblock b = [a * 1000]\nblock c = [b * 1000]\nc\n"
    start = time.perf_counter()
    err = error(text, ExpansionError)
    assert time.perf_counter() - start < 2.0
    assert re.search(r"expands to [\d,]+ layers; archdsl builds at most 50,000", err.message)
    assert err.span.line in (3, 4)


def test_expansion_bound_counts_after_layers_and_composites():
    text = "input 3x8x8\nafter conv = [bn relu]\n[conv3-8] * 100000\n"
    err = error(text, ExpansionError)
    assert "300,000" in err.message
    assert archdsl.load("input 3x8x8\n[relu] * 100", max_layers=100).params == 0
    with pytest.raises(ExpansionError):
        archdsl.load("input 3x8x8\n[relu] * 101", max_layers=100)


@pytest.mark.parametrize(
    "body",
    [
        "[" * 5000 + "relu" + "]" * 5000,
        "residual< " * 300 + "relu" + " >" * 300,
        "inception< " * 300 + "relu" + " >" * 300,
        "conv3-(" + "-" * 3000 + "8)",
        "conv3-(" + "+".join(["1"] * 5000) + ")",
    ],
)
def test_deep_nesting_is_an_error_not_a_crash(body):
    err = error("input 3x8x8\n" + body + "\n", SpecSyntaxError)
    assert err.span.line == 2
    assert "the spec nests more than 100 levels deep" in err.message


def test_long_chains_of_block_calls_are_an_error_not_a_crash():
    chain = "".join(f"block a{i} = [a{i + 1}]\n" for i in range(3000)) + "block a3000 = [relu]\n"
    err = error("input 3x8x8\n" + chain + "a0\n", ExpansionError)
    assert "nests more than 100 levels deep" in err.message and "a0 → a1 → a2 → …" in err.message
    # blocks of deep brackets calling each other: each file-level nesting is fine, the sum is not
    chain = "".join(f"block a{i} = " + "[" * 60 + f"a{i + 1}" + "]" * 60 + "\n" for i in range(30))
    assert "nests more than 100" in error("input 3x8x8\n" + chain + "block a30 = [relu]\na0\n", ExpansionError).message


def test_reasonable_nesting_is_fine():
    assert archdsl.load("input 3x8x8\n" + "[" * 80 + "relu" + "]" * 80).layers[-1].op.family == "relu"
    chain = "".join(f"block a{i} = [a{i + 1}]\n" for i in range(30)) + "block a30 = [relu]\n"
    assert len(archdsl.load("input 3x8x8\n" + chain + "a0\n").layers) == 2
    assert archdsl.load("input 3x8x8\nconv3-(" + "+".join(["1"] * 50) + ")").outputs["output"] == (50, 8, 8)


def test_a_spec_never_executes_code(tmp_path):
    marker = tmp_path / "pwned"
    for text in [
        "input 3x8x8\n__import__\n",
        f'input 3x8x8\nconv3-(__import__("os").system("touch {marker}"))\n',
        "input 3x8x8\nblock b(c) = [conv3-(c.__class__)]\nb(1)\n",
        "input 3x8x8\nconv3-(eval)\n",
        "input 3x8x8\nconv3-8(pad=exec)\n",
    ]:
        err = error(text)
        assert err.span is not None and err.span.line in (2, 3), err.format()
    assert not marker.exists()
    assert isinstance(error("input 3x8x8\n__import__\n"), SpecNameError)
    assert "undefined name '__import__'" in error("input 3x8x8\nconv3-(__import__)\n").message


# ---------------------------------------------------------------- files and imports

def test_missing_import(tmp_path):
    main = tmp_path / "main.arch"
    main.write_text('input 3x8x8\nuse "lib/nothere.arch"\nrelu\n')
    err = error(main, SpecImportError)
    assert_located(err, 2, 1, file=str(main), under='use "lib/nothere.arch"')
    assert 'cannot find "lib/nothere.arch"' in err.message and "relative to the importing file" in err.message


def test_import_cycle(tmp_path):
    (tmp_path / "a.arch").write_text('use "b.arch"\nblock x = [relu]\n')
    (tmp_path / "b.arch").write_text('use "a.arch"\nblock y = [relu]\n')
    main = tmp_path / "main.arch"
    main.write_text('input 3x8x8\nuse "a.arch"\nx\n')
    err = error(main, SpecImportError)
    assert "import cycle: a.arch → b.arch → a.arch" in err.message
    assert err.span.source.name.endswith("b.arch") and err.span.line == 1


def test_a_file_importing_itself(tmp_path):
    main = tmp_path / "main.arch"
    main.write_text('input 3x8x8\nuse "main.arch"\nrelu\n')
    assert "import cycle: main.arch → main.arch" in error(main, SpecImportError).message


def test_error_in_an_imported_file_names_that_file(tmp_path):
    (tmp_path / "lib.arch").write_text("block x = [relu\n")
    main = tmp_path / "main.arch"
    main.write_text('input 3x8x8\nuse "lib.arch"\nx\n')
    err = error(main, SpecSyntaxError)
    assert err.format().startswith(f"{tmp_path / 'lib.arch'}:1:")


def test_empty_files(tmp_path):
    for content in ["", "\n\n", "   \n", "# only a comment\n# and another\n"]:
        path = tmp_path / "empty.arch"
        path.write_text(content)
        err = error(path, SpecSyntaxError)
        assert err.format().startswith(f"{path}:1:1: error: empty spec; expected at least `input CxHxW` and one layer.")
        assert "Received: an empty file" in err.message


def test_binary_file(tmp_path):
    path = tmp_path / "model.arch"
    path.write_bytes(b"input 3x8x8\nconv\x00\x01\x02\x1b[2J\xff")
    err = error(path, SpecSyntaxError)
    text = assert_located(err, 2, 5, file=str(path))
    assert "is not a text spec: it holds binary data (a NUL byte at offset 16)" in text
    assert "\x1b" not in text and "\x00" not in text  # nothing that could drive the terminal


def test_non_utf8_file(tmp_path):
    path = tmp_path / "latin1.arch"
    path.write_bytes("input 3x8x8\n# caf\u00e9\nrelu\n".encode("latin-1"))
    err = error(path, SpecSyntaxError)
    assert_located(err, 2, 6, file=str(path))
    assert "is not UTF-8 text (byte 17: 0xe9)" in err.message


@pytest.mark.parametrize("kind", ["folder", "missing", "inside-a-missing-folder", "inside-a-file"])
def test_unreadable_paths(tmp_path, kind):
    """Paths that cannot be read even as root (chmod does not stop root; a FIFO would hang)."""
    if kind == "folder":
        path = tmp_path / "folder.arch"
        path.mkdir()
        expected = "is a folder; expected a .arch spec file"
    elif kind == "missing":
        path = tmp_path / "missing.arch"
        expected = "no such spec file"
    elif kind == "inside-a-missing-folder":
        path = tmp_path / "no" / "such" / "dir" / "x.arch"
        expected = "no such spec file"
    else:
        (tmp_path / "plain").write_text("input 3x8x8\nrelu\n")
        path = tmp_path / "plain" / "x.arch"  # ENOTDIR
        expected = "cannot read"
    err = error(path, SpecImportError)
    assert err.format().startswith(f"{path}:1:1: error: "), err.format()
    assert expected in err.message and str(path) in err.message


def test_unreadable_file_without_permission(tmp_path, monkeypatch):
    # Tests run as root here, where chmod 000 blocks nothing: the permission
    # error is raised where the loader opens the file, exactly as the OS would.
    path = tmp_path / "secret.arch"
    path.write_text("input 3x8x8\nrelu\n")
    import archdsl.files as files

    def denied(file, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(file))

    monkeypatch.setattr(files, "_open_nonblocking", denied)
    err = error(path, SpecImportError)
    assert "cannot read" in err.message and "permission denied" in err.message
    assert err.format().startswith(f"{path}:1:1: error: ")


@pytest.mark.parametrize("token", ["a", "relu", "1", "(", "# a comment"])
def test_too_many_tokens_is_refused_before_parsing(token):
    from archdsl.parser import MAX_TOKENS

    # The input line holds 2 tokens, each line below 1: the first past the bound is on line MAX_TOKENS.
    err = error("input 3x8x8\n" + f"{token}\n" * MAX_TOKENS, SpecSyntaxError)
    text = assert_located(err, MAX_TOKENS, 1, under=token)
    assert f"the spec holds more than {MAX_TOKENS:,} tokens" in text and f"Received: token {MAX_TOKENS + 1:,}" in text


def test_a_spec_at_the_token_bound_is_read():
    from archdsl.parser import MAX_TOKENS

    # 2 tokens of input, 8 a layer (conv3 - 8 ( pad = 1 )), comments (1 each) to make up exactly MAX_TOKENS.
    layers, comments = divmod(MAX_TOKENS - 2, 8)
    net = archdsl.load("input 3x8x8\n" + "conv3-8(pad=1)\n" * layers + "# padding\n" * comments)
    assert len(net.layers) == layers + 1  # and the input


def test_a_message_that_quotes_a_huge_spec_keeps_its_head_and_tail():
    from archdsl.errors import MESSAGE_WIDTH

    params = ", ".join(f"p{i}" for i in range(10_000))
    err = error(f"input 3x8x8\nblock b({params}) = relu\nb(1)\n", SpecArgumentError)
    assert len(err.message) < MESSAGE_WIDTH + 60
    assert err.message.startswith("block 'b' needs a value for 'p1': b(p0, p1, ")
    assert "characters left out" in err.message and err.message.endswith("p9999). Received: b(1)")
    assert_located(err, 3, 1, under="b(1)")


def test_huge_file(tmp_path):
    path = tmp_path / "huge.arch"
    path.write_text("input 3x8x8\n" + "relu\n" * 1_000_000)
    assert "is over 4,194,304 bytes, the most a spec file may hold" in error(path, SpecSyntaxError).message


@pytest.mark.skipif(not hasattr(os, "mkfifo") or not os.path.exists("/dev/zero"), reason="needs FIFOs and /dev/zero")
def test_fifos_and_devices_are_refused_not_read(tmp_path, run_archdsl):
    """Reading a FIFO would block, and /dev/zero never ends: in a subprocess, so that a regression fails, not hangs."""
    fifo = tmp_path / "pipe.arch"
    os.mkfifo(fifo)
    result = run_archdsl("check", fifo, "/dev/zero", timeout=60)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"{fifo}:1:1: error: {fifo} is not a regular file; expected a .arch spec file",
        "/dev/zero:1:1: error: /dev/zero is not a regular file; expected a .arch spec file",
    ]


def test_load_rejects_what_is_neither_path_nor_text():
    with pytest.raises(ArchError, match="takes a path or spec text. Received: int"):
        archdsl.load(42)


# ---------------------------------------------------------------- through the command line

BAD = {
    "syntax.arch": ("input 3x8x8\nconv3-64 )\n", r"syntax\.arch:2:10: error: unexpected '\)'; expected .*Received: '\)'"),
    "misspelled.arch": ("input 3x8x8\ncnov3-64\n", r"misspelled\.arch:2:1: error: unknown layer 'cnov3'; did you mean 'conv'\?"),
    "option.arch": ("input 3x8x8\nconv3-64(dilatoin=2)\n", r"option\.arch:2:10: error: conv has no option 'dilatoin'; did you mean 'dilation'\?"),
    "tensor.arch": ("input 3x8x8\n-> enc3x\nconcat(@enc3)\n", r"tensor\.arch:3:8: error: undefined tensor '@enc3'; did you mean 'enc3x'\?"),
    "shape.arch": ("input 3x8x8\n-> x\nconv3-4\nadd(@x)\n", r"shape\.arch:4:1: error: add needs tensors of one shape"),
    "recursion.arch": ("input 3x8x8\nblock a = [a]\na\n", r"recursion\.arch:2:12: error: block 'a' calls itself"),
    "huge.arch": ("input 3x8x8\nblock a = [relu * 1000]\nblock b = [a * 1000]\nblock c = [b * 1000]\nc\n", r"huge\.arch:\d:\d+: error: .*expands to"),
    "empty.arch": ("", r"empty\.arch:1:1: error: empty spec"),
}


def test_cli_prints_one_located_error_per_bad_file(tmp_path, run_archdsl):
    for name, (text, _) in BAD.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "binary.arch").write_bytes(b"\x00\x01\x02")
    (tmp_path / "folder.arch").mkdir()
    names = [*BAD, "binary.arch", "folder.arch", "no/such/dir.arch"]
    result = run_archdsl("check", *names, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    heads = [line for line in result.stderr.splitlines() if ": error: " in line]
    assert len(heads) == len(names), result.stderr  # one message per file, no cascades
    for (name, (_, pattern)), head in zip(BAD.items(), heads):
        assert re.match(pattern, head), (name, head)
    assert heads[-3].startswith("binary.arch:1:1: error: ")
    assert heads[-2].startswith("folder.arch:1:1: error: ")
    assert heads[-1].startswith("no/such/dir.arch:1:1: error: no such spec file")
    # each message with its source line and a caret
    block = result.stderr.split("misspelled.arch:2:1:")[1].splitlines()
    assert block[1:3] == ["    cnov3-64", "    ^~~~~"]
