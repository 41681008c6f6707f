"""Threads and fork: thread-count bounds, forking after the kernels ran, multiprocessing pools.

Each case that could crash, hang or exhaust the process runs in a subprocess (child_process.py),
so that a crash fails its test instead of killing pytest; each asserts the exception type and
bounded peak memory and time."""

import os

import numpy as np
import pytest

import convpool as cp
from child_process import run_child

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
