"""`archdsl train SPEC`: train a spec on its `train` section's data, with any setting overridable.

    archdsl train specs/lenet5.arch                      digits, the defaults
    archdsl train spec.arch --epochs 3 --lr 0.01 --optimizer "sgd(momentum=0.9)" --set label_smoothing=0.1
    archdsl train --resume runs/lenet5-20260101-120000   continue where it stopped
    archdsl train spec.arch --nproc 2                    DistributedDataParallel via torch.distributed.run

Exit codes: 0 trained, 1 an error in the spec, data or checkpoint, 130 interrupted.
"""
from __future__ import annotations

import sys

# Flags that set a train setting: (flag, setting key, metavar, help)
SETTING_FLAGS = (
    ("--dataset", "dataset", "PATH", "'digits' (scikit-learn, the default) or a folder: MNIST IDX, CIFAR, image folders"),
    ("--epochs", "epochs", "N", None),
    ("--batch-size", "batch_size", "N", None),
    ("--lr", "lr", "LR", "learning rate"),
    ("--optimizer", "optimizer", "NAME", "sgd, adam, adamw, rmsprop; with arguments e.g. 'sgd(momentum=0.9)'"),
    ("--schedule", "schedule", "NAME", "constant, step(EVERY, GAMMA), cosine, plateau (lr/10 when val error stalls)"),
    ("--warmup", "warmup", "EPOCHS", "epochs of linear learning-rate warm-up (per step) before the schedule"),
    ("--weight-decay", "weight_decay", "WD", None),
    ("--label-smoothing", "label_smoothing", "EPS", None),
    ("--augment", "augment", "LIST", "e.g. '[crop(pad=4), flip]', '[resized_crop, flip, jitter]' or none"),
    ("--seed", "seed", "N", None),
    ("--init", "init", "SCHEME", "auto, kaiming, xavier, torch"),
    ("--aux-weight", "aux_weight", "W", "weight of auxiliary classifier losses (default 0.3)"),
    ("--num-classes", "num_classes", "N", "replace the last fc with a fresh one of N outputs"),
    ("--init-from", "init_from", "CHECKPOINT", "start from a checkpoint's weights: archdsl's by name, any other "
     "state_dict (torchvision, timm, {name: tensor}) by structure"),
    ("--strict", "strict", "BOOL", "false: load what of --init-from fits by structure, keep fresh weights elsewhere"),
    ("--freeze", "freeze", "LAYER", "freeze every layer up to and including LAYER (topological order)"),
)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("train", help="train a spec (its `train` section, or good defaults on digits)",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("spec", nargs="?", metavar="SPEC", help="spec file (.arch); optional with --resume")
    settings = p.add_argument_group("settings (override the spec's train section)")
    for flag, key, metavar, help_text in SETTING_FLAGS:
        settings.add_argument(flag, dest=f"set_{key}", metavar=metavar, help=help_text)
    settings.add_argument("--set", dest="set_pairs", action="append", default=[], metavar="KEY=VALUE",
                          help="any train setting, as the spec writes it (repeatable)")
    run = p.add_argument_group("running")
    run.add_argument("--out", metavar="DIR", help="run folder (default runs/NAME-TIMESTAMP)")
    run.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its last.pt")
    run.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda, cuda:N")
    run.add_argument("--threads", type=int, metavar="N", help="CPU threads (default: 1 for small models, else all)")
    run.add_argument("--compile", action="store_true", help="torch.compile the model")
    run.add_argument("--no-progress", action="store_true", help="no progress bar, only the per-epoch lines")
    run.add_argument("--progress-every", type=float, default=30.0, metavar="S",
                     help="when stderr is not a terminal: one progress line every S seconds (default 30)")
    run.add_argument("--no-tensorboard", action="store_true", help="write no TensorBoard event files")
    data = p.add_argument_group("data loading")
    data.add_argument("--workers", type=int, metavar="N",
                      help="processes decoding a streamed image folder (default: one per core, at most 8)")
    data.add_argument("--skip-bad-images", action="store_true",
                      help="leave unreadable images out (counted and listed) instead of stopping")
    ddp = p.add_argument_group("distributed (DistributedDataParallel through torch.distributed.run)")
    ddp.add_argument("--nproc", type=int, metavar="N", help="processes per node (GPUs, or CPU workers with gloo)")
    ddp.add_argument("--sync-bn", action="store_true",
                     help="batch norm over the global batch (SyncBatchNorm; CUDA only)")
    from archdsl.train.distributed import LAUNCHER_OPTIONS

    for key in LAUNCHER_OPTIONS:
        ddp.add_argument(f"--{key.replace('_', '-')}", dest=f"launch_{key}", metavar="X", help="passed to torchrun")


def run(args) -> int:
    from pathlib import Path

    import archdsl
    from archdsl.errors import ArchError
    from archdsl.train import distributed
    from archdsl.train.config import override, overrides_from_pairs, resolve_config
    from archdsl.train.loop import Interrupted, RunOptions, report_interrupt, train

    if args.threads is not None and args.threads < 1:
        raise ArchError(f"--threads expects a number of CPU threads >= 1, got {args.threads}")
    for flag, value in (("--workers", args.workers), ("--progress-every", args.progress_every)):
        if value is not None and not 0 <= value < float("inf"):
            raise ArchError(f"{flag} expects a number >= 0, got {value}")
    launcher = {k: getattr(args, f"launch_{k}") for k in distributed.LAUNCHER_OPTIONS}
    if args.nproc is not None:
        if args.nproc < 1:
            raise ArchError(f"--nproc expects a number of processes >= 1, got {args.nproc}")
        if distributed.context_from_env().distributed:
            raise ArchError("--nproc inside a distributed launch; run either torchrun or --nproc, not both")
        if not args.spec and not args.resume:
            raise ArchError("archdsl train needs a SPEC (or --resume RUN_DIR)")
        if not args.out and not args.resume:  # named here, so that a failure can say what to resume
            from archdsl.train.rundir import new_run_dir

            args.out = str(new_run_dir(archdsl.load(args.spec).name))
        run_dir = Path(args.resume or args.out)
        return distributed.launch(args.nproc, _child_argv(args), launcher, run_dir)

    overrides = [override(key, getattr(args, f"set_{key}")) for _, key, _, _ in SETTING_FLAGS
                 if getattr(args, f"set_{key}") is not None]
    overrides += overrides_from_pairs(args.set_pairs)
    if args.resume:
        net, config = _resumed(Path(args.resume), args.spec, overrides)
    else:
        if not args.spec:
            raise ArchError("archdsl train needs a SPEC (or --resume RUN_DIR)")
        net = archdsl.load(args.spec)
        config = resolve_config(net.train_settings, overrides, net.input_shape)
    for warning in net.warnings:
        print(warning.format(), file=sys.stderr)
    options = RunOptions(out=Path(args.out) if args.out else None, device=args.device, compile=args.compile,
                         resume=Path(args.resume) if args.resume else None,
                         progress=False if args.no_progress else None, threads=args.threads,
                         progress_every=args.progress_every, workers=args.workers,
                         skip_bad_images=args.skip_bad_images, tensorboard=not args.no_tensorboard,
                         sync_bn=args.sync_bn)
    try:
        train(net, config, options)
    except Interrupted as exc:
        report_interrupt(exc)
        return 130
    except RuntimeError as exc:  # in a distributed run: another process has gone, DDP's backward noticed
        raise distributed.lost_peer(exc) or exc
    return 0


def _resumed(run_dir, spec_arg, overrides):
    """The network and configuration of an earlier run; only the epoch count may change."""
    import dataclasses
    import json

    from pathlib import Path

    import archdsl
    from archdsl.errors import ArchError, SpecImportError
    from archdsl.train.config import TrainConfig, resolve_config

    config_file = run_dir / "config.json"
    if not (run_dir / "last.pt").exists() or not config_file.exists():
        raise ArchError(f"--resume {run_dir}: not a run folder with last.pt and config.json (did its first epoch finish?)")
    try:
        saved = json.loads(config_file.read_bytes())
    except (ValueError, OSError) as exc:
        raise ArchError(f"--resume {run_dir}: {config_file} cannot be read as JSON ({exc}); it is damaged") from None
    if not isinstance(saved, dict) or not isinstance(saved.get("spec"), str):
        raise ArchError(f"--resume {run_dir}: {config_file} is not the config.json archdsl train writes")
    config = TrainConfig.from_json(saved, f"the settings in {config_file}")
    for setting in overrides:  # keys are canonical here
        if setting.key != "epochs":
            raise ArchError(f"a resumed run keeps its settings; only --epochs may change (got {setting.key})",
                            setting.span)
    if overrides:
        config = dataclasses.replace(config, epochs=resolve_config((), overrides).epochs)
    if spec_arg:
        return archdsl.load(spec_arg), config
    try:
        return archdsl.load(run_dir / saved["spec"]), config
    except SpecImportError:  # the copy's `use` files live next to the original
        if saved.get("spec_path") and Path(saved["spec_path"]).exists():
            return archdsl.load(saved["spec_path"]), config
        raise


def _child_argv(args) -> list[str]:
    """The same `train` command for each process of a distributed launch, without --nproc."""
    argv = ["train"] + ([args.spec] if args.spec else [])
    for flag, key, _, _ in SETTING_FLAGS:
        if getattr(args, f"set_{key}") is not None:
            argv += [flag, getattr(args, f"set_{key}")]
    for pair in args.set_pairs:
        argv += ["--set", pair]
    for flag, value in (("--out", args.out), ("--resume", args.resume), ("--device", args.device),
                        ("--threads", None if args.threads is None else str(args.threads))):
        if value is not None:
            argv += [flag, value]
    for flag, value in (("--workers", args.workers), ("--progress-every", args.progress_every)):
        if value is not None:
            argv += [flag, str(value)]
    argv += ["--compile"] * args.compile + ["--no-progress"] * args.no_progress
    argv += ["--no-tensorboard"] * args.no_tensorboard + ["--skip-bad-images"] * args.skip_bad_images
    argv += ["--sync-bn"] * args.sync_bn
    return argv
