"""Real data bundled with the package: no download at run time."""

from importlib import resources

import numpy as np


def load_mnist():
    """MNIST digits bundled with convpool: 12,000 training and all 10,000 test images.

    Returns ``(train_images, train_labels), (test_images, test_labels)``: images float32
    (N, 1, 28, 28) in [0, 1] (grey level / 255, ink bright), labels int64 in 0..9. The split is
    MNIST's own (the training images are the first 12,000 of its training set). Provenance and
    licence: ``convpool/data/README.md``.
    """
    with resources.files("convpool").joinpath("data/mnist_subset.npz").open("rb") as file:
        with np.load(file, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}

    def images(name):
        return (arrays[name].astype(np.float32) / np.float32(255.0))[:, None, :, :]

    return ((images("train_images"), arrays["train_labels"].astype(np.int64)),
            (images("test_images"), arrays["test_labels"].astype(np.int64)))
