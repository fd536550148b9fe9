"""Evaluate a trained checkpoint: top-1/top-5 on a split and the confusion matrix.

    evaluate(net, checkpoint_path, EvalOptions(...)) -> Evaluation

By default it reads the data the run trained on, split with the run's seed and
fractions, so "test" is exactly the run's held-out test set.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch

from archdsl import files
from archdsl.backends.torch import foreign
from archdsl.by_structure import state_keys
from archdsl.errors import ArchError
from archdsl.network import Network
from archdsl.train import checkpoint as ckpt
from archdsl.train import heads as heads_mod
from archdsl.train import metrics, model as model_mod
from archdsl.train.config import TrainConfig
from archdsl.train.device import place


@dataclass(frozen=True)
class EvalOptions:
    dataset: str | None = None  # None: the dataset the checkpoint was trained on
    split: str = "test"
    batch_size: int = 256
    device: str = "auto"
    out: Path | None = None  # where the confusion PNG goes; None: next to the checkpoint
    tta: str = "none"  # test-time augmentation: none, flip, 10crop (see tta.py)
    workers: int | None = None  # loader processes for a streamed image folder
    skip_bad_images: bool = False
    strict: bool = True  # a state_dict from elsewhere must fit the spec by structure


@dataclass(frozen=True)
class Evaluation:
    split: str
    tta: str
    images: int
    top1: float
    top5: float
    loss: float
    confusion: torch.Tensor  # counts[true, predicted]
    class_names: tuple[str, ...]
    png: Path | None

    def as_json(self) -> dict:
        return {"split": self.split, "tta": self.tta, "images": self.images, "top1": self.top1, "top5": self.top5, "loss": self.loss,
                "class_names": list(self.class_names), "confusion": self.confusion.tolist()}


def evaluate(net: Network, checkpoint_path: str | Path, options: EvalOptions = EvalOptions()) -> Evaluation:
    from archdsl.train import tta
    from archdsl.train.loop import load_data, loader_workers, streaming_workers

    if options.tta not in tta.KINDS:
        raise ArchError(f"unknown test-time augmentation '{options.tta}'; expected one of {', '.join(tta.KINDS)}")
    checkpoint_path = Path(checkpoint_path)
    payload = ckpt.load(checkpoint_path)
    if foreign.is_foreign(state_keys(net), payload["model"], archdsl=payload.get("format") == ckpt.FORMAT):
        # torchvision's, timm's: renamed to the spec's keys by structure
        state, _ = foreign.adopt(net, payload["model"], strict=options.strict, what=str(checkpoint_path))
        payload = {**payload, "model": state}
    config = TrainConfig.from_json(payload["config"], f"the settings in {checkpoint_path}") if "config" in payload \
        else TrainConfig()
    if options.dataset:
        config = dataclasses.replace(config, dataset=options.dataset)
    out = options.out or checkpoint_path.parent
    png = out / f"confusion_{options.split}.png" if out is not None else None
    if png is not None:
        files.check_writable(png)  # now, not after an evaluation of the whole split that would then be lost
    if options.tta == "10crop" and len(net.input_shape) != 3:
        raise ArchError(f"--tta 10crop cuts crops of images; the input {tuple(net.input_shape)} is not (C, H, W)")
    data = load_data(net, config, tta.load_size(options.tta, net.input_shape), options.skip_bad_images,
                     streaming_workers(options.workers))
    if not len(data.split(options.split)):
        raise ArchError(f"dataset '{config.dataset}' has no {options.split} images; choose another --split")
    classes = heads_mod.trained_head_size(net, payload)
    trained_net, _, _ = heads_mod.train_network(net, classes)
    model_classes = heads_mod.heads(trained_net)[0].classes
    if model_classes != data.info.num_classes:
        raise ArchError(f"the model predicts {model_classes} classes but dataset '{config.dataset}' has "
                        f"{data.info.num_classes}; evaluate on the data it was trained for")
    model = model_mod.build_model(trained_net, "torch")  # every weight comes from the checkpoint
    if options.strict:
        model_mod.check_fits(model, payload["model"], str(checkpoint_path), net.name)
    model.load_state_dict(payload["model"], strict=options.strict)
    placement = place(options.device)
    if len(net.input_shape) != 3:
        placement = dataclasses.replace(placement, channels_last=False)
    model.to(placement.device)
    if placement.channels_last:
        model.to(memory_format=torch.channels_last)
    from archdsl.train.datasets.stream import worker_deaths_as_data_errors
    from archdsl.train.loop import evaluate_split

    names = list(trained_net.output_nodes)
    loader = data.loader(options.split, options.batch_size, workers=loader_workers(data, options.workers),
                         pin_memory=placement.device.type == "cuda", skip_bad=options.skip_bad_images)
    with worker_deaths_as_data_errors():
        tally, predictions, labels = evaluate_split(model, loader, names, placement, options.tta,
                                                    view_size=tuple(net.input_shape[1:]) if options.tta != "none"
                                                    else None)
    confusion = metrics.confusion_matrix(predictions, labels, data.info.num_classes)
    if png is not None:
        title = f"{net.name} on {config.dataset} ({options.split}{_tta_label(options.tta)}): top-1 {tally.acc1:.2%}"
        metrics.plot_confusion(confusion, data.info.class_names, png, title)
    return Evaluation(options.split, options.tta, tally.count, tally.acc1, tally.acc5, tally.loss, confusion,
                      tuple(data.info.class_names), png)


def _tta_label(kind: str) -> str:
    return "" if kind == "none" else f", {kind}"
