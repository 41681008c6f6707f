import numpy as np
import pytest

import convpool as cp
import reference as ref
from configs import config_id, random_pool_configs

CONFIGS = random_pool_configs(seed=21, count=30, padding=False, dilation=False)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("norm_type", [1, 2, 3, 0.5, 2.5])
@pytest.mark.parametrize("config", CONFIGS, ids=config_id)
def test_random_configs_match_reference(config, norm_type, dtype):
    shape, k, s, _, _, ceil_mode = config
    rng = np.random.default_rng(22)
    x = rng.standard_normal(shape).astype(dtype)
    out = cp.lp_pool2d(x, norm_type, k, s, ceil_mode)
    tol = 2e-5 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(out, ref.lp_pool2d(x, norm_type, k, s, ceil_mode), rtol=tol, atol=tol)
    grad_output = rng.standard_normal(out.shape).astype(dtype)
    np.testing.assert_allclose(cp.lp_pool2d_backward(grad_output, x, norm_type, k, s, ceil_mode),
                               ref.lp_pool2d_backward(grad_output, x, norm_type, k, s, ceil_mode),
                               rtol=tol * 10, atol=tol * 10)


def test_l2_of_a_window_is_its_euclidean_norm():
    x = np.array([3.0, -4.0]).reshape(1, 1, 1, 2)
    assert cp.lp_pool2d(x, 2, (1, 2)).item() == 5.0
    assert cp.lp_pool2d(x, 1, (1, 2)).item() == 7.0  # sum of |x|, not of x


def test_ceil_mode_partial_window_is_the_true_sum():
    x = np.ones((1, 1, 3, 3))
    out = cp.lp_pool2d(x, 2, 2, ceil_mode=True)
    np.testing.assert_allclose(out[0, 0], np.sqrt([[4, 2], [2, 1]]))


def test_all_zero_window_has_zero_gradient():
    x = np.zeros((1, 1, 2, 2))
    x[0, 0, 0, 0] = 0.0
    grad = cp.lp_pool2d_backward(np.ones((1, 1, 1, 1)), x, 2, 2)
    np.testing.assert_array_equal(grad, np.zeros_like(x))


@pytest.mark.parametrize("norm_type", [1, 2, 3, 1.5])
@pytest.mark.parametrize("config", random_pool_configs(seed=23, count=6, padding=False, dilation=False), ids=config_id)
def test_gradient_by_finite_differences(config, norm_type):
    shape, k, s, _, _, ceil_mode = config
    rng = np.random.default_rng(24)
    # Away from zero, where |x|^p is smooth.
    x = rng.uniform(0.5, 2.0, shape) * rng.choice([-1.0, 1.0], shape)
    weights = rng.standard_normal(cp.lp_pool2d(x, norm_type, k, s, ceil_mode).shape)
    analytic = cp.lp_pool2d_backward(weights, x, norm_type, k, s, ceil_mode)
    eps = 1e-6
    numeric = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = eps
        diff = cp.lp_pool2d(x + e, norm_type, k, s, ceil_mode) - cp.lp_pool2d(x - e, norm_type, k, s, ceil_mode)
        numeric[i] = np.sum(diff * weights) / (2 * eps)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)
