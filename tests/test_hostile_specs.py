"""Hostile specs: numbers of thousands of digits, sizes near 10^15, and `use` aimed at files that
are no specs. Each is a located error (or a quick answer), never an internal error or a hang."""
from __future__ import annotations

import itertools
import os
import subprocess
import sys

import pytest

import archdsl
from archdsl import ArchError
from archdsl.errors import SpecImportError, SpecSyntaxError
from archdsl.loader import MAX_IMPORT_DEPTH
from archdsl.parser import MAX_DIGITS
from archdsl.shapes import nearest_fitting_sizes, uncovered_input_rows, window_output_size
from archdsl.train.config import overrides_from_pairs

BIG = "9" * 5000  # past Python's 4,300-digit limit on int()


def error(text_or_path, kind=ArchError) -> ArchError:
    with pytest.raises(ArchError) as info:
        archdsl.load(text_or_path)
    assert isinstance(info.value, kind), f"{type(info.value).__name__}: {info.value.format()}"
    return info.value


# ---------------------------------------------------------------- numbers of thousands of digits

# (where the number is written, the spec text); the number starts at column `text.index(BIG)` of line 2 or 1
PLACES = {
    "repeat count": f"input 3x8x8\nconv3-8 * {BIG}\n",
    "input size": f"input {BIG}\nrelu\n",
    "input sizes": f"input 3x{BIG}x8\nrelu\n",
    "glued kernel": f"input 3x8x8\nconv{BIG}-8\n",
    "glued kernel sizes": f"input 3x8x8\nconv3x{BIG}-8\n",
    "channels": f"input 3x8x8\nconv3-{BIG}\n",
    "stride": f"input 3x8x8\nconv3-8/{BIG}\n",
    "option": f"input 3x8x8\nconv3-8(pad={BIG})\n",
    "sizes option": f"input 3x8x8\nupsample(2x{BIG})\n",
    "arithmetic": f"input 3x8x8\nconv3-(1+{BIG})\n",
    "fraction": f"input 3x8x8\nrelu dropout(0.{BIG})\n",
    "exponent": f"input 3x8x8\nrelu dropout(1e{BIG})\n",
    "block default": f"block b(c={BIG}) = conv3-c\ninput 3x8x8\nb\n",
    "train value": f"input 3x8x8\nrelu\ntrain {{ epochs = {BIG} }}\n",
    "train call": f"input 3x8x8\nrelu\ntrain {{ schedule = step({BIG}, 0.1) }}\n",
}


@pytest.mark.parametrize("place", PLACES)
def test_a_number_of_thousands_of_digits_is_a_located_error(place):
    text = PLACES[place]
    err = error(text, SpecSyntaxError)
    line = text[: text.index(BIG)].count("\n") + 1
    col = text.index(BIG) - text.rfind("\n", 0, text.index(BIG))
    assert (err.span.line, err.span.col) == (line, col), err.format()
    assert f"a number written with {len(BIG):,} digits; expected at most {MAX_DIGITS} digits" in err.message
    # the excerpt shows the spot, not 5,000 characters of it
    assert max(len(row) for row in err.format().splitlines()[1:]) < 200, err.format()


def test_numbers_up_to_the_digit_bound_still_read():
    sizes = "0" * (MAX_DIGITS - 1) + "8"  # leading zeros: 100 digits, the value 8
    assert archdsl.load(f"input 3x{sizes}x8\nrelu\n").outputs["output"] == (3, 8, 8)
    with pytest.raises(SpecSyntaxError, match="101 digits"):
        archdsl.load(f"input 3x0{sizes}x8\nrelu\n")


def test_a_set_value_of_thousands_of_digits():
    for value in (BIG, f"0.{BIG}", f"step({BIG}, 0.1)"):
        with pytest.raises(SpecSyntaxError, match="5,000 digits") as info:
            overrides_from_pairs([f"epochs={value}"])
        assert info.value.span.source.name == "command line"


# ---------------------------------------------------------------- the fit check's nearest sizes

def fits(size, kernel, stride, pad) -> bool:
    return window_output_size(size, kernel, stride, pad) >= 1 and uncovered_input_rows(size, kernel, stride, pad) == 0


def test_nearest_fitting_sizes_against_a_search():
    """The arithmetic answer is the nearest size a search finds, for every small case."""
    cases = 0
    for size, kernel, stride, pad in itertools.product(range(1, 30), range(1, 9), range(1, 9), range(0, 4)):
        below, above = nearest_fitting_sizes(size, kernel, stride, pad)
        cases += 1
        expected_below = next((c for c in range(size - 1, 0, -1) if fits(c, kernel, stride, pad)), None)
        expected_above = next(c for c in itertools.count(size + 1) if fits(c, kernel, stride, pad))
        assert (below, above) == (expected_below, expected_above), (size, kernel, stride, pad)
    assert cases == 29 * 8 * 8 * 4


