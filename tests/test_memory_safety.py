"""Kernels stay inside their arrays whatever the sizes, the rounding and the values, even values
another thread changes while a kernel runs: each case puts its array against a page that cannot
be read, in a child process, so that one out-of-bounds access fails the test with the child's
death instead of reading a neighbour."""

import json

import pytest

from child_process import run_child


def assert_child_survives(body, timeout=300):
    code, out, err = run_child(body, timeout)
    assert code == 0, f"the child died (status {code}): {err[-2000:]}"
    return out


def test_fractional_windows_stay_inside_rows_wider_than_float32_counts():
    # Window starts are computed in x's precision: float32 rounds (i + u) * alpha past in - kernel
    # for rows wider than 2**24, and PyTorch's formula then put the last windows past the row.
    assert_child_survives("""
width, outputs = 16_778_236, 14_272_414
for rows in (1, 2):
    x = guarded((1, 1, rows, width))
    x[...] = np.arange(rows * width, dtype=np.float32).reshape(x.shape) % 1000
    y, indices = cp.fractional_max_pool2d(x, 1, (rows, outputs), return_indices=True, seed=0)
    flat = indices.reshape(rows, outputs)
    # Each window stays in its own row: row r's indices are r * width + [0, width).
    for r in range(rows):
        assert flat[r].min() >= r * width and flat[r].max() < (r + 1) * width, (rows, r, flat[r].max())
    np.testing.assert_array_equal(x.reshape(-1)[indices.reshape(-1)], y.reshape(-1))
""")


def test_stochastic_pooling_stays_in_its_windows_while_another_thread_flips_the_input():
    # The binding checks that x is non-negative, then releases the GIL: a thread that negates x
    # meanwhile leaves windows with a positive sum and no positive tap left to choose.
    out = assert_child_survives("""
import threading
x = guarded((1, 1, 1024, 1024), side="before")  # one plane: tap -1 of its first window is before x
x[...] = np.random.default_rng(0).random(x.shape, dtype=np.float32)
done = threading.Event()
def flip():
    while not done.is_set():
        np.negative(x, out=x)
flipper = threading.Thread(target=flip)
flipper.start()
outcomes = {}
try:
    for call in range(300):
        try:
            y, indices = cp.stochastic_pool2d(x, 3, 2, seed=call, return_indices=True)
            assert indices.min() >= 0 and indices.max() < 1024 * 1024
            kind = "ok"
        except ValueError:  # x was negative when the binding checked it
            kind = "ValueError"
        outcomes[kind] = outcomes.get(kind, 0) + 1
finally:
    done.set()
    flipper.join()
print(json.dumps(outcomes))
""")
    assert sum(json.loads(out.splitlines()[-1]).values()) == 300


def test_global_max_pooling_stays_in_its_plane_while_another_thread_moves_the_maximum():
    # Global adaptive max pooling finds the largest value in one pass and its position in a second:
    # when the largest is gone by then, the second pass must stop at the plane's end.
    assert_child_survives("""
import threading
x = guarded((1, 1, 512, 512))
x[...] = 0
done = threading.Event()
def toggle():
    while not done.is_set():
        x[0, 0, -1, -1] = 2.0
        x[0, 0, -1, -1] = 0.0
toggler = threading.Thread(target=toggle)
toggler.start()
try:
    for call in range(300):
        for tie_break in ("first", "last"):
            y, indices = cp.adaptive_max_pool2d(x, 1, return_indices=True, tie_break=tie_break)
            assert 0 <= indices.item() < 512 * 512
finally:
    done.set()
    toggler.join()
""")


def test_dlpack_out_over_read_only_mapped_memory_is_refused():
    pytest.importorskip("torch")
    out = assert_child_survives("""
import mmap, warnings
import torch
warnings.simplefilter("ignore")  # torch.from_numpy warns that the array is not writable
region = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ)
read_only = np.frombuffer(region, np.float32, 16).reshape(1, 1, 4, 4)
print(outcome(lambda: cp.relu(np.ones((1, 1, 4, 4), np.float32), out=torch.from_numpy(read_only)))[0])
""")
    assert out.split()[-1] == "ValueError"

