"""adaptive_avg_pool2d and its backward against the NumPy reference: PyTorch's overlapping windows,
None entries, global pooling, outputs larger than the input, the backward as the transpose of the
forward, bitwise identity across thread counts, and the arguments it refuses."""

import numpy as np
import pytest

import convpool as cp
import reference as ref

CASES = [((2, 3, 7, 5), (3, 2)), ((1, 4, 10, 10), 1), ((3, 2, 9, 11), (4, None)), ((2, 5, 6, 6), (6, 6)),
         ((2, 2, 3, 5), (7, 8)), ((5, 4, 4), (3, 3)), ((1, 1, 1, 1), 1), ((2, 3, 64, 1), (5, 1))]


def sizes(shape, output_size):
    pair = output_size if isinstance(output_size, tuple) else (output_size, output_size)
    return tuple(shape[-2 + axis] if size is None else size for axis, size in enumerate(pair))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, output_size", CASES)
def test_matches_reference_and_the_transpose(shape, output_size, dtype):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape).astype(dtype)
    out_h, out_w = sizes(shape, output_size)
    out = cp.adaptive_avg_pool2d(x, output_size)
    assert out.dtype == dtype and out.shape == shape[:-2] + (out_h, out_w)
    tol = 1e-6 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(out, ref.adaptive_avg_pool2d(x, out_h, out_w), rtol=tol, atol=tol)
    # The backward is the forward's transpose: <forward(x), g> == <x, backward(g)>.
    g = rng.standard_normal(out.shape).astype(dtype)
    grad = cp.adaptive_avg_pool2d_backward(g, x.shape)
    assert grad.dtype == dtype and grad.shape == x.shape
    np.testing.assert_allclose(np.sum(grad.astype(np.float64) * x), np.sum(out.astype(np.float64) * g),
                               rtol=tol * 10, atol=tol * 10)


def test_backward_matches_reference_gradient():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 7, 9))
    g = rng.standard_normal((2, 3, 3, 4))
    grad = cp.adaptive_avg_pool2d_backward(g, x.shape)
    expected = np.zeros_like(x)
    for oh, (h0, h1) in enumerate(ref.adaptive_windows(7, 3)):
        for ow, (w0, w1) in enumerate(ref.adaptive_windows(9, 4)):
            expected[..., h0:h1, w0:w1] += g[..., oh, ow, None, None] / ((h1 - h0) * (w1 - w0))
    np.testing.assert_allclose(grad, expected, rtol=1e-13, atol=1e-13)


def test_bitwise_identical_for_any_thread_count(assert_thread_independent):
    x = np.random.default_rng(3).standard_normal((3, 16, 33, 35)).astype(np.float32)

    def run():
        out = cp.adaptive_avg_pool2d(x, (5, 7))
        return out, cp.adaptive_avg_pool2d_backward(np.cos(out), x.shape)

    assert_thread_independent(run)


@pytest.mark.parametrize("call, error, message", [
    (lambda x: cp.adaptive_avg_pool2d(x, 0), ValueError, "output_size=0 must be positive"),
    (lambda x: cp.adaptive_avg_pool2d(x, (2, 3, 4)), TypeError, "output_size must be an int or a pair"),
    (lambda x: cp.adaptive_avg_pool2d(x, 2.5), TypeError, "output_size must be an int or a pair"),
    (lambda x: cp.adaptive_avg_pool2d(x, "2"), TypeError, "output_size must be an int or a pair"),
    (lambda x: cp.adaptive_avg_pool2d(x[0, 0], 2), ValueError, r"x must be \(C, H, W\) or \(N, C, H, W\)"),
    (lambda x: cp.adaptive_avg_pool2d(x.astype(np.int32), 2), TypeError, "must be float32 or float64"),
    (lambda x: cp.adaptive_avg_pool2d_backward(np.ones((2, 3, 2, 2), np.float32), (2, 4, 8, 8)), ValueError,
     r"grad_output has shape \(2, 3, 2, 2\).*input_shape needs \(2, 4, 2, 2\)"),
    (lambda x: cp.adaptive_avg_pool2d_backward(np.ones((3, 2, 2), np.float32), (2, 3, 8, 8)), ValueError,
     "another rank"),
])
def test_bad_arguments_raise(call, error, message):
    with pytest.raises(error, match=message):
        call(np.ones((2, 3, 8, 8), np.float32))
