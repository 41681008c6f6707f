"""adaptive_avg_pool2d and its backward against the NumPy reference: PyTorch's overlapping windows,
None entries, global pooling, outputs larger than the input, the backward as the transpose of the
forward, bitwise identity across thread counts, and the arguments it refuses."""

import numpy as np
import pytest

import convpool as cp
import reference as ref
from reference import to_nhwc

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


# Channels last: global pooling (windows of whole rows) and windows of both kinds of overlap, on
# channel counts below, at and past a block of 64.
NHWC_CASES = [((2, 70, 7, 7), 1), ((3, 16, 9, 8), (3, 2)), ((1, 64, 8, 8), (5, 3)), ((2, 130, 7, 7), (1, 1)),
              ((4, 5, 6, 6), (6, 4)), ((2, 3, 10, 10), (1, 3)), ((3, 9, 11), (4, 1))]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, output_size", NHWC_CASES)
def test_channels_last_equals_nchw_bit_for_bit(shape, output_size, dtype):
    rng = np.random.default_rng(31)
    x = (rng.standard_normal(shape) * 10.0 ** rng.integers(-3, 4, shape)).astype(dtype)
    out = cp.adaptive_avg_pool2d(x, output_size)
    assert cp.adaptive_avg_pool2d(to_nhwc(x), output_size, layout="nhwc").tobytes() == to_nhwc(out).tobytes()
    grad_output = rng.standard_normal(out.shape).astype(dtype)
    grad = cp.adaptive_avg_pool2d_backward(grad_output, x.shape)
    grad_l = cp.adaptive_avg_pool2d_backward(to_nhwc(grad_output), to_nhwc(x).shape, layout="nhwc")
    assert grad_l.tobytes() == to_nhwc(grad).tobytes()


def test_torch_channels_last_global_pooling_keeps_the_layout(monkeypatch):
    torch = pytest.importorskip("torch")
    import convpool.torch as cpt
    from convpool import _core

    seen = []
    forward = _core.adaptive_avg_pool2d

    def recording(x, *args, **kwargs):
        seen.append((kwargs.get("layout", "nchw"), x.__array_interface__["data"][0]))
        return forward(x, *args, **kwargs)

    monkeypatch.setattr(_core, "adaptive_avg_pool2d", recording)
    x = np.random.default_rng(32).standard_normal((3, 20, 7, 7))
    tx = torch.from_numpy(x).contiguous(memory_format=torch.channels_last).requires_grad_(True)
    for output_size in (1, (3, 2)):
        seen.clear()
        y = cpt.adaptive_avg_pool2d(tx, output_size)
        assert seen == [("nhwc", tx.data_ptr())]
        expected = torch.nn.functional.adaptive_avg_pool2d(tx, output_size)
        torch.testing.assert_close(y, expected)
        (grad,) = torch.autograd.grad(y.sum(), tx)  # a contiguous gradient of a 1x1 output
        assert grad.is_contiguous(memory_format=torch.channels_last) and not grad.is_contiguous()
        torch.testing.assert_close(grad, torch.autograd.grad(expected.sum(), tx)[0])
        torch.library.opcheck(torch.ops.convpool.adaptive_avg_pool2d.default, (tx.detach(), list(y.shape[-2:])))
