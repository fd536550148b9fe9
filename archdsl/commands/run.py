"""`archdsl run OUT --input x.npy`: run a model exported by `archdsl compile --target tvm`."""
from __future__ import annotations

import sys


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "run",
        help="run a TVM build exported by `archdsl compile --target tvm`",
        description="Load OUT (model.so, meta.json) with the TVM runtime alone and run it on an input array "
        "(batch first, .npy). Prints a summary of each output, or saves them with -o. OUT is native code that "
        "runs in this process: run only folders you built or got from a source you trust.",
    )
    p.add_argument("out", metavar="OUT", help="the folder `archdsl compile --target tvm -o OUT` wrote")
    p.add_argument("--input", required=True, metavar="X.npy", help="input array, batch first, float32")
    p.add_argument("-o", "--output", default=None, metavar="Y.npy|Y.npz",
                   help="save the output (.npy for one output, .npz with one array per output name)")


def _summary(name: str, array) -> str:
    import numpy as np

    top = np.argmax(array.reshape(array.shape[0], -1), axis=1).tolist() if array.ndim >= 2 else []
    return (f"{name}: shape {'x'.join(map(str, array.shape))}, min {array.min():.6g}, max {array.max():.6g}"
            + (f", argmax per sample {top}" if top and array.ndim == 2 else ""))


def run(args) -> int:
    import numpy as np

    from archdsl import files
    from archdsl.backends.tvm import run_exported
    from archdsl.errors import ArchError

    if args.output:  # before the run, whose results would otherwise be lost
        if not args.output.endswith((".npz", ".npy")):
            raise ArchError(f"-o takes a .npy or .npz file. Received: {args.output}")
        files.check_writable(args.output)
    outputs = run_exported(args.out, args.input)
    named = outputs if isinstance(outputs, dict) else {"output": outputs}
    for name, array in named.items():
        print(_summary(name, array))
    if args.output:
        if args.output.endswith(".npy") and len(named) > 1:
            raise ArchError(f"{args.out} has {len(named)} outputs ({', '.join(named)}); save them with -o Y.npz")
        with files.atomic_write(args.output) as file:
            if args.output.endswith(".npz"):
                np.savez(file, **named)
            else:
                np.save(file, next(iter(named.values())))
        print(f"saved to {args.output}", file=sys.stderr)
    return 0
