"""The training loop: epochs of batches, validation, checkpoints, and a test at the end.

    train(net, config, RunOptions(...)) -> Result

Reproducibility: the data order of epoch e is drawn from a generator seeded
with (seed, e), not carried over from epoch to epoch, so a resumed run and a
run that was never stopped see the same batches, and every DDP rank agrees on
the order without talking. The global RNGs (dropout) are saved in each
checkpoint. On the CPU with a fixed seed a resumed run ends bit-identical.
"""
from __future__ import annotations

import dataclasses
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from archdsl.errors import ArchError
from archdsl.network import Network
from archdsl.train import checkpoint as ckpt
from archdsl.train import distributed as dist
from archdsl.train import heads as heads_mod
from archdsl.train import metrics, model as model_mod, optim, rundir
from archdsl.train.config import TrainConfig, check_config
from archdsl.train.device import Placement, cpu_threads, place
from archdsl.train.progress import ProgressBar


@dataclass(frozen=True)
class RunOptions:
    """How to run (not what): these never change the numbers a CPU run produces."""

    out: Path | None = None  # None: runs/NAME-TIMESTAMP
    device: str = "auto"
    compile: bool = False
    resume: Path | None = None
    progress: bool | None = None  # None: draw the bar when stderr is a terminal
    threads: int | None = None  # CPU threads; None: see device.cpu_threads
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


def load_data(net: Network, config: TrainConfig):
    from archdsl.train.data import load_dataset

    try:
        return load_dataset(config.dataset, net.input_shape, seed=config.seed, val_fraction=config.val_fraction,
                            test_fraction=config.test_fraction, normalize=config.normalize)
    except ArchError as err:
        raise err.with_span(config.span("dataset"))


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


def run_epoch(model, loader, loss_fn, names, place_: Placement, optimizer=None, scaler=None, frozen=(),
              bar: ProgressBar | None = None) -> metrics.Tally:
    """Train (with an optimizer) or evaluate (without) over one pass of `loader`."""
    training = optimizer is not None
    model.train(training)
    for module in frozen:  # frozen batch norms keep their statistics
        module.eval()
    tally = metrics.Tally()
    with torch.set_grad_enabled(training):
        for step, (images, labels) in enumerate(loader, 1):
            images = images.to(place_.device, non_blocking=True)
            if place_.channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            labels = labels.to(place_.device, non_blocking=True)
            with place_.autocast():
                outputs = model_mod.outputs_dict(model(images), names)
                loss = loss_fn(outputs, labels) if training else F.cross_entropy(outputs[names[0]].float(), labels)
            if training:
                optimizer.zero_grad(set_to_none=True)
                if scaler is not None:
                    scaler.scale(loss).backward()
                    scaler.step(optimizer)
                    scaler.update()
                else:
                    loss.backward()
                    optimizer.step()
            tally.add(loss.detach(), outputs[names[0]].detach().float(), labels)
            if bar is not None:
                bar.update(step, tally.count, tally.loss, tally.acc1)
    if bar is not None:
        bar.close()
    return tally


