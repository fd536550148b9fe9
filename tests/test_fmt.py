"""`archdsl fmt`: idempotent, keeps every comment, and the formatted spec checks to the same graph —
over the zoo, the mutated zoo (the property tests' mutations) and random token sequences."""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_properties import TOKENS, ZOO_TEXTS, mutate

import archdsl
from archdsl import ArchError
from archdsl.formatter import format_text

SPECS = Path(__file__).resolve().parents[1] / "specs"
FUZZ = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def graph(text: str):
    """What a spec checks to, as a user sees it: each layer's name, shape and parameters; or the error."""
    try:
        net = archdsl.load(text, max_layers=5_000)
    except ArchError as err:
        return ("error", type(err).__name__)
    return [(layer.name, layer.shape, layer.params) for layer in net.layers], dict(net.outputs)


def comments(text: str) -> list[str]:
    return [m.group().rstrip() for m in re.finditer(r"#[^\n]*", re.sub(r'"[^"\n]*"', '""', text))]


def assert_formats_safely(text: str) -> str:
    try:
        once = format_text(text)
    except ArchError as err:
        assert type(err).__name__ != "FormatError", err.format()
        return text  # does not parse: fmt refuses it, as check does
    assert format_text(once) == once, "fmt(fmt(x)) != fmt(x)"
    assert comments(once) == comments(text)
    assert graph(once) == graph(text)
    return once


@pytest.fixture(scope="module", autouse=True)
def in_specs_dir():
    """Spec text resolves `use` against the working directory: run where the zoo's library is."""
    before = os.getcwd()
    os.chdir(SPECS)
    yield
    os.chdir(before)


@pytest.mark.parametrize("name", sorted(ZOO_TEXTS))
def test_the_zoo_formats_to_the_same_network(name):
    formatted = assert_formats_safely(ZOO_TEXTS[name])
    assert archdsl.load(formatted).params == archdsl.load(ZOO_TEXTS[name]).params


@FUZZ
@given(st.data())
def test_mutated_zoo_specs_format_safely(data):
    name = data.draw(st.sampled_from(sorted(ZOO_TEXTS)), label="spec")
    assert_formats_safely(mutate(data, ZOO_TEXTS[name]))


@FUZZ
@given(st.lists(st.sampled_from(TOKENS), max_size=25), st.lists(st.sampled_from([" ", "  ", "\n", "\t", " # c\n"]),
                                                                   min_size=25, max_size=25))
def test_random_token_sequences_format_safely(tokens, gaps):
    assert_formats_safely("input 8x16x16\n" + "".join(t + g for t, g in zip(tokens, gaps)))


@pytest.mark.parametrize("line", ["soft -max", "SOFT - max", "soft - MAX(2)"])
def test_a_dash_that_would_make_softmax_keeps_its_space(line):
    # `soft` (a block) with a dash option is no valid layer, but fmt lays out what parses:
    # glued, the lexer would read the one token `soft-max`, another layer.
    text = f"input 3x8x8\nblock soft = relu\n{line}\n"
    result = assert_formats_safely(text)
    assert "soft-max" not in result.lower()


def test_spacing_case_and_indentation_are_normalised():
    messy = (
        "network  demo\n"
        "input 3x32x32   # RGB\n"
        "block b( c , s = 1 )=[ conv3 - c / s ( pad = 1 , dilation=2 )  ReLU\n"
        "\tconv1-( 4 * c )\n"
        "]\n\n\n\n"
        "b( 8 ) -> x  b(8,s=2)*( 1 + 1 )\n"
        "@x  FC-10  Soft-Max\n"
        "train{ epochs=3\n"
        "optimizer = sgd( momentum=0.9 )\n"
        "augment=[ crop(pad=2) ,flip ] }\n"
    )
    assert format_text(messy) == (
        "network demo\n"
        "input 3x32x32   # RGB\n"
        "block b(c, s=1) = [conv3-c/s(pad=1, dilation=2) relu\n"
        "  conv1-(4*c)\n"
        "]\n"
        "\n"
        "b(8) -> x b(8, s=2) * (1 + 1)\n"
        "@x FC-10 soft-max\n"
        "train { epochs = 3\n"
        "  optimizer = sgd(momentum=0.9)\n"
        "  augment = [crop(pad=2), flip] }\n"
    )


