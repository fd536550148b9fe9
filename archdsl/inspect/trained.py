"""A trained network ready to be looked into: the spec, its weights, and the data it was trained on.

    load_trained(net, checkpoint, dataset=None, device="cpu") -> Trained

The checkpoint is read and checked the way `archdsl evaluate` does it: the run's
own config (data set, seed, split fractions, normalisation) gives exactly the
splits `archdsl train` used, so "test" here is the run's held-out test set, and a
checkpoint of another spec is refused naming the tensors that differ.
"""
from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import torch
from torch import nn

from archdsl.errors import ArchError
from archdsl.network import Network
from archdsl.train import checkpoint as ckpt
from archdsl.train import heads as heads_mod
from archdsl.train import model as model_mod
from archdsl.train.config import TrainConfig
from archdsl.train.data import SPLITS, DataSplits, load_dataset
from archdsl.train.device import place


@dataclass(frozen=True, eq=False)
class Trained:
    """`model` computes `model_net` (the spec as trained: logits, the head the data needed) with the checkpoint's weights."""

    net: Network  # the spec as written: its layer names are the ones the user gives
    model_net: Network
    model: nn.Module  # in eval mode, on `device`
    data: DataSplits
    config: TrainConfig
    checkpoint: Path
    device: torch.device

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(self.data.info.class_names)

    @property
    def output_names(self) -> list[str]:
        return list(self.model_net.output_nodes)

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """The main output's scores for a batch of normalised images."""
        result = self.model(images.to(self.device))
        return model_mod.outputs_dict(result, self.output_names)[self.output_names[0]].float()

    def batches(self, split: str, batch_size: int = 256) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(normalised images, labels) of `split` in its stored order, through training's own loader."""
        check_split(split)
        return iter(self.data.loader(split, batch_size))

    def split_size(self, split: str) -> int:
        check_split(split)
        return len(self.data.split(split))

    def images_at(self, split: str, indices) -> tuple[torch.Tensor, torch.Tensor]:
        """The normalised images (and labels) at `indices` of `split`, in the order asked for."""
        wanted = [int(i) for i in indices]
        size = self.split_size(split)
        bad = [i for i in wanted if not 0 <= i < size]
        if bad:
            raise ArchError(f"image {bad[0]} is not in the {split} split, which holds images 0 to {size - 1}; "
                            "choose an index in that range")
        found: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        position, targets = 0, set(wanted)
        for images, labels in self.batches(split):
            for offset in range(len(labels)):
                if position + offset in targets:
                    found[position + offset] = (images[offset], labels[offset])
            position += len(labels)
            if len(found) == len(targets):
                break
        return (torch.stack([found[i][0] for i in wanted]).cpu(), torch.stack([found[i][1] for i in wanted]).cpu())

    def pixels(self, images: torch.Tensor) -> torch.Tensor:
        """Normalised images back on the [0, 1] scale they are shown on."""
        info = self.data.info
        mean = torch.tensor(info.mean, dtype=images.dtype).view(-1, 1, 1)
        std = torch.tensor(info.std, dtype=images.dtype).view(-1, 1, 1)
        return (images.cpu() * std + mean).clamp(0, 1)

    def normalize(self, pixels: torch.Tensor) -> torch.Tensor:
        info = self.data.info
        mean = torch.tensor(info.mean, dtype=pixels.dtype).view(-1, 1, 1)
        std = torch.tensor(info.std, dtype=pixels.dtype).view(-1, 1, 1)
        return (pixels - mean) / std


def check_split(split: str) -> None:
    if split not in SPLITS:
        raise ArchError(f"unknown split '{split}'; expected one of {', '.join(SPLITS)}")


def load_trained(net: Network, checkpoint: str | Path, dataset: str | None = None, device: str = "cpu") -> Trained:
    """`net` with the weights of `checkpoint` (a .pt file or a run folder), and the data split as it was trained."""
    checkpoint = Path(checkpoint)
    if checkpoint.is_dir():  # a run folder: its final weights, which its summary's test figures describe
        checkpoint = checkpoint / "last.pt"
    payload = ckpt.load(checkpoint)
    config = TrainConfig.from_json(payload["config"]) if "config" in payload else TrainConfig()
    if dataset:
        config = dataclasses.replace(config, dataset=dataset)
    data = load_dataset(config.dataset, net.input_shape, seed=config.seed, val_fraction=config.val_fraction,
                        test_fraction=config.test_fraction, normalize=config.normalize)
    state = payload["model"]
    model_net, _, _ = heads_mod.train_network(net, heads_mod.trained_head_size(net, payload))
    model = model_mod.build_model(model_net, "torch")  # every weight comes from the checkpoint
    model_mod.check_fits(model, state, str(checkpoint), net.name)
    model.load_state_dict(state)
    target = place(device).device
    model.to(target).eval()
    return Trained(net, model_net, model, data, config, checkpoint, target)


@contextlib.contextmanager
def inference_threads(net: Network, batch_size: int = 256) -> Iterator[None]:
    """CPU threads as training picks them (one for small networks, where more only contend), then restored."""
    from archdsl.train.device import cpu_threads

    previous = torch.get_num_threads()
    torch.set_num_threads(cpu_threads(net.macs * batch_size))
    try:
        yield
    finally:
        torch.set_num_threads(previous)
