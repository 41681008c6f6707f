"""fractional_max_pool2d and its backward: against the NumPy reference (overlapping windows, ties,
NaN), finite differences, PyTorch with the same samples, seeds and thread counts, output_ratio,
the layer, and bad input."""

import numpy as np
import pytest

import convpool as cp
import reference as ref

# (input shape, kernel, output size): overlapping windows (kernel > in / out), disjoint ones, one
# output, outputs as many as fit, 3-D input.
CONFIGS = [
    ((2, 3, 10, 9), 3, 5),
    ((1, 2, 12, 12), 2, (6, 4)),
    ((2, 1, 7, 11), (3, 2), (1, 6)),
    ((1, 2, 6, 5), 2, (5, 4)),
    ((3, 8, 8), (2, 3), (4, 3)),
]


def samples_for(shape, dtype, seed):
    planes = (shape[0] if len(shape) == 4 else 1, shape[-3])
    return np.random.default_rng(seed).random(planes + (2,), dtype=dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("config", CONFIGS)
def test_matches_reference(config, dtype):
    shape, kernel, out = config
    rng = np.random.default_rng(201)
    x = rng.integers(-2, 3, shape).astype(dtype)  # many ties
    x[rng.random(shape) < 0.03] = np.nan
    samples = samples_for(shape, dtype, 202)
    values, indices = cp.fractional_max_pool2d(x, kernel, out, return_indices=True, _random_samples=samples)
    expected, expected_indices = ref.fractional_max_pool2d(x, kernel, out, samples)
    np.testing.assert_array_equal(values, expected)
    np.testing.assert_array_equal(indices, expected_indices)
    grad_output = np.cos(np.arange(values.size)).reshape(values.shape).astype(dtype)
    expected_grad = np.zeros(x.shape[:-2] + (x.shape[-2] * x.shape[-1],), dtype)
    flat = expected_grad.reshape(-1, expected_grad.shape[-1])
    for plane, (g, i) in enumerate(zip(grad_output.reshape(len(flat), -1), indices.reshape(len(flat), -1))):
        np.add.at(flat[plane], i, g)
    np.testing.assert_allclose(cp.fractional_max_pool2d_backward(grad_output, x, indices),
                               expected_grad.reshape(x.shape), rtol=1e-6, atol=1e-6)


def test_gradient_matches_finite_differences():
    x = np.random.default_rng(203).permutation(2 * 3 * 9 * 8).reshape(2, 3, 9, 8) / 7.0  # no ties
    samples = samples_for(x.shape, np.float64, 204)
    values, indices = cp.fractional_max_pool2d(x, 3, 4, return_indices=True, _random_samples=samples)
    weights = np.cos(np.arange(values.size)).reshape(values.shape)
    grad = cp.fractional_max_pool2d_backward(weights, x, indices)
    step = 1e-6
    for flat in np.random.default_rng(205).choice(x.size, 40, replace=False):
        e = np.zeros(x.size)
        e[flat] = step
        e = e.reshape(x.shape)
        loss = [np.sum(weights * cp.fractional_max_pool2d(x + s * e, 3, 4, _random_samples=samples)) for s in (1, -1)]
        assert (loss[0] - loss[1]) / (2 * step) == pytest.approx(grad.flat[flat], abs=1e-6)


def test_matches_torch_given_its_samples():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(206)
    for trial in range(60):
        n, c = rng.integers(1, 3), rng.integers(1, 4)
        h, w = rng.integers(3, 20, 2)
        kh, kw = min(rng.integers(1, 4), h), min(rng.integers(1, 4), w)
        oh, ow = rng.integers(0, h - kh + 2), rng.integers(0, w - kw + 2)
        dtype = (np.float32, np.float64)[trial % 2]
        x = rng.integers(-3, 4, (n, c, h, w)).astype(dtype)
        samples = torch.rand(n, c, 2, dtype=torch.float32 if dtype == np.float32 else torch.float64)
        tx = torch.tensor(x, requires_grad=True)
        expected, expected_indices = F.fractional_max_pool2d(tx, (kh, kw), output_size=(oh, ow), return_indices=True,
                                                             _random_samples=samples)
        values, indices = cp.fractional_max_pool2d(x, (kh, kw), (oh, ow), return_indices=True,
                                                   _random_samples=samples)  # a tensor, through DLPack
        np.testing.assert_array_equal(values, expected.detach().numpy())
        np.testing.assert_array_equal(indices, expected_indices.numpy())
        grad_output = rng.standard_normal(values.shape).astype(dtype)
        expected.backward(torch.tensor(grad_output))
        np.testing.assert_allclose(cp.fractional_max_pool2d_backward(grad_output, x, indices), tx.grad.numpy(),
                                   rtol=1e-6, atol=1e-6)


def test_a_seed_gives_the_same_windows_for_any_thread_count(assert_thread_independent):
    x = np.random.default_rng(207).standard_normal((3, 4, 15, 13)).astype(np.float32)

    def run():
        values, indices = cp.fractional_max_pool2d(x, 2, output_ratio=0.5, return_indices=True, seed=11)
        return values, indices, cp.fractional_max_pool2d_backward(np.cos(values), x, indices)

    assert_thread_independent(run)
    first, second = cp.fractional_max_pool2d(x, 2, 6, seed=11), cp.fractional_max_pool2d(x, 2, 6, seed=12)
    assert not np.array_equal(first, second)
    cp.manual_seed(5)
    drawn = cp.fractional_max_pool2d(x, 2, 6)
    cp.manual_seed(5)
    np.testing.assert_array_equal(cp.fractional_max_pool2d(x, 2, 6), drawn)


def test_output_ratio_sets_the_size_as_torch_does():
    x = np.zeros((1, 2, 15, 10), np.float32)
    assert cp.fractional_max_pool2d(x, 2, output_ratio=0.5, seed=0).shape == (1, 2, 7, 5)
    assert cp.fractional_max_pool2d(x, 2, output_ratio=(0.75, 0.3), seed=0).shape == (1, 2, 11, 3)
    assert cp.fractional_max_pool2d(x, 2, output_size=4, output_ratio=0.5, seed=0).shape == (1, 2, 4, 4)


def test_layer_draws_fresh_windows_and_routes_its_gradient():
    layer = cp.nn.FractionalMaxPool2d(3, output_ratio=(0.5, 0.5), seed=3)
    assert repr(layer) == "FractionalMaxPool2d(kernel_size=3, output_ratio=(0.5, 0.5))"
    x = np.random.default_rng(208).standard_normal((2, 3, 12, 12))
    first = layer(x)
    grad = layer.backward(np.ones_like(first))
    assert first.shape == (2, 3, 6, 6) and grad.shape == x.shape and grad.sum() == pytest.approx(first.size)
    assert not np.array_equal(layer(x), first)  # a new draw each call
    again = cp.nn.FractionalMaxPool2d(3, output_ratio=(0.5, 0.5), seed=3)
    np.testing.assert_array_equal(again(x), first)


@pytest.mark.parametrize("call, error, message", [
    (lambda x: cp.fractional_max_pool2d(x, 2), ValueError, "give output_size or output_ratio"),
    (lambda x: cp.fractional_max_pool2d(x, 2, output_ratio=1.0), ValueError, "strictly between 0 and 1"),
    (lambda x: cp.fractional_max_pool2d(x, 2, output_ratio="half"), TypeError, "output_ratio must be a number"),
    (lambda x: cp.fractional_max_pool2d(x, 3, 4), ValueError,
     "output_size=(4, 4) with kernel_size=(3, 3) does not fit input (1, 2, 5, 5)"),
    (lambda x: cp.fractional_max_pool2d(x, 0, 2), ValueError, "kernel_size=(0, 0) must be positive"),
    (lambda x: cp.fractional_max_pool2d(x, 2, 2, _random_samples=np.zeros((1, 3, 2), np.float32)), ValueError,
     "_random_samples has shape (1, 3, 2) but x needs (N, C, 2): (1, 2, 2)"),
    (lambda x: cp.fractional_max_pool2d(x, 2, 2, _random_samples=np.full((1, 2, 2), 1.0, np.float32)), ValueError,
     "_random_samples must lie in [0, 1), got 1"),
    (lambda x: cp.fractional_max_pool2d(x, 2, 2, _random_samples=np.full((1, 2, 2), np.nan, np.float32)),
     ValueError, "_random_samples must lie in [0, 1), got nan"),
    (lambda x: cp.fractional_max_pool2d(x, 2, 2, _random_samples=np.zeros((1, 2, 2))), TypeError,
     "_random_samples is float64 but x is float32"),
    (lambda x: cp.fractional_max_pool2d_backward(np.ones((1, 2, 2, 2), np.float32), x,
                                                 np.full((1, 2, 2, 2), 25, np.int64)), ValueError,
     "indices has 8 value(s) outside [0, 25)"),
    (lambda x: cp.fractional_max_pool2d_backward(np.ones((1, 2, 3, 3), np.float32), x,
                                                 np.zeros((1, 2, 2, 2), np.int64)), ValueError,
     "grad_output has shape (1, 2, 3, 3) but indices has (1, 2, 2, 2)"),
    (lambda x: cp.fractional_max_pool2d_backward(np.ones((1, 3, 2, 2), np.float32), x,
                                                 np.zeros((1, 3, 2, 2), np.int64)), ValueError,
     "indices has shape (1, 3, 2, 2) but x has shape (1, 2, 5, 5)"),
])
def test_bad_input_is_refused(call, error, message):
    x = np.zeros((1, 2, 5, 5), np.float32)
    with pytest.raises(error) as raised:
        call(x)
    assert message in str(raised.value)
