"""How long does `archdsl check` take, start to finish, as a user runs it?

    python benchmarks/check_speed.py [--runs 7] [--keep-dir DIR]

Each figure is a whole process — interpreter start, imports, parse, expansion,
analysis, the table — timed from outside (subprocess), the median of `--runs`
runs after one warm-up run. The cases take turns, round by round, so that a change
in the machine's load hits them alike; the warm-up leaves lark's grammar cache and
Python's bytecode behind, as any second run of an installed archdsl finds them.
Child CPU time (user + system) is reported beside wall time: on a shared machine it
moves much less with other load than wall time does; the load average is printed too.

Specs: ResNet-152 from the zoo, and generated specs of 1,000 and 10,000 layers
(conv3-16, relu, bn, repeating, one per line) to show how the cost grows; linear
growth makes the 10,000/1,000 ratio ≈ 10 once the start-up (the same command on a
one-layer spec) is taken out of both.

Goals on the 2-core development machine: ResNet-152 < 0.5 s, 10,000 layers < 2 s.
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GOALS = {"resnet152": 0.5, "gen10000": 2.0}


def generate(folder: Path, layers: int) -> Path:
    ops = ("conv3-16", "relu", "bn")
    lines = [f"network gen{layers}", "input 16x32x32", *(ops[i % 3] for i in range(layers))]
    path = folder / f"gen{layers}.arch"
    path.write_text("\n".join(lines) + "\n")
    return path


def command() -> list[str]:
    script = Path(sys.executable).with_name("archdsl")
    return [str(script)] if script.exists() else [sys.executable, "-m", "archdsl"]


def timed(argv: list[str], env: dict) -> tuple[float, float]:
    """(wall seconds, child CPU seconds) of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(argv, env=env, cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({result.returncode}):\n{result.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def measure(cases: dict[str, list[str]], env: dict, runs: int) -> dict[str, dict]:
    """Round-robin over the cases, so that a change in the machine's load hits them all alike."""
    for argv in cases.values():
        timed(argv, env)  # warm-up: grammar cache, bytecode, the OS's file cache
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
    for _ in range(runs):
        for name, argv in cases.items():
            samples[name].append(timed(argv, env))
    results = {}
    for name, pairs in samples.items():
        walls, cpus = zip(*pairs)
        results[name] = {"wall": statistics.median(walls), "min": min(walls), "cpu": statistics.median(cpus)}
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="timed runs per spec (the median is reported)")
    parser.add_argument("--keep-dir", type=Path, help="write the generated specs here and keep them")
    args = parser.parse_args()

    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # an installed package has its bytecode compiled
    env.pop("ARCHDSL_DEBUG", None)

    folder = args.keep_dir or Path(tempfile.mkdtemp(prefix="archdsl-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        cases = {
            "start-up (1 layer)": [*command(), "check", str(generate(folder, 1))],
            "resnet152": [*command(), "check", str(REPO / "specs" / "resnet152.arch")],
            "gen1000": [*command(), "check", str(generate(folder, 1_000))],
            "gen10000": [*command(), "check", str(generate(folder, 10_000))],
        }
        load = os.getloadavg()
        print(f"archdsl check, whole process: median of {args.runs} runs (after a warm-up) on {os.cpu_count()} CPUs,"
              f" load average {load[0]:.1f} at the start")
        print(f"{'spec':<18} {'wall median':>12} {'wall min':>9} {'CPU median':>11}  goal")
        results = measure(cases, env, args.runs)
        for name, r in results.items():
            goal = GOALS.get(name)
            verdict = "" if goal is None else f"< {goal:g} s: {'met' if r['wall'] < goal else 'MISSED'}"
            print(f"{name:<18} {r['wall']:>10.3f} s {r['min']:>7.3f} s {r['cpu']:>9.3f} s  {verdict}")
        small, big = results["gen1000"], results["gen10000"]
        base = results["start-up (1 layer)"]

        def growth(key: str) -> float:
            return (big[key] - base[key]) / max(small[key] - base[key], 1e-9)

        print(f"ratio 10,000 / 1,000 layers: {big['wall'] / small['wall']:.2f}x wall, {big['cpu'] / small['cpu']:.2f}x CPU;"
              f" without the start-up: {growth('wall'):.2f}x wall, {growth('cpu'):.2f}x CPU")
        print(f"load average at the end: {os.getloadavg()[0]:.1f}")
        return 0 if all(results[n]["wall"] < g for n, g in GOALS.items()) else 1
    finally:
        if args.keep_dir is None:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
