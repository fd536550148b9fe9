"""MetaSchedule tuning of a network's kernels into a reusable database directory.

    archdsl tune SPEC [--trials N] [--target T] [--db DIR] [--rpc-tracker HOST:PORT --rpc-key KEY]

The trial budget goes where the time is: every task first gets a small share, the
heaviest (FLOPs x occurrences) first, as an untuned kernel is a naive loop and no
task may be left out; the rest goes to MetaSchedule's gradient scheduler, which
keeps picking the task whose weighted latency falls fastest, so a kernel that is
light in FLOPs but still slow (a strided conv with a poor first schedule) is not
starved. The
database keeps every record, so tuning again into the same --db continues from
the best schedules found so far, and `compile --db` reuses it in seconds.
"""
from __future__ import annotations

import json
import math
import os
import time

from ...errors import ArchError
from ...files import open_regular, write_text
from ._tvm import import_tvm
from .build import build, optimize
from .database import open_database_dir, write_best_records
from .load import load_network, load_state_dict
from .lower import lower
from .runner import TVMRunner
from .target import cpu_count, is_gpu, resolve_target

SUMMARY = "archdsl-tuning.json"  # the tuning runs that filled a database: trials, time, latencies


def _log_default(message: str) -> None:
    print(message, flush=True)


def task_flops(task) -> float:
    """FLOPs of one call of a task's kernel (TVM's static estimate)."""
    from tvm.s_tir.analysis import estimate_tir_flops

    try:
        return float(estimate_tir_flops(task.dispatched[0]))
    except Exception:  # an unusual kernel TVM cannot count: treat it as cheap
        return 0.0


def extract_tasks(mod, target):
    """The network's tuning tasks, heaviest (FLOPs x occurrences) first."""
    from tvm.s_tir import meta_schedule as ms

    tasks = ms.relax_integration.extract_tasks(mod, target)
    ranked = sorted(tasks, key=lambda t: task_flops(t) * int(t.weight), reverse=True)
    return ranked


