import numpy as np
import pytest

import convpool as cp
import reference as ref
from configs import channels_last_pool_configs, config_id, random_pool_configs
from reference import to_nhwc

CONFIGS = random_pool_configs(seed=11, count=40, dilation=False)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("divisor_override", [None, 3, -2])
@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("config", CONFIGS, ids=config_id)
def test_random_configs_match_reference(config, count_include_pad, divisor_override, dtype):
    shape, k, s, p, _, ceil_mode = config
    rng = np.random.default_rng(12)
    x = rng.standard_normal(shape).astype(dtype)
    args = (k, s, p, ceil_mode, count_include_pad, divisor_override)
    out = cp.avg_pool2d(x, *args)
    tol = 1e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out, ref.avg_pool2d(x, *args), rtol=tol, atol=tol)
    grad_output = rng.standard_normal(out.shape).astype(dtype)
    np.testing.assert_allclose(cp.avg_pool2d_backward(grad_output, x.shape, *args),
                               ref.avg_pool2d_backward(grad_output, x.shape, *args), rtol=tol, atol=tol)


def test_ceil_mode_edge_window_divisor():
    # 5 wide, kernel 2, stride 2, ceil_mode: the last window covers column 4 only. PyTorch
    # clips it to the padded input (padding 0), so the divisor is 1 both ways.
    x = np.arange(5.0).reshape(1, 1, 1, 5)
    np.testing.assert_array_equal(cp.avg_pool2d(x, (1, 2), ceil_mode=True).ravel(), [0.5, 2.5, 4.0])
    # With padding 1 the right window [3, 5) hangs into the padding column 5: count_include_pad
    # divides by 2, otherwise by the single inside tap.
    x = np.arange(4.0).reshape(1, 1, 1, 4)
    np.testing.assert_array_equal(cp.avg_pool2d(x, (1, 2), padding=(0, 1)).ravel(), [0.0, 1.5, 1.5])
    np.testing.assert_array_equal(
        cp.avg_pool2d(x, (1, 2), padding=(0, 1), count_include_pad=False).ravel(), [0.0, 1.5, 3.0])


@pytest.mark.parametrize("config", random_pool_configs(seed=13, count=8, dilation=False), ids=config_id)
@pytest.mark.parametrize("count_include_pad", [True, False])
def test_gradient_by_finite_differences(config, count_include_pad):
    shape, k, s, p, _, ceil_mode = config
    rng = np.random.default_rng(14)
    x = rng.standard_normal(shape)
    args = (k, s, p, ceil_mode, count_include_pad)
    weights = rng.standard_normal(cp.avg_pool2d(x, *args).shape)
    analytic = cp.avg_pool2d_backward(weights, x.shape, *args)
    eps = 1e-6
    numeric = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = eps
        numeric[i] = np.sum((cp.avg_pool2d(x + e, *args) - cp.avg_pool2d(x - e, *args)) * weights) / (2 * eps)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)


def test_nan_and_infinity_propagate_like_a_sum():
    x = np.zeros((1, 1, 4, 4))
    x[0, 0, 0, 0] = np.nan
    x[0, 0, 3, 3] = np.inf
    out = cp.avg_pool2d(x, 2)
    assert np.isnan(out[0, 0, 0, 0]) and out[0, 0, 1, 1] == np.inf
    assert out[0, 0, 0, 1] == 0 and out[0, 0, 1, 0] == 0


@pytest.mark.parametrize("stride, padding, start", [(1, 0, 2), (2, 1, 1), (3, 0, 3)])
def test_summation_order_of_large_windows_is_column_first(stride, padding, start):
    # docs/semantics.md: a window larger than 2x2 sums each column top to bottom, then the column sums left to
    # right. In float32 that order turns this window into 1 + 3 + 3 = 7; row-major order would
    # lose both ones of the first row against 1e8 and give 5.
    x = np.zeros((1, 1, 7, 7), np.float32)
    x[0, 0, start:start + 3, start:start + 3] = [[1e8, 1, 1], [-1e8, 1, 1], [1, 1, 1]]
    window = (start + padding) // stride
    out = cp.avg_pool2d(x, 3, stride, padding)
    assert out[0, 0, window, window] == np.float32(7) / np.float32(9)


def test_summation_order_of_2x2_windows_is_row_major():
    x = np.array([[[[1e8, 1], [-1e8, 1]]]], np.float32)
    assert cp.avg_pool2d(x, 2)[0, 0, 0, 0] == np.float32(0.25)


