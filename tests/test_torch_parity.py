"""Parity with PyTorch on randomized configurations (skipped when torch is not installed)."""

import numpy as np
import pytest

import convpool as cp
from configs import config_id, conv_args, conv_config_id, random_conv_configs, random_pool_configs

torch = pytest.importorskip("torch")
F = torch.nn.functional


def grad_of(fn, x, grad_output):
    t = torch.tensor(x, requires_grad=True)
    fn(t).backward(torch.tensor(grad_output))
    return t.grad.numpy()


@pytest.mark.parametrize("config", random_pool_configs(seed=51, count=40), ids=config_id)
def test_max_pool_matches_torch(config):
    shape, k, s, p, d, ceil_mode = config
    rng = np.random.default_rng(52)
    # Random integers make ties frequent: PyTorch's choice is tie_break="first".
    for x in (rng.standard_normal(shape).astype(np.float32), rng.integers(0, 3, shape).astype(np.float32)):
        out, idx = cp.max_pool2d(x, k, s, p, d, ceil_mode, return_indices=True)
        t_out, t_idx = F.max_pool2d(torch.tensor(x), k, s, p, d, ceil_mode, return_indices=True)
        valid = idx >= 0  # PyTorch's index is garbage where no tap is inside the input
        np.testing.assert_array_equal(out, t_out.numpy())
        np.testing.assert_array_equal(idx[valid], t_idx.numpy()[valid])
        if not valid.all():
            continue
        g = rng.standard_normal(out.shape).astype(np.float32)
        expected = grad_of(lambda t: F.max_pool2d(t, k, s, p, d, ceil_mode), x, g)
        np.testing.assert_allclose(cp.max_pool2d_backward(g, x, idx, k, s, p, d, ceil_mode), expected, rtol=1e-6, atol=1e-6)


def test_max_pool_nan_matches_torch():
    rng = np.random.default_rng(53)
    x = rng.standard_normal((2, 3, 9, 9)).astype(np.float32)
    x[rng.random(x.shape) < 0.2] = np.nan
    out, idx = cp.max_pool2d(x, 3, 2, 1, return_indices=True)
    t_out, t_idx = F.max_pool2d(torch.tensor(x), 3, 2, 1, return_indices=True)
    np.testing.assert_array_equal(out, t_out.numpy())
    np.testing.assert_array_equal(idx, t_idx.numpy())


