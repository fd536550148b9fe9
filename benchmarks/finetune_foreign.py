"""Fine-tuning a spec from a foreign state_dict, as `archdsl train --init-from … --freeze … --num-classes 10`.

    python benchmarks/finetune_foreign.py [--size 32] [--pretrain-epochs 4] [--epochs 3]

No pretrained weights can be downloaded here, so the "foreign" weights are made the way a user's
would have been: the torchvision-style ResNet-18 of tests/reference (plain PyTorch, torchvision's
module names, ImageNet's 1000-way head) is trained on the digits (`--classes 5`: on 0–4 only), and
saved with `torch.save(model.state_dict())`. Then archdsl fine-tunes specs/resnet18.arch on all ten
digits: once from that file (mapped by structure; the 1000-way head replaced by a fresh 10-way one),
once from scratch, both with everything up to `layer3` frozen, the same seed and settings. The
figures: how the file mapped, and test top-1 of both runs.
"""
from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import reference  # noqa: E402
from archdsl.cli import main  # noqa: E402
from archdsl.train.data import load_dataset  # noqa: E402


def pretrain(size: int, epochs: int, classes: int, path: Path) -> float:
    """The reference ResNet-18 (a 1000-way head) trained in plain PyTorch on the digits below `classes`;
    its state_dict saved."""
    torch.manual_seed(0)
    model = reference.build("resnet18", num_classes=1000)
    data = load_dataset("digits", (3, size, size), seed=0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
    for _ in range(epochs):
        model.train()
        for images, labels in data.loader("train", 32, shuffle=True, generator=torch.Generator().manual_seed(0)):
            keep = labels < classes
            if keep.sum() < 2:
                continue
            loss = torch.nn.functional.cross_entropy(model(images[keep]), labels[keep])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()
    right = total = 0
    with torch.no_grad():
        for images, labels in data.loader("test", 256):
            keep = labels < classes
            right += int((model(images[keep]).argmax(1) == labels[keep]).sum())
            total += int(keep.sum())
    torch.save(model.state_dict(), path)
    return right / total


def finetune(spec: Path, out: Path, epochs: int, init_from: Path | None) -> tuple[str, float]:
    argv = ["train", str(spec), "--freeze", "layer3", "--num-classes", "10", "--epochs", str(epochs),
            "--batch-size", "32", "--out", str(out), "--no-progress"]
    if init_from is not None:
        argv += ["--init-from", str(init_from)]
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert main(argv) == 0
    log = buffer.getvalue()
    top1 = float(re.search(r"test top-1 ([\d.]+)%", log).group(1))
    return log, top1


def main_() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--pretrain-epochs", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--classes", type=int, default=10, help="pretrain on the digits below this")
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        weights = folder / "resnet18_digits.pth"
        start = time.perf_counter()
        accuracy = pretrain(args.size, args.pretrain_epochs, args.classes, weights)
        print(f"pretrained in plain PyTorch (1000-way head) on digits 0-{args.classes - 1}, {args.pretrain_epochs} epochs:"
              f" test top-1 {accuracy:.2%} ({time.perf_counter() - start:.0f} s);"
              f" saved {len(torch.load(weights, weights_only=True))} tensors with torchvision's names")
        spec = folder / "resnet18.arch"
        spec.write_text((ROOT / "specs" / "resnet18.arch").read_text()
                        .replace("input 3x224x224", f"input 3x{args.size}x{args.size}"))
        shutil.copytree(ROOT / "specs" / "lib", folder / "lib")  # what it uses, beside it
        log, transferred = finetune(spec, folder / "from_file", args.epochs, weights)
        for line in log.splitlines():
            if line.startswith(("init from", "new ", "frozen", "training")):
                print("  " + line.replace(str(folder) + "/", ""))
        _, scratch = finetune(spec, folder / "from_scratch", args.epochs, None)
        print(f"archdsl fine-tune of layer4 and a new 10-way fc, {args.epochs} epochs on all ten digits:"
              f" from the file {transferred:.2f}%, from scratch {scratch:.2f}% test top-1")


if __name__ == "__main__":
    main_()
