"""`archdsl inspect SPEC CHECKPOINT -o DIR`: what a trained network sees, as an HTML report and its PNGs."""
from __future__ import annotations

import json
import sys


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "inspect",
        help="what a trained network sees: filters, feature maps, patches, saliency, embeddings (an HTML report)",
        description="Write DIR/report.html (one self-contained page, images embedded) and the PNGs behind it: the "
        "first convolution's filters; feature maps of the chosen layers on one image; the patches of the data set "
        "that excite each layer's channels most, cropped to their receptive field; saliency by occlusion and by "
        "gradient; the embedding of the input of the last fc (k-NN accuracy against raw pixels, a linear probe, "
        "nearest neighbours, t-SNE). Layers are named as `archdsl check` prints them.",
    )
    p.add_argument("spec", metavar="SPEC", help="spec file the checkpoint was trained from")
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="a .pt file (last.pt, best.pt) or a run folder (its last.pt)")
    p.add_argument("-o", "--out", required=True, metavar="DIR", help="folder for report.html, the PNGs and summary.json")
    p.add_argument("--dataset", metavar="PATH", help="data to look at (default: what the run trained on)")
    p.add_argument("--split", default="test", choices=("train", "val", "test"),
                   help="the images shown, searched for patches and used as k-NN queries (default: test)")
    p.add_argument("--layer", action="append", default=[], metavar="NAME",
                   help="a layer for feature maps and patches (repeat for more; default: up to four convolutions)")
    p.add_argument("--image", default="0", metavar="N|FILE",
                   help="the image for feature maps and saliency: an index into the split, or an image file (default: 0)")
    p.add_argument("--channel", action="append", type=int, default=[], metavar="C",
                   help="a channel to find activating patches for (repeat; default: the first eight)")
    p.add_argument("--top-k", type=int, default=8, metavar="K", help="patches per channel (default: 8)")
    p.add_argument("--patch", type=int, metavar="N", help="occlusion: the grey square's side (default: from the receptive field)")
    p.add_argument("--stride", type=int, metavar="N", help="occlusion: its step (default: half the side)")
    p.add_argument("--embed-layer", metavar="NAME", help="the embedding's layer (default: the input of the last fc)")
    p.add_argument("--queries", type=int, nargs="+", default=[0, 1, 2, 3, 4, 5], metavar="N",
                   help="images of the split whose nearest training images are shown (default: 0 to 5)")
    p.add_argument("--neighbours", type=int, default=5, metavar="K", help="neighbours shown per query (default: 5)")
    p.add_argument("--knn", type=int, default=5, metavar="K", help="k of the k-NN accuracy (default: 5)")
    p.add_argument("--tsne-points", type=int, default=2000, metavar="N", help="at most this many images in the t-SNE (default: 2000)")
    p.add_argument("--max-images", type=int, default=10_000, metavar="N",
                   help="the embedding's k-NN, probe and t-SNE use at most N images of each split, drawn at random "
                   "(default: 10000; raw pixels of more would not fit in memory)")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N or auto")
    p.add_argument("--json", action="store_true", help="print the report's figures (summary.json) as one JSON object")


def run(args) -> int:
    from pathlib import Path

    import archdsl
    from archdsl.inspect import Inspection
    from archdsl.inspect.report import ReportOptions
    from archdsl.inspect.trained import inference_threads

    net = archdsl.load(args.spec)
    for warning in net.warnings:
        print(warning.format(), file=sys.stderr)
    options = ReportOptions(tuple(args.layer), args.image, args.split, tuple(args.channel), args.top_k, args.patch,
                            args.stride, args.embed_layer, tuple(args.queries), args.neighbours, args.knn,
                            args.tsne_points, args.max_images)
    with inference_threads(net):
        inspection = Inspection.open(net, args.checkpoint, args.dataset, args.device)
        report = inspection.report(Path(args.out), options)
    figures = report.figures
    if args.json:
        print(json.dumps(figures))
        return 0
    embedding = figures["embedding"]
    saliency = figures["saliency"]
    print(f"{net.name} {inspection.trained.checkpoint}: {len(report.pngs)} pictures; layers {', '.join(figures['layers'])}")
    print(f"saliency of {saliency['image']}: class {inspection.class_names[saliency['predicted']]} "
          f"(p = {saliency['probability']:.3f}), occluded {saliency['patch'][0]}x{saliency['patch'][1]} at stride "
          f"{saliency['stride'][0]}")
    print(f"embedding {embedding['layer']} ({embedding['dimensions']}-d) on {args.split}: {embedding['k']}-NN "
          f"{embedding['knn_accuracy']:.2%} (cosine {embedding['knn_accuracy_cosine']:.2%}, raw pixels "
          f"{embedding['knn_accuracy_raw_pixels']:.2%}), linear probe {embedding['linear_probe_accuracy']:.2%}, "
          f"the network {embedding['network_accuracy']:.2%}")
    print(f"report: {report.html}")
    return 0
