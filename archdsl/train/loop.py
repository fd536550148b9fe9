"""The training loop: epochs of batches, validation, checkpoints, and a test at the end.

    train(net, config, RunOptions(...)) -> Result

Reproducibility: the data order of epoch e is drawn from a generator seeded
with (seed, e), not carried over from epoch to epoch, so a resumed run and a
run that was never stopped see the same batches, and every DDP rank agrees on
the order without talking. The global RNGs (dropout) are saved in each
checkpoint. On the CPU with a fixed seed a resumed run ends bit-identical.
Streamed image folders keep this: each image's augmentation is seeded from the
epoch's generator and its index (see datasets/stream.py), whatever the workers.

Guarding: a non-finite loss or one far above its start stops the run (guard.py);
validation accuracy still at chance after the first epochs is reported; a run
resumed with more epochs re-plans its schedule and says so, and a schedule that
would train at learning rate 0 is refused.
"""
from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from archdsl.backends.torch import foreign
from archdsl.errors import ArchError
from archdsl.network import Network
from archdsl.train import checkpoint as ckpt
from archdsl.train import distributed as dist
from archdsl.train import heads as heads_mod
from archdsl.train import metrics, model as model_mod, optim, rundir, tta as tta_mod
from archdsl.train.config import TrainConfig, check_config
from archdsl.train.datasets.stream import DataError, as_data_error, worker_deaths_as_data_errors
from archdsl.train.device import Placement, cpu_threads, place
from archdsl.train.guard import CHANCE_AFTER, Diverged, LossGuard, at_chance
from archdsl.train.progress import PLAIN_EVERY_S, Progress


@dataclass(frozen=True)
class RunOptions:
    """How to run (not what): these never change the numbers a CPU run produces."""

    out: Path | None = None  # None: runs/NAME-TIMESTAMP
    device: str = "auto"
    compile: bool = False
    resume: Path | None = None
    progress: bool | None = None  # None: draw the bar when stderr is a terminal
    threads: int | None = None  # CPU threads; None: see device.cpu_threads
    progress_every: float = PLAIN_EVERY_S  # off a terminal: one progress line this often
    workers: int | None = None  # loader processes for streamed data; None: stream.default_workers()
    skip_bad_images: bool = False  # leave unreadable images out (listed) instead of stopping
    tensorboard: bool = True
    sync_bn: bool = False  # batch norm statistics over all ranks' batches (CUDA only)
    log: Callable[[str], None] = field(default=print, compare=False)


@dataclass(frozen=True)
class Result:
    run_dir: Path | None
    epochs: int  # finished epochs
    test_top1: float | None
    test_top5: float | None
    wall_s: float
    interrupted: bool = False


class Interrupted(Exception):
    """Ctrl-C during training, after the last finished epoch's checkpoint was kept."""

    def __init__(self, run_dir: Path | None, epoch: int):
        super().__init__(f"interrupted after epoch {epoch}")
        self.run_dir, self.epoch = run_dir, epoch


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 100_003 + epoch)


# ---- setting up ---------------------------------------------------------------------------------------------


def load_data(net: Network, config: TrainConfig, input_shape: tuple[int, ...] | None = None, skip_bad: bool = False,
              workers: int = 0):
    from archdsl.train.data import load_dataset

    try:
        return load_dataset(config.dataset, input_shape or net.input_shape, seed=config.seed,
                            val_fraction=config.val_fraction, test_fraction=config.test_fraction,
                            normalize=config.normalize, skip_bad=skip_bad, workers=workers)
    except ArchError as err:
        raise err.with_span(config.span("dataset"))


def streaming_workers(requested: int | None) -> int:
    """Loader processes for a streamed folder: `requested`, else one per core (at most 8)."""
    from archdsl.train.datasets.stream import default_workers

    return default_workers() if requested is None else requested


