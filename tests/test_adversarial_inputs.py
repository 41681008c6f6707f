"""Inputs at the limits: copies that cannot be allocated, huge strides, paddings, dilations and
kernels, numbers at the ends of the range.

Each case that could crash, hang or exhaust the process runs in a subprocess (child_process.py),
so that a crash fails its test instead of killing pytest; each asserts the exception type and
bounded peak memory and time."""

import numpy as np

import convpool as cp
from child_process import PEAK_MB, assert_outcomes, run_cases

# --- every input conversion of every function: a copy that cannot be allocated ---------------

X = "np.ones((2, 3, 8, 8), np.float32)"
W = "np.ones((4, 3, 3, 3), np.float32)"
HUGE = "huge_view((2**20, 3, 2**10, 2**10))"        # 4 TB as a contiguous float32 copy
HUGE_INDEX = "huge_view((2**20, 3, 2**10, 2**10), np.int64)"
CONVERSIONS = {
    "relu x": "cp.relu(huge_view((2**40,)))",
    "relu_backward y": "cp.relu_backward(np.ones(4, np.float32), huge_view((2**40,)))",
    "relu_backward grad": "cp.relu_backward(huge_view((2**40,)), huge_view((2**40,)))",
    "max_pool2d x": f"cp.max_pool2d({HUGE}, 2)",
    "max_pool2d_backward x": f"cp.max_pool2d_backward(np.ones((2, 3, 4, 4), np.float32), {HUGE}, None, 2, tie_break='split')",
    "max_pool2d_backward grad": f"cp.max_pool2d_backward({HUGE}, {X}, np.zeros((2, 3, 4, 4), np.int64), 2)",
    "max_pool2d_backward indices": f"cp.max_pool2d_backward(np.ones((2, 3, 4, 4), np.float32), {X}, {HUGE_INDEX}, 2)",
    "avg_pool2d x": f"cp.avg_pool2d({HUGE}, 2)",
    "avg_pool2d_backward grad": f"cp.avg_pool2d_backward({HUGE}, (2, 3, 8, 8), 2)",
    "lp_pool2d x": f"cp.lp_pool2d({HUGE}, 2, 2)",
    "lp_pool2d_backward x": f"cp.lp_pool2d_backward(np.ones((2, 3, 4, 4), np.float32), {HUGE}, 2, 2)",
    "lp_pool2d_backward grad": f"cp.lp_pool2d_backward({HUGE}, {X}, 2, 2)",
    "stochastic_pool2d x": f"cp.stochastic_pool2d({HUGE}, 2)",
    "stochastic_pool2d_backward grad": f"cp.stochastic_pool2d_backward({HUGE}, {X}, np.zeros((2, 3, 4, 4), np.int64), 2)",
    "stochastic_pool2d_backward indices": f"cp.stochastic_pool2d_backward(np.ones((2, 3, 4, 4), np.float32), {X}, {HUGE_INDEX}, 2)",
    "conv2d x": f"cp.conv2d({HUGE}, {W})",
    "conv2d weight": f"cp.conv2d({X}, huge_view((2**20, 3, 2**10, 2**10)))",
    "conv2d bias": f"cp.conv2d({X}, {W}, huge_view((2**40,)))",
    "conv2d_backward grad": f"cp.conv2d_backward({HUGE}, {X}, {W})",
    "conv2d_backward x": f"cp.conv2d_backward(np.ones((2, 4, 6, 6), np.float32), {HUGE}, {W})",
    "conv2d_backward weight": f"cp.conv2d_backward(np.ones((2, 4, 6, 6), np.float32), {X}, huge_view((2**20, 3, 2**10, 2**10)))",
    "batch_norm2d x": f"cp.batch_norm2d({HUGE})",
    "batch_norm2d weight": f"cp.batch_norm2d({X}, huge_view((2**40,)))",
    "batch_norm2d_backward grad": f"cp.batch_norm2d_backward({HUGE}, {X}, None, np.ones(3, np.float32), np.ones(3, np.float32))",
    "batch_norm2d_backward x": f"cp.batch_norm2d_backward({X}, {HUGE}, None, np.ones(3, np.float32), np.ones(3, np.float32))",
    "adaptive_avg_pool2d x": f"cp.adaptive_avg_pool2d({HUGE}, 2)",
    "adaptive_avg_pool2d_backward grad": f"cp.adaptive_avg_pool2d_backward({HUGE}, (2, 3, 8, 8))",
}


