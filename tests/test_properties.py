"""Property tests: whatever the text, archdsl either checks it or raises ArchError — never
any other exception, and the command line never shows a traceback."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import archdsl
from archdsl import ArchError
from archdsl.budget import count_layers
from archdsl.loader import Loader, load_source
from archdsl.parser import parse

SPECS = Path(__file__).resolve().parents[1] / "specs"
ZOO_TEXTS = {p.name: p.read_text() for p in sorted(SPECS.glob("*.arch"))}
# A bound on the expansion keeps mutated repetition counts (`* 3` → `* 3999`) quick.
MAX_LAYERS = 5_000

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

TOKENS = [
    "conv3-64", "conv1-(4*c)", "conv3x3-8/2", "conv1x7-16", "conv3-8(pad=valid)", "conv3-8(dilation=2)",
    "conv3-8(groups=2)", "conv3-c/s", "deconv2-8/2", "maxpool", "maxpool3/2", "maxpool3/2(ceil=true)",
    "avgpool5/3", "gap", "fc-10", "FC-4096", "soft-max", "relu", "bn", "lrn", "dropout(0.5)",
    "upsample(2)", "flatten", "add(@x)", "concat(@x)", "-> x", "-> y", "@x", "@input", "se<4>",
    "residual<", "inception<", "|", ">", "[", "]", "*", "2", "3", "(", ")", "=", ",", "c", "s",
    "block b(c, s=1) =", "b(8)", "b(16, s=2)", "b", "after conv =", "defaults maxpool(ceil=true)",
    "network n", "input 3x32x32", 'use "lib/resnet_blocks.arch"', 'use "../README.md"', 'use "/etc/passwd"',
    'use "nothere.arch"', 'use "../specs/lib/resnet_blocks.arch"', "input 8x100", "\n", "#", "-", "/", "//", "0", "1000", "x",
    # the mobile and modern families' ops and syntax
    "relu6", "silu", "swish", "hardswish", "hardsigmoid", "mish", "elu(0.5)", "prelu", "prelu(per_channel=true)",
    "mul(@x)", "layerscale", "layernorm", "ln(eps=1e-6)", "groupnorm(4)", "gn(2)", "shuffle(2)", "shuffle(3)",
    "droppath(0.2)", "stochasticdepth(p=0.5, mode=batch)", "adaptiveavgpool(3)", "adaptivemaxpool(2x5)",
    "split -> x, y", "split(2, 6) -> a, b", "split", "->", "a", "b", "@a", "@b", "fc-8(pointwise=true)",
    "se<squeeze=4, act=silu, gate=hardsigmoid, form=conv>", "se<2, form=conv>", "se<r=4>", "se<",
    "conv-8(kernel=3)", "conv-c(kernel=k, groups=in_channels)", "block m(k, t=2) =", "m(3)", "m(k=5, t=1)",
    "conv1-(divisible(c * 1.1, 8))", "* (ceil(2 * 1.2))", "max(", "min(", "ceil(", "divisible(", "in_channels", "1.1",
    # tensors where values go, parameters named twice
    "b(@x)", "m(k=@input)", "block b(c, c) =", "block m(k, t=2, k=3) =",
]

# Numbers of up to 6,000 digits: Python's int() refuses 4,300, and sizes stop at 10^15.
BIG_NUMBERS = st.one_of(
    st.integers(1, 6000).map(lambda n: "9" * n),
    st.text(alphabet="0123456789", min_size=15, max_size=120),
    st.sampled_from(["999999999999999", "1000000000000000", "4294967296", "18446744073709551617"]),
)

ALPHABET = st.sampled_from(list("abcdefghijklmnopqrstuvwxyzCFINX0123456789-/()[]<>|@*=,.#\"% \n\t_+-"))


@pytest.fixture(scope="module", autouse=True)
def in_specs_dir():
    """Spec text resolves `use` against the working directory: run where the zoo's library is."""
    before = os.getcwd()
    os.chdir(SPECS)
    yield
    os.chdir(before)


