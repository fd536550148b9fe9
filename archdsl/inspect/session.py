"""`Inspection`: the Python API of `archdsl inspect` and `archdsl embed`, every answer a numpy array.

    insp = archdsl.load("specs/lenet5.arch").inspect("runs/lenet5/last.pt")
    insp.filters()                          (6, 1, 5, 5): conv1's kernels
    insp.feature_maps("conv2", image=3)     (16, 10, 10)
    insp.top_patches("conv2", channel=5)    (pixels (8, 1, 14, 14), [Patch, …])
    insp.occlusion(image=3).map             (32, 32)
    insp.features()                         Features: (N, 84) vectors of tanh4 for the test split, labels
    insp.knn_accuracy(), insp.linear_probe(), insp.nearest([0, 1]), insp.tsne()
    insp.report("out")                      the HTML report `archdsl inspect` writes

Features are computed once per (layer, split) and kept.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from archdsl.network import Network

from . import embeddings, feature_maps as feature_maps_mod, filters, patches as patches_mod, saliency
from .images import ImageRef, pick_image
from .layers import find_layer
from .trained import Trained, load_trained


class Inspection:
    def __init__(self, trained: Trained):
        self.trained = trained
        self._features: dict[tuple[str, str], embeddings.Features] = {}

    @classmethod
    def open(cls, net: Network, checkpoint, dataset: str | None = None, device: str = "cpu") -> "Inspection":
        return cls(load_trained(net, checkpoint, dataset, device))

    @property
    def layers(self) -> list[str]:
        """The layer names, as `archdsl check` prints them."""
        return [layer.name for layer in self.trained.net.layers]

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.trained.class_names

    def image(self, image: ImageRef = 0, split: str = "test") -> np.ndarray:
        """The image as shown, (C, H, W) in [0, 1]."""
        return self.trained.pixels(pick_image(self.trained, image, split).image).numpy()

    # ---- weights ----
    def filters(self, layer: str | None = None) -> np.ndarray:
        return filters.kernels(self.trained, layer)

    def kernel_norms(self, layer: str) -> np.ndarray:
        return filters.kernel_norms(self.trained, layer)

    # ---- one image ----
    def feature_maps(self, layer: str, image: ImageRef = 0, split: str = "test") -> np.ndarray:
        return feature_maps_mod.feature_maps(self.trained, layer, pick_image(self.trained, image, split).image)

    def occlusion(self, image: ImageRef = 0, patch=None, stride=None, target: int | None = None,
                  split: str = "test") -> saliency.Saliency:
        return saliency.occlusion(self.trained, pick_image(self.trained, image, split).image, patch, stride, target)

    def gradient_saliency(self, image: ImageRef = 0, target: int | None = None, split: str = "test") -> saliency.Saliency:
        return saliency.gradient_saliency(self.trained, pick_image(self.trained, image, split).image, target)

    # ---- a data set ----
    def top_patches(self, layer: str, channel: int, k: int = 8,
                    split: str = "test") -> tuple[np.ndarray, list[patches_mod.Patch]]:
        """The `k` patches of `split` that excite `channel` of `layer` most: (pixels (k, C, fh, fw), patches)."""
        found = patches_mod.top_patches(self.trained, layer, [channel], k, split)[channel]
        return np.stack(patches_mod.patch_pixels(self.trained, found, split)), found

    def features(self, layer: str | None = None, split: str = "test", limit: int | None = None) -> embeddings.Features:
        """`layer`'s vectors for `split` (default: the input of the last fc); at most `limit` images, sampled."""
        layer = layer or embeddings.default_embedding_layer(self.trained)
        find_layer(self.trained, layer)
        key = (layer, split, limit)
        if key not in self._features:
            self._features[key] = embeddings.features(self.trained, layer, split, limit)
        return self._features[key]

    def nearest(self, images, k: int = 5, metric: str = "euclidean", layer: str | None = None,
                split: str = "test", reference: str = "train",
                limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """For images of `split` (indices), the `k` nearest `reference` images in `layer`'s space:
        (their indices in the reference split, distances)."""
        layer = layer or embeddings.default_embedding_layer(self.trained)
        queries = embeddings.vectors_of(self.trained, layer, self.trained.images_at(split, images)[0])
        return embeddings.nearest(self.features(layer, reference, limit), queries, k, metric)

    def knn_accuracy(self, layer: str | None = None, k: int = 5, metric: str = "euclidean",
                     limit: int | None = None) -> float:
        """k-NN accuracy on the test split with the train split as the reference set."""
        return embeddings.knn_accuracy(self.features(layer, "train", limit), self.features(layer, "test", limit), k,
                                       metric)

    def linear_probe(self, layer: str | None = None, seed: int = 0, limit: int | None = None) -> float:
        return embeddings.linear_probe(self.features(layer, "train", limit), self.features(layer, "test", limit), seed)

    def network_accuracy(self, split: str = "test") -> float:
        """The network's own top-1 accuracy on `split` (its main output)."""
        cached = [feats for (_, cached_split, limit), feats in self._features.items()
                  if cached_split == split and limit is None]
        feats = cached[0] if cached else self.features(next(iter(self.trained.model_net.output_nodes.values())), split)
        return feats.network_accuracy

    def tsne(self, layer: str | None = None, split: str = "test", seed: int = 0,
             max_points: int = 2000) -> tuple[np.ndarray, np.ndarray]:
        """(points (n, 2), their labels)."""
        feats = self.features(layer, split)
        points, chosen = embeddings.tsne(feats, seed, max_points)
        return points, feats.labels[chosen]

    def report(self, out, options=None):
        from .report import ReportOptions, write_report

        return write_report(self, Path(out), options or ReportOptions())
