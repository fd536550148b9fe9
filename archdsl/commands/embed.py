"""`archdsl embed SPEC CHECKPOINT -o feats.npz`: a layer's features and the labels of every split, for retrieval
or a linear probe."""
from __future__ import annotations

import json

SPLITS = ("train", "val", "test")  # archdsl.train.data.SPLITS, which imports torch


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "embed",
        help="export a layer's features and labels (npz); --probe fits a linear classifier on them",
        description="Run a trained network over its data splits and save one layer's output per image "
        "(flattened) with the labels: SPLIT_features (N x D float32) and SPLIT_labels (N) for each split, "
        "plus layer and class_names. --probe fits a logistic regression on the train split's features and "
        "reports its test accuracy next to the network's own.",
    )
    p.add_argument("spec", metavar="SPEC", help="spec file the checkpoint was trained from")
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="a .pt file (last.pt, best.pt) or a run folder (its last.pt)")
    p.add_argument("-o", "--out", required=True, metavar="FILE.npz", help="the features file to write")
    p.add_argument("--layer", metavar="NAME", help="the layer (default: the input of the last fc), as `archdsl check` names it")
    p.add_argument("--dataset", metavar="PATH", help="data to embed (default: what the run trained on)")
    p.add_argument("--split", action="append", choices=SPLITS, default=[], metavar="SPLIT",
                   help="a split to export (repeat; default: train, val and test)")
    p.add_argument("--probe", action="store_true", help="fit a logistic-regression probe on train, report test accuracy")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N or auto")
    p.add_argument("--json", action="store_true", help="print what was written (and the probe) as one JSON object")


def run(args) -> int:
    from pathlib import Path

    import numpy as np

    import archdsl
    from archdsl import files
    from archdsl.errors import ArchError
    from archdsl.inspect import Inspection
    from archdsl.inspect.embeddings import linear_probe
    from archdsl.inspect.trained import inference_threads

    out = Path(args.out)
    if out.suffix != ".npz":
        raise ArchError(f"-o {out}: expected a .npz file (numpy.savez); name it e.g. {out.with_suffix('.npz').name}")
    net = archdsl.load(args.spec)
    splits = list(dict.fromkeys(args.split)) or list(SPLITS)
    if args.probe:
        splits = list(dict.fromkeys([*splits, "train", "test"]))
    with inference_threads(net):
        inspection = Inspection.open(net, args.checkpoint, args.dataset, args.device)
        found = {split: inspection.features(args.layer, split) for split in splits}
    layer = next(iter(found.values())).layer
    arrays = {"layer": np.array(layer), "class_names": np.array(inspection.class_names)}
    for split, feats in found.items():
        arrays[f"{split}_features"], arrays[f"{split}_labels"] = feats.vectors, feats.labels
    files.make_folder(out.parent if str(out.parent) else ".")
    with files.atomic_write(out) as file:
        np.savez(file, **arrays)
    result = {"layer": layer, "dimensions": int(found[splits[0]].vectors.shape[1]), "out": str(out),
              "images": {split: len(feats.labels) for split, feats in found.items()}}
    if args.probe:
        result["probe_accuracy"] = linear_probe(found["train"], found["test"])
        result["network_accuracy"] = found["test"].network_accuracy
    if args.json:
        print(json.dumps(result))
        return 0
    counts = ", ".join(f"{split} {n}" for split, n in result["images"].items())
    print(f"{out}: {layer} ({result['dimensions']}-d) for {counts} images")
    if args.probe:
        print(f"linear probe on {layer}: test top-1 {result['probe_accuracy']:.2%} "
              f"(trained on {len(found['train'].labels)} images; the network itself: {result['network_accuracy']:.2%})")
    return 0
