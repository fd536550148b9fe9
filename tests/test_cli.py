"""`archdsl check`: the table, --json, --quiet, --strict, exit codes, and what it does not import."""
from __future__ import annotations

import gc
import json
import os
import re
import subprocess
import sys

import pytest

from archdsl.cli import main

LAYER_KEYS = {"name", "op", "output_shape", "params", "macs", "receptive_field", "line"}
TOP_KEYS = {"name", "input_shape", "outputs", "params", "macs", "layers"}


def check(capsys, *args):
    code = main(["check", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def test_table_has_thousands_separators_and_totals(capsys, specs_dir):
    code, out, err = check(capsys, specs_dir / "vgg16.arch")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].split() == ["layer", "op", "output", "params", "MACs", "RF", "line"]
    assert set(lines[1].replace(" ", "")) == {"-"}
    conv1 = next(line for line in lines if line.startswith("conv1 "))
    written_at = (specs_dir / "vgg16.arch").read_text().splitlines().index("conv3-64") + 1
    assert conv1.split() == ["conv1", "conv3-64", "64x224x224", "1,792", "86,704,128", "3", str(written_at)]
    fc6 = next(line for line in lines if line.startswith("fc1 "))
    assert "102,764,544" in fc6 and "102,760,448" in fc6  # 25088·4096 + 4096 params, 25088·4096 MACs
    assert "vgg16: input 3x224x224 → output 1000" in out
    total = lines[-1]
    assert total.startswith("total: 138,357,544 params (138 M), 15,470,264,320 MACs (15.5 G),")
    assert re.search(r", [\d,]+ layers, activations [\d.]+ MB at batch 1 \(fp32\)$", total)


def test_several_specs_and_quiet(capsys, specs_dir):
    code, out, err = check(capsys, "-q", specs_dir / "lenet5.arch", specs_dir / "resnet18.arch")
    assert code == 0
    assert gc.isenabled()  # check pauses the garbage collector while it builds, and restores it
    lines = out.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"{specs_dir / 'lenet5.arch'}: 61,706 params")
    assert lines[1].startswith(f"{specs_dir / 'resnet18.arch'}: 11,689,512 params (11.7 M), 1,814,073,344 MACs")


def test_json(capsys, specs_dir):
    code, out, err = check(capsys, "--json", specs_dir / "googlenet.arch", specs_dir / "lenet5.arch")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert len(lines) == 2  # one object per spec, one per line
    google, lenet = map(json.loads, lines)
    assert TOP_KEYS <= set(google)
    assert google["name"] == "googlenet" and google["input_shape"] == [3, 224, 224]
    assert list(google["outputs"]) == ["output", "aux1", "aux2"]
    assert google["outputs"]["output"] == [1000]
    assert lenet["params"] == 61_706 and lenet["macs"] == 416_520
    for layer in lenet["layers"]:
        assert LAYER_KEYS <= set(layer)
    first_conv = next(layer for layer in lenet["layers"] if layer["op"] == "conv5-6")
    written_at = next(i for i, line in enumerate((specs_dir / "lenet5.arch").read_text().splitlines(), 1) if line.startswith("conv5-6"))
    assert first_conv == {**first_conv, "name": "conv1", "output_shape": [6, 28, 28], "params": 156,
                          "macs": 117_600, "receptive_field": [5, 5], "line": written_at}
    assert sum(layer["params"] for layer in lenet["layers"]) == lenet["params"]


def test_warnings_go_to_stderr_and_strict_fails(capsys, tmp_path):
    spec = tmp_path / "a.arch"
    spec.write_text("input 3x224x224\nconv11-96/4(pad=valid)\n")
    code, out, err = check(capsys, spec)
    assert code == 0 and "total:" in out
    assert err.startswith(f"{spec}:2:1: warning: conv11-96/4(pad=valid) doesn't fit")
    code, out, err = check(capsys, "--json", spec)
    assert code == 0 and json.loads(out)["warnings"]
    code, out, err = check(capsys, "--strict", spec)
    assert code == 1 and out == ""
    assert err.startswith(f"{spec}:2:1: error: conv11-96/4(pad=valid) doesn't fit")


def test_a_bad_spec_among_good_ones(capsys, tmp_path, specs_dir):
    bad = tmp_path / "bad.arch"
    bad.write_text("input 3x8x8\ncnov3-8\n")
    code, out, err = check(capsys, "-q", specs_dir / "lenet5.arch", bad, specs_dir / "alexnet.arch")
    assert code == 1
    assert len(out.splitlines()) == 2  # the good ones are still reported
    assert err.startswith(f"{bad}:2:1: error: unknown layer 'cnov3'; did you mean 'conv'?")


