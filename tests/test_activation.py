"""relu / relu_backward against NumPy, PyTorch's NaN and signed-zero rules, and bad input."""

import numpy as np
import pytest

import convpool as cp

SPECIAL = np.array([-1.5, -0.0, 0.0, 2.0, np.nan, np.inf, -np.inf, 1e-45, -1e-45])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(0,), (7,), (3, 5, 17), (2, 3, 100, 101)])
def test_matches_numpy(shape, dtype):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape).astype(dtype)
    y = cp.relu(x)
    assert y.dtype == dtype and y.shape == x.shape
    np.testing.assert_array_equal(y, np.where(x < 0, 0, x))
    grad_output = rng.standard_normal(shape).astype(dtype)
    np.testing.assert_array_equal(cp.relu_backward(grad_output, y), np.where(y <= 0, 0, grad_output))


def test_special_values_follow_pytorch():
    y = cp.relu(SPECIAL)
    np.testing.assert_array_equal(y, [0, -0.0, 0, 2, np.nan, np.inf, 0, 1e-45, 0])
    assert np.signbit(y[1]) and not np.signbit(y[0])
    np.testing.assert_array_equal(cp.relu_backward(np.ones_like(y), y), [0, 0, 0, 1, 1, 1, 0, 1, 0])
    torch = pytest.importorskip("torch")
    t = torch.tensor(SPECIAL, requires_grad=True)
    out = torch.relu(t)
    out.backward(torch.ones_like(out))
    np.testing.assert_array_equal(y, out.detach().numpy())
    np.testing.assert_array_equal(np.signbit(y), np.signbit(out.detach().numpy()))
    np.testing.assert_array_equal(cp.relu_backward(np.ones_like(y), y), t.grad.numpy())


def test_non_contiguous_input_and_threads(threads):
    x = np.random.default_rng(2).standard_normal((64, 6, 24, 24)).astype(np.float32)[:, ::2]
    expected = np.maximum(x, 0)
    for n in (1, 2, 3):
        threads(n)
        np.testing.assert_array_equal(cp.relu(x), expected)


def test_bad_input():
    with pytest.raises(TypeError, match="relu: x must be float32 or float64, got int64"):
        cp.relu(np.arange(3))
    with pytest.raises(ValueError, match=r"relu_backward: grad_output has shape \(3,\) but y has shape \(4,\)"):
        cp.relu_backward(np.ones(3), np.ones(4))
    with pytest.raises(TypeError, match="relu_backward: grad_output is float32 but y is float64"):
        cp.relu_backward(np.ones(4, np.float32), np.ones(4))


def test_relu_of_a_residual_sum_is_one_pass_of_the_two_steps():
    rng = np.random.default_rng(41)
    for dtype in (np.float32, np.float64):
        x = rng.standard_normal((3, 7, 5, 70)).astype(dtype)
        residual = rng.standard_normal(x.shape).astype(dtype)
        residual.flat[::9] = np.nan
        np.testing.assert_array_equal(cp.relu(x, residual=residual), cp.relu(x + residual))
    with pytest.raises(ValueError, match=r"relu: residual has shape \(2,\)"):
        cp.relu(np.ones(3), residual=np.ones(2))
    with pytest.raises(TypeError, match="residual is float32 but x is float64"):
        cp.relu(np.ones(3), residual=np.ones(3, np.float32))


def test_a_residual_block_folds_the_relu_after_it():
    from convpool import nn
    cp.manual_seed(42)
    body = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4))
    fused = nn.Sequential(nn.Residual(body), nn.ReLU())
    x = np.random.default_rng(43).standard_normal((2, 4, 6, 6)).astype(np.float32)
    y = fused(x)
    residual = fused[0]
    expected = np.maximum(body(x) + x, 0)
    np.testing.assert_allclose(y, expected, rtol=1e-6, atol=1e-6)
    grad = np.cos(np.arange(y.size)).reshape(y.shape).astype(np.float32)
    fused(x)
    grad_input = fused.backward(grad)
    body(x)
    by_hand = body.backward(grad * (expected > 0)) + grad * (expected > 0)
    np.testing.assert_allclose(grad_input, by_hand, rtol=1e-5, atol=1e-6)
    assert residual.fused_activations == ("relu",)