def test_copies_that_cannot_be_allocated_raise_memory_error():
    results, peak = run_cases(CONVERSIONS)
    assert_outcomes(results, {name: ("MemoryError",) for name in CONVERSIONS})
    assert peak < PEAK_MB


def test_copies_under_an_address_space_limit_raise_memory_error():
    # An ordinary 100 MB strided view whose contiguous copy does not fit in what is left.
    prelude = """
big = np.ones((4, 16, 640, 640), np.float32)[:, :, :, ::2]   # 105 MB underneath, a 52 MB copy
weight = np.ones((4, 16, 3, 3), np.float32)
limit_memory(40)
"""
    cases = {"relu": "cp.relu(big)", "max_pool2d": "cp.max_pool2d(big, 2)", "avg_pool2d": "cp.avg_pool2d(big, 2)",
             "conv2d": "cp.conv2d(big, weight)", "lp_pool2d": "cp.lp_pool2d(big, 2, 2)"}
    results, _ = run_cases(cases, prelude)
    assert_outcomes(results, {name: ("MemoryError",) for name in cases})


# --- huge strides, paddings, dilations and kernels -----------------------------------------

def huge_geometry_cases():
    x, w = "np.ones((1, 3, 8, 8), np.float32)", "np.ones((4, 3, 3, 3), np.float32)"
    x2, dw = "np.ones((2, 3, 8, 8), np.float32)", "np.ones((3, 1, 3, 3), np.float32)"
    one = "np.ones((1, 1, 1, 1), np.float32)"
    cases = {}
    for value in ("2**31 - 1", "2**31", "2**62", "10000", "2000"):
        cases[f"conv2d stride={value}"] = f"cp.conv2d({x}, {w}, stride={value})"
        cases[f"conv2d N=2 stride={value}"] = f"cp.conv2d({x2}, {w}, stride={value})"
        cases[f"conv2d_backward stride={value}"] = (
            f"cp.conv2d_backward(np.ones((1, 4, 1, 1), np.float32), {x}, {w}, stride={value})")
        cases[f"depthwise conv2d stride={value}"] = f"cp.conv2d({x}, {dw}, stride={value}, groups=3)"
        cases[f"depthwise conv2d_backward stride={value}"] = (
            f"cp.conv2d_backward(np.ones((1, 3, 1, 1), np.float32), {x}, {dw}, stride={value}, groups=3)")
        cases[f"conv2d stride=(1, {value})"] = f"cp.conv2d({x}, {w}, stride=(1, {value}))"
        cases[f"conv2d dilation={value}"] = f"cp.conv2d({x}, {w}, dilation={value})"
        cases[f"conv2d padding={value} stride={value}"] = f"cp.conv2d({x}, {w}, padding={value}, stride={value})"
        cases[f"conv2d_backward padding={value} stride={value}"] = (
            f"cp.conv2d_backward(cp.conv2d({x}, {w}, padding=(0, 2000), stride=(1, 10000)), {x}, {w}, "
            f"padding=(0, 2000), stride=(1, 10000))")
        for op in ("max_pool2d", "avg_pool2d"):
            cases[f"{op} kernel={value}"] = f"cp.{op}({x}, {value})"
            cases[f"{op} stride={value}"] = f"cp.{op}({x}, 2, stride={value})"
            cases[f"{op} wide kernel={value} padded"] = f"cp.{op}({one}, (1, {value}), padding=(0, ({value}) // 2))"
        cases[f"max_pool2d dilation={value}"] = f"cp.max_pool2d({x}, 2, dilation={value})"
        cases[f"lp_pool2d stride={value}"] = f"cp.lp_pool2d({x}, 2, 2, stride={value})"
        cases[f"stochastic_pool2d stride={value}"] = f"cp.stochastic_pool2d({x}, 2, stride={value})"
        cases[f"fractional_max_pool2d kernel={value}"] = f"cp.fractional_max_pool2d({x}, {value}, 2, seed=0)"
        cases[f"fractional_max_pool2d output_size={value}"] = f"cp.fractional_max_pool2d({x}, 2, {value}, seed=0)"
    for size in ("2**31", "2**62"):
        cases[f"adaptive_avg_pool2d output_size={size}"] = f"cp.adaptive_avg_pool2d({one}, {size})"
    for op, backward in (("max_pool2d", "cp.max_pool2d_backward(y, {one}, None, (1, 2**28), padding=(0, 2**27), tie_break='split')"),
                         ("avg_pool2d", "cp.avg_pool2d_backward(y, (1, 1, 1, 1), (1, 2**28), padding=(0, 2**27))")):
        cases[f"{op}_backward wide kernel padded"] = (
            f"(lambda y: {backward.format(one=one)})(cp.{op}({one}, (1, 2**28), padding=(0, 2**27)))")
    return cases


