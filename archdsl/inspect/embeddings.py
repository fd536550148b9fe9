"""The embedding space: a layer's output as a feature vector per image, and what it is good for.

    default_embedding_layer(trained) -> name          the input of the last fc (the head): the penultimate layer
    features(trained, layer, split, limit) -> Features (N, D) vectors, labels, the network's predictions
    knn_accuracy(reference, queries, k, metric)       k-NN classification accuracy in that space
    nearest(reference, vectors, k, metric)            indices and distances of the nearest reference images
    linear_probe(train, test)                         logistic regression on train, accuracy on test
    tsne(features, seed)                              a 2-D map of the space (scikit-learn's t-SNE)

A layer with a spatial map is flattened; the network's input layer gives raw pixels
(normalised), the baseline every embedding is compared with.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from archdsl.errors import ArchError

from .layers import find_layer, layer_values
from .trained import Trained

METRICS = ("euclidean", "cosine")


@dataclass(frozen=True, eq=False)
class Features:
    layer: str
    split: str
    vectors: np.ndarray  # (N, D) float32
    labels: np.ndarray  # (N,) int64
    predictions: np.ndarray  # (N,) the network's own top-1 class
    images: np.ndarray  # (N,) each row's index in the split: all of them, or a sample (see `sample`)

    @property
    def network_accuracy(self) -> float:
        return float((self.predictions == self.labels).mean()) if len(self.labels) else 0.0


def default_embedding_layer(trained: Trained) -> str:
    """The input of the layer that makes the classes (the last fc): the network's own description of an image.

    That layer is the main output's head (`train.heads`), so GoogLeNet's auxiliary classifiers are passed
    over, and a network ending in a 1x1 convolution gets that convolution's input.
    """
    from archdsl.train import heads as heads_mod

    net = trained.model_net
    head = net.layer(heads_mod.heads(net)[0].layer)
    if not head.inputs:
        raise ArchError(f"network '{trained.net.name}' has no layer before its output; choose one with --layer")
    return head.inputs[0]


def sample(count: int, limit: int | None, seed: int = 0) -> np.ndarray:
    """The indices of a split's images that are used: all `count`, or a seeded random `limit` of them, sorted.

    It depends on nothing but its arguments, so every layer of a split is sampled alike.
    """
    if limit is None or count <= limit:
        return np.arange(count)
    return np.sort(np.random.default_rng(seed).choice(count, limit, replace=False))


def features(trained: Trained, layer: str, split: str = "test", limit: int | None = None,
             batch_size: int = 256) -> Features:
    """`layer`'s output, flattened, for the images of `split` (at most `limit` of them, see `sample`)."""
    find_layer(trained, layer)
    output = next(iter(trained.model_net.output_nodes.values()))
    chosen = sample(trained.split_size(split), limit)
    wanted = np.zeros(trained.split_size(split), dtype=bool)
    wanted[chosen] = True
    vectors, labels, predictions = [], [], []
    start = 0
    for images, truth in trained.batches(split, batch_size):
        keep = torch.from_numpy(wanted[start:start + len(truth)])
        start += len(truth)
        if not keep.any():
            continue
        values = layer_values(trained, list(dict.fromkeys([layer, output])), images[keep])
        vectors.append(values[layer].flatten(1).cpu())
        predictions.append(values[output].flatten(1).argmax(1).cpu())
        labels.append(truth[keep].cpu())
    if not vectors:
        raise ArchError(f"the {split} split is empty; choose another split")
    return Features(layer, split, torch.cat(vectors).numpy().astype(np.float32), torch.cat(labels).numpy(),
                    torch.cat(predictions).numpy(), chosen)


def vectors_of(trained: Trained, layer: str, images: torch.Tensor) -> np.ndarray:
    """`layer`'s output, flattened, for a batch of normalised images."""
    return layer_values(trained, [layer], images)[layer].flatten(1).cpu().numpy()


def _check_metric(metric: str) -> None:
    if metric not in METRICS:
        raise ArchError(f"unknown metric '{metric}'; expected one of {', '.join(METRICS)}")


def _check_k(k: int, reference: Features) -> None:
    if not 1 <= k <= len(reference.labels):
        raise ArchError(f"k expects a number from 1 to the {len(reference.labels)} {reference.split} images, got {k}")


def knn_accuracy(reference: Features, queries: Features, k: int = 5, metric: str = "euclidean") -> float:
    """How often the majority class of a query's k nearest reference vectors is its own class."""
    from sklearn.neighbors import KNeighborsClassifier

    _check_metric(metric)
    _check_k(k, reference)
    classifier = KNeighborsClassifier(n_neighbors=k, metric=metric, algorithm="brute")
    classifier.fit(reference.vectors, reference.labels)
    return float(classifier.score(queries.vectors, queries.labels))


def nearest(reference: Features, vectors: np.ndarray, k: int = 5,
            metric: str = "euclidean") -> tuple[np.ndarray, np.ndarray]:
    """(indices of the reference split's images, distances), each (queries, k), nearest first."""
    from sklearn.neighbors import NearestNeighbors

    _check_metric(metric)
    _check_k(k, reference)
    index = NearestNeighbors(n_neighbors=k, metric=metric, algorithm="brute").fit(reference.vectors)
    distances, rows = index.kneighbors(np.asarray(vectors, dtype=np.float32))
    return reference.images[rows], distances


def linear_probe(train: Features, test: Features, seed: int = 0) -> float:
    """Test accuracy of a logistic regression fitted on the train split's vectors (standardised)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if len(np.unique(train.labels)) < 2:
        raise ArchError(f"the {train.split} split holds a single class; a probe needs at least two")
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=seed))
    probe.fit(train.vectors, train.labels)
    return float(probe.score(test.vectors, test.labels))


def tsne(feats: Features, seed: int = 0, max_points: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """(points (n, 2), the rows of `feats` they are): at most `max_points` images, drawn at random."""
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits  # scikit-learn's own dependency

    count = len(feats.labels)
    chosen = sample(count, max_points, seed)
    if len(chosen) < 5:
        raise ArchError(f"t-SNE needs at least 5 images; the {feats.split} split has {count}")
    perplexity = min(30.0, (len(chosen) - 1) / 3)
    # One thread: t-SNE's parallel loops are short, and on a busy 2-core machine OpenMP's waiting threads
    # made 359 points take 26 s instead of 2 s.
    with threadpool_limits(limits=1, user_api="openmp"):
        points = TSNE(n_components=2, init="pca", perplexity=perplexity, random_state=seed).fit_transform(
            feats.vectors[chosen])
    return points, chosen