def test_composites_are_spaced_inside_and_branches_line_up():
    text = "input 64x28x28\ninception<\nconv1-32\n|conv1-16  conv3-32\n| maxpool3/1(pad=1)\n>\nresidual<conv3-64 bn|>se< 4 >\n"
    assert format_text(text) == (
        "input 64x28x28\ninception<\n    conv1-32\n  | conv1-16 conv3-32\n  | maxpool3/1(pad=1)\n>\n"
        "residual< conv3-64 bn | > se<4>\n"
    )


def test_shape_comments_are_aligned_and_others_keep_their_column():
    text = (
        "input 3x32x32\n"
        "conv3-32 conv3-32 # → 32x32x32\n"
        "maxpool  # → 32x16x16\n"
        "gap            # the global pooling\n"
        "fc-10 # → 10\n"
    )
    assert format_text(text) == (
        "input 3x32x32\n"
        "conv3-32 conv3-32  # → 32x32x32\n"
        "maxpool            # → 32x16x16\n"
        "gap            # the global pooling\n"
        "fc-10  # → 10\n"
    )


def test_a_block_named_in_mixed_case_keeps_its_case():
    text = "input 3x8x8\nblock Conv3 = conv3-8\nConv3 ReLU\n"
    assert format_text(text) == "input 3x8x8\nblock Conv3 = conv3-8\nConv3 relu\n"


def test_fmt_check_and_write(tmp_path, run_archdsl):
    messy = tmp_path / "messy.arch"
    messy.write_text("input 3x8x8\nconv3 - 8   relu   # a comment\n")
    tidy = tmp_path / "tidy.arch"
    tidy.write_text("input 3x8x8\nconv3-8 relu\n")
    result = run_archdsl("fmt", "--check", messy, tidy)
    assert result.returncode == 1 and f"would reformat {messy}" in result.stderr
    assert "tidy" not in result.stderr
    assert messy.read_text() == "input 3x8x8\nconv3 - 8   relu   # a comment\n"  # --check changes nothing
    result = run_archdsl("fmt", messy)
    assert result.returncode == 0, result.stderr
    assert messy.read_text() == "input 3x8x8\nconv3-8 relu       # a comment\n"  # the comment keeps its column
    assert run_archdsl("fmt", "--check", messy, tidy).returncode == 0


def test_fmt_keeps_the_files_permissions_and_links(tmp_path, run_archdsl):
    """A reformatted spec is replaced in one step, as every writer does (files.atomic_write): the file
    keeps its mode, and a spec reached through a link is rewritten where the link leads."""
    spec = tmp_path / "spec.arch"
    spec.write_text("input 3x8x8\nconv3 - 8\n")
    spec.chmod(0o640)
    link = tmp_path / "link.arch"
    link.symlink_to(spec)
    result = run_archdsl("fmt", link)
    assert result.returncode == 0, result.stderr
    assert link.is_symlink() and spec.read_text() == "input 3x8x8\nconv3-8\n"
    assert spec.stat().st_mode & 0o777 == 0o640


def test_fmt_refuses_a_spec_that_does_not_parse(tmp_path, run_archdsl):
    broken = tmp_path / "broken.arch"
    broken.write_text("input 3x8x8\nconv3-8 (\n")
    result = run_archdsl("fmt", broken)
    assert result.returncode == 1
    assert f"{broken}:3:1: error:" in result.stderr or f"{broken}:2:" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert broken.read_text() == "input 3x8x8\nconv3-8 (\n"


def test_split_se_options_and_functions_are_written_like_calls():
    text = "input 64x8x8\nsplit ( 16 , 48 ) -> a , b\n@a conv1-( divisible ( 8 * 1.1 , 8 ) ) -> c\n@c se < 4 , act = silu >\n"
    assert assert_formats_safely(text) == (
        "input 64x8x8\nsplit(16, 48) -> a, b\n@a conv1-(divisible(8*1.1, 8)) -> c\n@c se<4, act=silu>\n")


def test_the_zoo_as_committed_is_formatted(run_archdsl, repo_root):
    """The zoo is what `archdsl fmt` writes, so that `fmt --check` is a usable CI step for specs."""
    specs = sorted(str(p.relative_to(repo_root)) for p in (repo_root / "specs").rglob("*.arch"))
    result = run_archdsl("fmt", "--check", *specs)
    assert result.returncode == 0, result.stdout + result.stderr
