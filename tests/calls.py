"""One call of every function convpool exports (convpool._ops declares them), on small inputs:
the table that test_out.py, test_threads.py and test_isa_levels.py run. Each call takes `out`
(None for new arrays) and returns the function's result."""

import numpy as np

import convpool as cp
from convpool import _ops

RNG = np.random.default_rng(301)
X = RNG.standard_normal((2, 3, 8, 7)).astype(np.float32)
XL = np.ascontiguousarray(X.transpose(0, 2, 3, 1))  # X channels last
A = np.abs(X)
W = RNG.standard_normal((4, 3, 3, 3)).astype(np.float32)
B = RNG.standard_normal(4).astype(np.float32)
WT = RNG.standard_normal((3, 4, 3, 3)).astype(np.float32)
WD = RNG.standard_normal((3, 1, 3, 3)).astype(np.float32)  # depthwise
ROW = X[:, :, 0, :].copy()
WROW = W[:, :, 0, :].copy()
_, INDICES = cp.max_pool2d(X, 2, return_indices=True)
_, INDICES_NHWC = cp.max_pool2d(XL, 2, return_indices=True, layout="nhwc")
_, STOCHASTIC = cp.stochastic_pool2d(A, 2, seed=1, return_indices=True)
_, ADAPTIVE = cp.adaptive_max_pool2d(X, 3, return_indices=True)
SAMPLES = RNG.random((2, 3, 2), dtype=np.float32)
_, FRACTIONAL = cp.fractional_max_pool2d(X, 2, 4, return_indices=True, _random_samples=SAMPLES)
_, ROW_INDICES = cp.max_pool1d(ROW, 2, return_indices=True)
MEAN, VAR = np.zeros(3, np.float32), np.ones(3, np.float32)
_, SAVED_MEAN, SAVED_INVSTD = cp.batch_norm2d(X, training=True)


def g(shape):
    return np.cos(np.arange(np.prod(shape))).reshape(shape).astype(np.float32)