def evaluate_split(model, loader, names, place_: Placement) -> tuple[metrics.Tally, torch.Tensor, torch.Tensor]:
    """Main-output metrics over a whole loader, with the predictions and labels (for a confusion matrix)."""
    model.eval()
    tally, predictions, truth = metrics.Tally(), [], []
    with torch.no_grad():
        for images, labels in loader:
            images = images.to(place_.device)
            if place_.channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            labels = labels.to(place_.device)
            with place_.autocast():
                logits = model_mod.outputs_dict(model(images), names)[names[0]].float()
            tally.add(F.cross_entropy(logits, labels), logits, labels)
            predictions.append(logits.argmax(1).cpu())
            truth.append(labels.cpu())
    empty = torch.empty(0, dtype=torch.long)
    return tally, torch.cat(predictions) if predictions else empty, torch.cat(truth) if truth else empty


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
    data = load_data(net, config)
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
        transfer = model_mod.load_matching(model, source["model"])
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

    start_epoch, history, best, best_epoch = 0, [], -1.0, 0
    if resume is not None:
        model_mod.check_fits(model, resume["model"], str(options.resume), net.name)
        model.load_state_dict(resume["model"])
        ckpt.restore(resume, options.resume / ckpt.LAST, optimizer, schedule, scaler)
        start_epoch, history = resume["epoch"], list(resume["history"])
        best, best_epoch = resume["best_val_top1"], resume["best_epoch"]
        if isinstance(schedule, torch.optim.lr_scheduler.CosineAnnealingLR):
            schedule.T_max = config.epochs  # --epochs raised on resume: decay to the new end
        log(f"resuming {options.resume} after epoch {start_epoch} of {config.epochs}")

    frozen = model_mod.frozen_modules(model)
    bare = model  # what checkpoints hold: never the DDP or compiled wrapper's names
    if ctx.distributed:
        ids = [place_.device.index] if place_.device.type == "cuda" else None
        model = nn.parallel.DistributedDataParallel(model, device_ids=ids)
    if options.compile:
        model = torch.compile(model)

    run_dir = options.resume or options.out or rundir.new_run_dir(net.name)
    spec_file = Path(net.path).name if net.path else f"{net.name}.arch"
    if ctx.is_main:
        placement = {"device": place_.describe(), "world_size": ctx.world_size, "compile": options.compile}
        rundir.prepare(run_dir, net.spec.source.text, spec_file,
                       {"spec": spec_file, "spec_path": str(Path(net.path).resolve()) if net.path else None,
                        "network": net.name, **config.to_json(), "run": placement,
                        "classes": list(data.info.class_names)}, resuming=resume is not None)
        if resume is not None:
            ckpt.repair_best(resume, run_dir)
        log(f"run folder {run_dir}")
        log(f"training {net.name} ({sum(p.numel() for p in bare.parameters()):,} params) on "
            f"{place_.describe()}{f' x{ctx.world_size} processes' if ctx.distributed else ''}: {config.describe()}")
        log(f"data: {len(data.train)} train / {len(data.val)} val / {len(data.test)} test images, "
            f"{data.info.num_classes} classes, resized to {'x'.join(map(str, data.info.input_shape))}")

    curves = _Curves(run_dir / "curves.png", f"{net.name} on {config.dataset}")
    loss_fn = make_loss(config, names)
    augment = _augmentations(config)
    try:
        for epoch in range(start_epoch, config.epochs):
            epoch_start = time.perf_counter()
            loader = data.loader("train", config.batch_size, shuffle=True,
                                 generator=epoch_generator(config.seed, epoch), augment=augment, rank=ctx.rank,
                                 world_size=ctx.world_size, drop_last=_lone_last_batch(len(data.train), config, ctx))
            label = f"epoch {epoch + 1}/{config.epochs}"
            bar = ProgressBar(label, len(loader), enabled=options.progress if ctx.is_main else False)
            train_tally = run_epoch(model, loader, loss_fn, names, place_, optimizer, scaler, frozen, bar)
            val_loader = data.loader("val", config.batch_size, rank=ctx.rank, world_size=ctx.world_size)
            val_tally = evaluate_split(model, val_loader, names, place_)[0] if len(data.val) else metrics.Tally()
            train_tally = _summed(train_tally, ctx, place_)
            val_tally = _summed(val_tally, ctx, place_)
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
                                    net, data.info, classes)
                ckpt.save_epoch(state, run_dir, improved)
                metrics.write_csv(history, run_dir / "metrics.csv")
                curves.maybe_draw(history, final=epoch + 1 == config.epochs)
                log(f"{label}: train loss {row['train_loss']:.4f} acc {row['train_acc']:.2%} | val loss "
                    f"{row['val_loss']:.4f} top-1 {row['val_top1']:.2%} top-5 {row['val_top5']:.2%} | lr {lr:.3g} | "
                    f"{row['time_s']:.1f}s, {train_tally.count / max(row['time_s'], 1e-9):,.0f} img/s"
                    f"{' *' if improved else ''}")
        finished = config.epochs
    except KeyboardInterrupt:
        if ctx.is_main and history:
            curves.maybe_draw(history, final=True)
        raise Interrupted(run_dir if ctx.is_main else None, len(history)) from None

    test_top1 = test_top5 = None
    if ctx.is_main and len(data.test):
        test_tally, _, _ = evaluate_split(bare, data.loader("test", config.batch_size), names, place_)
        test_top1, test_top5 = test_tally.acc1, test_tally.acc5
    wall = time.perf_counter() - started
    if ctx.is_main:
        summary = {"test_top1": test_top1, "test_top5": test_top5, "epochs": finished, "best_val_top1": best,
                   "best_epoch": best_epoch, "wall_s": round(wall, 3), "params": sum(p.numel() for p in bare.parameters()),
                   "device": place_.describe(), "world_size": ctx.world_size}
        rundir.write_json(summary, run_dir / "summary.json")
        if test_top1 is not None:
            log(f"test top-1 {test_top1:.2%} top-5 {test_top5:.2%} ({len(data.test)} images) after {finished} epochs, "
                f"{wall:.1f}s; run folder {run_dir}")
    dist.barrier(ctx)
    return Result(run_dir if ctx.is_main else None, finished, test_top1, test_top5, wall)


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


def _checkpoint(model, optimizer, schedule, scaler, epoch, history, best, best_epoch, config, net, info, classes):
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
    }


def report_interrupt(exc: Interrupted, stream=sys.stderr) -> None:
    if exc.run_dir is None:
        return
    if exc.epoch:
        print(f"archdsl: interrupted; {exc.run_dir / 'last.pt'} holds epoch {exc.epoch}. "
              f"Continue with: archdsl train --resume {exc.run_dir}", file=stream)
    else:
        print("archdsl: interrupted during the first epoch; nothing to resume", file=stream)
