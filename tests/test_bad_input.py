"""Every bad argument gets a ValueError or TypeError naming the argument and the shapes."""

import numpy as np
import pytest

import convpool as cp

X = np.zeros((2, 3, 8, 8), np.float32)
OUT, IDX = cp.max_pool2d(X, 2, return_indices=True)
G = np.ones_like(OUT)
W = np.zeros((4, 3, 3, 3), np.float32)
GY = np.zeros((2, 4, 6, 6), np.float32)

CASES = [
    # (callable, exception, message fragment)
    (lambda: cp.max_pool2d(np.zeros((8, 8), np.float32), 2), ValueError, r"x must be \(C, H, W\).*\(8, 8\)"),
    (lambda: cp.max_pool2d(np.zeros((1, 2, 3, 8, 8), np.float32), 2), ValueError, r"got shape \(1, 2, 3, 8, 8\)"),
    (lambda: cp.max_pool2d(np.zeros((2, 0, 8, 8), np.float32), 2), ValueError, r"non-zero C, H, W.*\(2, 0, 8, 8\)"),
    (lambda: cp.max_pool2d(X, 0), ValueError, r"kernel_size=\(0, 0\) must be positive"),
    (lambda: cp.max_pool2d(X, (2, -1)), ValueError, r"kernel_size=\(2, -1\) must be positive"),
    (lambda: cp.max_pool2d(X, 2, stride=0), ValueError, r"stride=\(0, 0\) must be positive"),
    (lambda: cp.max_pool2d(X, 2, dilation=0), ValueError, r"dilation=\(0, 0\) must be positive"),
    (lambda: cp.max_pool2d(X, 2, padding=-1), ValueError, r"padding=\(-1, -1\) must be non-negative"),
    (lambda: cp.max_pool2d(X, 3, padding=2), ValueError, r"padding=\(2, 2\) must be at most half of kernel_size=\(3, 3\)"),
    (lambda: cp.max_pool2d(X, 9), ValueError, r"kernel_size=\(9, 9\) too large for input \(2, 3, 8, 8\) with padding=\(0, 0\)"),
    (lambda: cp.max_pool2d(X, 3, dilation=4), ValueError, r"too large for input \(2, 3, 8, 8\).*dilation=\(4, 4\)"),
    (lambda: cp.max_pool2d(X, 2.5), TypeError, r"kernel_size must be an int or a pair of ints, got 2.5"),
    (lambda: cp.max_pool2d(X, (2, 2, 2)), TypeError, r"kernel_size must be an int or a pair"),
    (lambda: cp.max_pool2d(X, True), TypeError, r"kernel_size must be an int or a pair"),
    (lambda: cp.max_pool2d(X, 2 ** 80), ValueError, r"kernel_size=\d+ is out of range"),
    (lambda: cp.max_pool2d(X, 2 ** 40), ValueError, r"kernel_size=.* is too large"),
    (lambda: cp.max_pool2d(X, 2, tie_break="random"), ValueError, r"tie_break must be 'first', 'last' or 'split', got 'random'"),
    (lambda: cp.max_pool2d(X, 2, nan="drop"), ValueError, r"nan must be 'propagate' or 'ignore'"),
    (lambda: cp.max_pool2d(X.astype(np.int64), 2), TypeError, r"x must be float32 or float64, got int64 with shape \(2, 3, 8, 8\)"),
    (lambda: cp.max_pool2d(X.astype(np.float16), 2), TypeError, r"got float16"),
    (lambda: cp.max_pool2d(X.astype(np.complex64), 2), TypeError, r"got complex64"),
    (lambda: cp.max_pool2d("abc", 2), TypeError, r"x must be float32 or float64"),
    (lambda: cp.max_pool2d(None, 2), TypeError, r"x must be"),
    (lambda: cp.max_pool2d_backward(G[:, :, :3], X, IDX, 2), ValueError, r"grad_output has shape \(2, 3, 3, 4\) but the pooling of x gives \(2, 3, 4, 4\)"),
    (lambda: cp.max_pool2d_backward(G, X, IDX[..., :3], 2), ValueError, r"indices has shape \(2, 3, 4, 3\)"),
    (lambda: cp.max_pool2d_backward(G, X, IDX.astype(np.int32), 2), TypeError, r"indices must be int64, got int32"),
    (lambda: cp.max_pool2d_backward(G, X, IDX.astype(np.float64), 2), TypeError, r"indices must be int64, got float64"),
    (lambda: cp.max_pool2d_backward(G, X, IDX + 64, 2), ValueError, r"indices has \d+ value\(s\) outside \[0, 64\)"),
    (lambda: cp.max_pool2d_backward(G, X, IDX - 5, 2), ValueError, r"outside \[0, 64\)"),
    (lambda: cp.max_pool2d_backward(G, X, None, 2), ValueError, r"indices are required for tie_break='first'"),
    (lambda: cp.max_pool2d_backward(G.astype(np.float64), X, IDX, 2), TypeError, r"grad_output is float64 but x is float32"),
    (lambda: cp.avg_pool2d(X, 2, divisor_override=0), ValueError, r"divisor_override must be non-zero"),
    (lambda: cp.avg_pool2d(X, 2, divisor_override=1.5), TypeError, r"divisor_override must be None or an int"),
    (lambda: cp.avg_pool2d(X, 4, padding=3), ValueError, r"padding=\(3, 3\) must be at most half"),
    (lambda: cp.avg_pool2d_backward(G, (2, 3, 10, 8), 2), ValueError, r"grad_output has shape \(2, 3, 4, 4\) but the pooling of input_shape gives \(2, 3, 5, 4\)"),
    (lambda: cp.avg_pool2d_backward(G, "shape", 2), TypeError, r"input_shape must be a sequence of ints"),
    (lambda: cp.avg_pool2d_backward(G, (8, 8), 2), ValueError, r"input_shape must be \(C, H, W\)"),
    (lambda: cp.lp_pool2d(X, 0, 2), ValueError, r"norm_type must be a positive finite number, got 0"),
    (lambda: cp.lp_pool2d(X, float("inf"), 2), ValueError, r"use max_pool2d"),
    (lambda: cp.lp_pool2d(X, float("nan"), 2), ValueError, r"norm_type must be a positive finite number"),
    (lambda: cp.lp_pool2d_backward(G[:1], X, 2, 2), ValueError, r"grad_output has shape \(1, 3, 4, 4\)"),
    (lambda: cp.stochastic_pool2d(X - 1, 2), ValueError, r"non-negative and finite.*\(2, 3, 8, 8\)"),
    (lambda: cp.stochastic_pool2d(X, 2, training=False, return_indices=True), ValueError, r"return_indices=True needs training=True"),
    (lambda: cp.stochastic_pool2d(X, 2, seed="s"), TypeError, r"seed must be None or an int"),
    (lambda: cp.stochastic_pool2d_backward(G, X, None, 2), ValueError, r"indices .* are required when training=True"),
    (lambda: cp.stochastic_pool2d_backward(G, X, IDX + 100, 2), ValueError, r"outside \[0, 64\)"),
    (lambda: cp.set_num_threads(0), ValueError, r"n=0 must be between 1 and \d+"),
    # conv2d
    (lambda: cp.conv2d(X[0, 0], W), ValueError, r"x must be \(N, C_in, H, W\) or \(C_in, H, W\), got shape \(8, 8\)"),
    (lambda: cp.conv2d(X, W[0]), ValueError, r"weight must be \(C_out, C_in / groups, kH, kW\), got shape \(3, 3, 3\)"),
    (lambda: cp.conv2d(X, np.zeros((4, 2, 3, 3), np.float32)), ValueError, r"weight shape \(4, 2, 3, 3\) needs C_in / groups = 3 .* x shape \(2, 3, 8, 8\)"),
    (lambda: cp.conv2d(X, W, groups=2), ValueError, r"groups=2 must divide both C_in=3 \(x shape \(2, 3, 8, 8\)\) and C_out=4"),
    (lambda: cp.conv2d(X, W, groups=0), ValueError, r"groups=0 must be positive"),
    (lambda: cp.conv2d(X, W, groups=1.5), TypeError, r"groups must be an int"),
    (lambda: cp.conv2d(X, np.zeros((4, 3, 9, 9), np.float32)), ValueError, r"kernel size \(9, 9\) .* too large for input \(2, 3, 8, 8\) with padding=\(0, 0\)"),
    (lambda: cp.conv2d(X, W, dilation=5), ValueError, r"too large for input \(2, 3, 8, 8\).*dilation=\(5, 5\)"),
    (lambda: cp.conv2d(X, W, np.zeros(3, np.float32)), ValueError, r"bias has shape \(3,\) but weight shape \(4, 3, 3, 3\) needs \(C_out,\) = \(4,\)"),
    (lambda: cp.conv2d(X, W, np.zeros((4, 1), np.float32)), ValueError, r"bias has shape \(4, 1\)"),
    (lambda: cp.conv2d(X, W, padding="same", stride=2), ValueError, r"padding='same' requires stride=1, got stride=\(2, 2\)"),
    (lambda: cp.conv2d(X, W, padding="full"), ValueError, r"padding must be an int, a pair, 'valid' or 'same', got 'full'"),
    (lambda: cp.conv2d(X, W, padding=-1), ValueError, r"padding=\(-1, -1\) must be non-negative"),
    (lambda: cp.conv2d(X, W, stride=0), ValueError, r"stride=\(0, 0\) must be positive"),
    (lambda: cp.conv2d(X, W, stride=(1, 2, 3)), TypeError, r"stride must be an int or a pair of ints"),
    (lambda: cp.conv2d(np.zeros((2, 3, 0, 8), np.float32), W), ValueError, r"non-zero C_in, H and W, got shape \(2, 3, 0, 8\)"),
    (lambda: cp.conv2d(X, np.zeros((0, 3, 3, 3), np.float32)), ValueError, r"weight has a zero-size dimension: shape \(0, 3, 3, 3\)"),
    (lambda: cp.conv2d(X, W.astype(np.float64)), TypeError, r"weight is float64 but x is float32"),
    (lambda: cp.conv2d(X.astype(np.int32), W), TypeError, r"x must be float32 or float64, got int32"),
    (lambda: cp.conv2d(X, W, np.zeros(4)), TypeError, r"bias is float64 but x is float32"),
    (lambda: cp.conv2d_backward(GY[:, :3], X, W), ValueError, r"grad_output has shape \(2, 3, 6, 6\) but the convolution of x gives \(2, 4, 6, 6\)"),
    (lambda: cp.conv2d_backward(GY, X, W, needs=("input", "bias_")), ValueError, r"needs must be a collection of 'input', 'weight' and 'bias'"),
    (lambda: cp.conv2d_backward(GY, X, W, needs="input"), ValueError, r"needs must be a collection"),
    (lambda: cp.conv2d_backward(GY, X, W, needs=3), ValueError, r"needs must be a collection"),
    # Arguments the Python layer checks before NumPy or a builtin would, with their own messages.
    (lambda: cp.fractional_max_pool2d(X, 2, 4, seed=-1), ValueError, r"fractional_max_pool2d: seed=-1 must be non-negative"),
    (lambda: cp.fractional_max_pool2d(X, 2, 4, seed=1.5), TypeError, r"fractional_max_pool2d: seed must be None or a non-negative int, got 1.5"),
    (lambda: cp.avg_pool1d_backward(np.ones((2, 3, 4)), 6, 2), TypeError, r"avg_pool1d_backward: input_shape must be a sequence of ints.*got 6"),
]


@pytest.mark.parametrize("call, error, message", CASES, ids=[str(i) for i in range(len(CASES))])
def test_bad_input_is_refused_clearly(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_minus_one_index_is_accepted_and_passes_nothing():
    idx = IDX.copy()
    idx[0, 0, 0, 0] = -1
    grad = cp.max_pool2d_backward(G, X, idx, 2)
    assert grad.sum() == G.sum() - 1
