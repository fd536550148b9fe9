"""Test-time augmentation's effect: top-1 with no TTA, flip and AlexNet's 10-crop, on the digits and a folder.

    python benchmarks/tta_effect.py [--dir DIR] [--epochs-digits 40] [--epochs-folder 12]

1. LeNet-5 trained on scikit-learn's digits with the defaults (`archdsl train specs/lenet5.arch`),
   evaluated on its test split three ways.
2. A generated image folder of 64x64 shapes (filled square, disc, horizontal and vertical bar, at
   random places and sizes on noise: classes that mirroring and cropping do not change), a small
   network trained with `[resized_crop(min_scale=0.35), flip]`, evaluated the same three ways.

Digits are not mirror-symmetric (a mirrored 2 is no 2), so `flip` is expected to hurt there.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHAPES_SPEC = """network shapes64
input 3x64x64
conv3-16 relu maxpool2
conv3-32 relu maxpool2
conv3-32 relu maxpool2
gap
fc-4
"""


def shapes(folder: Path, per_class: int = 300, seed: int = 0) -> None:
    from PIL import Image

    if (folder / ".complete").exists():
        return
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:64, 0:64]
    for label, name in enumerate(("square", "disc", "hbar", "vbar")):
        (folder / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = rng.integers(0, 110, (64, 64, 3)).astype(np.uint8)
            size = int(rng.integers(12, 26))
            cy, cx = rng.integers(size // 2 + 2, 64 - size // 2 - 2, 2)
            if name == "square":
                mask = (abs(y - cy) <= size // 2) & (abs(x - cx) <= size // 2)
            elif name == "disc":
                mask = (y - cy) ** 2 + (x - cx) ** 2 <= (size // 2) ** 2
            elif name == "hbar":
                mask = (abs(y - cy) <= size // 6) & (abs(x - cx) <= size // 2 + 6)
            else:
                mask = (abs(x - cx) <= size // 6) & (abs(y - cy) <= size // 2 + 6)
            pixels[mask] = 150 + rng.integers(0, 105, 3)
            Image.fromarray(pixels).save(folder / name / f"{i:04d}.png")
    (folder / ".complete").write_text("")


def archdsl(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "archdsl", *args], capture_output=True, text=True, cwd=REPO)
    if done.returncode:
        raise SystemExit(done.stderr[-3000:])
    return done.stdout


def effect(spec: Path, run: Path) -> dict[str, dict]:
    results = {}
    for tta in ("none", "flip", "10crop"):
        results[tta] = json.loads(archdsl("evaluate", str(spec), str(run), "--tta", tta, "--json", "-o", str(run)))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "archdsl-tta")
    parser.add_argument("--epochs-digits", default="40")
    parser.add_argument("--epochs-folder", default="12")
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    rows = []
    digits_run = args.dir / "lenet5-digits"
    if not (digits_run / "summary.json").exists():
        archdsl("train", "specs/lenet5.arch", "--epochs", args.epochs_digits, "--out", str(digits_run),
                "--no-progress", "--no-tensorboard")
    rows.append(("LeNet-5, digits (test, 359 images)", effect(REPO / "specs" / "lenet5.arch", digits_run)))
    folder = args.dir / "shapes"
    shapes(folder)
    spec = args.dir / "shapes64.arch"
    spec.write_text(SHAPES_SPEC)
    folder_run = args.dir / "shapes-run"
    if not (folder_run / "summary.json").exists():
        archdsl("train", str(spec), "--dataset", str(folder), "--epochs", args.epochs_folder, "--batch-size", "32",
                "--lr", "0.02", "--augment", "[resized_crop(min_scale=0.35), flip]", "--out", str(folder_run),
                "--no-progress", "--no-tensorboard", "--workers", "2")
    rows.append(("shapes64, generated folder (test, 240 images)", effect(spec, folder_run)))
    print("| data | no TTA top-1 (loss) | flip | 10-crop |\n|---|---:|---:|---:|")
    for name, result in rows:
        cells = [f"{result[k]['top1']:.2%} ({result[k]['loss']:.3f})" for k in ("none", "flip", "10crop")]
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
