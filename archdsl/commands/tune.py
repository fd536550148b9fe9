"""`archdsl tune SPEC`: tune the network's kernels with TVM's MetaSchedule into a reusable database."""
from __future__ import annotations

import json


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "tune",
        help="tune the network's kernels with TVM MetaSchedule",
        description="Tune SPEC's kernels for a target with MetaSchedule, store the records in --db, and print the "
        "latency before and after (median of repeated runs). `archdsl compile SPEC --target tvm --db DIR` "
        "then builds with the tuned kernels in seconds.",
    )
    p.add_argument("spec", metavar="SPEC", help="spec file (.arch)")
    p.add_argument("--trials", type=int, default=None, metavar="N", help="total measured trials (default: 32 per task)")
    p.add_argument("--target", default=None, help="'llvm' (this CPU, mcpu detected; the default) or 'cuda'")
    p.add_argument("--db", default="tvm-db", metavar="DIR", help="tuning database folder (default: ./tvm-db)")
    p.add_argument("--batch", type=int, default=1, metavar="N", help="batch size to tune for (default 1)")
    p.add_argument("--checkpoint", default=None, help="weights to measure with (default: a fresh initialisation)")
    p.add_argument("--time-limit", type=float, default=None, metavar="S", help="stop the search after about S seconds")
    p.add_argument("--rpc-tracker", default=None, metavar="HOST:PORT", help="measure on servers registered with this TVM RPC tracker")
    p.add_argument("--rpc-key", default=None, metavar="KEY", help="the device key those RPC servers registered with")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")


def run(args) -> int:
    from archdsl.backends.tvm import tune
    from archdsl.errors import ArchError

    if args.trials is not None and args.trials < 1:
        raise ArchError(f"--trials must be at least 1. Received: {args.trials}")
    if args.batch < 1:
        raise ArchError(f"--batch must be at least 1. Received: {args.batch}")
    if args.time_limit is not None and not args.time_limit > 0:
        raise ArchError(f"--time-limit must be a number of seconds > 0. Received: {args.time_limit}")
    result = tune(
        args.spec,
        trials=args.trials,
        target=args.target,
        db=args.db,
        rpc_tracker=args.rpc_tracker,
        rpc_key=args.rpc_key,
        batch=args.batch,
        checkpoint=args.checkpoint,
        time_limit_s=args.time_limit,
    )
    if args.json:
        print(json.dumps(result, default=str))
    return 0
