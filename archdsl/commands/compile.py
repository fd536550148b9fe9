"""`archdsl compile SPEC --target {torch,onnx,tvm} -o OUT`: lower a spec to something that runs.

    torch  a standalone Python file (imports only torch): one nn.Module class
    onnx   an ONNX model, checked with onnx.checker and against onnxruntime
    tvm    a compiled TVM module in a directory (archdsl.backends.tvm.compile_spec)
"""
from __future__ import annotations

import sys
from pathlib import Path

from archdsl.commands.arguments import boolean

TARGETS = ("torch", "onnx", "tvm")
DEFAULT_OUTPUT = {"torch": "{name}.py", "onnx": "{name}.onnx", "tvm": "{name}_tvm"}


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("compile", help="compile a spec to PyTorch source, ONNX or a TVM module")
    p.add_argument("spec", metavar="SPEC", help="spec file (.arch)")
    p.add_argument("--target", choices=TARGETS, default="torch", help="what to produce (default: torch)")
    p.add_argument("-o", "--output", metavar="OUT", help="output file (torch, onnx) or directory (tvm); default: from the network's name")
    p.add_argument("--checkpoint", metavar="CKPT", help="weights to load: archdsl's checkpoint, or any state_dict saved with"
                   " torch.save (torchvision, timm, {name: tensor}), mapped onto the spec by structure")
    p.add_argument("--strict", type=boolean, default=True, metavar="BOOL",
                   help="false: load what of --checkpoint fits by structure, keep fresh weights elsewhere")
    p.add_argument("--init", default="auto", choices=("auto", "kaiming", "xavier", "torch"), help="weight init written into the torch source (default: the spec's, else kaiming)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="tvm: the device to compile for")
    p.add_argument("--batch", type=int, default=1, metavar="N", help="onnx/tvm: the example batch size (the onnx batch stays dynamic)")
    p.add_argument("--db", metavar="DIR", help="tvm: a tuning database to apply (from `archdsl tune`)")


def run(args) -> int:
    import archdsl
    from archdsl.errors import ArchError

    if args.batch < 1:
        raise ArchError(f"--batch must be at least 1. Received: {args.batch}")
    net = archdsl.load(args.spec)
    for warning in net.warnings:
        print(warning.format(), file=sys.stderr)
    output = Path(args.output or DEFAULT_OUTPUT[args.target].format(name=net.name))
    if args.target == "torch":
        _compile_torch(net, output, args)
    elif args.target == "onnx":
        _compile_onnx(net, output, args)
    else:
        _compile_tvm(net, output, args)
    print(f"{args.spec}: wrote {output} ({args.target})")
    return 0


def _compile_torch(net, output: Path, args) -> None:
    from archdsl.backends.torch import generate_source  # needs no torch to generate, but check it imports

    if args.checkpoint:
        from archdsl.backends.torch import load_checkpoint, to_torch
        from archdsl.backends.torch.foreign import load_into

        # A standalone file holds no weights; check that the checkpoint fits and say how to load it.
        mapping = load_into(to_torch(net, init="torch"), net, load_checkpoint(args.checkpoint), strict=args.strict,
                            what=args.checkpoint)
        if mapping is None:
            print(f"{args.checkpoint} fits; load it with model.load_state_dict(torch.load(...))", file=sys.stderr)
        else:
            print(f"{args.checkpoint} fits by structure, not by name; `archdsl compile --target onnx --checkpoint`"
                  " writes a file with the weights", file=sys.stderr)
    from archdsl import files

    files.make_folder(output.parent if str(output.parent) else ".")
    files.write_text(output, generate_source(net, init=args.init))


def _compile_onnx(net, output: Path, args) -> None:
    from archdsl.backends.torch import export_onnx, load_checkpoint, to_torch
    from archdsl.backends.torch.foreign import load_into

    model = to_torch(net, init=args.init)
    if args.checkpoint:
        load_into(model, net, load_checkpoint(args.checkpoint), strict=args.strict, what=args.checkpoint)
    export_onnx(net, output, model=model, batch=args.batch)


def _compile_tvm(net, output: Path, args) -> None:
    from archdsl.errors import ArchError

    try:
        from archdsl.backends.tvm import compile_spec
    except ImportError as exc:
        raise ArchError(f"--target tvm needs the TVM backend: pip install 'archdsl[tvm]' ({exc})") from None
    checkpoint = args.checkpoint
    if checkpoint and not str(checkpoint).endswith(".npz"):
        from archdsl.backends.torch import load_checkpoint
        from archdsl.backends.torch.foreign import adopt, is_foreign
        from archdsl.by_structure import state_keys

        state = load_checkpoint(checkpoint)
        if is_foreign(state_keys(net), state):  # torchvision's, timm's: renamed to the spec's keys by structure
            checkpoint, _ = adopt(net, state, strict=True, what=args.checkpoint)
    compile_spec(net, output, checkpoint=checkpoint, device=args.device, batch=args.batch, db=args.db)