def test_a_path_is_never_read_as_spec_text(capsys, tmp_path):
    code, out, err = check(capsys, tmp_path / "nothere")
    assert code == 1
    assert err.startswith(f"{tmp_path / 'nothere'}:1:1: error: no such spec file")


@pytest.mark.parametrize(
    "argv",
    [[], ["check"], ["chek", "x.arch"], ["check", "--frobnicate", "x.arch"]],
)
def test_usage_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert "usage: archdsl" in capsys.readouterr().err


def test_version_and_help(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert re.fullmatch(r"archdsl \d+\.\d+\.\d+\n", capsys.readouterr().out)
    with pytest.raises(SystemExit) as info:
        main(["check", "--help"])
    assert info.value.code == 0
    assert "--strict" in capsys.readouterr().out


def test_python_m_archdsl_works_like_the_archdsl_script(run_archdsl, specs_dir):
    spec = specs_dir / "resnet18.arch"
    module = run_archdsl("check", spec)
    script = run_archdsl("check", spec, module=False)
    assert module.returncode == script.returncode == 0
    assert module.stdout == script.stdout
    assert "11,689,512" in module.stdout
    usage = run_archdsl("check")
    assert usage.returncode == 2 and "usage:" in usage.stderr and "Traceback" not in usage.stderr


def test_check_imports_no_backend(repo_root, specs_dir):
    code = (
        "import sys, archdsl.cli\n"
        f"rc = archdsl.cli.main(['check', '-q', {str(specs_dir / 'googlenet.arch')!r}, {str(specs_dir / 'resnet50.arch')!r}])\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'tvm', 'graphviz', 'numpy', 'onnx'))\n"
        "print(rc, heavy[:5])\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=repo_root, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "0 []", result.stdout


def test_load_and_import_archdsl_import_no_backend(repo_root):
    code = (
        "import sys, archdsl\n"
        "net = archdsl.load('specs/unet_small.arch')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'tvm', 'graphviz')))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=repo_root, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_building_the_whole_parser_imports_no_backend(repo_root):
    """`archdsl --help` and usage errors build every command's parser: each command
    imports its backend inside `run` only (archdsl/commands/__init__.py)."""
    code = (
        "import sys, archdsl.cli\n"
        "from archdsl.commands import COMMANDS\n"
        "for name in COMMANDS:\n"
        "    archdsl.cli.build_parser(name)\n"
        "    heavy = sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'tvm', 'graphviz'})\n"
        "    if heavy:\n"
        "        print(f'archdsl {name}: its parser imports {heavy}')\n"
        "        break\n"
        "else:\n"
        "    print('none')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=repo_root, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "none"


def test_the_server_exits_quietly_when_its_client_says_so(repo_root):
    """initialize, shutdown, exit: status 0 and nothing on stderr (the server closes stdout as it goes)."""
    import json
    import subprocess
    import sys

    def frame(message: dict) -> bytes:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode()
        return b"Content-Length: %d\r\n\r\n" % len(body) + body

    requests = (frame({"id": 1, "method": "initialize", "params": {"processId": None, "rootUri": None, "capabilities": {}}})
                + frame({"method": "initialized", "params": {}})
                + frame({"id": 2, "method": "shutdown"})
                + frame({"method": "exit"}))
    result = subprocess.run([sys.executable, "-m", "archdsl", "lsp"], input=requests, capture_output=True,
                            cwd=repo_root, timeout=60)
    assert result.returncode == 0 and result.stderr.decode() == "", result.stderr.decode()
    assert b'"id": 2' in result.stdout or b'"id":2' in result.stdout  # shutdown was answered


def test_an_error_python_can_only_ignore_is_one_line_not_a_traceback(tmp_path):
    # As a DataLoader iterator half built when a worker was killed: its __del__ fails on cleanup.
    script = (
        "import sys\n"
        "import archdsl.commands.check as check\n"
        "from archdsl import cli\n"
        "class HalfBuilt:\n"
        "    def __del__(self):\n"
        "        self._workers_status\n"
        "def run(args):\n"
        "    HalfBuilt()\n"
        "    return 0\n"
        "check.run = run\n"
        "sys.exit(cli.main(['check', 'x.arch']))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "ARCHDSL_DEBUG"}
    ran = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=env)
    assert ran.returncode == 0 and "Traceback" not in ran.stderr, ran.stderr
    assert ran.stderr.strip() == ("archdsl: ignored while cleaning up in HalfBuilt.__del__: AttributeError: 'HalfBuilt'"
                                  " object has no attribute '_workers_status'")
    debug = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                           env=env | {"ARCHDSL_DEBUG": "1"})
    assert "Traceback" in debug.stderr  # Python's own report, for whoever debugs archdsl