def budget(text: str) -> int:
    """What the layer budget counted for `text` before it was expanded."""
    source, _ = load_source(text)
    spec = parse(source)
    return count_layers(spec, Loader().context(spec, None), 10**12)


def check(text: str) -> None:
    try:
        net = archdsl.load(text, max_layers=MAX_LAYERS)
    except ArchError as err:
        message = err.format()  # formatting must not fail either
        assert isinstance(message, str) and message
        assert "error: " in message
        return
    # a spec that checks has a consistent analysis, and its budget was never below its size
    assert budget(text) >= len(net.layers) - 1
    assert net.params >= 0 and net.macs >= 0
    assert list(net.outputs)
    for layer in net.layers:
        assert all(d >= 1 for d in layer.shape), layer


@SETTINGS
@given(st.text(max_size=200))
def test_random_unicode_text(text):
    check(text)


@SETTINGS
@given(st.text(alphabet=ALPHABET, max_size=120))
def test_random_spec_characters(text):
    check("input 3x16x16\n" + text)


@SETTINGS
@given(st.lists(st.sampled_from(TOKENS), max_size=25))
def test_random_token_sequences(tokens):
    check("input 8x16x16\n" + " ".join(tokens))


# Where a number can be written: {} takes it. Sizes, counts, strides, options, arithmetic, train values.
NUMBER_PLACES = [
    "input {}", "input 3x{}x8", "input 3x8x8\nconv3-8 * {}", "input 3x8x8\nconv{}-8", "input 3x8x8\nconv3x{}-8",
    "input 3x8x8\nconv3-{}", "input 3x8x8\nconv3-8/{}", "input 3x8x8\nconv3-8(pad={})",
    "input 3x8x8\nconv3-8(dilation={})", "input 3x8x8\nmaxpool{}/{}", "input 1x{}\nmaxpool{}/{}",
    "input 3x8x8\nconv3-(2*{})", "input 3x8x8\nconv3-({}//{})", "input 3x8x8\nupsample({})",
    "input 3x8x8\nrelu dropout(0.{})", "input 3x8x8\nrelu dropout({}e-{})", "input 3x8x8\n[relu] * ({}-{})",
    "block b(c={}) = conv3-c\ninput 3x8x8\nb", "input 3x8x8\nse<{}>", "input 3x8x8\nfc-{}",
    "input 3x8x8\nrelu\ntrain {{ epochs = {} }}", "input 3x8x8\nrelu\ntrain {{ lr = {}.{} }}",
    "input 3x8x8\nrelu\ntrain {{ schedule = step({}, 0.1) }}",
]


@SETTINGS
@given(st.sampled_from(NUMBER_PLACES), st.lists(BIG_NUMBERS, min_size=3, max_size=3))
def test_big_numbers_anywhere(place, numbers):
    check(place.format(*numbers))


@SETTINGS
@given(st.integers(1, 60), st.integers(2, 4), st.sampled_from(["a*2", "a*2+{k}", "a+{k}", "a", "(a*{k})%7+1"]),
       st.sampled_from(["relu", "conv1-(a % 8 + 1)", "[relu * (a % 3)]", "fc-(a % 5 + 1)"]))
def test_exponential_blocks(depth, fan_out, argument, leaf):
    """Each block calls the one below `fan_out` times with different arguments: fan_out^depth layers,
    counted (and refused past the limit) without visiting them one by one."""
    lines = ["input 3x8x8", f"block f0(a) = {leaf}"]
    for level in range(1, depth + 1):
        calls = " ".join(f"f{level - 1}({argument.format(k=k)})" for k in range(fan_out))
        lines.append(f"block f{level}(a) = [{calls}]")
    check("\n".join(lines + [f"f{depth}(1)"]))


