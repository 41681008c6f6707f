"""Outputs and gradients are bitwise identical for 1 and 2 threads (and 3, which splits planes
unevenly), including N*C smaller than the thread count and overlapping windows."""

import numpy as np
import pytest

import convpool as cp
from calls import CALLS, arrays_of, covered, expected
from configs import config_id, random_pool_configs

CONFIGS = random_pool_configs(seed=41, count=10) + [((1, 1, 37, 29), (3, 3), (1, 1), (1, 1), (1, 1), False),
                                                    ((2, 1, 40, 33), (5, 4), (2, 1), (2, 2), (2, 1), True)]


def run_all_ops(x, config):
    shape, k, s, p, d, ceil_mode = config
    results = []
    for tie_break in ("first", "last", "split"):
        out, idx = cp.max_pool2d(x, k, s, p, d, ceil_mode, return_indices=True, tie_break=tie_break)
        g = np.cos(np.arange(out.size)).reshape(out.shape).astype(x.dtype)
        results += [out, idx, cp.max_pool2d_backward(g, x, idx, k, s, p, d, ceil_mode, tie_break=tie_break)]
    out = cp.avg_pool2d(x, k, s, p, ceil_mode)
    results += [out, cp.avg_pool2d_backward(np.cos(out), x.shape, k, s, p, ceil_mode)]
    if p == (0, 0):
        out = cp.lp_pool2d(x, 2, k, s, ceil_mode)
        results += [out, cp.lp_pool2d_backward(np.cos(out), x, 2.5, k, s, ceil_mode)]
        a = np.abs(x)
        out, idx = cp.stochastic_pool2d(a, k, s, seed=9, return_indices=True)
        results += [out, idx, cp.stochastic_pool2d_backward(np.cos(out), a, idx, k, s)]
        out = cp.stochastic_pool2d(a, k, s, training=False)
        results += [out, cp.stochastic_pool2d_backward(np.cos(out), a, None, k, s, training=False)]
    return results


@pytest.mark.parametrize("config", CONFIGS, ids=config_id)
def test_bitwise_identical_across_thread_counts(config, threads):
    # Small integers make ties and overlapping contributions common.
    rng = np.random.default_rng(42)
    x = (rng.integers(-3, 4, config[0]) + rng.random(config[0]) * (rng.random(config[0]) < 0.5)).astype(np.float32)
    threads(1)
    serial = run_all_ops(x, config)
    for n in (2, 3):
        threads(n)
        for a, b in zip(serial, run_all_ops(x, config)):
            assert a.dtype == b.dtype and a.tobytes() == b.tobytes()


def test_thread_setting(threads):
    threads(3)
    assert cp.get_num_threads() == 3


@pytest.mark.parametrize("name", sorted(CALLS))
def test_every_function_is_bitwise_identical_across_thread_counts(name, assert_thread_independent):
    assert covered() == expected()
    assert_thread_independent(lambda: arrays_of(CALLS[name](None)))