def loader_workers(data, requested: int | None) -> int:
    """Loader processes for `data`'s batches: none for data in memory."""
    return streaming_workers(requested) if data.streamed else 0


def describe_folder(data, log: Callable[[str], None]) -> None:
    """What a streamed folder's listing found that the user should know: files left out, ignored, resized."""
    if not data.streamed:
        return
    folder = data.folder
    from archdsl.train.datasets.stream import describe_skipped

    if folder.skipped:
        log(f"left out as unreadable (--skip-bad-images): "
            f"{describe_skipped([(bad.path, bad.reason) for bad in folder.skipped])}")
    if folder.ignored:
        shown = ", ".join(folder.ignored[:3]) + (f" and {len(folder.ignored) - 3} more" if len(folder.ignored) > 3 else "")
        log(f"ignored {len(folder.ignored)} file{'s' if len(folder.ignored) > 1 else ''} that are not .png/.jpg/.jpeg: "
            f"{shown}")
    if folder.size_example:
        (a, size_a), (b, size_b) = folder.size_example
        log(f"images differ in size ({a} is {size_a[0]}x{size_a[1]}, {b} is {size_b[0]}x{size_b[1]}): each is "
            f"resized to the input {'x'.join(map(str, data.info.input_shape))}")


def class_count(net: Network, config: TrainConfig, data_classes: int, data_name: str) -> int | None:
    """The head size to build, or None to keep the spec's. Mismatches without a way out are errors."""
    main = heads_mod.heads(net)[0]
    if config.num_classes is not None:
        if config.num_classes != data_classes:
            raise ArchError(f"num_classes is {config.num_classes} but dataset '{data_name}' has {data_classes} classes;"
                            f" set num_classes to {data_classes}", config.span("num_classes"))
        return None if config.num_classes == main.classes else config.num_classes
    if main.classes == data_classes:
        return None
    if config.init_from:  # transfer learning to another dataset: a fresh head is the point
        return data_classes
    where = f" (line {main.line})" if main.line else ""
    raise ArchError(
        f"dataset '{data_name}' has {data_classes} classes but the spec's last layer {main.text}{where} gives "
        f"{main.classes}; pass --num-classes {data_classes} to replace it with a fresh {data_classes}-way layer, "
        f"or change the spec", config.span("dataset"))


