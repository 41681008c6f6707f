"""Inputs chosen to crash, hang or exhaust the process: each runs in a subprocess, so a crash fails
its test instead of killing pytest, and each asserts the exception type and bounded peak memory
and time."""

import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
import zipfile

import numpy as np
import pytest

import convpool as cp
from convpool import nn, optim
from convpool.models import lenet5
from convpool.training import evaluate, fit, load_checkpoint, predict, save_checkpoint
from child_process import PEAK_MB, assert_outcomes, run_child, run_cases

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


# --- threads and fork ------------------------------------------------------------------------

def test_thread_count_bounds_and_types():
    with pytest.raises(ValueError, match=r"n=1000 must be between 1 and \d+") as refused:
        cp.set_num_threads(1000)
    most = int(str(refused.value).split("between 1 and ")[1].split()[0])
    assert most == 4 * len(os.sched_getaffinity(0))
    for bad in (np.float32(2.7), 2.0, True, "2", None, np.array(2.5)):
        with pytest.raises(TypeError, match="n must be an int"):
            cp.set_num_threads(bad)
    previous = cp.get_num_threads()
    try:
        cp.set_num_threads(np.int64(2))
        assert cp.get_num_threads() == 2
        cp.set_num_threads(most)  # the bound itself is accepted
        assert cp.get_num_threads() == most
        with pytest.raises(ValueError):
            cp.set_num_threads(most + 1)
    finally:
        cp.set_num_threads(previous)


FORK_WORK = """
x = np.random.default_rng(0).standard_normal((8, 16, 32, 32)).astype(np.float32)
w = np.random.default_rng(1).standard_normal((16, 16, 3, 3)).astype(np.float32)
def work(seed=0):
    y = cp.conv2d(x, w, padding=1)
    return float(cp.max_pool2d(y, 3, stride=2, padding=1).sum())
cp.set_num_threads(2)
expected = work()   # the parent's OpenMP threads now exist
"""


def test_fork_after_kernels_does_not_hang():
    code, out, err = run_child(FORK_WORK + """
import os
pid = os.fork()
if pid == 0:
    os._exit(0 if work() == expected and cp.get_num_threads() == 1 else 3)
_, status = os.waitpid(pid, 0)
print("child", os.waitstatus_to_exitcode(status))
print("parent again", work() == expected)
""", timeout=60)
    assert code == 0, err
    assert "child 0" in out and "parent again True" in out


def test_multiprocessing_fork_pool_runs_kernels():
    code, out, err = run_child(FORK_WORK + """
import multiprocessing
with multiprocessing.get_context("fork").Pool(2) as pool:
    results = pool.map(work, range(4))
print("same", results == [expected] * 4)
""", timeout=60)
    assert code == 0, err
    assert "same True" in out


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


# --- checkpoints -----------------------------------------------------------------------------

def npy_bytes(array=None, header=None):
    """A .npy member: `array` as NumPy writes it, or only a crafted `header` dict."""
    import io
    buffer = io.BytesIO()
    if header is None:
        np.lib.format.write_array(buffer, np.asarray(array), allow_pickle=True)
    else:
        np.lib.format.write_array_header_1_0(buffer, header)
    return buffer.getvalue()


