"""`archdsl import MODEL.onnx -o model.arch`: an ONNX model as a spec a person would write.

    archdsl import resnet50.onnx -o resnet50.arch --weights resnet50.pt
    archdsl import model.onnx                       the spec on stdout
    archdsl import model.onnx --partial -o part.arch   up to the first op archdsl cannot express

The spec has the paper's tokens, `after`/`defaults`, `residual<…>`/`inception<…>`/`se<…>` and
blocks called with their arguments and `* n` (see docs/import.md). `--weights` writes the ONNX
initialisers as a checkpoint of the spec, for `evaluate`, `compile --checkpoint` and
`train --init-from`. Exit codes: 0 imported, 1 an op archdsl cannot express (or a bad file).
"""
from __future__ import annotations

import sys


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("import", help="import an ONNX model as a readable spec (and its weights)",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("model", metavar="MODEL.onnx", help="the ONNX file")
    p.add_argument("-o", "--output", metavar="SPEC", help="the spec to write (default: print it)")
    p.add_argument("--weights", metavar="OUT.pt", help="also write the weights as a checkpoint of the spec")
    p.add_argument("--partial", action="store_true",
                   help="where an op cannot be expressed, write the network up to it instead of failing")
    p.add_argument("--name", metavar="NAME", help="the network's name (default: the file's)")


def run(args) -> int:
    from pathlib import Path

    from archdsl.onnx_import import import_onnx, save_checkpoint

    imported = import_onnx(Path(args.model), partial=args.partial, name=args.name)
    if imported.stopped is not None:
        print(f"warning: {imported.stopped.message}; the spec stops before it", file=sys.stderr)
    net = imported.network
    lines = len(imported.text.splitlines())
    if args.output:
        from archdsl import files

        output = Path(args.output)
        files.make_folder(output.parent if str(output.parent) else ".")
        files.write_text(output, imported.text)
        print(f"{args.model}: wrote {output} ({lines} lines; {net.params:,} params, {net.macs:,} MACs,"
              f" {len(net.layers) - 1} layers)", file=sys.stderr)
    else:
        sys.stdout.write(imported.text)
    if args.weights:
        path = save_checkpoint(imported.state, args.weights)
        print(f"{args.model}: wrote {path} ({len(imported.state)} tensors)", file=sys.stderr)
    return 0
