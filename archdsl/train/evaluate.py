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


@dataclass(frozen=True)
class Evaluation:
    split: str
    images: int
    top1: float
    top5: float
    loss: float
    confusion: torch.Tensor  # counts[true, predicted]
    class_names: tuple[str, ...]
    png: Path | None

    def as_json(self) -> dict:
        return {"split": self.split, "images": self.images, "top1": self.top1, "top5": self.top5, "loss": self.loss,
                "class_names": list(self.class_names), "confusion": self.confusion.tolist()}


def evaluate(net: Network, checkpoint_path: str | Path, options: EvalOptions = EvalOptions()) -> Evaluation:
    from archdsl.train.data import load_dataset

    checkpoint_path = Path(checkpoint_path)
    payload = ckpt.load(checkpoint_path)
    config = TrainConfig.from_json(payload["config"], f"the settings in {checkpoint_path}") if "config" in payload \
        else TrainConfig()
    if options.dataset:
        config = dataclasses.replace(config, dataset=options.dataset)
    data = load_dataset(config.dataset, net.input_shape, seed=config.seed, val_fraction=config.val_fraction,
                        test_fraction=config.test_fraction, normalize=config.normalize)
    if not len(data.split(options.split)):
        raise ArchError(f"dataset '{config.dataset}' has no {options.split} images; choose another --split")
    classes = _trained_classes(net, payload, data.info.num_classes)
    trained_net, _, _ = heads_mod.train_network(net, classes)
    model_classes = heads_mod.heads(trained_net)[0].classes
    if model_classes != data.info.num_classes:
        raise ArchError(f"the model predicts {model_classes} classes but dataset '{config.dataset}' has "
                        f"{data.info.num_classes}; evaluate on the data it was trained for")
    model = model_mod.build_model(trained_net, "torch")  # every weight comes from the checkpoint
    model_mod.check_fits(model, payload["model"], str(checkpoint_path), net.name)
    model.load_state_dict(payload["model"])
    placement = place(options.device)
    if len(net.input_shape) != 3:
        placement = dataclasses.replace(placement, channels_last=False)
    model.to(placement.device)
    if placement.channels_last:
        model.to(memory_format=torch.channels_last)
    from archdsl.train.loop import evaluate_split

    names = list(trained_net.output_nodes)
    tally, predictions, labels = evaluate_split(model, data.loader(options.split, options.batch_size), names, placement)
    confusion = metrics.confusion_matrix(predictions, labels, data.info.num_classes)
    out = options.out or checkpoint_path.parent
    png = None
    if out is not None:
        files.make_folder(out)
        png = out / f"confusion_{options.split}.png"
        title = f"{net.name} on {config.dataset} ({options.split}): top-1 {tally.acc1:.2%}"
        metrics.plot_confusion(confusion, data.info.class_names, png, title)
    return Evaluation(options.split, tally.count, tally.acc1, tally.acc5, tally.loss, confusion,
                      tuple(data.info.class_names), png)


def _trained_classes(net: Network, payload: dict, data_classes: int) -> int | None:
    """The head size the checkpoint was trained with, when it is not the spec's."""
    spec_classes = heads_mod.heads(net)[0].classes
    trained = payload.get("num_classes")
    if trained is None:  # a bare state_dict: believe its head if it is the data's size
        trained = data_classes
        head = heads_mod.heads(net)[0]
        weight = payload["model"].get(f"{net.module_path(head.layer)}.weight")
        if weight is not None:
            trained = int(weight.shape[0])
    return None if trained == spec_classes else trained
