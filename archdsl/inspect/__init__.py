"""What a trained network sees: filters, feature maps, activating patches, saliency, embeddings.

    Inspection.open(net, checkpoint)     the Python API (also `net.inspect(checkpoint)`)
    trained.py       the spec, the checkpoint's weights and the data split as `archdsl train` made it
    layers.py        layers by the names `archdsl check` prints; hooks that record their values
    filters.py       the first convolution's kernels; any layer's kernel norms
    feature_maps.py  a layer's maps on one image
    patches.py       the data set's patches, cropped to the receptive field, that excite a channel most
    saliency.py      occlusion and gradient saliency
    embeddings.py    features of a layer, k-NN accuracy, nearest neighbours, linear probe, t-SNE
    pictures.py      arrays to PNG
    report.py        the HTML report of `archdsl inspect`

Needs PyTorch, scikit-learn, matplotlib and Pillow (`pip install 'archdsl[torch]'`).
"""
from __future__ import annotations

from .session import Inspection

__all__ = ["Inspection"]
