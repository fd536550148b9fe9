"""The report `archdsl inspect` writes: PNGs and one self-contained HTML page that embeds them.

    write_report(inspection, out, ReportOptions(...)) -> Report

Sections: the first convolution's filters; the chosen image's feature maps in each
chosen layer; its saliency by occlusion and by gradient; each layer's maximally
activating patches; the embedding (k-NN accuracy against raw pixels, a linear probe
against the network's own accuracy, nearest neighbours, t-SNE). Every question is
checked before anything is computed, and every file goes into `out`, nowhere else.
"""
from __future__ import annotations

import base64
import html
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from archdsl import files
from archdsl.errors import ArchError
from archdsl.ops import Conv

from . import embeddings, pictures, saliency
from .feature_maps import feature_maps
from .filters import first_convolution
from .images import ImageRef, Picked, pick_image
from .layers import find_layer, spatial_layer
from .patches import patch_pixels, top_patches

MAX_DEFAULT_LAYERS = 4
DEFAULT_CHANNELS = 8


@dataclass(frozen=True)
class ReportOptions:
    layers: tuple[str, ...] = ()  # empty: up to four convolutions with a spatial map, spread over the depth
    image: ImageRef = 0  # for feature maps and saliency: an index into `split`, or an image file
    split: str = "test"  # the images shown, searched for patches, and used as k-NN queries
    channels: tuple[int, ...] = ()  # patches for these channels; empty: the first eight
    top_k: int = 8
    patch: int | None = None  # occlusion window and stride; None: from the receptive field
    stride: int | None = None
    embed_layer: str | None = None  # None: the input of the last fc
    queries: tuple[int, ...] = (0, 1, 2, 3, 4, 5)
    neighbours: int = 5
    knn: int = 5
    tsne_points: int = 2000
    max_images: int | None = 10_000  # the embedding's figures use at most this many images of a split


@dataclass(frozen=True)
class Report:
    html: Path
    pngs: tuple[Path, ...]
    figures: dict = field(hash=False)  # what summary.json holds


def default_layers(trained) -> tuple[str, ...]:
    """Up to four convolutions with a map larger than 1x1, spread over the depth."""
    convs = [layer.name for layer in trained.model_net.layers
             if isinstance(layer.op, Conv) and len(layer.shape) == 3 and layer.shape[1] * layer.shape[2] > 1]
    if len(convs) <= MAX_DEFAULT_LAYERS:
        return tuple(convs)
    picks = np.linspace(0, len(convs) - 1, MAX_DEFAULT_LAYERS).round().astype(int)
    return tuple(convs[i] for i in picks)


def validate(trained, options: ReportOptions) -> tuple[str, ...]:
    """Check every question before anything is computed or written; the layers to show."""
    layers = options.layers or default_layers(trained)
    for layer in layers:
        chosen = spatial_layer(trained, layer, "feature maps")
        bad = [c for c in options.channels if not 0 <= c < chosen.shape[0]]
        if bad:
            raise ArchError(f"--channel {bad[0]}: layer '{layer}' has channels 0 to {chosen.shape[0] - 1}",
                            chosen.span)
    saliency.occlusion_window(trained.net, options.patch, options.stride)
    if options.embed_layer is not None:
        find_layer(trained, options.embed_layer, "--embed-layer")
    for name, value, low in (("--top-k", options.top_k, 1), ("--neighbours", options.neighbours, 1),
                             ("--knn", options.knn, 1), ("--tsne-points", options.tsne_points, 5)):
        if value < low:
            raise ArchError(f"{name} expects a number >= {low}, got {value}")
    fewest = max(options.knn, options.neighbours, 5)  # the k-NN's k, the neighbours shown, t-SNE's least
    if options.max_images is not None and options.max_images < fewest:
        raise ArchError(f"--max-images expects at least {fewest} (--knn, --neighbours and t-SNE need that many "
                        f"images), got {options.max_images}")
    size = trained.split_size(options.split)
    bad = [q for q in options.queries if not 0 <= q < size]
    if bad:
        raise ArchError(f"--queries: image {bad[0]} is not in the {options.split} split, which holds images 0 to "
                        f"{size - 1}")
    return tuple(layers)