def test_outputs_that_grow_with_the_geometry_are_refused():
    # A transposed convolution's or an unpooling's output grows with the stride, dilation and
    # kernel: too large to index is a ValueError, too large to allocate (here under a 200 MB
    # address-space limit) a MemoryError.
    x, w, i = "np.ones((1, 3, 8, 8), np.float32)", "np.ones((3, 4, 3, 3), np.float32)", "np.zeros((1, 3, 8, 8), np.int64)"
    cases = {}
    for value in ("2**31", "2**31 - 1", "10000", "2000"):
        cases[f"conv_transpose2d stride={value}"] = f"cp.conv_transpose2d({x}, {w}, stride={value})"
        cases[f"conv_transpose2d dilation={value}"] = f"cp.conv_transpose2d({x}, {w}, dilation={value})"
        cases[f"conv_transpose2d padding={value}"] = f"cp.conv_transpose2d({x}, {w}, padding={value})"
        cases[f"conv_transpose2d stride={value} output_padding"] = (
            f"cp.conv_transpose2d({x}, {w}, stride={value}, output_padding=1)")
        cases[f"conv_transpose2d_backward stride={value}"] = (
            f"cp.conv_transpose2d_backward(np.ones((1, 4, 10, 10), np.float32), {x}, {w}, stride={value})")
        cases[f"max_unpool2d stride={value}"] = f"cp.max_unpool2d({x}, {i}, 2, stride={value})"
        cases[f"max_unpool2d kernel={value}"] = f"cp.max_unpool2d({x}, {i}, {value})"
        cases[f"max_unpool2d output_size={value}"] = (
            f"cp.max_unpool2d({x}, {i}, {value}, output_size=({value}, {value}))")
        cases[f"max_unpool2d_backward stride={value}"] = (
            f"cp.max_unpool2d_backward(np.ones((1, 3, 9, 9), np.float32), {i}, 2, stride={value})")
    results, _ = run_cases(cases, "limit_memory(200)")
    assert_outcomes(results, {name: ("ValueError", "MemoryError") for name in cases}, seconds=2.0)


