"""The optimizer and the learning-rate schedule a TrainConfig names. Schedules step once per epoch."""
from __future__ import annotations

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


def make_schedule(optimizer: torch.optim.Optimizer, config: TrainConfig):
    name, args = config.schedule[0], config.schedule_args()
    if name == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=int(args.get("every", 30)),
                                               gamma=args.get("gamma", 0.1))
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs,
                                                          eta_min=args.get("min_lr", 0.0))
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
