"""Batch-1 CPU latency: PyTorch eager, torch.compile, TVM untuned and TVM tuned (MetaSchedule).

    python benchmarks/tvm_vs_torch.py                       # LeNet-5 and ResNet-18, tuning if needed
    python benchmarks/tvm_vs_torch.py --nets lenet5 --trials lenet5=128
    python benchmarks/tvm_vs_torch.py --db-root DIR         # reuse databases from `archdsl tune --db DIR/<net>`

All variants run in one process with the same weights (the PyTorch backend's init);
each round times every variant once, in turn, so that machine noise hits them all
alike, and the table reports medians. GFLOP/s is 2 x MACs / latency, beside this
machine's nominal fp32 peak (cores x clock x FLOPs per cycle of its vector units).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import archdsl  # noqa: E402

DEFAULT_TRIALS = {"lenet5": 96, "resnet18": 600}


def nominal_peak_gflops() -> tuple[float, str]:
    """cores x GHz x FLOPs/cycle: 32 with two 256-bit FMA pipes (AVX2), 64 with AVX-512 FMA x2."""
    flags, mhz = set(), 0.0
    with open("/proc/cpuinfo") as handle:
        for line in handle:
            if line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
            if line.startswith("cpu MHz") and not mhz:
                mhz = float(line.split(":", 1)[1])
    per_cycle = 64 if "avx512f" in flags else 32 if "fma" in flags else 8
    cores = len(os.sched_getaffinity(0))
    return cores * mhz / 1e3 * per_cycle, f"{cores} cores x {mhz / 1e3:.2f} GHz x {per_cycle} FLOP/cycle"


def timed_rounds(variants: dict, rounds: int, block_s: float = 0.02, slow_s: float = 0.5,
                 slow_rounds: int = 3) -> dict[str, float]:
    """Median seconds per call of each variant; variants alternate within every round.

    Each sample is a block of calls lasting about `block_s`, after one untimed call:
    PyTorch's OpenMP threads and TVM's thread pool each go to sleep while the other
    runs, and waking them is not what this compares. A variant slower than `slow_s`
    per call (untuned TVM on ResNet-18) is timed in the first `slow_rounds` rounds only.
    """
    inner = {}
    for name, fn in variants.items():
        start = time.perf_counter()
        fn()
        inner[name] = max(1, int(block_s / max(time.perf_counter() - start, 1e-7)))
    samples = {name: [] for name in variants}
    for round_index in range(rounds):
        for name, fn in variants.items():
            if round_index >= slow_rounds and samples[name] and min(samples[name]) > slow_s:
                continue
            fn()
            start = time.perf_counter()
            for _ in range(inner[name]):
                fn()
            samples[name].append((time.perf_counter() - start) / inner[name])
    return {name: statistics.median(values) for name, values in samples.items()}


def tuned_database(net, spec: Path, db: Path, trials: int, tune_if_missing: bool) -> dict | None:
    from archdsl.backends.tvm.database import has_records
    from archdsl.backends.tvm.tuning import read_tuning_summary, tune

    if not has_records(str(db)):
        if not tune_if_missing:
            return None
        tune(net, trials=trials, db=str(db))
    return read_tuning_summary(str(db))


def bench(name: str, args, peak: float) -> list[dict]:
    import torch

    from archdsl.backends.tvm import to_tvm

    spec = ROOT / "specs" / f"{name}.arch"
    net = archdsl.load(spec)
    model = net.to_torch().eval()
    state = model.state_dict()
    x_np = np.random.default_rng(0).standard_normal((1, *net.input_shape)).astype(np.float32)
    x = torch.from_numpy(x_np)
    rows = []

    with torch.inference_mode():
        variants = {"PyTorch eager": lambda: model(x)}
        reference = model(x)
        start = time.perf_counter()
        compiled = torch.compile(model)
        compiled(x)
        compile_s = time.perf_counter() - start
        variants["torch.compile"] = lambda: compiled(x)
        notes = {"torch.compile": f"first call {compile_s:.0f} s"}

        untuned = to_tvm(net, state_dict=state)
        tvm_input = untuned._input(x_np)
        variants["TVM untuned"] = lambda: untuned.run_raw(tvm_input)
        notes["TVM untuned"] = ""

        db = Path(args.db_root) / name
        summary = tuned_database(net, spec, db, args.trials.get(name, DEFAULT_TRIALS[name]), not args.no_tune)
        if summary is not None:
            tuned = to_tvm(net, state_dict=state, db=str(db))
            tuned_input = tuned._input(x_np)
            variants["TVM tuned"] = lambda: tuned.run_raw(tuned_input)
            notes["TVM tuned"] = f"{summary['trials']} trials, {summary['seconds'] / 60:.1f} min tuning"
            err = float(np.max(np.abs(tuned(x_np) - reference.numpy())))
            notes["TVM tuned"] += f", max abs err vs eager {err:.1e}"

        # Warm every variant, then alternate.
        for fn in variants.values():
            for _ in range(3):
                fn()
        medians = timed_rounds(variants, args.rounds)

    eager = medians["PyTorch eager"]
    for variant, seconds in medians.items():
        gflops = 2 * net.macs / seconds / 1e9
        rows.append({"net": name, "variant": variant, "ms": seconds * 1e3, "speedup_vs_eager": eager / seconds,
                     "gflops": gflops, "peak_share": gflops / peak, "note": notes.get(variant, "")})
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nets", default="lenet5,resnet18")
    parser.add_argument("--trials", default="", help="per-net trial budgets, e.g. lenet5=96,resnet18=600")
    parser.add_argument("--db-root", default=os.path.expanduser("~/.cache/archdsl/tvm-db"))
    parser.add_argument("--no-tune", action="store_true", help="skip TVM tuned where no database exists yet")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--threads", type=int, default=0,
                        help="threads for both PyTorch and TVM (default: all cores); 1 resists a busy machine")
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args(argv)
    if args.threads:
        # Before TVM's runtime starts its pool; PyTorch takes it at run time.
        os.environ["TVM_NUM_THREADS"] = str(args.threads)
        import torch

        torch.set_num_threads(args.threads)
    args.trials = {k: int(v) for k, v in (item.split("=") for item in args.trials.split(",") if item)}
    peak, how = nominal_peak_gflops()
    rows = []
    for name in args.nets.split(","):
        rows += bench(name, args, peak)
    threads = args.threads or len(os.sched_getaffinity(0))
    print(f"\nbatch 1, fp32, {threads} thread(s); {how} = {peak:.0f} GFLOP/s nominal peak; "
          f"medians of {args.rounds} alternating rounds; load average {os.getloadavg()[0]:.1f} at the end\n")
    print("| network | variant | latency (ms) | vs eager | GFLOP/s | % of peak | notes |")
    print("|---|---|---:|---:|---:|---:|---|")
    for r in rows:
        print(f"| {r['net']} | {r['variant']} | {r['ms']:.3f} | {r['speedup_vs_eager']:.2f}x | {r['gflops']:.1f} | "
              f"{r['peak_share']:.1%} | {r['note']} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