# Residuals on vectors (fc after fc) and on maps, with and without a shortcut, widths changing or not.
@SETTINGS
@given(st.sampled_from(["input 16", "input 3x8x8\nflatten", "input 3x8x8\ngap", "input 3x8x8"]),
       st.lists(st.sampled_from(["fc-16", "fc-4", "fc-(16)", "relu", "bn", "dropout(0.1)", "conv1-16", "se<2>",
                                 "layernorm", "flatten", "gap"]), min_size=0, max_size=4),
       st.sampled_from(["", "| fc-16", "| fc-4", "| relu", "| conv1-16"]), st.integers(1, 3))
def test_vector_residuals(head, body, shortcut, repeat):
    check(f"{head}\nfc-16\n" + f"residual< {' '.join(body)} {shortcut} >\n" * repeat + "fc-10")


def mutate(data, text: str) -> str:
    for _ in range(data.draw(st.integers(1, 4), label="mutations")):
        kind = data.draw(st.sampled_from(["delete", "insert", "replace", "swap", "duplicate", "number"]), label="kind")
        if not text:
            text = "x"
        i = data.draw(st.integers(0, len(text) - 1), label="at")
        if kind == "delete":
            j = data.draw(st.integers(i, min(len(text), i + 8)), label="to")
            text = text[:i] + text[j:]
        elif kind == "insert":
            text = text[:i] + data.draw(st.text(alphabet=ALPHABET, min_size=1, max_size=4), label="insert") + text[i:]
        elif kind == "number":  # a digit of the text becomes a huge number, or one is inserted
            digits = [k for k, c in enumerate(text) if c.isdigit()] or [i]
            at = data.draw(st.sampled_from(digits), label="digit")
            text = text[:at] + data.draw(BIG_NUMBERS, label="number") + text[at + 1 :]
        elif kind == "replace":
            text = text[:i] + data.draw(ALPHABET, label="char") + text[i + 1 :]
        elif kind == "swap":
            words = text.split(" ")
            a = data.draw(st.integers(0, len(words) - 1), label="a")
            b = data.draw(st.integers(0, len(words) - 1), label="b")
            words[a], words[b] = words[b], words[a]
            text = " ".join(words)
        else:
            lines = text.split("\n")
            k = data.draw(st.integers(0, len(lines) - 1), label="line")
            lines.insert(k, lines[k])
            text = "\n".join(lines)
    return text


@SETTINGS
@given(st.data())
def test_mutated_zoo_specs(data):
    name = data.draw(st.sampled_from(sorted(ZOO_TEXTS)), label="spec")
    check(mutate(data, ZOO_TEXTS[name]))


def test_the_unmutated_zoo_checks():
    for name, text in ZOO_TEXTS.items():
        archdsl.load(text)  # as text, from the specs folder: `use` still resolves


@settings(max_examples=3, deadline=None, derandomize=True)
@given(st.data())
def test_cli_on_mutated_specs(tmp_path_factory, data):
    """Through the command line: exit 0 or 1, never a traceback."""
    folder = tmp_path_factory.mktemp("mutated")
    (folder / "lib").mkdir()
    (folder / "lib" / "resnet_blocks.arch").write_text((SPECS / "lib" / "resnet_blocks.arch").read_text())
    paths = []
    for k in range(5):
        name = data.draw(st.sampled_from(sorted(ZOO_TEXTS)), label="spec")
        path = folder / f"m{k}_{name}"
        path.write_text(mutate(data, ZOO_TEXTS[name]), encoding="utf-8")
        paths.append(path.name)
    result = subprocess.run(
        [sys.executable, "-m", "archdsl", "check", "-q", *paths],
        cwd=folder, capture_output=True, text=True, timeout=120,
        env={k: v for k, v in os.environ.items() if k != "ARCHDSL_DEBUG"},
    )
    assert result.returncode in (0, 1), result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    assert (result.returncode == 1) == (": error: " in result.stderr)
