"""`archdsl check SPEC…`: shapes, parameters, MACs and receptive fields, before anything runs.

A `.onnx` file is imported in memory first (`archdsl import`), so any ONNX model can be checked."""
from __future__ import annotations

import gc
import json
import sys
from pathlib import Path


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("check", help="check a spec: shapes, params, MACs, receptive field")
    p.add_argument("specs", nargs="+", metavar="SPEC", help="spec file(s) (.arch), or ONNX models (.onnx)")
    p.add_argument("--json", action="store_true", help="print one JSON object per spec instead of the table")
    p.add_argument("--strict", action="store_true", help="make warnings (a layer that doesn't fit) errors")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the totals line")


def run(args) -> int:
    import archdsl
    from archdsl.errors import ArchError
    from archdsl.report import as_json, table

    status = 0
    collecting = gc.isenabled()
    gc.disable()  # many small objects and few cycles: collecting while the graphs grow costs ~15%
    try:
        for i, path in enumerate(args.specs):
            try:
                if Path(path).suffix.lower() == ".onnx":
                    net = _imported(Path(path), args.strict)
                else:
                    net = archdsl.load(Path(path), strict=args.strict)  # a path, never spec text
            except ArchError as err:
                print(err.format(), file=sys.stderr)
                status = 1
                continue
            for warning in net.warnings:
                print(warning.format(), file=sys.stderr)
            if args.json:
                print(json.dumps(as_json(net)))
            elif args.quiet:
                print(table(net).splitlines()[-1].replace("total:", f"{path}:"))
            else:
                if i:
                    print()
                print(table(net))
    finally:
        if collecting:
            gc.enable()
    return status


def _imported(path: Path, strict: bool):
    """An ONNX model as the spec `archdsl import` writes for it (onnx imported only here)."""
    from archdsl.errors import ArchError
    from archdsl.onnx_import import import_onnx

    imported = import_onnx(path)
    if strict and imported.network.warnings:
        warning = imported.network.warnings[0]
        raise ArchError(f"{path}: {warning.message}")
    return imported.network