def test_huge_geometry_values_give_errors_or_bounded_work():
    cases = huge_geometry_cases()
    results, peak = run_cases(cases, timeout=300)
    assert_outcomes(results, {name: ("ok", "ValueError", "MemoryError") for name in cases}, seconds=2.0)
    # Valid absurd layers still compute, in time and memory bounded by their inputs and outputs.
    assert results["conv2d stride=10000"][0] == "ok" and results["depthwise conv2d_backward stride=10000"][0] == "ok"
    assert results["max_pool2d wide kernel=2**31 - 1 padded"][0] == "ok"
    assert peak < PEAK_MB


def test_huge_strides_compute_the_right_values():
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)
    w = np.random.default_rng(1).standard_normal((6, 3, 3, 3)).astype(np.float32)
    for groups, weight in ((1, w), (3, w[:, :1])):
        expected = cp.conv2d(x, weight, groups=groups)[:, :, :1, :1]  # the one window at the origin
        np.testing.assert_allclose(cp.conv2d(x, weight, stride=10000, groups=groups), expected, rtol=1e-6)
        g = np.ones((2, 6, 1, 1), np.float32)
        grad_x, grad_w, grad_b = cp.conv2d_backward(g, x, weight, stride=10000, groups=groups)
        grad_x_ref, grad_w_ref, _ = cp.conv2d_backward(g, x[:, :, :3, :3], weight, groups=groups)
        np.testing.assert_allclose(grad_x[:, :, :3, :3], grad_x_ref, rtol=1e-6)
        assert not grad_x[:, :, 3:].any() and not grad_x[:, :, :, 3:].any()
        np.testing.assert_allclose(grad_w, grad_w_ref, rtol=1e-6)
        np.testing.assert_array_equal(grad_b, np.full(6, 2, np.float32))
    y = cp.max_pool2d(np.full((1, 1, 1, 1), 3.0), (1, 2**28), padding=(0, 2**27))
    assert y.shape == (1, 1, 1, 1) and y.item() == 3.0


def test_empty_batches_with_huge_planes_do_no_work():
    plane = "2**20, 2**20"
    cases = {
        "conv2d": f"cp.conv2d(huge_view((0, 3, {plane})), np.ones((4, 3, 3, 3), np.float32))",
        "conv2d_backward": (f"cp.conv2d_backward(huge_view((0, 4, 2**20 - 2, 2**20 - 2)), huge_view((0, 3, {plane})), "
                            "np.ones((4, 3, 3, 3), np.float32))"),
        "depthwise conv2d": f"cp.conv2d(huge_view((0, 3, {plane})), np.ones((3, 1, 3, 3), np.float32), groups=3)",
        "depthwise conv2d_backward": (
            f"cp.conv2d_backward(huge_view((0, 3, 2**20 - 2, 2**20 - 2)), huge_view((0, 3, {plane})), "
            "np.ones((3, 1, 3, 3), np.float32), groups=3)"),
        "max_pool2d": f"cp.max_pool2d(huge_view((0, 3, {plane})), 3, stride=2, padding=1, return_indices=True)",
        "avg_pool2d_backward": f"cp.avg_pool2d_backward(huge_view((0, 3, 2**19, 2**19)), (0, 3, {plane}), 2)",
    }
    results, peak = run_cases(cases)
    assert_outcomes(results, {name: ("ok",) for name in cases}, seconds=1.0)
    assert peak < PEAK_MB
    _, grad_w, grad_b = cp.conv2d_backward(np.ones((0, 3, 6, 6), np.float32), np.ones((0, 3, 8, 8), np.float32),
                                           np.ones((3, 1, 3, 3), np.float32), groups=3)
    assert not grad_w.any() and not grad_b.any()