class _Page:
    """The HTML being built, and the PNGs written for it (each also embedded in the page)."""

    def __init__(self, out: Path):
        self.out = out
        self.parts: list[str] = []
        self.pngs: list[Path] = []

    def text(self, markup: str) -> None:
        self.parts.append(markup)

    def image(self, name: str, caption: str, write: Callable[[Path], Path]) -> None:
        path = write(self.out / name)
        self.pngs.append(path)
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        self.parts.append(f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(caption)}">'
                          f"<figcaption>{html.escape(caption)} (<a href=\"{html.escape(path.name)}\">"
                          f"{html.escape(path.name)}</a>)</figcaption></figure>")

    def document(self, title: str) -> str:
        style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
                 "figure{margin:1em 0}img{max-width:100%;image-rendering:pixelated;border:1px solid #ccc}"
                 "figcaption{font-size:90%;color:#555}table{border-collapse:collapse}"
                 "td,th{border:1px solid #ccc;padding:.3em .8em;text-align:left}")
        return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
                f"<style>{style}</style></head><body>\n" + "\n".join(self.parts) + "\n</body></html>\n")


def _file_name(layer: str) -> str:
    return re.sub(r"[^\w.-]", "_", layer)


def write_report(inspection, out: Path, options: ReportOptions = ReportOptions()) -> Report:
    trained = inspection.trained
    layers = validate(trained, options)
    picked = pick_image(trained, options.image, options.split)
    out.mkdir(parents=True, exist_ok=True)
    page = _Page(out)
    info = trained.data.info
    figures: dict = {"spec": trained.net.name, "checkpoint": str(trained.checkpoint), "dataset": info.source,
                     "split": options.split, "layers": list(layers)}
    page.text(f"<h1>What does {html.escape(trained.net.name)} see?</h1><p>Checkpoint "
              f"<code>{html.escape(str(trained.checkpoint))}</code>, data set <code>{html.escape(info.source)}</code> "
              f"({len(trained.class_names)} classes), images from its {options.split} split as "
              "<code>archdsl train</code> made it.</p>")
    _filters(page, inspection)
    _feature_maps(page, trained, layers, picked)
    figures["saliency"] = _saliency(page, trained, picked, options)
    figures["patches"] = _patches(page, trained, layers, options)
    figures["embedding"] = _embedding(page, inspection, options)
    files.write_text(out / "summary.json", json.dumps(figures, indent=2) + "\n")
    report = out / "report.html"
    files.write_text(report, page.document(f"{trained.net.name}: archdsl inspect"))
    return Report(report, tuple(page.pngs), figures)


def _filters(page: _Page, inspection) -> None:
    first = first_convolution(inspection.trained)
    weights = inspection.filters()
    out_channels, in_channels, kh, kw = weights.shape
    page.text(f"<h2>Filters of {first.name} ({html.escape(first.token)})</h2>")
    if in_channels == 3:
        tiles, columns = [pictures.stretch(w) for w in weights], 16
        caption = f"{out_channels} kernels of {kh}x{kw} as colour images, each stretched to its own range."
    else:
        tiles = [pictures.colorize(pictures.stretch(w[c], symmetric=True), "RdBu_r") for w in weights
                 for c in range(in_channels)]
        columns = in_channels if in_channels > 1 else 16
        caption = (f"{out_channels} kernels of {kh}x{kw}" + (", one row per output channel, one tile per input "
                   "channel" if in_channels > 1 else "") + "; red positive, blue negative, white zero.")
    page.image("filters.png", caption, lambda path: pictures.save_png(pictures.grid(tiles, columns), path, max(kh, kw)))