def write_zip(path, members, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def saved_members(model, optimizer=None, metadata=None):
    arrays = {f"model/{name}": value for name, value in model.state_dict().items()}
    if optimizer is not None:
        arrays.update({f"optimizer/{name}": value for name, value in optimizer.state_dict().items()})
    arrays["metadata"] = np.array(json.dumps(metadata or {}))
    return {f"{name}.npy": npy_bytes(value) for name, value in arrays.items()}


def trained_pair():
    cp.manual_seed(0)
    model = lenet5()
    optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x = np.random.default_rng(0).random((8, 1, 28, 28), np.float32)
    fit(model, nn.CrossEntropyLoss(), optimizer, (x, np.arange(8) % 10), batch_size=8, progress=False)
    return model, optimizer


def assert_unchanged(model, before):
    for (name, expected), actual in zip(before.items(), model.state_dict().values()):
        np.testing.assert_array_equal(actual, expected, err_msg=name)


def test_checkpoint_members_are_checked_before_their_data_is_read(tmp_path):
    model = lenet5()
    members = saved_members(model)
    huge = dict(members)
    huge["model/0.weight.npy"] = npy_bytes(header={"descr": "<f4", "fortran_order": False, "shape": (2**40,)})
    write_zip(tmp_path / "huge.npz", huge)
    with pytest.raises(ValueError, match=r"'model/0.weight.npy' has shape \(1099511627776,\) in the checkpoint"):
        load_checkpoint(tmp_path / "huge.npz", model)
    bomb = dict(members)
    bomb["padding.npy"] = npy_bytes(np.zeros(200_000_000, np.uint8))  # 200 MB of zeros, ~200 KB deflated
    write_zip(tmp_path / "bomb.npz", bomb, zipfile.ZIP_DEFLATED)
    assert os.path.getsize(tmp_path / "bomb.npz") < 2_000_000
    started = time.perf_counter()
    with pytest.raises(ValueError, match=r"unexpected members \['padding'\]"):
        load_checkpoint(tmp_path / "bomb.npz", model)
    assert time.perf_counter() - started < 0.5
    lying = dict(members)
    lying["model/0.bias.npy"] = members["model/0.bias.npy"][:-4]  # fewer bytes than the header says
    write_zip(tmp_path / "short.npz", lying)
    with pytest.raises(ValueError, match="less data than its header declares"):
        load_checkpoint(tmp_path / "short.npz", model)


@pytest.mark.parametrize("entry, value, error, message", [
    ("model/11.bias", np.array(["1"] * 10), ValueError, r"'model/11.bias.npy' has dtype <U1"),
    ("model/11.bias", np.zeros(10, np.complex64), ValueError, r"has dtype complex64"),
    ("model/11.bias", np.zeros(10, np.int64), ValueError, r"has dtype int64"),
    ("model/11.bias", np.array([object()] * 10), ValueError, r"has dtype object"),
    ("model/11.bias", np.zeros(10, [("a", "<f4")]), ValueError, r"has dtype"),
    ("metadata", np.array("{not json"), ValueError, r"metadata is not JSON"),
    ("metadata", np.array("[1, 2]"), ValueError, r"metadata is a JSON list"),
    ("optimizer/momentum_buffer.9", np.zeros(3, np.float32), ValueError, r"'optimizer/momentum_buffer.9.npy' has shape \(3,\)"),
    ("optimizer/lr", np.array(np.nan), ValueError, r"lr=nan must be finite"),
    ("optimizer/lr", np.array(-1.0), ValueError, r"lr=-1.0 must be finite and non-negative"),
    ("optimizer/started", np.zeros(10, np.float32), ValueError, r"'optimizer/started.npy' has dtype float32"),
    # Values the copy into the model's float32 would make infinite.
    ("model/11.bias", np.full(10, 1e300), ValueError, r"'11.bias' holds 1e\+300, beyond float32's largest"),
    ("optimizer/momentum_buffer.9", np.full(10, -1e39), ValueError, r"'momentum_buffer.9' holds -1e\+39, beyond"),
])
def test_a_refused_checkpoint_changes_nothing(tmp_path, entry, value, error, message):
    model, optimizer = trained_pair()
    members = saved_members(model, optimizer, {"epoch": 1})
    members[f"{entry}.npy"] = npy_bytes(value)
    write_zip(tmp_path / "bad.npz", members)
    cp.manual_seed(5)
    target, target_optimizer = lenet5(), None
    target_optimizer = optim.SGD(target.parameters(), lr=0.5, momentum=0.9)
    before = target.state_dict()
    with pytest.raises(error, match=message):
        load_checkpoint(tmp_path / "bad.npz", target, target_optimizer)
    assert_unchanged(target, before)
    assert target_optimizer.lr == 0.5 and target_optimizer.state == {}


def test_load_state_dict_is_all_or_nothing_and_refuses_wrong_kinds():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))
    before = model.state_dict()
    with pytest.raises(TypeError, match="state_dict must be a mapping"):
        model.load_state_dict(["1", "2", "x"])
    for name, value, error, message in [
        ("1.bias", np.array(["a", "b"]), TypeError, r"'1.bias' has dtype <U1, expected real floating-point"),
        ("1.bias", np.zeros(2, np.complex128), TypeError, r"complex128"),
        ("1.bias", np.array([None, None]), TypeError, r"dtype object"),
        ("1.running_var", np.array([1.0, -1.0], np.float32), ValueError, r"'1.running_var' must be non-negative"),
        ("1.running_var", np.array([1.0, np.nan], np.float32), ValueError, r"must be non-negative"),
        ("1.num_batches_tracked", np.array(1.5), TypeError, r"expected integer"),
        # Integers the copy into int64 would wrap to -1 and -3.
        ("1.num_batches_tracked", np.array(2**64 - 1, np.uint64), ValueError,
         r"'1.num_batches_tracked' holds 18446744073709551615, outside int64's range"),
        ("1.num_batches_tracked", np.array(2**64 - 3, np.uint64), ValueError, r"outside int64's range"),
        ("1.bias", np.array([1.0, 3.5e38]), ValueError, r"'1.bias' holds 3.5e\+38, beyond float32's largest"),
        ("1.bias", "xy", TypeError, r"'1.bias' must be an array, got str"),
    ]:
        state = model.state_dict()
        state["0.weight"] = np.full((2, 1, 3, 3), 7.0, np.float32)  # would be written first
        state[name] = value
        with pytest.raises(error, match=message):
            model.load_state_dict(state)
        assert_unchanged(model, before)