@pytest.mark.parametrize("config", random_pool_configs(seed=54, count=40, dilation=False), ids=config_id)
@pytest.mark.parametrize("count_include_pad, divisor_override", [(True, None), (False, None), (True, 5)])
def test_avg_pool_matches_torch(config, count_include_pad, divisor_override):
    shape, k, s, p, _, ceil_mode = config
    rng = np.random.default_rng(55)
    x = rng.standard_normal(shape).astype(np.float32)
    args = (k, s, p, ceil_mode, count_include_pad, divisor_override)
    out = cp.avg_pool2d(x, *args)
    np.testing.assert_allclose(out, F.avg_pool2d(torch.tensor(x), *args).numpy(), rtol=1e-5, atol=1e-6)
    g = rng.standard_normal(out.shape).astype(np.float32)
    np.testing.assert_allclose(cp.avg_pool2d_backward(g, x.shape, *args),
                               grad_of(lambda t: F.avg_pool2d(t, *args), x, g), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("config", random_pool_configs(seed=56, count=30, padding=False, dilation=False), ids=config_id)
@pytest.mark.parametrize("norm_type", [1, 2, 3, 1.5])
def test_lp_pool_matches_torch(config, norm_type):
    shape, k, s, _, _, ceil_mode = config
    rng = np.random.default_rng(57)
    # Positive inputs (PyTorch raises x, not |x|, to the power), and PyTorch's ceil_mode edge
    # windows are rescaled to the full kernel area: compare only the windows inside the input.
    x = rng.uniform(0.1, 2.0, shape).astype(np.float32)
    out = cp.lp_pool2d(x, norm_type, k, s, ceil_mode)
    expected = F.lp_pool2d(torch.tensor(x), norm_type, k, s, ceil_mode).numpy()
    full_h = (np.arange(out.shape[-2]) * s[0] + k[0]) <= shape[-2]
    full_w = (np.arange(out.shape[-1]) * s[1] + k[1]) <= shape[-1]
    inside = np.outer(full_h, full_w)
    np.testing.assert_allclose(out[..., inside], expected[..., inside], rtol=2e-5, atol=1e-6)
    if inside.all():
        g = rng.standard_normal(out.shape).astype(np.float32)
        np.testing.assert_allclose(cp.lp_pool2d_backward(g, x, norm_type, k, s, ceil_mode),
                                   grad_of(lambda t: F.lp_pool2d(t, norm_type, k, s, ceil_mode), x, g),
                                   rtol=1e-4, atol=1e-5)


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("config", random_conv_configs(seed=58, count=40), ids=conv_config_id)
def test_conv2d_matches_torch(config):
    rng = np.random.default_rng(59)
    x = rng.standard_normal(config["shape"]).astype(np.float32)
    weight = rng.standard_normal(config["weight"]).astype(np.float32)
    bias = rng.standard_normal(config["weight"][0]).astype(np.float32)
    args = conv_args(config)
    out = cp.conv2d(x, weight, bias, **args)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, weight, bias))
    t_out = F.conv2d(tx, tw, tb, **args)
    np.testing.assert_allclose(out, t_out.detach().numpy(), rtol=1e-4, atol=1e-4)
    g = rng.standard_normal(out.shape).astype(np.float32)
    t_out.backward(torch.tensor(g))
    for actual, t in zip(cp.conv2d_backward(g, x, weight, **args), (tx, tw, tb)):
        np.testing.assert_allclose(actual, t.grad.numpy(), rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("seed", range(8))
def test_batch_norm_matches_torch(seed):
    rng = np.random.default_rng(400 + seed)
    shape = (int(rng.integers(1, 6)), int(rng.integers(1, 9)), int(rng.integers(1, 12)), int(rng.integers(2, 12)))
    channels = shape[1]
    affine, relu = bool(rng.integers(2)), bool(rng.integers(2))
    momentum, eps = float(rng.uniform(0.05, 0.5)), float(rng.choice([1e-5, 1e-3]))
    weight = rng.standard_normal(channels).astype(np.float32) if affine else None
    bias = rng.standard_normal(channels).astype(np.float32) if affine else None
    running_mean, running_var = np.zeros(channels, np.float32), np.ones(channels, np.float32)
    t_mean, t_var = torch.zeros(channels), torch.ones(channels)
    for step in range(4):  # three training steps, then evaluation with the running statistics
        training = step < 3
        x = (rng.standard_normal(shape) * (step + 1) + step).astype(np.float32)
        g = rng.standard_normal(shape).astype(np.float32)
        out, mean, invstd = cp.batch_norm2d(x, weight, bias, running_mean, running_var, training=training,
                                            momentum=momentum, eps=eps, activation="relu" if relu else None)
        tx = torch.tensor(x, requires_grad=True)
        tw = torch.tensor(weight, requires_grad=True) if affine else None
        tb = torch.tensor(bias, requires_grad=True) if affine else None
        t_out = F.batch_norm(tx, t_mean, t_var, tw, tb, training=training, momentum=momentum, eps=eps)
        if relu:
            t_out = F.relu(t_out)
        t_out.backward(torch.tensor(g))
        np.testing.assert_allclose(out, t_out.detach().numpy(), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(running_mean, t_mean.numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(running_var, t_var.numpy(), rtol=1e-5, atol=1e-6)
        grads = cp.batch_norm2d_backward(g, x, weight, mean, invstd, training=training,
                                         activation="relu" if relu else None, output=out)
        scale = 1 + np.abs(tx.grad.numpy()).max()
        np.testing.assert_allclose(grads[0], tx.grad.numpy(), rtol=1e-4, atol=1e-5 * scale)
        if affine:
            np.testing.assert_allclose(grads[1], tw.grad.numpy(), rtol=1e-4, atol=1e-4)
            np.testing.assert_allclose(grads[2], tb.grad.numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("seed", range(6))
def test_adaptive_avg_pool_matches_torch(seed):
    rng = np.random.default_rng(500 + seed)
    shape = (int(rng.integers(1, 4)), int(rng.integers(1, 5)), int(rng.integers(1, 20)), int(rng.integers(1, 20)))
    output_size = (int(rng.integers(1, 2 * shape[2] + 1)), int(rng.integers(1, 2 * shape[3] + 1)))
    x = rng.standard_normal(shape).astype(np.float32)
    out = cp.adaptive_avg_pool2d(x, output_size)
    np.testing.assert_allclose(out, F.adaptive_avg_pool2d(torch.tensor(x), output_size).numpy(), rtol=1e-5, atol=1e-6)
    g = rng.standard_normal(out.shape).astype(np.float32)
    expected = grad_of(lambda t: F.adaptive_avg_pool2d(t, output_size), x, g)
    np.testing.assert_allclose(cp.adaptive_avg_pool2d_backward(g, x.shape), expected, rtol=1e-5, atol=1e-6)