@pytest.mark.parametrize("size, kernel, stride, pad, below, above", [
    (224, 11, 4, 0, 223, 227),  # AlexNet
    (10**12, 3 * 10**11, 3 * 10**11, 0, 9 * 10**11, 12 * 10**11),
    # remainders 6 below and 8 above; the regular gap S − F = 2 lets a remainder of 2 fit
    (10**15, 10**15 - 7, 10**15 - 5, 0, 10**15 - 5, 2 * 10**15 - 12),
    (10**15, 10**15 + 1, 3, 0, None, 10**15 + 1),  # nothing smaller holds one window
])
@pytest.mark.timeout(60)  # a search over every size between ran for hours: fail, don't hang
def test_nearest_fitting_sizes_of_huge_inputs(size, kernel, stride, pad, below, above):
    assert nearest_fitting_sizes(size, kernel, stride, pad) == (below, above)
    for fitting in (below, above):
        assert fitting is None or fits(fitting, kernel, stride, pad)


def test_check_on_huge_strides_answers_at_once(tmp_path, run_archdsl):
    """Once a search over every size between: hours for these. In a subprocess, so that a regression fails."""
    specs = {
        "pool.arch": "input 1x1000000000000\nmaxpool300000000000/300000000000\n",
        "dilated.arch": "input 1x1000000000000x9\nconv3x1-1/300000000001(dilation=100000000000x1, pad=valid)\n",
        "square.arch": "input 1x999999999999999x999999999999999\nmaxpool100000000000000/100000000000001\n",
    }
    for name, text in specs.items():
        (tmp_path / name).write_text(text)
    result = run_archdsl("check", "-q", *specs, cwd=tmp_path, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("warning: ") == 3, result.stderr
    assert "an input of 900000000000 or 1200000000000 would fit" in result.stderr


# ---------------------------------------------------------------- `use` reads specs, and only specs

def spec_using(tmp_path, path: str, name: str = "main.arch"):
    main = tmp_path / name
    main.write_text(f'use "{path}"\ninput 3x8x8\nrelu\n')
    return main


SECRET = "root:$6$secret-hash-do-not-show:19000:0:99999:7:::"


def assert_not_quoted(err: ArchError):
    text = err.format()
    assert "secret-hash" not in text and "root:" not in text, text
    assert err.span.source.name.endswith("main.arch") and err.span.line == 1, text


def test_use_refuses_files_not_named_arch(tmp_path):
    secret = tmp_path / "shadow"
    secret.write_text(SECRET + "\n")
    for path in (str(secret), "shadow", "/etc/passwd", "x.archive", "notes.txt"):
        err = error(spec_using(tmp_path, path), SpecImportError)
        assert_not_quoted(err)
        assert "`use` imports archdsl specs, files named *.arch" in err.message


def test_use_refuses_a_link_to_a_file_not_named_arch(tmp_path):
    secret = tmp_path / "shadow"
    secret.write_text(SECRET + "\n")
    (tmp_path / "lib.arch").symlink_to(secret)
    err = error(spec_using(tmp_path, "lib.arch"), SpecImportError)
    assert_not_quoted(err)
    assert f"is a link to {secret}, which is not a spec file" in err.message


@pytest.mark.parametrize("content", [
    SECRET + "\n",
    "# a comment, then\n" + SECRET + "\n",
    "Hello world, this is a README.\n",
    "\n\n  " + SECRET + "\nblock x = relu\n",
])
def test_use_does_not_quote_a_file_that_is_no_spec(tmp_path, content):
    (tmp_path / "copy.arch").write_text(content)
    err = error(spec_using(tmp_path, "copy.arch"), SpecImportError)
    assert_not_quoted(err)
    assert "copy.arch does not read as an archdsl spec" in err.message
    assert "so archdsl shows none of it" in err.message


def test_a_broken_spec_is_still_quoted_where_it_breaks(tmp_path):
    (tmp_path / "lib.arch").write_text("# blocks\nblock x = relu\nblock y = [relu\n")
    err = error(spec_using(tmp_path, "lib.arch"), SpecSyntaxError)
    assert err.span.source.name.endswith("lib.arch") and err.span.line == 3
    assert "block y = [relu" in err.format()


def test_use_stays_in_the_top_specs_folder(tmp_path, monkeypatch):
    project, shared = tmp_path / "project", tmp_path / "shared"
    (project / "sub").mkdir(parents=True)
    shared.mkdir()
    (shared / "blocks.arch").write_text("block shared_block = relu\n")
    (project / "common.arch").write_text("block common = relu\n")
    (project / "sub" / "a.arch").write_text('use "../common.arch"\nblock a = common\n')  # up, but inside
    inside = project / "inside.arch"
    inside.write_text('use "sub/a.arch"\ninput 3x8x8\na\n')
    assert archdsl.load(inside).outputs["output"] == (3, 8, 8)

    for written in ("../shared/blocks.arch", str(shared / "blocks.arch"), "sub/../../shared/blocks.arch"):
        main = project / "main.arch"
        main.write_text(f'use "{written}"\ninput 3x8x8\nshared_block\n')
        monkeypatch.delenv("ARCHDSL_PATH", raising=False)
        err = error(main, SpecImportError)
        assert f"outside the folder of the spec being loaded ({project})" in err.message, err.message
        assert f"ARCHDSL_PATH={shared}" in err.message
        monkeypatch.setenv("ARCHDSL_PATH", f"/no/such/folder{os.pathsep}{shared}")
        assert archdsl.load(main).outputs["output"] == (3, 8, 8)


def test_archdsl_path_is_searched_for_names_not_next_to_the_spec(tmp_path, monkeypatch):
    library, project = tmp_path / "library", tmp_path / "project"
    library.mkdir()
    project.mkdir()
    (library / "blocks.arch").write_text("block from_library = relu\n")
    main = project / "main.arch"
    main.write_text('use "blocks.arch"\ninput 3x8x8\nfrom_library\n')
    monkeypatch.delenv("ARCHDSL_PATH", raising=False)
    assert 'cannot find "blocks.arch"' in error(main, SpecImportError).message
    monkeypatch.setenv("ARCHDSL_PATH", str(library))
    assert archdsl.load(main).outputs["output"] == (3, 8, 8)
    (project / "blocks.arch").write_text("block from_project = relu\n")  # next to the spec wins
    assert "unknown layer 'from_library'" in error(main).message


def test_links_inside_the_folder_are_followed(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (real / "blocks.arch").write_text("block linked = relu\n")
    project = tmp_path / "project"
    project.mkdir()
    (project / "lib").symlink_to(real, target_is_directory=True)
    main = project / "main.arch"
    main.write_text('use "lib/blocks.arch"\ninput 3x8x8\nlinked\n')
    assert archdsl.load(main).outputs["output"] == (3, 8, 8)


def test_a_symlink_loop(tmp_path):
    (tmp_path / "a.arch").symlink_to(tmp_path / "b.arch")
    (tmp_path / "b.arch").symlink_to(tmp_path / "a.arch")
    err = error(spec_using(tmp_path, "a.arch"), SpecImportError)
    assert "a symbolic link on the way points back at itself" in err.message
    assert err.span.line == 1


@pytest.mark.parametrize("path", ["a" * 300 + ".arch", "/".join(["abcdefghij"] * 500) + ".arch"])
def test_a_name_longer_than_the_file_system_allows(tmp_path, path):
    err = error(spec_using(tmp_path, path), SpecImportError)
    assert "the name is longer than the file system allows" in err.message
    assert max(len(row) for row in err.format().splitlines()[1:]) < 200


def test_a_chain_of_hundreds_of_files(tmp_path):
    length = 1000  # the recursion of an unbounded chain ended in an internal error near 1,000
    for i in range(length):
        (tmp_path / f"f{i}.arch").write_text(f'use "f{i + 1}.arch"\nblock b{i} = relu\n')
    (tmp_path / f"f{length}.arch").write_text(f"block b{length} = relu\n")
    err = error(spec_using(tmp_path, "f0.arch"), SpecImportError)
    assert f"`use` chains more than {MAX_IMPORT_DEPTH} files deep (main.arch → f0.arch → … → " in err.message
    # a chain within the bound loads
    (tmp_path / f"f{MAX_IMPORT_DEPTH - 1}.arch").write_text(f"block b{MAX_IMPORT_DEPTH - 1} = relu\n")
    assert archdsl.load(spec_using(tmp_path, "f0.arch")).outputs["output"] == (3, 8, 8)


# ---------------------------------------------------------------- a closed pipe

def test_a_closed_pipe_ends_quietly(tmp_path, specs_dir):
    """`archdsl check *.arch | head -2`: the reader stops reading; that is no error."""
    env = {k: v for k, v in os.environ.items() if k != "ARCHDSL_DEBUG"}
    specs = [str(specs_dir / "resnet50.arch")] * 12  # far more than a pipe's 64 kB buffer
    process = subprocess.Popen([sys.executable, "-m", "archdsl", "check", *specs], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=env)
    first = [process.stdout.readline() for _ in range(2)]
    process.stdout.close()
    _, stderr = process.communicate(timeout=120)
    assert first[0].startswith(b"layer")
    assert stderr.decode() == "" and process.returncode == 0


def test_a_nul_in_a_use_path():
    err = error('use "a\0.arch"\ninput 3x8x8\nrelu\n', SpecImportError)
    assert "a path cannot hold a NUL character" in err.message and err.span.line == 1