@pytest.mark.parametrize("shape, k, p", [((2, 3, 11, 9), 7, 3), ((1, 2, 6, 13), (3, 5), (1, 2)), ((3, 5, 4), (4, 2), (2, 0))])
def test_stride_one_column_first_sums_match_reference(shape, k, p):
    x = np.random.default_rng(15).standard_normal(shape)
    for count_include_pad in (True, False):
        np.testing.assert_allclose(cp.avg_pool2d(x, k, 1, p, False, count_include_pad),
                                   ref.avg_pool2d(x, k, 1, p, False, count_include_pad), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(cp.lp_pool2d(x, 2, k, 1), ref.lp_pool2d(x, 2, k, 1), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape", [(2, 3, 8, 8), (1, 1, 7, 9), (3, 2, 2, 3)])
@pytest.mark.parametrize("divisor_override", [None, 3])
def test_disjoint_2x2_windows_for_any_thread_count(shape, divisor_override, threads):
    # 2x2 windows at stride 2 take a path of their own; one plane is cut into row bands.
    x = np.random.default_rng(14).standard_normal(shape)
    x[..., 0, 0] = -0.0
    args = (2, 2, 0, False, True, divisor_override)
    expected = ref.avg_pool2d(x, *args)
    grad_output = np.random.default_rng(15).standard_normal(expected.shape)
    expected_grad = ref.avg_pool2d_backward(grad_output, x.shape, *args)
    for n in (1, 2, 3):
        threads(n)
        np.testing.assert_allclose(cp.avg_pool2d(x, *args), expected, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(cp.avg_pool2d_backward(grad_output, x.shape, *args), expected_grad,
                                   rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(cp.lp_pool2d(x, 2, 2), ref.lp_pool2d(x, 2, 2), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("divisor_override", [None, 3])
@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("config", channels_last_pool_configs(seed=14, count=16, dilation=False)
                         + [((2, 64, 8, 8), 2, 2, 0, 1, False), ((1, 70, 9, 9), 3, 1, 1, 1, True)], ids=config_id)
def test_channels_last_equals_nchw_bit_for_bit(config, count_include_pad, divisor_override):
    shape, k, s, p, _, ceil_mode = config
    rng = np.random.default_rng(15)
    args = (k, s, p, ceil_mode, count_include_pad, divisor_override)
    for dtype in (np.float32, np.float64):
        x = (rng.standard_normal(shape) * 10.0 ** rng.integers(-3, 4, shape)).astype(dtype)
        out = cp.avg_pool2d(x, *args)
        out_l = cp.avg_pool2d(to_nhwc(x), *args, layout="nhwc")
        assert out_l.tobytes() == to_nhwc(out).tobytes()
        grad_output = (rng.standard_normal(out.shape) * 10.0 ** rng.integers(-3, 4, out.shape)).astype(dtype)
        grad = cp.avg_pool2d_backward(grad_output, x.shape, *args)
        grad_l = cp.avg_pool2d_backward(to_nhwc(grad_output), to_nhwc(x).shape, *args, layout="nhwc")
        assert grad_l.tobytes() == to_nhwc(grad).tobytes()


def test_channels_last_shapes_and_layout_are_checked():
    x = np.zeros((2, 6, 5, 3), np.float32)  # (N, H, W, C)
    assert cp.avg_pool2d(x, 2, layout="nhwc").shape == (2, 3, 2, 3)
    assert cp.avg_pool2d_backward(np.ones((2, 3, 2, 3), np.float32), x.shape, 2, layout="nhwc").shape == x.shape
    with pytest.raises(ValueError, match=r"input_shape must be \(H, W, C\) or \(N, H, W, C\)"):
        cp.avg_pool2d_backward(np.ones((2, 3, 2, 3), np.float32), (6, 5), 2, layout="nhwc")
    with pytest.raises(ValueError, match="layout must be 'nchw' or 'nhwc'"):
        cp.avg_pool2d(x, 2, layout="hwc")


def test_torch_channels_last_runs_in_place_and_stays_channels_last(monkeypatch):
    torch = pytest.importorskip("torch")
    import convpool.torch as cpt
    from convpool import _core

    seen = []
    forward, backward = _core.avg_pool2d, _core.avg_pool2d_backward

    def recording(function):
        def call(first, *args, **kwargs):
            seen.append((kwargs.get("layout", "nchw"), first.__array_interface__["data"][0]))
            return function(first, *args, **kwargs)
        return call

    monkeypatch.setattr(_core, "avg_pool2d", recording(forward))
    monkeypatch.setattr(_core, "avg_pool2d_backward", recording(backward))
    x = np.random.default_rng(16).standard_normal((3, 20, 9, 8))
    tx = torch.from_numpy(x).contiguous(memory_format=torch.channels_last).requires_grad_(True)
    for kernel, stride, padding in ((2, 2, 0), (3, 2, 1)):
        seen.clear()
        y = cpt.avg_pool2d(tx, kernel, stride, padding)
        assert seen == [("nhwc", tx.data_ptr())]  # x read in place
        assert y.is_contiguous(memory_format=torch.channels_last) and not y.is_contiguous()
        expected = torch.nn.functional.avg_pool2d(tx, kernel, stride, padding)
        torch.testing.assert_close(y, expected)
        probe = torch.randn_like(expected).contiguous(memory_format=torch.channels_last)
        (grad,) = torch.autograd.grad(y, tx, probe)
        assert seen[1] == ("nhwc", probe.data_ptr())
        assert grad.is_contiguous(memory_format=torch.channels_last)
        torch.testing.assert_close(grad, torch.autograd.grad(expected, tx, probe)[0])
    torch.library.opcheck(torch.ops.convpool.avg_pool2d.default, (tx.detach(), [3, 3], [2, 2], [1, 1], True, False))
