"""Property-based tests (hypothesis): generated shapes, arguments and values (ties, NaN, ±inf,
huge and tiny magnitudes, size-1 dimensions) checked against the NumPy references. Invalid
arguments must be refused with ValueError, exactly when the reference finds no valid output."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import convpool as cp
import reference as ref

# Derandomized: CI runs the same examples every time (a failure reproduces).
SETTINGS = settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])

SPECIAL = [0.0, -0.0, 1.0, -1.0, 2.0, np.nan, np.inf, -np.inf, 3e38, -3e38, 1e-40, -1e-40]


@st.composite
def arrays(draw, min_side=1, max_side=9, finite=False, largest=3e38):
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3)),
             draw(st.integers(min_side, max_side)), draw(st.integers(min_side, max_side)))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    kind = draw(st.sampled_from(["ties", "ties", "normal", "special"] if not finite else ["ties", "normal"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if kind == "ties":
        values = rng.integers(-1, 2, shape).astype(np.float64)
    elif kind == "normal":
        values = rng.standard_normal(shape) * 10.0 ** draw(st.integers(-20, 20))
    else:
        values = np.clip(rng.choice(SPECIAL, shape), -largest, largest)
    with np.errstate(over="ignore"):
        return values.astype(dtype)


windows = st.fixed_dictionaries({
    "kernel": st.tuples(st.integers(1, 4), st.integers(1, 4)),
    "stride": st.tuples(st.integers(1, 3), st.integers(1, 3)),
    "dilation": st.tuples(st.integers(1, 2), st.integers(1, 2)),
    "ceil_mode": st.booleans(),
})


def valid_output(shape, window, padding, dilation=(1, 1)):
    return all(ref.output_size(n, k, s, p, d, window["ceil_mode"]) >= 1
               for n, k, s, p, d in zip(shape[-2:], window["kernel"], window["stride"], padding, dilation))


@SETTINGS
@given(x=arrays(), window=windows, data=st.data(),
       tie_break=st.sampled_from(["first", "last", "split"]), nan=st.sampled_from(["propagate", "ignore"]))
def test_max_pool(x, window, data, tie_break, nan):
    k, s, d = window["kernel"], window["stride"], window["dilation"]
    p = tuple(data.draw(st.integers(0, kk // 2)) for kk in k)
    args = (k, s, p, d, window["ceil_mode"])
    if not valid_output(x.shape, window, p, d):
        with pytest.raises(ValueError):
            cp.max_pool2d(x, *args)
        return
    out, idx = cp.max_pool2d(x, *args, return_indices=True, tie_break=tie_break, nan=nan)
    expected_out, expected_idx = ref.max_pool2d(x, *args, "first" if tie_break == "split" else tie_break, nan)
    np.testing.assert_array_equal(out, expected_out)
    np.testing.assert_array_equal(idx, expected_idx)
    np.testing.assert_array_equal(cp.max_pool2d(x, *args, nan=nan), expected_out)  # the path without indices
    grad_output = np.ones_like(out)
    grad = cp.max_pool2d_backward(grad_output, x, idx, *args, tie_break=tie_break, nan=nan)
    np.testing.assert_allclose(grad, ref.max_pool2d_backward(grad_output, x, *args, tie_break, nan), rtol=1e-6)


# Sums of float32 values near the largest float overflow or not depending on the order of
# the additions (row-major windows, or column sums first for dense stride-1 windows), so the
# values stay below 1e30; NaN, infinities and subnormals remain.
@SETTINGS
@given(x=arrays(largest=1e30), window=windows, data=st.data(), count_include_pad=st.booleans(),
       divisor_override=st.sampled_from([None, 1, 3, -2]))
def test_avg_pool(x, window, data, count_include_pad, divisor_override):
    k, s = window["kernel"], window["stride"]
    p = tuple(data.draw(st.integers(0, kk // 2)) for kk in k)
    args = (k, s, p, window["ceil_mode"], count_include_pad, divisor_override)
    if not valid_output(x.shape, window, p):
        with pytest.raises(ValueError):
            cp.avg_pool2d(x, *args)
        return
    out = cp.avg_pool2d(x, *args)
    with np.errstate(all="ignore"):
        expected = ref.avg_pool2d(x.astype(np.float64), *args)
    # Rounding of a sum of k values, each at most the largest finite |x|, in any order.
    finite = np.abs(x[np.isfinite(x)])
    bound = np.finfo(x.dtype).eps * k[0] * k[1] * finite.max(initial=0)
    np.testing.assert_allclose(out, expected, rtol=np.finfo(x.dtype).eps * 4, atol=bound)


@SETTINGS
@given(x=arrays(min_side=3, finite=True), out_channels=st.integers(1, 4), kernel=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       stride=st.integers(1, 2), padding=st.integers(0, 2), dilation=st.integers(1, 2), data=st.data())
def test_conv2d(x, out_channels, kernel, stride, padding, dilation, data):
    groups = data.draw(st.sampled_from([g for g in (1, 2, 3) if x.shape[1] % g == 0 and out_channels % g == 0]))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    weight = rng.standard_normal((out_channels, x.shape[1] // groups) + kernel).astype(x.dtype)
    args = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    fits = all(n + 2 * padding >= dilation * (k - 1) + 1 for n, k in zip(x.shape[-2:], kernel))
    if not fits:
        with pytest.raises(ValueError):
            cp.conv2d(x, weight, **args)
        return
    out = cp.conv2d(x, weight, **args)
    expected = ref.conv2d(x, weight, **args)
    scale = np.abs(x).max(initial=0) * np.abs(weight).max(initial=0) * weight[0].size
    tolerance = (1e-5 if x.dtype == np.float32 else 1e-12) * max(scale, np.finfo(x.dtype).tiny)
    np.testing.assert_allclose(out, expected, rtol=0, atol=tolerance)
    grad_output = rng.standard_normal(out.shape).astype(x.dtype)
    grads = cp.conv2d_backward(grad_output, x, weight, **args)
    expected_grads = ref.conv2d_backward(grad_output, x, weight, **args)
    for actual, wanted in zip(grads, expected_grads):
        bound = (1e-4 if x.dtype == np.float32 else 1e-11) * max(1.0, np.abs(wanted).max(initial=0))
        np.testing.assert_allclose(actual, wanted, rtol=0, atol=bound)


@SETTINGS
@given(x=arrays())
def test_relu(x):
    y = cp.relu(x)
    np.testing.assert_array_equal(y, np.where(x < 0, 0, x))
    np.testing.assert_array_equal(np.signbit(y), np.signbit(np.where(x < 0, 0, x)))
