"""max_unpool2d and its backward: against a NumPy loop, PyTorch when installed, the -1 and
repeated-index rules, output_size forms, thread counts, the layer, and bad input."""

import numpy as np
import pytest

import convpool as cp


def reference_unpool(x, indices, out_h, out_w):
    """Zeros, then each value written at its index, planes in order, later indices last."""
    planes = x.reshape(-1, x.shape[-2] * x.shape[-1])
    flat = indices.reshape(planes.shape)
    out = np.zeros((planes.shape[0], out_h * out_w), x.dtype)
    for plane in range(planes.shape[0]):
        for value, index in zip(planes[plane], flat[plane]):
            if index != -1:
                out[plane, index] = value
    return out.reshape(x.shape[:-2] + (out_h, out_w))


CONFIGS = [
    # (input shape, kernel, stride, padding): overlapping windows repeat indices.
    ((2, 3, 8, 9), 2, 2, 0),
    ((3, 7, 6), 3, 2, 1),
    ((1, 2, 10, 10), 3, 1, 1),
    ((2, 4, 5, 7), (2, 3), (1, 2), (1, 1)),
    ((1, 1, 1, 1), 1, 1, 0),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("config", CONFIGS)
def test_undoes_max_pooling_as_the_reference(config, dtype):
    shape, k, s, p = config
    x = np.random.default_rng(91).integers(-3, 4, shape).astype(dtype)
    pooled, indices = cp.max_pool2d(x, k, s, p, return_indices=True)
    out = cp.max_unpool2d(pooled, indices, k, s, p, output_size=x.shape[-2:])
    assert out.dtype == dtype and out.shape == x.shape
    np.testing.assert_array_equal(out, reference_unpool(pooled, indices, *x.shape[-2:]))
    grad_output = np.cos(np.arange(out.size)).reshape(out.shape).astype(dtype)
    expected = np.take_along_axis(grad_output.reshape(-1, out.shape[-2] * out.shape[-1]),
                                  indices.reshape(-1, indices.shape[-2] * indices.shape[-1]), 1)
    np.testing.assert_array_equal(cp.max_unpool2d_backward(grad_output, indices, k, s, p, x.shape[-2:]),
                                  expected.reshape(pooled.shape))


@pytest.mark.parametrize("config", CONFIGS[:4])
def test_matches_torch(config):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    shape, k, s, p = config
    x = torch.tensor(np.random.default_rng(92).standard_normal(shape))
    pooled, indices = F.max_pool2d(x, k, s, p, return_indices=True)
    leaf = pooled.detach().requires_grad_(True)
    k2, s2, p2 = (v if isinstance(v, tuple) else (v, v) for v in (k, s, p))
    default = tuple((n - 1) * s_ + k_ - 2 * p_ for n, k_, s_, p_ in zip(pooled.shape[-2:], k2, s2, p2))
    # The default size holds every index only where it is the pooled input's size.
    for size in ((None,) if default == tuple(x.shape[-2:]) else ()) + (x.shape[-2:],):
        expected = F.max_unpool2d(leaf, indices, k, s, p, output_size=size)
        out = cp.max_unpool2d(leaf.detach().numpy(), indices.numpy(), k, s, p,
                              output_size=None if size is None else tuple(size))
        np.testing.assert_array_equal(out, expected.detach().numpy())
    grad_output = np.random.default_rng(93).standard_normal(out.shape)
    expected.backward(torch.tensor(grad_output))
    np.testing.assert_array_equal(cp.max_unpool2d_backward(grad_output, indices.numpy(), k, s, p, x.shape[-2:]),
                                  leaf.grad.numpy())


def test_default_output_size_is_pytorchs():
    x = np.ones((1, 1, 3, 4), np.float32)
    indices = np.zeros((1, 1, 3, 4), np.int64)
    assert cp.max_unpool2d(x, indices, 3, 2, 1).shape == (1, 1, 5, 7)  # (H - 1) * 2 - 2 + 3
    assert cp.max_unpool2d(x, indices, 3, 2, 1, output_size=(1, 1, 4, 6)).shape == (1, 1, 4, 6)


def test_minus_one_places_nothing_and_later_indices_win():
    x = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    indices = np.array([[[[0, -1], [0, 3]]]])
    out = cp.max_unpool2d(x, indices, 2, 1)
    np.testing.assert_array_equal(out[0, 0], [[3.0, 0.0, 0.0], [4.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    grad = cp.max_unpool2d_backward(np.arange(9.0).reshape(1, 1, 3, 3), indices, 2, 1)
    np.testing.assert_array_equal(grad[0, 0], [[0.0, 0.0], [0.0, 3.0]])


def test_bitwise_identical_for_any_thread_count(assert_thread_independent):
    x = np.random.default_rng(94).standard_normal((2, 3, 33, 17)).astype(np.float32)
    pooled, indices = cp.max_pool2d(x, 3, 1, 1, return_indices=True)

    def run():
        out = cp.max_unpool2d(pooled, indices, 3, 1, 1)
        return out, cp.max_unpool2d_backward(np.cos(out), indices, 3, 1, 1)

    assert_thread_independent(run)


def test_layer_round_trip():
    pool = cp.nn.MaxPool2d(2)
    unpool = cp.nn.MaxUnpool2d(2)
    assert repr(unpool) == "MaxUnpool2d(kernel_size=(2, 2), stride=(2, 2), padding=(0, 0))"
    x = np.random.default_rng(95).standard_normal((2, 3, 6, 6))
    pooled = pool(x)
    _, indices = cp.max_pool2d(x, 2, return_indices=True)
    out = unpool(pooled, indices, output_size=x.shape)
    np.testing.assert_array_equal(out, np.where(out != 0, x, 0))
    grad = unpool.backward(np.ones_like(out))
    np.testing.assert_array_equal(grad, np.ones_like(pooled))


@pytest.mark.parametrize("call, error, message", [
    (lambda x, i: cp.max_unpool2d(x, np.full_like(i, 99), 2), ValueError,
     "indices has 18 value(s) outside [0, 36) (the output's H*W) other than -1"),
    (lambda x, i: cp.max_unpool2d(x, i[:, :, :2], 2), ValueError, "indices has shape (1, 2, 2, 3) but x has"),
    (lambda x, i: cp.max_unpool2d(x, i.astype(np.int32), 2), TypeError, "indices must be int64"),
    (lambda x, i: cp.max_unpool2d(x, i, 2, output_size=(9, 6)), ValueError, "must be within the stride (2, 2)"),
    (lambda x, i: cp.max_unpool2d(x, i, 2, output_size=(6,)), ValueError, "must be (H, W)"),
    (lambda x, i: cp.max_unpool2d(x, i, 1, padding=2), ValueError, "leaves no output"),
    (lambda x, i: cp.max_unpool2d(x, i, 2, stride=2**31), ValueError, "too large"),
    (lambda x, i: cp.max_unpool2d_backward(np.ones((1, 2, 5, 6), np.float32), i, 2), ValueError,
     "grad_output has shape (1, 2, 5, 6) but the unpooling of indices gives (1, 2, 6, 6)"),
    (lambda x, i: cp.max_unpool2d_backward(np.ones((1, 2, 6, 6), np.float32), np.full_like(i, -5), 2), ValueError,
     "indices has 18 value(s) outside"),
])
def test_bad_input_is_refused(call, error, message):
    x = np.ones((1, 2, 3, 3), np.float32)
    indices = np.zeros((1, 2, 3, 3), np.int64)
    with pytest.raises(error) as raised:
        call(x, indices)
    assert message in str(raised.value)