# name -> call(out): every function, with results of one or several arrays.
CALLS = {
    "max_pool2d": lambda out: cp.max_pool2d(X, 2, out=out),
    "max_pool2d with indices": lambda out: cp.max_pool2d(X, 3, 2, 1, return_indices=True, out=out),
    "max_pool2d_backward": lambda out: cp.max_pool2d_backward(g((2, 3, 4, 3)), X, INDICES, 2, out=out),
    "max_pool2d, layout='nhwc'": lambda out: cp.max_pool2d(XL, 3, 2, 1, return_indices=True, layout="nhwc", out=out),
    "max_pool2d_backward, layout='nhwc'": lambda out: cp.max_pool2d_backward(g((2, 4, 3, 3)), XL, INDICES_NHWC, 2,
                                                                             layout="nhwc", out=out),
    "max_pool2d_backward, layout='nhwc', split": lambda out: cp.max_pool2d_backward(
        g((2, 4, 4, 3)), XL, None, 3, 2, 1, tie_break="split", layout="nhwc", out=out),
    "avg_pool2d": lambda out: cp.avg_pool2d(X, 3, 2, 1, out=out),
    "avg_pool2d_backward": lambda out: cp.avg_pool2d_backward(g((2, 3, 4, 3)), X.shape, 2, out=out),
    "avg_pool2d, layout='nhwc'": lambda out: cp.avg_pool2d(XL, 3, 2, 1, layout="nhwc", out=out),
    "avg_pool2d_backward, layout='nhwc'": lambda out: cp.avg_pool2d_backward(g((2, 4, 4, 3)), XL.shape, 3, 2, 1,
                                                                             layout="nhwc", out=out),
    "lp_pool2d": lambda out: cp.lp_pool2d(X, 2, 2, out=out),
    "lp_pool2d_backward": lambda out: cp.lp_pool2d_backward(g((2, 3, 4, 3)), X, 2, 2, out=out),
    "stochastic_pool2d": lambda out: cp.stochastic_pool2d(A, 2, seed=1, return_indices=True, out=out),
    "stochastic_pool2d_backward": lambda out: cp.stochastic_pool2d_backward(g((2, 3, 4, 3)), A, STOCHASTIC, 2,
                                                                            out=out),
    "adaptive_avg_pool2d": lambda out: cp.adaptive_avg_pool2d(X, (3, 2), out=out),
    "adaptive_avg_pool2d_backward": lambda out: cp.adaptive_avg_pool2d_backward(g((2, 3, 3, 2)), X.shape, out=out),
    "adaptive_avg_pool2d, layout='nhwc'": lambda out: cp.adaptive_avg_pool2d(XL, (3, 2), layout="nhwc", out=out),
    "adaptive_avg_pool2d_backward, layout='nhwc'": lambda out: cp.adaptive_avg_pool2d_backward(
        g((2, 1, 1, 3)), XL.shape, layout="nhwc", out=out),
    "adaptive_max_pool2d": lambda out: cp.adaptive_max_pool2d(X, 3, return_indices=True, out=out),
    "adaptive_max_pool2d_backward": lambda out: cp.adaptive_max_pool2d_backward(g((2, 3, 3, 3)), X, ADAPTIVE, 3,
                                                                                out=out),
    "fractional_max_pool2d": lambda out: cp.fractional_max_pool2d(X, 2, 4, _random_samples=SAMPLES, out=out),
    "fractional_max_pool2d_backward": lambda out: cp.fractional_max_pool2d_backward(g((2, 3, 4, 4)), X, FRACTIONAL,
                                                                                    out=out),
    "max_unpool2d": lambda out: cp.max_unpool2d(g((2, 3, 4, 3)), INDICES, 2, output_size=(8, 7), out=out),
    "max_unpool2d_backward": lambda out: cp.max_unpool2d_backward(g((2, 3, 8, 7)), INDICES, 2, output_size=(8, 7),
                                                                  out=out),
    "conv2d": lambda out: cp.conv2d(X, W, B, padding=1, activation="relu", out=out),
    "conv2d_backward": lambda out: cp.conv2d_backward(g((2, 4, 6, 5)), X, W, out=out),
    "PackedConv2dWeight, as conv2d's weight": lambda out: cp.conv2d(X, cp.PackedConv2dWeight(W), B, padding=1,
                                                                    out=out),
    "conv2d, layout='nhwc'": lambda out: cp.conv2d(XL, W, B, padding=1, activation="relu", layout="nhwc", out=out),
    "conv2d, layout='nhwc', depthwise": lambda out: cp.conv2d(XL, WD, B[:3], stride=2, padding=1, groups=3,
                                                              layout="nhwc", out=out),
    "conv2d_backward, layout='nhwc'": lambda out: cp.conv2d_backward(g((2, 6, 5, 4)), XL, W, layout="nhwc", out=out),
    "conv2d_backward, layout='nhwc', strided": lambda out: cp.conv2d_backward(g((2, 4, 4, 4)), XL, W, stride=2,
                                                                              padding=1, layout="nhwc", out=out),
    "PackedConv2dWeight, with layout='nhwc'": lambda out: cp.conv2d(XL, cp.PackedConv2dWeight(W), B, padding=1,
                                                                    layout="nhwc", out=out),
    "conv_transpose2d": lambda out: cp.conv_transpose2d(X, WT, stride=2, out=out),
    "conv_transpose2d_backward": lambda out: cp.conv_transpose2d_backward(g((2, 4, 17, 15)), X, WT, stride=2,
                                                                          out=out),
    "relu": lambda out: cp.relu(X, out=out),
    "relu_backward": lambda out: cp.relu_backward(g(X.shape), A, out=out),
    "batch_norm2d": lambda out: cp.batch_norm2d(X, training=False, running_mean=MEAN, running_var=VAR, out=out),
    "batch_norm2d_backward": lambda out: cp.batch_norm2d_backward(g(X.shape), X, None, SAVED_MEAN, SAVED_INVSTD,
                                                                  needs=("input",), out=out),
    "batch_norm2d, layout='nhwc'": lambda out: cp.batch_norm2d(XL, activation="relu", layout="nhwc", out=out),
    "batch_norm2d_backward, layout='nhwc'": lambda out: cp.batch_norm2d_backward(g(XL.shape), XL, None, SAVED_MEAN,
                                                                                 SAVED_INVSTD, layout="nhwc", out=out),
    "max_pool1d": lambda out: cp.max_pool1d(ROW, 2, return_indices=True, out=out),
    "max_pool1d_backward": lambda out: cp.max_pool1d_backward(g((2, 3, 3)), ROW, ROW_INDICES, 2, out=out),
    "avg_pool1d": lambda out: cp.avg_pool1d(ROW, 3, 1, 1, out=out),
    "avg_pool1d_backward": lambda out: cp.avg_pool1d_backward(g((2, 3, 3)), ROW.shape, 2, out=out),
    "conv1d": lambda out: cp.conv1d(ROW, WROW, B, padding=1, out=out),
    "conv1d_backward": lambda out: cp.conv1d_backward(g((2, 4, 5)), ROW, WROW, out=out),
}


def covered():
    """The exported names the calls cover (a call's name starts with the function's)."""
    return {name.split(" ")[0].rstrip(",") for name in CALLS}


def expected():
    """What the calls must cover: every function and class of every op."""
    return set(_ops.functions()) | set(_ops.classes())


def arrays_of(result):
    """A call's result as a flat list of arrays (tuples of results, None for gradients not asked)."""
    if isinstance(result, tuple):
        return [array for entry in result for array in arrays_of(entry)]
    return [] if result is None else [result]