def test_a_checkpoint_holding_a_member_twice_is_refused(tmp_path):
    # zipfile reads the last of two members of one name: which one was meant cannot be known.
    model, optimizer = trained_pair()
    save_checkpoint(tmp_path / "twice.npz", model, optimizer)
    with zipfile.ZipFile(tmp_path / "twice.npz", "a") as archive, pytest.warns(UserWarning, match="Duplicate name"):
        archive.writestr("model/11.bias.npy", npy_bytes(np.full(10, 7.0, np.float32)))
    target = lenet5()
    before = target.state_dict()
    with pytest.raises(ValueError, match=r"members \['model/11.bias'\] appear more than once"):
        load_checkpoint(tmp_path / "twice.npz", target)
    assert_unchanged(target, before)


def test_malformed_checkpoint_files_raise_value_error(tmp_path):
    model = lenet5()
    save_checkpoint(tmp_path / "good.npz", model)
    data = (tmp_path / "good.npz").read_bytes()
    (tmp_path / "truncated.npz").write_bytes(data[: len(data) // 2])
    (tmp_path / "empty.npz").write_bytes(b"")
    np.save(tmp_path / "array.npy", np.zeros(3))
    os.mkdir(tmp_path / "folder")
    for name in ("truncated.npz", "empty.npz", "array.npy", "folder", "missing.npz"):
        with pytest.raises(ValueError, match=rf"cannot read '.*{name}' as a checkpoint"):
            load_checkpoint(tmp_path / name, model)
    with pytest.raises(ValueError, match="not a regular file"):
        load_checkpoint("/dev/null", model)


def test_loading_from_a_fifo_does_not_hang(tmp_path):
    fifo = tmp_path / "pipe.npz"
    os.mkfifo(fifo)
    code, out, err = run_child(f"""
from convpool.models import lenet5
from convpool.training import load_checkpoint
try:
    load_checkpoint({str(fifo)!r}, lenet5())
except ValueError as error:
    print("refused:", error)
""", timeout=30)
    assert code == 0 and "not a regular file" in out, err


def test_saving_refuses_devices_and_folders_and_writes_through_symlinks(tmp_path):
    model = lenet5()
    # A device of our own, like /dev/null (1, 3): were it replaced, only this copy would be lost.
    targets = [tmp_path / "pipe", tmp_path / "folder"]
    os.mkfifo(targets[0])
    os.mkdir(targets[1])
    try:
        os.mknod(tmp_path / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        targets.append(tmp_path / "null")
    except PermissionError:  # no device nodes in this sandbox
        pass
    for target in targets:
        with pytest.raises(ValueError, match="exists and is not a regular file"):
            save_checkpoint(target, model)
    assert all(not os.path.isfile(target) for target in targets)
    for target in targets:
        os.rmdir(target) if os.path.isdir(target) else os.unlink(target)
    real = tmp_path / "real.npz"
    save_checkpoint(real, model, metadata={"version": 1})
    link = tmp_path / "link.npz"
    link.symlink_to(real)
    save_checkpoint(link, model, metadata={"version": 2})
    assert link.is_symlink() and load_checkpoint(real, lenet5()) == {"version": 2}
    assert sorted(os.listdir(tmp_path)) == ["link.npz", "real.npz"]


def test_a_killed_save_leaves_the_old_checkpoint_and_the_next_save_cleans_up(tmp_path):
    path = tmp_path / "model.npz"
    save_checkpoint(path, lenet5(), metadata={"version": 1})
    original = path.read_bytes()
    saver = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        import numpy as np
        from convpool.models import lenet5
        from convpool.training import save_checkpoint
        def stall(file, **arrays):
            file.write(b"PK partial")
            file.flush()
            print("writing", flush=True)
            time.sleep(60)
        np.savez = stall
        save_checkpoint({str(path)!r}, lenet5(), metadata={{"version": 2}})
        """)], stdout=subprocess.PIPE, text=True)
    try:
        assert saver.stdout.readline().strip() == "writing"
        os.kill(saver.pid, signal.SIGKILL)
    finally:
        saver.wait(timeout=30)
    leftovers = [name for name in os.listdir(tmp_path) if name.endswith(".tmp")]
    assert len(leftovers) == 1 and path.read_bytes() == original
    save_checkpoint(path, lenet5(), metadata={"version": 3})
    assert os.listdir(tmp_path) == ["model.npz"]
    assert load_checkpoint(path, lenet5()) == {"version": 3}


# --- training on nonsense --------------------------------------------------------------------

def test_training_arguments_that_make_no_sense_are_refused():
    model = lenet5()
    for lr in (float("nan"), float("inf"), -1.0):
        with pytest.raises(ValueError, match=r"lr=.* must be finite and non-negative"):
            optim.SGD(model.parameters(), lr=lr)
        with pytest.raises(ValueError, match=r"lr=.* must be finite"):
            optim.Adam(model.parameters(), lr=lr)
    optimizer = optim.SGD(model.parameters(), lr=0.1)
    empty = (np.zeros((0, 1, 28, 28), np.float32), np.zeros(0, np.int64))
    with pytest.raises(ValueError, match="train_data is empty"):
        fit(model, nn.CrossEntropyLoss(), optimizer, empty, progress=False)
    with pytest.raises(ValueError, match="data is empty"):
        evaluate(model, nn.CrossEntropyLoss(), empty)
    assert predict(model, empty[0]).shape == (0, 10)
    for make, message in [
        (lambda: nn.Conv2d(0, 1, 3), r"Conv2d: in_channels=0 must be positive"),
        (lambda: nn.Conv2d(1, 0, 3), r"out_channels=0 must be positive"),
        (lambda: nn.Conv2d(1, 1, 0), r"kernel_size=\(0, 0\) must be positive"),
        (lambda: nn.Conv2d(1, 1, 3, stride=0), r"stride=\(0, 0\) must be positive"),
        (lambda: nn.Conv2d(1, 1, 3, padding=-1), r"padding=\(-1, -1\) must be non-negative"),
        (lambda: nn.Conv2d(1, 1, 3, padding="full"), r"padding must be an int, a pair, 'valid' or 'same'"),
        (lambda: nn.Linear(0, 3), r"Linear: in_features=0 must be positive"),
        (lambda: nn.Linear(3, 0), r"out_features=0 must be positive"),
        (lambda: nn.BatchNorm2d(0), r"num_features=0 must be positive"),
    ]:
        with pytest.raises(ValueError, match=message):
            make()
    with pytest.raises(TypeError, match="in_channels must be an int, got 2.5"):
        nn.Conv2d(2.5, 1, 3)


@pytest.mark.parametrize("options, message", [
    (["--train-images", "-5"], "argument --train-images: -5 must be at least 1"),
    (["--epochs", "-1"], "argument --epochs: -1 must be at least 1"),
    (["--batch-size", "0"], "argument --batch-size: 0 must be at least 1"),
    (["--lr", "-1"], "argument --lr: -1 must be a positive finite number"),
    (["--lr", "nan"], "argument --lr: nan must be a positive finite number"),
    (["--threads", "0"], "argument --threads: 0 must be at least 1"),
    (["--epochs", "two"], "argument --epochs: invalid int value: 'two'"),
    (["--threads", "100000"], "--threads: set_num_threads: n=100000 must be between 1 and"),
    (["--seed", "-1"], "argument --seed: -1 must be at least 0"),
    (["--out", ""], "--out: must not be empty"),
    (["--out", "/dev/null"], "--out: cannot write files in '/dev/null'"),
])
def test_demo_options_are_checked_before_training(options, message, tmp_path):
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "convpool", "demo", "--no-progress", *options],
                            capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr and "usage: convpool demo" in result.stderr  # the demo's usage
    assert "training" not in result.stdout and time.perf_counter() - started < 20


def test_demo_out_pointing_at_a_file_fails_before_training(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    result = subprocess.run([sys.executable, "-m", "convpool", "demo", "--no-progress", "--out", str(tmp_path / "file")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "--out: cannot write files in" in result.stderr
    assert "MNIST" not in result.stdout