def _feature_maps(page: _Page, trained, layers: tuple[str, ...], picked: Picked) -> None:
    shown = trained.pixels(picked.image).numpy()
    page.text(f"<h2>Feature maps of {html.escape(picked.caption)}</h2>")
    page.image("image.png", f"The image: {picked.caption}.",
               lambda path: pictures.save_png(pictures.as_rgb(shown), path, max(shown.shape[1:])))
    for layer in layers:
        maps = feature_maps(trained, layer, picked.image)
        tiles = [pictures.colorize(pictures.stretch(m)) for m in maps]
        page.image(f"feature_maps_{_file_name(layer)}.png",
                   f"{layer} ({trained.model_net.layer(layer).token}): {maps.shape[0]} maps of "
                   f"{maps.shape[1]}x{maps.shape[2]}, each stretched to its own range (dark low, yellow high).",
                   lambda path, tiles=tiles, maps=maps: pictures.save_png(pictures.grid(tiles, 16), path,
                                                                          max(maps.shape[1:])))


def _saliency(page: _Page, trained, picked: Picked, options: ReportOptions) -> dict:
    occluded = saliency.occlusion(trained, picked.image, options.patch, options.stride)
    gradient = saliency.gradient_saliency(trained, picked.image, occluded.target)
    patch, stride = saliency.occlusion_window(trained.net, options.patch, options.stride)
    names = trained.class_names
    target = names[occluded.target] if occluded.target < len(names) else str(occluded.target)
    page.text(f"<h2>Saliency: which pixels make it class {html.escape(str(target))}</h2>"
              f"<p>The network gives {html.escape(picked.caption)} class {html.escape(str(target))} with probability "
              f"{occluded.probability:.3f}.</p>")
    shown = trained.pixels(picked.image).numpy()
    overlay = 0.5 * pictures.as_rgb(shown.mean(0)) + 0.5 * pictures.colorize(
        pictures.stretch(np.clip(occluded.map, 0, None)), "inferno")
    strip = [pictures.as_rgb(shown), pictures.colorize(pictures.stretch(occluded.map, symmetric=True), "RdBu_r"),
             pictures.colorize(pictures.stretch(gradient.map), "inferno"), overlay]
    page.image("saliency.png",
               f"Left to right: the image; occlusion by a {patch[0]}x{patch[1]} grey patch at stride {stride[0]} (red "
               "where hiding a pixel lowers the class's probability, blue where it raises it); the gradient's "
               "magnitude; occlusion over the image.",
               lambda path: pictures.save_png(pictures.grid(strip, 4), path, max(shown.shape[1:])))
    return {"image": picked.caption, "predicted": occluded.target, "probability": occluded.probability,
            "patch": list(patch), "stride": list(stride)}


def _patches(page: _Page, trained, layers: tuple[str, ...], options: ReportOptions) -> dict:
    page.text(f"<h2>Maximally activating patches ({options.split} split)</h2>")
    figures = {}
    for layer in layers:
        chosen = trained.model_net.layer(layer)
        channels = list(options.channels) or list(range(min(DEFAULT_CHANNELS, chosen.shape[0])))
        found = top_patches(trained, layer, channels, options.top_k, options.split)
        crops = iter(patch_pixels(trained, [p for c in channels for p in found[c]], options.split))
        rows = [[pictures.as_rgb(next(crops)) for _ in found[c]] for c in channels]
        field_h, field_w = chosen.receptive_field
        figures[layer] = {str(c): [{"image": p.image, "label": p.label, "activation": p.activation,
                                    "box": list(p.box)} for p in found[c]] for c in channels}
        page.image(f"patches_{_file_name(layer)}.png",
                   f"{layer}: one row per channel ({', '.join(map(str, channels))}), the {options.top_k} images that "
                   f"excite it most, strongest first; each patch is the {field_h}x{field_w} receptive field of the "
                   "strongest position.",
                   lambda path, rows=rows: pictures.save_png(pictures.rows_of(rows), path, max(field_h, field_w)))
    return figures


