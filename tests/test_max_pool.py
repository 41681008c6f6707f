import math

import numpy as np
import pytest

import convpool as cp
import reference as ref
from configs import channels_last_pool_configs, config_id, random_pool_configs
from reference import to_nchw, to_nhwc

TIE_BREAKS = ["first", "last", "split"]
CONFIGS = random_pool_configs(seed=1, count=40)


def forward_and_backward(x, grad_output, config, tie_break, nan="propagate"):
    shape, k, s, p, d, ceil_mode = config
    out, idx = cp.max_pool2d(x, k, s, p, d, ceil_mode, return_indices=True, tie_break=tie_break, nan=nan)
    grad_input = cp.max_pool2d_backward(grad_output, x, idx, k, s, p, d, ceil_mode, tie_break=tie_break, nan=nan)
    return out, idx, grad_input


def check_against_reference(x, config, tie_break, nan="propagate", seed=0):
    shape, k, s, p, d, ceil_mode = config
    expected_out, expected_idx = ref.max_pool2d(x, k, s, p, d, ceil_mode, tie_break, nan)
    grad_output = np.random.default_rng(seed).standard_normal(expected_out.shape).astype(x.dtype)
    out, idx, grad_input = forward_and_backward(x, grad_output, config, tie_break, nan)
    np.testing.assert_array_equal(out, expected_out)
    expected_forward_idx = ref.max_pool2d(x, k, s, p, d, ceil_mode, "first" if tie_break == "split" else tie_break, nan)[1]
    np.testing.assert_array_equal(idx, expected_forward_idx)
    expected_grad = ref.max_pool2d_backward(grad_output, x, k, s, p, d, ceil_mode, tie_break, nan)
    # Bit for bit: both add each element's shares in row-major output order (docs/semantics.md).
    np.testing.assert_array_equal(grad_input, expected_grad)


def test_pinned_tie_example_1d():
    x = np.array([0, 5, 5, 0], np.float32).reshape(1, 1, 1, 4)
    ones = np.ones((1, 1, 1, 3), np.float32)
    expected = {"first": [0, 2, 1, 0], "last": [0, 1, 2, 0], "split": [0, 1.5, 1.5, 0]}
    for tie_break, grad in expected.items():
        out, idx = cp.max_pool2d(x, (1, 2), 1, return_indices=True, tie_break=tie_break)
        np.testing.assert_array_equal(out.ravel(), [5, 5, 5])
        np.testing.assert_array_equal(idx.ravel(), [1, 2, 2] if tie_break == "last" else [1, 1, 2])
        np.testing.assert_array_equal(cp.max_pool2d_backward(ones, x, idx, (1, 2), 1, tie_break=tie_break).ravel(), grad)


