import numpy as np
import pytest

import convpool as cp
import reference as ref
from configs import config_id, random_pool_configs

CONFIGS = random_pool_configs(seed=31, count=20, padding=False, dilation=False, ceil_mode=False)


@pytest.mark.parametrize("config", CONFIGS, ids=config_id)
def test_training_picks_a_positive_tap_of_its_window(config):
    shape, k, s, _, _, _ = config
    rng = np.random.default_rng(32)
    x = np.maximum(rng.standard_normal(shape), 0)
    out, idx = cp.stochastic_pool2d(x, k, s, seed=5, return_indices=True)
    out_shape, windows = ref.window_values(x, k, s)
    assert out.shape == out_shape
    for value, index, taps in zip(out.ravel(), idx.ravel(), windows):
        positive = {i: v for i, v in taps if v > 0}
        if positive:
            assert index in positive and value == positive[index]
        else:
            assert value == 0 and index == taps[0][0]


def test_sampling_frequencies_are_proportional_to_activations():
    # One window [1, 2, 3, 0] drawn under 6000 seeds: picks follow 1/6, 2/6, 3/6, never the zero.
    x = np.array([1.0, 2.0, 3.0, 0.0]).reshape(1, 1, 2, 2)
    counts = np.zeros(4)
    for seed in range(6000):
        _, idx = cp.stochastic_pool2d(x, 2, seed=seed, return_indices=True)
        counts[idx.item()] += 1
    assert counts[3] == 0
    expected = 6000 * np.array([1, 2, 3]) / 6
    chi2 = np.sum((counts[:3] - expected) ** 2 / expected)
    assert chi2 < 13.8  # p = 0.001 for 2 degrees of freedom


def test_same_seed_same_samples_and_different_seeds_differ():
    x = np.random.default_rng(1).random((4, 8, 16, 16)).astype(np.float32)
    a = cp.stochastic_pool2d(x, 3, 2, seed=42, return_indices=True)[1]
    b = cp.stochastic_pool2d(x, 3, 2, seed=42, return_indices=True)[1]
    c = cp.stochastic_pool2d(x, 3, 2, seed=43, return_indices=True)[1]
    np.testing.assert_array_equal(a, b)
    assert np.mean(a != c) > 0.3


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("config", CONFIGS, ids=config_id)
def test_evaluation_is_the_weighted_average(config, dtype):
    shape, k, s, _, _, _ = config
    rng = np.random.default_rng(33)
    x = np.maximum(rng.standard_normal(shape), 0).astype(dtype)
    out = cp.stochastic_pool2d(x, k, s, training=False)
    tol = 1e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out, ref.stochastic_pool2d_eval(x, k, s), rtol=tol, atol=tol)
    grad_output = rng.standard_normal(out.shape).astype(dtype)
    np.testing.assert_allclose(cp.stochastic_pool2d_backward(grad_output, x, None, k, s, training=False),
                               ref.stochastic_pool2d_eval_backward(grad_output, x, k, s), rtol=tol, atol=tol)


@pytest.mark.parametrize("config", CONFIGS[:6], ids=config_id)
def test_training_gradient_routes_to_the_picks(config):
    shape, k, s, _, _, _ = config
    rng = np.random.default_rng(34)
    x = rng.random(shape)
    out, idx = cp.stochastic_pool2d(x, k, s, seed=3, return_indices=True)
    grad_output = rng.standard_normal(out.shape)
    expected = np.zeros(x.reshape(-1, shape[-2] * shape[-1]).shape)
    for plane, (g_row, i_row) in enumerate(zip(grad_output.reshape(len(expected), -1), idx.reshape(len(expected), -1))):
        for g, i in zip(g_row, i_row):
            expected[plane, i] += g
    np.testing.assert_allclose(cp.stochastic_pool2d_backward(grad_output, x, idx, k, s),
                               expected.reshape(shape), rtol=1e-12, atol=1e-12)


def test_evaluation_gradient_by_finite_differences():
    rng = np.random.default_rng(35)
    x = rng.uniform(0.1, 1.0, (2, 1, 5, 6))
    weights = rng.standard_normal(cp.stochastic_pool2d(x, 2, 1, training=False).shape)
    analytic = cp.stochastic_pool2d_backward(weights, x, None, 2, 1, training=False)
    eps = 1e-6
    numeric = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = eps
        diff = cp.stochastic_pool2d(x + e, 2, 1, training=False) - cp.stochastic_pool2d(x - e, 2, 1, training=False)
        numeric[i] = np.sum(diff * weights) / (2 * eps)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("bad", [-1.0, np.nan, np.inf])
def test_invalid_activations_are_refused(bad):
    x = np.ones((1, 2, 4, 4))
    x[0, 1, 2, 3] = bad
    with pytest.raises(ValueError, match="non-negative and finite"):
        cp.stochastic_pool2d(x, 2)
