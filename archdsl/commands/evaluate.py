"""`archdsl evaluate SPEC CHECKPOINT`: top-1/top-5 and a confusion matrix (printed, and as a PNG)."""
from __future__ import annotations

import json


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("evaluate", help="evaluate a trained checkpoint: top-1/top-5, confusion matrix")
    p.add_argument("spec", metavar="SPEC", help="spec file the checkpoint was trained from")
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="a .pt file (last.pt, best.pt) or a run folder (its last.pt)")
    p.add_argument("--dataset", metavar="PATH", help="data to evaluate on (default: what the run trained on)")
    p.add_argument("--split", default="test", choices=("train", "val", "test"), help="default: test")
    p.add_argument("--batch-size", type=int, default=256, metavar="N")
    p.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda, cuda:N")
    p.add_argument("-o", "--out", metavar="DIR", help="folder for confusion_SPLIT.png (default: the checkpoint's)")
    p.add_argument("--tta", default="none", choices=("none", "flip", "10crop"),
                   help="test-time augmentation: flip (image and mirror) or 10crop (AlexNet's four corners, centre "
                        "and their mirrors of a 256/224 larger image), predictions averaged")
    p.add_argument("--workers", type=int, metavar="N", help="processes decoding a streamed image folder")
    p.add_argument("--skip-bad-images", action="store_true", help="leave unreadable images out")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")


def run(args) -> int:
    from pathlib import Path

    import archdsl
    from archdsl.errors import ArchError
    from archdsl.train.evaluate import EvalOptions, evaluate
    from archdsl.train.metrics import format_confusion

    if args.batch_size < 1:
        raise ArchError(f"--batch-size expects a number >= 1, got {args.batch_size}")
    net = archdsl.load(args.spec)
    checkpoint = Path(args.checkpoint)
    if checkpoint.is_dir():  # a run folder: its final weights, which its summary.json's test figures describe
        checkpoint = checkpoint / "last.pt"
    if args.workers is not None and args.workers < 0:
        raise ArchError(f"--workers expects a number >= 0, got {args.workers}")
    result = evaluate(net, checkpoint, EvalOptions(args.dataset, args.split, args.batch_size, args.device,
                                                   Path(args.out) if args.out else None, args.tta, args.workers,
                                                   args.skip_bad_images))
    if args.json:
        print(json.dumps({**result.as_json(), "png": str(result.png) if result.png else None}))
        return 0
    tta = "" if result.tta == "none" else f" with {result.tta} test-time augmentation"
    print(f"{net.name} {checkpoint} on {result.split}{tta} ({result.images} images): top-1 {result.top1:.2%}  "
          f"top-5 {result.top5:.2%}  loss {result.loss:.4f}")
    print(format_confusion(result.confusion, result.class_names))
    if result.png:
        print(f"confusion matrix: {result.png}")
    return 0