def test_pinned_split_example_zeros_plane():
    x = np.zeros((1, 1, 3, 3))
    grad = cp.max_pool2d_backward(np.ones((1, 1, 2, 2)), x, None, 2, 1, tie_break="split")
    np.testing.assert_array_equal(grad[0, 0], [[0.25, 0.5, 0.25], [0.5, 1, 0.5], [0.25, 0.5, 0.25]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("tie_break", TIE_BREAKS)
@pytest.mark.parametrize("config", CONFIGS, ids=config_id)
def test_random_configs_match_reference(config, tie_break, dtype):
    x = np.random.default_rng(7).standard_normal(config[0]).astype(dtype)
    check_against_reference(x, config, tie_break)


def tie_inputs(shape, rng):
    """Inputs full of ties: a constant plane, post-ReLU zeros, small integers."""
    yield np.full(shape, 3.0)
    yield np.maximum(rng.standard_normal(shape), 0)
    yield rng.integers(0, 3, shape).astype(np.float64)


@pytest.mark.parametrize("nan", ["propagate", "ignore"])
@pytest.mark.parametrize("tie_break", TIE_BREAKS)
@pytest.mark.parametrize("config", random_pool_configs(seed=2, count=12), ids=config_id)
def test_ties_with_overlapping_windows(config, tie_break, nan):
    rng = np.random.default_rng(3)
    for x in tie_inputs(config[0], rng):
        for dtype in (np.float32, np.float64):
            check_against_reference(x.astype(dtype), config, tie_break, nan)


@pytest.mark.parametrize("tie_break", TIE_BREAKS)
def test_overlapping_gradient_sums_over_windows(tie_break):
    # A single peak inside overlapping 3x3 windows with stride 1 is the max of all nine windows.
    x = np.zeros((1, 1, 5, 5))
    x[0, 0, 2, 2] = 1.0
    grad_output = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    _, idx = cp.max_pool2d(x, 3, 1, return_indices=True, tie_break=tie_break)
    grad = cp.max_pool2d_backward(grad_output, x, idx, 3, 1, tie_break=tie_break)
    assert grad[0, 0, 2, 2] == grad_output.sum()
    assert np.count_nonzero(grad) == 1


@pytest.mark.parametrize("tie_break", TIE_BREAKS)
@pytest.mark.parametrize("nan", ["propagate", "ignore"])
def test_nan_and_infinity(tie_break, nan):
    rng = np.random.default_rng(4)
    for config in random_pool_configs(seed=5, count=10):
        x = rng.standard_normal(config[0])
        mask = rng.random(x.shape)
        x[mask < 0.15] = np.nan
        x[(mask >= 0.15) & (mask < 0.25)] = np.inf
        x[(mask >= 0.25) & (mask < 0.35)] = -np.inf
        check_against_reference(x, config, tie_break, nan)


def test_nan_rules_pinned():
    x = np.array([np.nan, 1.0, np.nan, 0.0]).reshape(1, 1, 1, 4)
    out, idx = cp.max_pool2d(x, (1, 4), return_indices=True)
    assert math.isnan(out.item()) and idx.item() == 2  # PyTorch: the last NaN in scan order
    out, idx = cp.max_pool2d(x, (1, 4), return_indices=True, nan="ignore")
    assert out.item() == 1.0 and idx.item() == 1
    all_nan = np.full((1, 1, 1, 2), np.nan)
    out, idx = cp.max_pool2d(all_nan, (1, 2), return_indices=True, nan="ignore")
    assert out.item() == -np.inf and idx.item() == 0


def test_all_minus_infinity_window_selects_first_or_last_tap():
    x = np.full((1, 1, 1, 4), -np.inf)
    np.testing.assert_array_equal(cp.max_pool2d(x, (1, 2), 1, return_indices=True)[1].ravel(), [0, 1, 2])
    np.testing.assert_array_equal(
        cp.max_pool2d(x, (1, 2), 1, return_indices=True, tie_break="last")[1].ravel(), [1, 2, 3])


def test_window_entirely_outside_the_input():
    # Taps at -1 and 2 both miss a 2-wide input: -inf, index -1, and no gradient.
    x = np.random.default_rng(0).standard_normal((1, 1, 2, 2))
    out, idx = cp.max_pool2d(x, 2, 1, 1, 3, return_indices=True)
    assert out.shape == (1, 1, 1, 1) and out.item() == -np.inf and idx.item() == -1
    for tie_break in TIE_BREAKS:
        grad = cp.max_pool2d_backward(np.ones_like(out), x, idx, 2, 1, 1, 3, tie_break=tie_break)
        np.testing.assert_array_equal(grad, np.zeros_like(x))


@pytest.mark.parametrize("config", random_pool_configs(seed=6, count=8), ids=config_id)
@pytest.mark.parametrize("tie_break", TIE_BREAKS)
def test_gradient_by_finite_differences(config, tie_break):
    shape, k, s, p, d, ceil_mode = config
    rng = np.random.default_rng(8)
    # A permutation keeps every value distinct by at least 1: no ties, and the argmax is stable
    # under the perturbation.
    x = rng.permutation(int(np.prod(shape))).reshape(shape).astype(np.float64)
    weights = rng.standard_normal(cp.max_pool2d(x, k, s, p, d, ceil_mode).shape)

    def loss(v):
        out = cp.max_pool2d(v, k, s, p, d, ceil_mode)
        return float(np.sum(np.where(np.isfinite(out), out, 0) * weights))

    _, idx = cp.max_pool2d(x, k, s, p, d, ceil_mode, return_indices=True, tie_break=tie_break)
    analytic = cp.max_pool2d_backward(weights, x, idx, k, s, p, d, ceil_mode, tie_break=tie_break)
    eps = 1e-3
    numeric = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = eps
        numeric[i] = (loss(x + e) - loss(x - e)) / (2 * eps)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-7, atol=1e-7)


def test_chw_input_matches_nchw():
    x = np.random.default_rng(1).standard_normal((3, 9, 8)).astype(np.float32)
    out, idx = cp.max_pool2d(x, 3, 2, 1, return_indices=True)
    out4, idx4 = cp.max_pool2d(x[None], 3, 2, 1, return_indices=True)
    np.testing.assert_array_equal(out, out4[0])
    np.testing.assert_array_equal(idx, idx4[0])
    assert cp.max_pool2d_backward(np.ones_like(out), x, idx, 3, 2, 1).shape == x.shape


def test_non_contiguous_and_list_inputs_are_converted():
    x = np.random.default_rng(1).standard_normal((2, 3, 10, 12))
    view = x[:, :, ::2, ::-2]
    np.testing.assert_array_equal(cp.max_pool2d(view, 2), cp.max_pool2d(np.ascontiguousarray(view), 2))
    np.testing.assert_array_equal(cp.max_pool2d(x.tolist(), 2), cp.max_pool2d(x, 2))
    big_endian = x.astype(">f8")
    np.testing.assert_array_equal(cp.max_pool2d(big_endian, 3), cp.max_pool2d(x, 3))


def test_empty_batch():
    out, idx = cp.max_pool2d(np.zeros((0, 3, 6, 6), np.float32), 2, return_indices=True)
    assert out.shape == (0, 3, 3, 3) and idx.shape == (0, 3, 3, 3)


STRIDE_ONE = [((2, 3, 11, 9), (7, 7), (1, 1), (3, 3), (1, 1), False), ((1, 2, 6, 13), (3, 5), (1, 1), (1, 2), (1, 1), True),
              ((3, 5, 4), (4, 2), (1, 1), (2, 0), (1, 1), False)]


@pytest.mark.parametrize("nan", ["propagate", "ignore"])
@pytest.mark.parametrize("config", STRIDE_ONE, ids=config_id)
def test_stride_one_values_without_indices_match_reference(config, nan):
    # Without indices, dense stride-1 windows take the separable (column-then-row) path.
    shape, k, s, p, d, ceil_mode = config
    rng = np.random.default_rng(9)
    x = rng.standard_normal(shape)
    x[rng.random(shape) < 0.1] = np.nan
    out = cp.max_pool2d(x, k, s, p, d, ceil_mode, nan=nan)
    np.testing.assert_array_equal(out, ref.max_pool2d(x, k, s, p, d, ceil_mode, nan=nan)[0])
    np.testing.assert_array_equal(out, cp.max_pool2d(x, k, s, p, d, ceil_mode, return_indices=True, nan=nan)[0])


@pytest.mark.parametrize("tie_break", TIE_BREAKS)
@pytest.mark.parametrize("nan", ["propagate", "ignore"])
@pytest.mark.parametrize("shape", [(2, 3, 8, 8), (1, 2, 7, 9), (3, 1, 2, 2)])
def test_disjoint_2x2_windows(shape, tie_break, nan):
    # 2x2 windows at stride 2 take a path of their own (odd sizes leave a row or column unread).
    rng = np.random.default_rng(6)
    config = (shape, 2, 2, 0, 1, False)
    ties = rng.integers(0, 2, shape).astype(np.float64)
    special = rng.standard_normal(shape)
    mask = rng.random(shape)
    special[mask < 0.2] = np.nan
    special[(mask >= 0.2) & (mask < 0.4)] = -np.inf
    for x in (ties, special, np.full(shape, -np.inf)):
        for dtype in (np.float32, np.float64):
            check_against_reference(x.astype(dtype), config, tie_break, nan)


@pytest.mark.parametrize("nan", ["propagate", "ignore"])
@pytest.mark.parametrize("config", random_pool_configs(seed=10, count=30, dilation=False), ids=config_id)
def test_values_without_indices_match_reference(config, nan):
    # Without indices, windows without dilation larger than 2x2 are reduced column-first at any
    # stride.
    shape, k, s, p, d, ceil_mode = config
    rng = np.random.default_rng(11)
    x = rng.standard_normal(shape)
    mask = rng.random(shape)
    x[mask < 0.1] = np.nan
    x[(mask >= 0.1) & (mask < 0.2)] = -np.inf
    out = cp.max_pool2d(x, k, s, p, d, ceil_mode, nan=nan)
    np.testing.assert_array_equal(out, ref.max_pool2d(x, k, s, p, d, ceil_mode, nan=nan)[0])


@pytest.mark.parametrize("nan", ["propagate", "ignore"])
@pytest.mark.parametrize("tie_break", TIE_BREAKS)
@pytest.mark.parametrize("config", channels_last_pool_configs(seed=21, count=16), ids=config_id)
def test_channels_last_equals_nchw_bit_for_bit(config, tie_break, nan):
    shape, k, s, p, d, ceil_mode = config
    rng = np.random.default_rng(22)
    inputs = list(tie_inputs(shape, rng))
    with_nan = rng.standard_normal(shape)
    with_nan.flat[::5] = np.nan
    with_nan.flat[2::7] = -np.inf
    for x in inputs + [with_nan]:
        for dtype in (np.float32, np.float64):
            x = x.astype(dtype)
            out, idx = cp.max_pool2d(x, k, s, p, d, ceil_mode, return_indices=True, tie_break=tie_break, nan=nan)
            grad_output = rng.standard_normal(out.shape).astype(dtype)
            grad_input = cp.max_pool2d_backward(grad_output, x, idx, k, s, p, d, ceil_mode, tie_break=tie_break,
                                                nan=nan)
            args = dict(tie_break=tie_break, nan=nan, layout="nhwc")
            out_l, idx_l = cp.max_pool2d(to_nhwc(x), k, s, p, d, ceil_mode, return_indices=True, **args)
            assert out_l.tobytes() == to_nhwc(out).tobytes() and idx_l.tobytes() == to_nhwc(idx).tobytes()
            assert cp.max_pool2d(to_nhwc(x), k, s, p, d, ceil_mode, **args).tobytes() == out_l.tobytes()
            grad_l = cp.max_pool2d_backward(to_nhwc(grad_output), to_nhwc(x), idx_l, k, s, p, d, ceil_mode, **args)
            assert grad_l.tobytes() == to_nhwc(grad_input).tobytes()


def test_channels_last_shapes_and_layout_are_checked():
    x = np.zeros((2, 6, 5, 3), np.float32)  # (N, H, W, C)
    out, idx = cp.max_pool2d(x, 2, return_indices=True, layout="nhwc")
    assert out.shape == idx.shape == (2, 3, 2, 3)
    with pytest.raises(ValueError, match=r"x must be \(H, W, C\) or \(N, H, W, C\)"):
        cp.max_pool2d(x[0, 0], 2, layout="nhwc")
    with pytest.raises(ValueError, match="layout must be 'nchw' or 'nhwc', got 'NHWC'"):
        cp.max_pool2d(x, 2, layout="NHWC")
    with pytest.raises(ValueError, match=r"indices has shape \(2, 3, 2, 3\) but the pooling of x gives \(2, 6, 2, 1\)"):
        cp.max_pool2d_backward(out, x, idx, 2)  # read as NCHW: the pooling gives (2, 6, 2, 1)
    with pytest.raises(ValueError, match=r"indices has 1 value"):
        bad = idx.copy()
        bad[1, 2, 1, 2] = 30
        cp.max_pool2d_backward(out, x, bad, 2, layout="nhwc")


def test_torch_channels_last_runs_in_place_and_stays_channels_last(monkeypatch):
    torch = pytest.importorskip("torch")
    import convpool.torch as cpt
    from convpool import _core

    seen = []
    forward, backward = _core.max_pool2d, _core.max_pool2d_backward

    def recording(function):
        def call(first, *args, **kwargs):
            seen.append((kwargs.get("layout", "nchw"), first.__array_interface__["data"][0]))
            return function(first, *args, **kwargs)
        return call

    monkeypatch.setattr(_core, "max_pool2d", recording(forward))
    monkeypatch.setattr(_core, "max_pool2d_backward", recording(backward))
    x = np.random.default_rng(23).standard_normal((3, 20, 9, 8))
    tx = torch.from_numpy(x).contiguous(memory_format=torch.channels_last).requires_grad_(True)
    for kernel, stride, padding in ((2, 2, 0), (3, 2, 1), (3, 1, 1)):
        seen.clear()
        y, indices = cpt.max_pool2d(tx, kernel, stride, padding, return_indices=True)
        assert seen == [("nhwc", tx.data_ptr())]  # x read in place
        assert y.is_contiguous(memory_format=torch.channels_last) and not y.is_contiguous()
        expected, expected_indices = torch.nn.functional.max_pool2d(tx, kernel, stride, padding, return_indices=True)
        torch.testing.assert_close(y, expected)
        assert torch.equal(indices, expected_indices)  # h * W + w in either layout
        probe = torch.randn_like(expected).contiguous(memory_format=torch.channels_last)
        (grad,) = torch.autograd.grad(y, tx, probe)
        assert seen[1] == ("nhwc", probe.data_ptr())  # the gradient read in place too
        assert grad.is_contiguous(memory_format=torch.channels_last)
        torch.testing.assert_close(grad, torch.autograd.grad(expected, tx, probe)[0])


def test_torch_channels_last_passes_opcheck():
    torch = pytest.importorskip("torch")
    pytest.importorskip("convpool.torch")  # defines the operators

    x = torch.randn(2, 16, 7, 6, dtype=torch.float64).contiguous(memory_format=torch.channels_last)
    for tie_break in TIE_BREAKS:
        torch.library.opcheck(torch.ops.convpool.max_pool2d.default,
                              (x, [3, 3], [2, 2], [1, 1], [1, 1], True, tie_break, "propagate"))