def make_loss(config: TrainConfig, names: list[str]):
    main, aux = names[0], names[1:]

    def loss(outputs: dict[str, torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
        total = F.cross_entropy(outputs[main].float(), labels, label_smoothing=config.label_smoothing)
        for name in aux:  # GoogLeNet's auxiliary classifiers; only in training
            if name in outputs:
                total = total + config.aux_weight * F.cross_entropy(
                    outputs[name].float(), labels, label_smoothing=config.label_smoothing)
        return total

    return loss


def check_outputs(net: Network, classes: int) -> None:
    for name, shape in net.outputs.items():
        if tuple(shape) != (classes,):
            raise ArchError(f"output '{name}' has shape {tuple(shape)}; training needs class scores of shape "
                            f"({classes},) at every output")


# ---- one epoch ------------------------------------------------------------------------------------------------


def run_epoch(model, loader, loss_fn, names, place_: Placement, optimizer, scaler=None, frozen=(),
              progress: Progress | None = None, on_step: Callable[[int, torch.Tensor], None] | None = None,
              lr_scale: Callable[[int], float] | None = None) -> metrics.Tally:
    """Train over one pass of `loader` (evaluate_split evaluates).

    `lr_scale(step)` scales the learning rate of that step (warm-up); `on_step(step, loss)` sees every
    step's loss after the update (the divergence guard, TensorBoard). Steps count from 1.
    """
    model.train()
    for module in frozen:  # frozen batch norms keep their statistics
        module.eval()
    tally = metrics.Tally()
    batches = iter(loader)
    try:
        for step, (images, labels) in enumerate(batches, 1):
            images = images.to(place_.device, non_blocking=True)
            if place_.channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            labels = labels.to(place_.device, non_blocking=True)
            with place_.autocast():
                outputs = model_mod.outputs_dict(model(images), names)
                loss = loss_fn(outputs, labels)
            optimizer.zero_grad(set_to_none=True)
            scale = lr_scale(step) if lr_scale is not None else 1.0
            scheduled = [group["lr"] for group in optimizer.param_groups]
            if scale != 1.0:
                for group in optimizer.param_groups:
                    group["lr"] *= scale
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            else:
                loss.backward()
                optimizer.step()
            for group, lr in zip(optimizer.param_groups, scheduled):  # the schedule never sees warm-up
                group["lr"] = lr
            tally.add(loss.detach(), outputs[names[0]].detach().float(), labels)
            if on_step is not None:
                on_step(step, loss.detach())
            if progress is not None:
                progress.update(tally.count, tally.loss, tally.acc1)
    finally:
        _close(batches)
        if progress is not None:
            progress.close()
    return tally


def evaluate_split(model, loader, names, place_: Placement, tta: str = "none", progress: Progress | None = None,
                   view_size: tuple[int, int] | None = None) -> tuple[metrics.Tally, torch.Tensor, torch.Tensor]:
    """Main-output metrics over a whole loader, with the predictions and labels (for a confusion matrix).

    With test-time augmentation (tta.py) each image is cut into views of `view_size` (H, W; the loader's
    images are larger than that for 10-crop), and the views' class probabilities are averaged.
    """
    model.eval()
    tally, predictions, truth = metrics.Tally(), [], []
    batches = iter(loader)

    def main_logits(view: torch.Tensor) -> torch.Tensor:
        if place_.channels_last:
            view = view.contiguous(memory_format=torch.channels_last)
        with place_.autocast():
            return model_mod.outputs_dict(model(view), names)[names[0]].float()

    try:
        with torch.no_grad():
            for images, labels in batches:
                images = images.to(place_.device)
                labels = labels.to(place_.device)
                if tta == "none":
                    logits = main_logits(images)
                else:  # log-probabilities are logits of the averaged prediction
                    views = tta_mod.views(tta, images, view_size)
                    probabilities = sum(main_logits(view).softmax(1) / len(views) for view in views)
                    logits = torch.log(probabilities.clamp_min(1e-12))
                tally.add(F.cross_entropy(logits, labels), logits, labels)
                predictions.append(logits.argmax(1).cpu())
                truth.append(labels.cpu())
                if progress is not None:
                    progress.update(tally.count, tally.loss, tally.acc1)
    finally:
        _close(batches)
        if progress is not None:
            progress.close()
    empty = torch.empty(0, dtype=torch.long)
    return tally, torch.cat(predictions) if predictions else empty, torch.cat(truth) if truth else empty


def _close(batches) -> None:
    """End a loader's epoch now: a streamed loader's workers stop here, not when the garbage is collected."""
    close = getattr(batches, "close", None)
    if close is not None:
        close()


# ---- the run ---------------------------------------------------------------------------------------------------


def train(net: Network, config: TrainConfig, options: RunOptions) -> Result:
    started = time.perf_counter()
    check_config(config, net.input_shape)  # before any data is read or batch run
    ctx = dist.context_from_env()
    place_ = place(options.device, ctx.local_rank)
    if len(net.input_shape) != 3:  # channels-last exists for images (N, C, H, W) only
        place_ = dataclasses.replace(place_, channels_last=False)
    dist.init(ctx, place_.device)
    threads = torch.get_num_threads()
    if place_.device.type == "cpu":
        torch.set_num_threads(cpu_threads(net.macs * config.batch_size, options.threads))
    try:
        return _train(net, config, options, ctx, place_, started)
    finally:
        torch.set_num_threads(threads)
        dist.shutdown(ctx)


def _train(net, config, options, ctx, place_, started) -> Result:
    log = options.log if ctx.is_main else (lambda *_: None)
    resume = ckpt.load(options.resume / ckpt.LAST, "cpu", resume=True) if options.resume else None
    ckpt.seed_everything(config.seed)
    data = load_data(net, config, skip_bad=options.skip_bad_images, workers=streaming_workers(options.workers))
    workers = loader_workers(data, options.workers)
    pin = place_.device.type == "cuda"
    classes = class_count(net, config, data.info.num_classes, config.dataset)
    trained_net, removed, replaced = heads_mod.train_network(net, classes)
    check_outputs(trained_net, data.info.num_classes)
    names = list(trained_net.output_nodes)
    if removed:
        log(f"training on logits: the trailing {', '.join(removed)} is left out of the loss (softmax is in it)")
    if replaced:
        log(f"new {data.info.num_classes}-way head: {', '.join(replaced)} (the spec's had another class count)")

    model = model_mod.build_model(trained_net, config.init)
    if config.init_from and resume is None:
        try:
            source = ckpt.load(config.init_from)
        except ArchError as err:
            raise err.with_span(config.span("init_from"))
        state = source["model"]
        if foreign.is_foreign(model.state_dict(), state, archdsl=source.get("format") == ckpt.FORMAT):
            try:
                state, mapping = foreign.adopt(trained_net, state, strict=config.strict, fresh=replaced,
                                               what=f"--init-from {config.init_from}")
            except ArchError as err:
                raise err.with_span(config.span("init_from"))
            log(f"init from {config.init_from}: {foreign.describe(mapping)}")
        transfer = model_mod.load_matching(model, state)
        log(f"init from {config.init_from}: {transfer.describe()}")
    if config.freeze:
        frozen_layers = model_mod.freeze_up_to(model, trained_net, config.freeze, config.span("freeze"))
        log(f"frozen: {len(frozen_layers)} layers, up to and including {frozen_layers[-1]}")
    model.to(place_.device)
    if place_.channels_last:
        model.to(memory_format=torch.channels_last)
    trainable = [p for p in model.parameters() if p.requires_grad]
    if not trainable:
        raise ArchError(f"--freeze {config.freeze} leaves nothing to train; freeze an earlier layer",
                        config.span("freeze"))
    optimizer = optim.make_optimizer(trainable, config)
    schedule = optim.make_schedule(optimizer, config)
    scaler = torch.amp.GradScaler(place_.device.type) if place_.needs_scaler else None
    guard = LossGuard(config.lr, config.warmup)

    start_epoch, history, best, best_epoch = 0, [], -1.0, 0
    extended = None
    if resume is not None:
        model_mod.check_fits(model, resume["model"], str(options.resume), net.name)
        model.load_state_dict(resume["model"])
        ckpt.restore(resume, options.resume / ckpt.LAST, optimizer, schedule, scaler)
        start_epoch, history = resume["epoch"], list(resume["history"])
        best, best_epoch = resume["best_val_top1"], resume["best_epoch"]
        guard.start = resume.get("loss_start")
        extended = _plan_resume(schedule, optimizer, start_epoch, int(resume["config"]["epochs"]), config,
                                options.resume, net)
        log(f"resuming {options.resume} after epoch {start_epoch} of {config.epochs}")
        if extended:
            log(extended)

    frozen = model_mod.frozen_modules(model)
    bare = model  # what checkpoints hold: never the DDP or compiled wrapper's names
    if options.sync_bn:
        model = _sync_batch_norm(model, ctx, place_, log)
        bare = model
    if ctx.distributed:
        ids = [place_.device.index] if place_.device.type == "cuda" else None
        model = nn.parallel.DistributedDataParallel(model, device_ids=ids)
    if options.compile:
        model = torch.compile(model)

    run_dir = options.resume or options.out or rundir.new_run_dir(net.name)
    spec_file = Path(net.path).name if net.path else f"{net.name}.arch"
    steps_per_epoch = len(data.loader("train", config.batch_size, shuffle=True,
                                      generator=epoch_generator(config.seed, 0), rank=ctx.rank,
                                      world_size=ctx.world_size, drop_last=_lone_last_batch(len(data.train), config, ctx)))
    board = None
    if ctx.is_main:
        placement = {"device": place_.describe(), "world_size": ctx.world_size, "compile": options.compile}
        config_json = {"spec": spec_file, "spec_path": str(Path(net.path).resolve()) if net.path else None,
                       "network": net.name, **config.to_json(), "run": placement,
                       "classes": list(data.info.class_names)}
        rundir.prepare(run_dir, net.spec.source.text, spec_file, config_json, resuming=resume is not None)
        if resume is not None:
            ckpt.repair_best(resume, run_dir)
        if extended:  # the run's plan is now the longer one
            rundir.write_json({**json.loads((run_dir / "config.json").read_text()), "epochs": config.epochs},
                              run_dir / "config.json")
        log(f"run folder {run_dir}")
        log(f"training {net.name} ({sum(p.numel() for p in bare.parameters()):,} params) on "
            f"{place_.describe()}{f' x{ctx.world_size} processes' if ctx.distributed else ''}: {config.describe()}")
        log(f"data: {len(data.train)} train / {len(data.val)} val / {len(data.test)} test images, "
            f"{data.info.num_classes} classes, resized to {'x'.join(map(str, data.info.input_shape))}"
            + (f", streamed from disk by {workers} loader process{'es' if workers != 1 else ''}" if workers else
               ", streamed from disk in this process" if data.streamed else ""))
        describe_folder(data, log)
        if options.tensorboard:
            from archdsl.report import table
            from archdsl.train.tensorboard import Board

            board = Board(run_dir, purge_step=start_epoch * steps_per_epoch + 1 if resume is not None else None)
            board.describe(table(trained_net), config_json)

    curves = _Curves(run_dir / "curves.png", f"{net.name} on {config.dataset}")
    loss_fn = make_loss(config, names)
    augment = _augmentations(config)
    progress = _progress_factory(options, ctx)
    skipped: list[tuple[str, str]] = []
    try:
        for epoch in range(start_epoch, config.epochs):
            epoch_start = time.perf_counter()
            loader = data.loader("train", config.batch_size, shuffle=True,
                                 generator=epoch_generator(config.seed, epoch), augment=augment, rank=ctx.rank,
                                 world_size=ctx.world_size, drop_last=_lone_last_batch(len(data.train), config, ctx),
                                 workers=workers, pin_memory=pin, skip_bad=options.skip_bad_images)
            _trace_shard(data, config, ctx, epoch)
            label = f"epoch {epoch + 1}/{config.epochs}"
            warmup = _warmup(config, epoch, steps_per_epoch)

            def on_step(step: int, loss: torch.Tensor, epoch: int = epoch, warmup=warmup) -> None:
                value = float(_mean_over_ranks(loss, ctx, place_))
                guard.check(value, epoch + 1, step)
                if board is not None:
                    board.step(epoch * steps_per_epoch + step, value, optim.current_lr(optimizer) * warmup(step))

            shard_images = min(len(loader) * config.batch_size, -(-len(data.train) // ctx.world_size))
            train_tally = run_epoch(model, loader, loss_fn, names, place_, optimizer, scaler, frozen,
                                    progress(f"{label} train", shard_images), on_step,
                                    warmup if config.warmup else None)
            val_loader = data.loader("val", config.batch_size, rank=ctx.rank, world_size=ctx.world_size,
                                     workers=workers, pin_memory=pin, skip_bad=options.skip_bad_images)
            val_tally = evaluate_split(model, val_loader, names, place_,
                                       progress=progress(f"{label} validation", -(-len(data.val) // ctx.world_size))
                                       )[0] if len(data.val) else metrics.Tally()
            for batches in (loader, val_loader):
                skipped += batches.skipped
            train_tally = _summed(train_tally, ctx, place_)
            val_tally = _summed(val_tally, ctx, place_)
            if val_tally.count:
                guard.check_validation(val_tally.loss, epoch + 1)
            lr = optim.current_lr(optimizer)
            optim.step_schedule(schedule, 1.0 - val_tally.acc1)
            row = {"epoch": epoch + 1, "train_loss": train_tally.loss, "train_acc": train_tally.acc1,
                   "val_loss": val_tally.loss, "val_top1": val_tally.acc1, "val_top5": val_tally.acc5, "lr": lr,
                   "time_s": time.perf_counter() - epoch_start}
            history.append(row)
            improved = val_tally.acc1 > best
            if improved:
                best, best_epoch = val_tally.acc1, epoch + 1
            if ctx.is_main:
                state = _checkpoint(bare, optimizer, schedule, scaler, epoch + 1, history, best, best_epoch, config,
                                    net, data.info, classes, guard.start)
                ckpt.save_epoch(state, run_dir, improved)
                metrics.write_csv(history, run_dir / "metrics.csv")
                curves.maybe_draw(history, final=epoch + 1 == config.epochs)
                if board is not None:
                    board.epoch(row, (epoch + 1) * steps_per_epoch)
                log(f"{label}: train loss {row['train_loss']:.4f} acc {row['train_acc']:.2%} | val loss "
                    f"{row['val_loss']:.4f} top-1 {row['val_top1']:.2%} top-5 {row['val_top5']:.2%} | lr {lr:.3g} | "
                    f"{row['time_s']:.1f}s, {train_tally.count / max(row['time_s'], 1e-9):,.0f} img/s"
                    f"{' *' if improved else ''}")
                if epoch + 1 == CHANCE_AFTER and at_chance(val_tally.acc1, data.info.num_classes, val_tally.count):
                    log(f"warning: validation top-1 is {val_tally.acc1:.2%} after {CHANCE_AFTER} epochs, no better "
                        f"than guessing among {data.info.num_classes} classes: the network is not learning. Try a "
                        f"lower learning rate (lr = {config.lr:g}) or warm-up (warmup = 2), and check that the "
                        "labels match the images")
        finished = config.epochs
    except KeyboardInterrupt:
        if ctx.is_main and history:
            curves.maybe_draw(history, final=True)
        if board is not None:
            board.close()
        raise Interrupted(run_dir if ctx.is_main else None, len(history)) from None
    except Diverged:
        if board is not None:
            board.close()
        raise
    except (DataError, RuntimeError) as err:
        data_error = as_data_error(err)
        if data_error is None:
            raise
        if board is not None:
            board.close()
        message = data_error.message
        kept = (f"; {run_dir / 'last.pt'} holds epoch {len(history)}: once the data is fixed, continue with "
                f"archdsl train --resume {run_dir}") if history and ctx.is_main else ""
        raise DataError(f"{message} (epoch {len(history) + 1}){kept}") from None

    if skipped and ctx.is_main:
        from archdsl.train.datasets.stream import describe_skipped

        log(f"left out while training (--skip-bad-images): {describe_skipped(sorted(set(skipped)))}")
    test_top1 = test_top5 = None
    if ctx.is_main and len(data.test):
        test_loader = data.loader("test", config.batch_size, workers=workers, pin_memory=pin,
                                  skip_bad=options.skip_bad_images)
        try:
            with worker_deaths_as_data_errors():
                test_tally, predictions, truth = evaluate_split(bare, test_loader, names, place_,
                                                                progress=progress("test", len(data.test)))
        except DataError as err:
            raise DataError(f"{err.message} (testing; the trained weights are in {run_dir / 'last.pt'})") from None
        test_top1, test_top5 = test_tally.acc1, test_tally.acc5
        if board is not None:
            board.test(finished * steps_per_epoch, test_top1, test_top5,
                       metrics.confusion_matrix(predictions, truth, data.info.num_classes), data.info.class_names,
                       f"{net.name} on {config.dataset} (test): top-1 {test_top1:.2%}")
    if board is not None:
        board.close()
    wall = time.perf_counter() - started
    if ctx.is_main:
        summary = {"test_top1": test_top1, "test_top5": test_top5, "epochs": finished, "best_val_top1": best,
                   "best_epoch": best_epoch, "wall_s": round(wall, 3), "params": sum(p.numel() for p in bare.parameters()),
                   "device": place_.describe(), "world_size": ctx.world_size}
        if skipped or (data.streamed and data.folder.skipped):
            summary["skipped_images"] = len(set(skipped)) + len(data.folder.skipped)
        rundir.write_json(summary, run_dir / "summary.json")
        if test_top1 is not None:
            log(f"test top-1 {test_top1:.2%} top-5 {test_top5:.2%} ({len(data.test)} images) after {finished} epochs, "
                f"{wall:.1f}s; run folder {run_dir}")
    dist.barrier(ctx)
    return Result(run_dir if ctx.is_main else None, finished, test_top1, test_top5, wall)


def _plan_resume(schedule, optimizer, finished: int, planned: int, config: TrainConfig, run_dir: Path,
                 net: Network) -> str | None:
    """Check --epochs against what the run did; re-plan its schedule for a new length (the log line), or refuse.

    Never trains at learning rate 0: a schedule that has ended there is refused, with how to fine-tune instead.
    """
    fine_tune = (f"archdsl train {net.path or net.name + '.arch'} --init-from {run_dir / 'last.pt'} --epochs N "
                 f"--lr LR")
    if config.epochs < finished:
        raise ArchError(f"--resume {run_dir}: the run has already trained {finished} epochs; --epochs must be at "
                        f"least that (to train {finished + 1} or more, say so; to start afresh from its weights: "
                        f"{fine_tune})")
    if config.epochs == finished:
        raise ArchError(f"--resume {run_dir}: the run finished all its {finished} epochs; to train longer pass "
                        f"--epochs N (more than {finished}; the schedule is re-planned), or fine-tune from its "
                        f"weights: {fine_tune}")
    message = optim.extend(schedule, finished, planned, config.epochs) if config.epochs != planned else None
    if optim.current_lr(optimizer) <= 0:
        raise ArchError(f"--resume {run_dir}: the learning rate schedule has reached 0 and would train epochs "
                        f"{finished + 1}-{config.epochs} without learning; fine-tune from its weights with a new "
                        f"schedule instead: {fine_tune}")
    return message


def _sync_batch_norm(model: nn.Module, ctx: dist.Context, place_: Placement, log) -> nn.Module:
    if not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        log("--sync-bn: the network has no batch norm; nothing to synchronise")
        return model
    if place_.device.type != "cuda":
        raise ArchError("--sync-bn needs CUDA devices: PyTorch's SyncBatchNorm runs on GPUs only (on CPUs each "
                        "process normalises over its own batch; raise --batch-size to even that out)")
    if not ctx.distributed:
        log("--sync-bn: a single process normalises over its whole batch already; nothing to synchronise")
        return model
    log("batch norm synchronised over all processes (SyncBatchNorm): statistics of the global batch")
    return nn.SyncBatchNorm.convert_sync_batchnorm(model)


def _warmup(config: TrainConfig, epoch: int, steps_per_epoch: int) -> Callable[[int], float]:
    return lambda step: optim.warmup_factor(config, epoch, step, steps_per_epoch)


def _mean_over_ranks(loss: torch.Tensor, ctx: dist.Context, place_: Placement) -> torch.Tensor:
    """The step's loss averaged over ranks, identical on every rank (so that they all stop together)."""
    if not ctx.distributed:
        return loss
    import torch.distributed

    value = loss.detach().float().reshape(1).to(place_.device)
    torch.distributed.all_reduce(value)
    return value / ctx.world_size


def _progress_factory(options: RunOptions, ctx: dist.Context) -> Callable[[str, int], Progress | None]:
    enabled = ctx.is_main and options.progress is not False

    def make(label: str, images: int) -> Progress | None:
        if not enabled:
            return None
        return Progress(label, images, terminal=options.progress, every_s=options.progress_every)

    return make


def _trace_shard(data, config: TrainConfig, ctx: dist.Context, epoch: int) -> None:
    """With ARCHDSL_TRACE_SHARDS=DIR: write the training images this rank reads this epoch (to check a cluster)."""
    folder = os.environ.get("ARCHDSL_TRACE_SHARDS")
    if not folder:
        return
    from archdsl.train.data import shard_order

    order = shard_order(len(data.train), True, epoch_generator(config.seed, epoch), ctx.rank, ctx.world_size)
    Path(folder).mkdir(parents=True, exist_ok=True)
    (Path(folder) / f"rank{ctx.rank}-epoch{epoch + 1}.json").write_text(
        json.dumps({"rank": ctx.rank, "world_size": ctx.world_size, "epoch": epoch + 1, "indices": order.tolist()}))


class _Curves:
    """curves.png, redrawn at most every `every_s` seconds and after the last epoch.

    Drawing costs about 0.4 s (1 s the first time): every epoch it would add a
    quarter to a LeNet-5 run on digits, whose epochs take under a second.
    """

    def __init__(self, path: Path, title: str, every_s: float = 20.0):
        self.path, self.title, self.every_s = path, title, every_s
        self.last = time.perf_counter()  # the first draw waits too: short runs draw once, at the end

    def maybe_draw(self, history: list[dict], final: bool) -> None:
        if final or time.perf_counter() - self.last >= self.every_s:
            metrics.plot_curves(history, self.path, self.title)
            self.last = time.perf_counter()


def _lone_last_batch(count: int, config: TrainConfig, ctx: dist.Context) -> bool:
    """Whether the last batch would hold one image, which batch norm cannot train on: then it is dropped."""
    shard = -(-count // ctx.world_size)
    return shard % config.batch_size == 1 and shard > 1


def _augmentations(config: TrainConfig):
    from archdsl.train.data import make_augment

    try:
        return [make_augment(name, **dict(args)) for name, args in config.augment]
    except ArchError as err:
        raise err.with_span(config.span("augment"))


def _summed(tally: metrics.Tally, ctx: dist.Context, place_: Placement) -> metrics.Tally:
    if not ctx.distributed:
        return tally
    return metrics.Tally.from_tensor(dist.all_sum(tally.as_tensor(), ctx, place_.device))


def _checkpoint(model, optimizer, schedule, scaler, epoch, history, best, best_epoch, config, net, info, classes,
                loss_start=None):
    return {
        "format": ckpt.FORMAT,
        "spec_name": net.name,
        "epoch": epoch,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": schedule.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None else None,
        "rng": ckpt.rng_state(),
        "best_val_top1": best,
        "best_epoch": best_epoch,
        "history": [dict(row) for row in history],
        "config": config.to_json(),
        "class_names": list(info.class_names),
        "num_classes": info.num_classes,
        "replaced_head": classes is not None,
        "loss_start": loss_start,  # the divergence guard's reference (guard.LossGuard.start)
    }


def report_interrupt(exc: Interrupted, stream=sys.stderr) -> None:
    if exc.run_dir is None:
        return
    if exc.epoch:
        print(f"archdsl: interrupted; {exc.run_dir / 'last.pt'} holds epoch {exc.epoch}. "
              f"Continue with: archdsl train --resume {exc.run_dir}", file=stream)
    else:
        print("archdsl: interrupted during the first epoch; nothing to resume", file=stream)