def plan_budget(n_tasks: int, trials: int, measured: list[int]) -> tuple[int, list[int], int]:
    """(floor, tasks for round 1, trials for round 2).

    Round 1 gives every task (heaviest first) `floor` trials, skipping tasks that a
    previous run into the same database already measured (some tasks, like a reshape,
    have a single possible schedule and can never reach `floor`); round 2 spends
    the rest on all tasks under the gradient scheduler, which follows measured
    latency x occurrences, so a light task left slow by round 1 still gets trials.
    """
    floor = max(2, min(8, trials // (3 * n_tasks)))
    first = [i for i in range(n_tasks) if measured[i] == 0]
    return floor, first, max(0, trials - floor * len(first))


class TimeLimitReached(Exception):
    """Raised from the measure callback to stop MetaSchedule; records so far stay in the database."""


class _Progress:
    """A MetaSchedule measure callback printing one line per measured batch (and enforcing a time limit)."""

    def __init__(self, log, total: int, names: list[str], time_limit_s: float | None = None):
        self.log, self.total, self.names, self.done, self.start = log, total, names, 0, time.time()
        self.best: dict[str, float] = {}  # task name -> best seconds in this run
        self.deadline = self.start + time_limit_s if time_limit_s else None
        self.stopped = False

    def make(self):
        from tvm.ir.utils import derived_object
        from tvm.s_tir.meta_schedule.measure_callback import PyMeasureCallback

        progress = self

        @derived_object
        class ProgressCallback(PyMeasureCallback):
            def apply(self, task_scheduler, task_id, measure_candidates, builder_results, runner_results):
                progress.record(task_id, runner_results)

        return ProgressCallback()

    def record(self, task_id: int, runner_results) -> None:
        if not runner_results:  # a task with no new candidate (a transpose has one schedule): nothing to say
            return
        self.done += len(runner_results)
        times = [sum(float(t) for t in r.run_secs) / len(r.run_secs) for r in runner_results
                 if r.error_msg is None and r.run_secs]
        failed = len(runner_results) - len(times)
        name = self.names[task_id]  # task ids restart in every round; names do not
        if times:
            self.best[name] = min(self.best.get(name, math.inf), min(times))
        best = self.best.get(name)
        best_text = f"best {best * 1e6:,.1f} us" if best is not None else "no valid schedule yet"
        self.log(f"  [{self.done:>4}/{self.total}] {time.time() - self.start:6.0f}s  task {task_id:>2} "
                 f"{name[:40]:<40} {best_text}" + (f" ({failed} failed)" if failed else ""))
        if self.deadline is not None and time.time() > self.deadline:
            self.stopped = True
            raise TimeLimitReached()


def import_tensor_intrinsics(target) -> None:
    """Register the tensor intrinsics the target's schedule rules may use, and only those.

    MetaSchedule's TuneContext imports `tvm.s_tir.tensor_intrin`, which builds every
    intrinsic TVM has (CUDA's MMA variants dominate): 16.6 s on an idle machine, over
    a minute on a busy one. CPU schedules only refer to the x86 / ARM ones (about
    1 s), so for LLVM targets the package is registered empty and only those load.
    """
    import importlib
    import platform
    import sys
    import types

    import tvm.s_tir

    name = "tvm.s_tir.tensor_intrin"
    if name in sys.modules:
        return
    if is_gpu(target):
        importlib.import_module(name)
        return
    package = types.ModuleType(name)
    package.__path__ = [os.path.join(os.path.dirname(tvm.s_tir.__file__), "tensor_intrin")]
    package.__package__ = name
    sys.modules[name] = package
    arch = "arm_cpu" if platform.machine() in ("aarch64", "arm64") else "x86"
    importlib.import_module(f"{name}.{arch}")


def _search_strategy(population: int, genetic_iters: int):
    from tvm.s_tir import meta_schedule as ms

    # Smaller than the default (512 samples, 4 genetic rounds): on 2 cores the default
    # spent ~20-40 s of search per batch, more than building and measuring the batch;
    # with budgets of tens of trials per task the larger population buys little.
    return ms.search_strategy.EvolutionarySearch(population_size=population, init_min_unmeasured=min(32, population // 4),
                                                 genetic_num_iters=genetic_iters)


def _tune_round(tasks, weights, work_dir, target, trials, per_task, per_iter, builder, runner, progress, scheduler,
                strategy):
    from tvm.s_tir import meta_schedule as ms

    import_tensor_intrinsics(target)
    _drop_unnamed_handlers()
    contexts, _ = ms.relax_integration.extracted_tasks_to_tune_contexts(
        tasks, work_dir, strategy=strategy, num_threads=cpu_count(), seed=0)
    _quiet_meta_schedule_console()
    callbacks = ms.measure_callback.MeasureCallback.create("default") + [progress.make()]
    progress.names = [t.task_name for t in tasks]
    ms.tune_tasks(tasks=contexts, task_weights=weights, work_dir=work_dir, max_trials_global=trials,
                  max_trials_per_task=per_task, num_trials_per_iter=per_iter, builder=builder, runner=runner,
                  measure_callbacks=callbacks, task_scheduler=scheduler)


def _records_per_task(db_dir: str, tasks) -> list[int]:
    """How many measured records the database holds for each task (0 for a new database)."""
    from .database import has_records

    if not has_records(db_dir):
        return [0] * len(tasks)
    from tvm.s_tir import meta_schedule as ms

    database = ms.database.JSONDatabase(work_dir=db_dir)
    counts = []
    for task in tasks:
        mod = task.dispatched[0]
        counts.append(len(database.get_top_k(database.commit_workload(mod), 64)) if database.has_workload(mod) else 0)
    return counts


def read_tuning_summary(db_dir: str) -> dict:
    """Totals over every tuning run into `db_dir`: {"trials", "seconds", "runs": [...]}."""
    path = os.path.join(db_dir, SUMMARY)
    runs = []
    if os.path.exists(path):
        with open_regular(path, f"the {SUMMARY} archdsl tune writes") as handle:
            try:
                runs = json.loads(handle.read(16 << 20))["runs"]
                totals = {"trials": sum(r["trials"] for r in runs), "seconds": sum(r["seconds"] for r in runs)}
            except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
                raise ArchError(f"{path} is damaged ({type(exc).__name__}: {exc}); remove it (it only sums up the"
                                " tuning runs) and tune again") from None
        return {**totals, "runs": runs}
    return {"trials": 0, "seconds": 0, "runs": runs}


def _append_tuning_summary(db_dir: str, run: dict) -> None:
    runs = read_tuning_summary(db_dir)["runs"] + [run]
    write_text(os.path.join(db_dir, SUMMARY), json.dumps({"runs": runs}, indent=2))


def _drop_unnamed_handlers() -> None:
    # MetaSchedule rebuilds its logging config from the names of the handlers already
    # on its logger; an unnamed one (added by a test harness, or left by an earlier run
    # in this process) makes that fail with "'NoneType' object has no attribute 'format'".
    import logging

    logger = logging.getLogger("tvm.s_tir.meta_schedule")
    for handler in list(logger.handlers):
        if handler.get_name() is None:
            logger.removeHandler(handler)


def _quiet_meta_schedule_console() -> None:
    # MetaSchedule logs every task's IR and a table per batch to the console at INFO;
    # the same goes to DB/logs/*.log. Progress here is one line per batch instead.
    import logging

    for logger_name in ("tvm.s_tir.meta_schedule", "tvm.meta_schedule"):
        logger = logging.getLogger(logger_name)
        for handler in logger.handlers:
            if not isinstance(handler, logging.FileHandler):
                handler.setLevel(logging.WARNING)


def measure_latency(runner: TVMRunner, budget_s: float = 3.0, max_repeat: int = 50) -> float:
    """Median latency in seconds, with as many runs as fit in about `budget_s`."""
    once = runner.benchmark(repeat=1, warmup=0)
    if once > budget_s / 3:  # an untuned big network: seconds per run; one more run is enough
        return runner.benchmark(repeat=1, warmup=0)
    repeat = int(max(3, min(max_repeat, budget_s / max(once, 1e-6))))
    return runner.benchmark(repeat=repeat, warmup=1)


def tune(spec, trials: int | None = None, target=None, db: str = "tvm-db", rpc_tracker: str | None = None,
         rpc_key: str | None = None, *, batch: int = 1, checkpoint=None, log=_log_default,
         time_limit_s: float | None = None) -> dict:
    """Tune `spec` (a path, spec text or a Network) and store the records in `db`.

    Prints progress and the latency before and after; returns
    {"tasks", "trials", "seconds", "latency_before_ms", "latency_after_ms", "db"}.
    Latencies are measured here (or on the RPC server when one is given).
    `time_limit_s` stops the search after the batch that crosses it (the records
    measured so far are kept and used).
    """
    import_tvm()
    from tvm.s_tir import meta_schedule as ms

    net = load_network(spec)
    state_dict = load_state_dict(checkpoint) if checkpoint else None
    tvm_target = resolve_target(target)
    remote = None
    if rpc_tracker or rpc_key:
        from .rpc import RemoteSession, parse_tracker

        host, port = parse_tracker(rpc_tracker)
        if not rpc_key:
            raise ArchError("--rpc-tracker needs --rpc-key KEY (the key the RPC servers registered with)")
        remote = RemoteSession(host, port, rpc_key)
        remote.check()
    elif is_gpu(tvm_target):
        import tvm

        if not tvm.cuda(0).exist:
            raise ArchError(f"no GPU here to tune for target {tvm_target.kind.name}; tune on a machine with one, "
                            "or measure remotely with --rpc-tracker HOST:PORT --rpc-key KEY")
    db_dir = open_database_dir(db, net, tvm_target, batch, create=True)
    lowered = lower(net, state_dict, batch=batch)
    mod = optimize(lowered.mod, tvm_target)
    tasks = extract_tasks(mod, tvm_target)
    if not tasks:
        raise ArchError(f"network '{net.name}' has no kernels to tune")
    costs = [task_flops(t) * int(t.weight) for t in tasks]
    if trials is None:
        trials = 32 * len(tasks)
    measured = _records_per_task(db_dir, tasks)
    floor, first, second = plan_budget(len(tasks), trials, measured)
    log(f"tuning {net.name} for {tvm_target}: {len(tasks)} tasks, {trials} trials: {floor} for each of "
        f"{len(first)} tasks not yet measured, then {second} where latency falls fastest")
    total_flops = sum(costs) or 1.0
    for i, (task, cost) in enumerate(zip(tasks, costs)):
        log(f"  task {i:>2} {task.task_name[:48]:<48} x{int(task.weight)}  {cost / 1e6:10.2f} MFLOP  {cost / total_flops:6.1%}")

    def latency(database_dir):
        executable = build(lowered.mod, tvm_target, database_dir)
        if remote is not None:
            return remote.latency(executable, lowered)
        return measure_latency(TVMRunner(executable, lowered.input_shape, lowered.output_names,
                                         device="cuda" if is_gpu(tvm_target) else "cpu"))

    from .database import has_records

    before_db = db_dir if has_records(db_dir) else None
    before = latency(before_db)
    log(f"latency before tuning{' (with the records already in ' + db_dir + ')' if before_db else ' (untuned)'}: {before * 1e3:.3f} ms")

    workers = cpu_count()
    from .builder import make_builder

    builder = make_builder(max_workers=workers)
    if remote is not None:
        runner = remote.meta_schedule_runner()
    else:
        runner = ms.runner.LocalRunner(evaluator_config=ms.runner.EvaluatorConfig(number=3, repeat=1, min_repeat_ms=50))
    progress = _Progress(log, floor * len(first) + second, [t.task_name for t in tasks], time_limit_s)
    start = time.time()
    try:
        # Round 1: every task not measured yet, `floor` trials each, heaviest first.
        if first:
            _tune_round([tasks[i] for i in first], [1.0] * len(first), db_dir, tvm_target, floor * len(first), floor,
                        floor, builder, runner, progress, "round-robin", _search_strategy(128, 2))
        # Round 2: all tasks by measured weighted latency; the search starts from the best records so far.
        if second > 0:
            per_iter = max(8, min(32, second // (2 * len(tasks))))
            _tune_round(tasks, [float(t.weight) for t in tasks], db_dir, tvm_target, second,
                        max(per_iter, 3 * second // len(tasks)), per_iter, builder, runner, progress, "gradient",
                        _search_strategy(256, 3))
    except Exception:  # the time limit surfaces wrapped in TVM's error type
        if not progress.stopped:
            raise
        log(f"time limit of {time_limit_s:.0f} s reached after {progress.done} trials; keeping the records so far")
    finally:
        builder.shutdown()
    seconds = time.time() - start
    write_best_records(db_dir)
    after = latency(db_dir)
    _append_tuning_summary(db_dir, {"trials": progress.done, "seconds": round(seconds, 1), "tasks": len(tasks),
                                    "latency_before_ms": before * 1e3, "latency_after_ms": after * 1e3,
                                    "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    log(f"tuned {progress.done} trials in {seconds:.0f} s; latency {before * 1e3:.3f} ms -> {after * 1e3:.3f} ms "
        f"({before / after:.1f}x); database: {db_dir}")
    return {"tasks": len(tasks), "trials": progress.done, "seconds": seconds, "latency_before_ms": before * 1e3,
            "latency_after_ms": after * 1e3, "db": db_dir}
