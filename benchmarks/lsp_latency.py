"""How quickly does `archdsl lsp` answer an editor?

    python benchmarks/lsp_latency.py [--runs 30] [--transcript]

A real LSP client (pytest-lsp's, tests/lsp_client.py) starts `archdsl lsp` as a subprocess,
opens ResNet-152, ResNet-50 and the ResNet block library, and times, from the client's side
(request sent → reply or notification received, JSON over pipes included):

- diagnostics after a change of ResNet-152 (the whole text sent, then parsed, imports resolved,
  expanded to 514 layers, checked, and the diagnostics published), the edits alternating so that
  every change is a new text;
- hover on the 3x3 conv (`conv3-width/s`) in the library's bottleneck (its 16 layers in ResNet-50) and on a block
  call in ResNet-152;
- completion at the start of a line of ResNet-152 (every layer family, block and keyword) and
  inside `conv3-64(`.

Beside them, `archdsl.load` of ResNet-152 in this process: what the analysis itself costs.
Each figure is the median of `--runs` runs (min and 90th percentile beside it); the load average
is printed, since the machine is shared. The goal: diagnostics well under 100 ms after a change.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))

from lsp_client import Session, config, initialize_params  # noqa: E402

SPECS = REPO / "specs"
GOAL_MS = 100


def summary(name: str, seconds: list[float]) -> str:
    ms = sorted(s * 1000 for s in seconds)
    p90 = ms[min(len(ms) - 1, int(round(0.9 * (len(ms) - 1))))]
    return f"| {name} | {statistics.median(ms):.1f} | {ms[0]:.1f} | {p90:.1f} |"


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc): steadier than wall time on a shared machine."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def timed(coroutine_factory, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        await coroutine_factory()
        times.append(time.perf_counter() - start)
    return times


async def main(runs: int, transcript: bool) -> int:
    client = await config().start()
    await client.initialize_session(initialize_params())
    session = Session(client)
    resnet152, resnet50, library = SPECS / "resnet152.arch", SPECS / "resnet50.arch", SPECS / "lib" / "resnet_blocks.arch"
    text = resnet152.read_text()

    start = time.perf_counter()
    uri = session.open(resnet152)
    _, arrived = await session.diagnostics(uri)
    first = arrived - start
    session.open(resnet50)
    lib_uri = session.open(library)
    await session.diagnostics(lib_uri)

    server_pid = client._server.pid
    cpu_before = cpu_seconds(server_pid)
    changes = []
    for i in range(runs):
        edited = text.replace("fc-1000", f"fc-{1000 + (i % 2)}")  # a new text each time
        sent = time.perf_counter()
        version = session.change(uri, edited)
        diagnostics, arrived = await session.diagnostics(uri, version)
        assert diagnostics == (), diagnostics
        changes.append(arrived - sent)
    cpu_per_change = (cpu_seconds(server_pid) - cpu_before) / runs

    lib_text = library.read_text()
    # the bottleneck's 3x3 convolution, whatever its dimension is called (`conv3-c/s`, `conv3-width/s`)
    index = lib_text.index("conv3-", lib_text.index("block bottleneck"))
    line = lib_text.count("\n", 0, index)
    character = index - (lib_text.rfind("\n", 0, index) + 1) + 2
    hover_lib = await timed(lambda: session.hover(lib_uri, line, character), runs)
    call_line, call_column = next((n, l.index("bottleneck(128, s=2)")) for n, l in enumerate(text.splitlines())
                                  if "bottleneck(128, s=2)" in l)
    hover_call = await timed(lambda: session.hover(uri, call_line, call_column + 2), runs)
    complete_word = await timed(lambda: session.complete(uri, call_line, 0), runs)
    session.change(uri, text + "conv3-64(\n")
    await session.diagnostics(uri)
    last = len(text.splitlines())
    complete_options = await timed(lambda: session.complete(uri, last, 9), runs)

    if transcript:
        reply = await session.hover(lib_uri, line, character)
        print(f"hover at {library.relative_to(REPO)}:{line + 1}:{character + 1} "
              f"(`{lib_text.splitlines()[line].strip()}`), with specs/resnet50.arch open:\n")
        print(reply.contents.value)
        print()
    await client.shutdown_session()
    await client.stop()

    import archdsl

    loads = []
    for _ in range(runs):
        start = time.perf_counter()
        archdsl.load(resnet152)
        loads.append(time.perf_counter() - start)

    print(f"archdsl lsp, {runs} runs each; load average {os.getloadavg()[0]:.1f} ({os.cpu_count()} CPUs)\n")
    print("| measured (client side) | median ms | min ms | p90 ms |")
    print("|---|--:|--:|--:|")
    print(f"| first diagnostics of ResNet-152 (open, cold) | {first * 1000:.1f} | | |")
    print(summary("diagnostics after a change, ResNet-152", changes))
    print(f"| server CPU time per change (user + system), ResNet-152 | {cpu_per_change * 1000:.1f} | | |")
    print(summary("hover the bottleneck's `conv3-…/s` in the library (16 layers of ResNet-50)", hover_lib))
    print(summary("hover a block call in ResNet-152", hover_call))
    print(summary("completion at a line start (families, blocks, keywords)", complete_word))
    print(summary("completion inside `conv3-64(` (options)", complete_options))
    print(summary("for comparison: `archdsl.load(resnet152)` in process", loads))
    median = statistics.median(changes) * 1000
    print(f"\nratio diagnostics after a change / archdsl.load in process: {median / (statistics.median(loads) * 1000):.2f}")
    print(f"\ngoal: diagnostics after a change < {GOAL_MS} ms: {'met' if median < GOAL_MS else 'missed'}"
          f" ({median:.1f} ms median)")
    return 0 if median < GOAL_MS else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--transcript", action="store_true", help="print the hover on the bottleneck's conv3-…/s")
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.runs, args.transcript)))
