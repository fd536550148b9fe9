"""The optimizer and the learning-rate schedule a TrainConfig names. Schedules step once per epoch.

Warm-up (`warmup = N` epochs) scales the scheduled rate per step, linearly
from 1/(N x steps per epoch) to 1 (Goyal et al., "Accurate, Large Minibatch
SGD"); the schedules never see it, so their state stays a function of the epoch.
"""
from __future__ import annotations

import math

import torch

from archdsl.train.config import DEFAULT_SGD_MOMENTUM, TrainConfig


def make_optimizer(params, config: TrainConfig) -> torch.optim.Optimizer:
    name, args = config.optimizer[0], config.optimizer_args()
    lr, wd = config.lr, config.weight_decay
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=args.get("momentum", DEFAULT_SGD_MOMENTUM), weight_decay=wd,
                               nesterov=bool(args.get("nesterov", False)), dampening=args.get("dampening", 0.0))
    if name in ("adam", "adamw"):
        cls = torch.optim.Adam if name == "adam" else torch.optim.AdamW
        betas = (args.get("beta1", 0.9), args.get("beta2", 0.999))
        return cls(params, lr=lr, betas=betas, eps=args.get("eps", 1e-8), weight_decay=wd)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, alpha=args.get("alpha", 0.99), momentum=args.get("momentum", 0.0),
                                   eps=args.get("eps", 1e-8), weight_decay=wd)
    raise AssertionError(f"config let through an unknown optimizer {name!r}")


class Constant(torch.optim.lr_scheduler.LRScheduler):
    """No change (a state_dict of plain values, unlike LambdaLR's)."""

    def get_lr(self):
        return [group["lr"] for group in self.optimizer.param_groups]


class Cosine(torch.optim.lr_scheduler.LRScheduler):
    """Cosine annealing from the base rate to `eta_min` over `T_max` epochs, in closed form.

    torch's CosineAnnealingLR steps recursively from the current rate, so once
    a run ended at rate 0 a longer plan stays at 0; the closed form can be
    re-planned (see `replan`). The state_dict keys are CosineAnnealingLR's.
    """

    def __init__(self, optimizer, T_max: int, eta_min: float = 0.0):
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer)

    def get_lr(self):
        return [self.rate(base, self.last_epoch) for base in self.base_lrs]

    def rate(self, base: float, epoch: int) -> float:
        progress = min(epoch, self.T_max) / self.T_max
        return self.eta_min + (base - self.eta_min) * (1 + math.cos(math.pi * progress)) / 2

    def replan(self, epochs: int) -> None:
        """Anneal over `epochs` instead, from where the run is now."""
        self.T_max = epochs
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = self.rate(base, self.last_epoch)
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]


def make_schedule(optimizer: torch.optim.Optimizer, config: TrainConfig):
    name, args = config.schedule[0], config.schedule_args()
    if name == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=int(args.get("every", 30)),
                                               gamma=args.get("gamma", 0.1))
    if name == "cosine":
        return Cosine(optimizer, T_max=config.epochs, eta_min=args.get("min_lr", 0.0))
    if name == "plateau":
        # "divide the learning rate by 10 when the validation error stops improving" (AlexNet, VGG)
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=args.get("factor", 0.1), patience=int(args.get("patience", 3)),
            threshold=args.get("threshold", 1e-4))
    return Constant(optimizer)


def step_schedule(schedule, val_error: float) -> None:
    if isinstance(schedule, torch.optim.lr_scheduler.ReduceLROnPlateau):
        schedule.step(val_error)
    else:
        schedule.step()


def current_lr(optimizer: torch.optim.Optimizer) -> float:
    return float(optimizer.param_groups[0]["lr"])


def warmup_factor(config: TrainConfig, epoch: int, step: int, steps_per_epoch: int) -> float:
    """The warm-up's scale for `step` (1-based) of `epoch` (0-based): linear up to 1 over `warmup` epochs."""
    total = config.warmup * steps_per_epoch
    done = epoch * steps_per_epoch + step
    return 1.0 if done >= total else done / total


def extend(schedule, finished: int, old_epochs: int, new_epochs: int) -> str:
    """Fit the schedule of a run resumed with --epochs changed from `old_epochs`; what was done, for the log.

    Cosine is re-planned to end at `new_epochs` (the rate rises again if the run
    had finished); step, plateau and constant schedules simply go on.
    """
    if isinstance(schedule, Cosine):
        before = current_lr(schedule.optimizer)
        schedule.replan(new_epochs)
        return (f"cosine schedule re-planned for {new_epochs} epochs (was {old_epochs}): epoch {finished + 1} "
                f"trains at lr {current_lr(schedule.optimizer):.3g} (the old plan was at {before:.3g})")
    kind = type(schedule).__name__
    name = {"StepLR": "step", "ReduceLROnPlateau": "plateau"}.get(kind, "constant")
    return f"the {name} schedule goes on to epoch {new_epochs}: epoch {finished + 1} trains at lr " \
           f"{current_lr(schedule.optimizer):.3g}"