def _embedding(page: _Page, inspection, options: ReportOptions) -> dict:
    trained = inspection.trained
    layer = options.embed_layer or embeddings.default_embedding_layer(trained)
    pixels_layer = trained.net.graph.graph["input"]
    limit = options.max_images
    train, test = inspection.features(layer, "train", limit), inspection.features(layer, options.split, limit)
    knn = {metric: embeddings.knn_accuracy(train, test, options.knn, metric) for metric in embeddings.METRICS}
    raw = embeddings.knn_accuracy(inspection.features(pixels_layer, "train", limit),
                                  inspection.features(pixels_layer, options.split, limit), options.knn)
    probe = embeddings.linear_probe(train, test)
    figures = {"layer": layer, "dimensions": int(train.vectors.shape[1]), "k": options.knn,
               "knn_accuracy": knn["euclidean"], "knn_accuracy_cosine": knn["cosine"], "knn_accuracy_raw_pixels": raw,
               "linear_probe_accuracy": probe, "network_accuracy": test.network_accuracy,
               "reference_images": len(train.labels), "query_images": len(test.labels)}
    rows = [(f"{options.knn}-NN in {layer}, L2 distance", knn["euclidean"]),
            (f"{options.knn}-NN in {layer}, cosine distance", knn["cosine"]),
            (f"{options.knn}-NN on raw pixels, L2 distance", raw),
            (f"linear probe on {layer} (logistic regression fitted on the train split)", probe),
            ("the network itself", test.network_accuracy)]
    page.text(f"<h2>Embedding: {html.escape(layer)} ({train.vectors.shape[1]} dimensions)</h2><table>"
              f"<tr><th></th><th>{options.split} accuracy</th></tr>"
              + "".join(f"<tr><td>{html.escape(name)}</td><td>{value:.2%}</td></tr>" for name, value in rows)
              + f"</table><p>Reference set: {_count(train, trained, 'train')}; queries: "
              f"{_count(test, trained, options.split)}.</p>")
    queries = list(options.queries)
    if queries:
        size = trained.net.input_shape[1:]
        query_images = trained.images_at(options.split, queries)[0]
        query_vectors = embeddings.vectors_of(trained, layer, query_images)
        query_pixels = trained.pixels(query_images).numpy()
        for metric in embeddings.METRICS:
            indices, _ = embeddings.nearest(train, query_vectors, options.neighbours, metric)
            found = trained.pixels(trained.images_at("train", indices.reshape(-1))[0]).numpy()
            found = found.reshape(len(queries), options.neighbours, *found.shape[1:])
            tiles = [[pictures.as_rgb(q), *map(pictures.as_rgb, row)] for q, row in zip(query_pixels, found)]
            figures[f"neighbours_{metric}"] = {str(q): indices[i].tolist() for i, q in enumerate(queries)}
            distance = "L2 distance" if metric == "euclidean" else "cosine distance"
            page.image(f"neighbours_{metric}.png",
                       f"Nearest neighbours by {distance} in {layer}: each row a {options.split} image, then its "
                       f"{options.neighbours} nearest training images, nearest first.",
                       lambda path, tiles=tiles: pictures.save_png(pictures.rows_of(tiles), path, max(size)))
    points, chosen = embeddings.tsne(test, 0, options.tsne_points)
    page.image("tsne.png", f"t-SNE of {layer} on the {options.split} split ({len(chosen)} images), coloured by class.",
               lambda path: pictures.scatter(points, test.labels[chosen], trained.class_names, path,
                                             f"{trained.net.name}: t-SNE of {layer}"))
    return figures


def _count(feats, trained, split: str) -> str:
    total = trained.split_size(split)
    if len(feats.labels) == total:
        return f"the {total} {split} images"
    return f"{len(feats.labels)} of the {total} {split} images, drawn at random (--max-images)"