def test_scratch_that_cannot_be_allocated_inside_threads_raises_memory_error():
    # The depthwise weight gradient gives each thread a padded copy of a 12,000 x 12,000 plane
    # (576 MB), allocated inside the parallel region, where it fails; the failure must come out
    # as MemoryError, not terminate the process. The threads are started before the limit.
    prelude = """
cp.set_num_threads(2)
x = np.ones((1, 2, 12000, 12000), np.float32)
w = np.ones((2, 1, 3, 3), np.float32)
y = np.ones((1, 2, 11998, 11998), np.float32)
cp.conv2d_backward(y[:, :, :62, :62], x[:, :, :64, :64], w, groups=2)
limit_memory(650)
"""
    cases = {"depthwise weight gradient": "cp.conv2d_backward(y, x, w, groups=2, needs=('weight',))",
             "after the failure": "cp.conv2d_backward(y[:, :, :62, :62], x[:, :, :64, :64], w, groups=2)"}
    results, _ = run_cases(cases, prelude)
    assert_outcomes(results, {"depthwise weight gradient": ("MemoryError",), "after the failure": ("ok",)},
                    seconds=30)


# --- numbers at the ends of the range ------------------------------------------------------

def test_stochastic_pooling_of_huge_float64_values():
    x = np.full((1, 1, 2, 2), 1e200)
    assert cp.stochastic_pool2d(x, 2, training=False).item() == 1e200
    grad = cp.stochastic_pool2d_backward(np.ones((1, 1, 1, 1)), x, None, 2, training=False)
    np.testing.assert_allclose(grad, np.full_like(x, 0.25))  # (2a - y) / sum(a) = 1/4 each
    largest = np.finfo(np.float64).max
    assert cp.stochastic_pool2d(np.full((1, 1, 2, 2), largest), 2, training=False).item() == largest
    mixed = np.array([1e308, 1e307, 0.0, 1e-300]).reshape(1, 1, 2, 2)
    expected = (1e308 * (1e308 / 1.1e308)) + (1e307 * (1e307 / 1.1e308))
    np.testing.assert_allclose(cp.stochastic_pool2d(mixed, 2, training=False).item(), expected, rtol=1e-12)
    picks = np.array([cp.stochastic_pool2d(np.full((1, 1, 2, 2), 1e308), 2, seed=seed, return_indices=True)[1].item()
                      for seed in range(400)])
    counts = np.bincount(picks, minlength=4)
    assert counts.min() > 60, counts  # each tap about a quarter of the time


def test_lp_pooling_with_a_huge_norm_is_the_max_norm():
    x = np.array([0.5, 3, 2, 0.25], np.float32).reshape(1, 1, 2, 2)
    for dtype in (np.float32, np.float64):
        assert cp.lp_pool2d(x.astype(dtype), 1e300, 2).item() == 3.0
        np.testing.assert_allclose(cp.lp_pool2d(x.astype(dtype), 1e6, 2).item(), 3.0, rtol=1e-5)
        grad = cp.lp_pool2d_backward(np.ones((1, 1, 1, 1), dtype), x.astype(dtype), 1e300, 2)
        np.testing.assert_array_equal(grad.ravel(), [0, 1, 0, 0])
    tied = np.array([-3, 3, 2, 0.25]).reshape(1, 1, 2, 2)
    np.testing.assert_allclose(cp.lp_pool2d_backward(np.ones((1, 1, 1, 1)), tied, 1e300, 2).ravel(),
                               [-0.5, 0.5, 0, 0], atol=1e-12)
    # Powers that overflow float32 (1e30^3) and float64 (1e300^3) still give finite norms.
    big = np.array([1e30, 2e30, 0, 1e29], np.float32).reshape(1, 1, 2, 2)
    np.testing.assert_allclose(cp.lp_pool2d(big, 3, 2).item(), (1 + 8 + 1e-3) ** (1 / 3) * 1e30, rtol=1e-6)
    huge = np.array([1e300, 2e300, 0, 1e299]).reshape(1, 1, 2, 2)
    np.testing.assert_allclose(cp.lp_pool2d(huge, 3, 2).item(), (1 + 8 + 1e-3) ** (1 / 3) * 1e300, rtol=1e-12)
    assert np.isfinite(cp.lp_pool2d_backward(np.ones((1, 1, 1, 1)), huge, 3, 2)).all()
