"""Randomized pooling configurations shared by the tests."""

import numpy as np

from reference import output_size


def random_pool_configs(seed, count, padding=True, dilation=True, ceil_mode=True, max_kernel=7):
    """Valid (shape, kernel, stride, padding, dilation, ceil_mode) tuples: kernels 1-7,
    strides 1-3, odd sizes, 3-D and 4-D inputs, N*C often smaller than the thread count."""
    rng = np.random.default_rng(seed)
    configs = []
    while len(configs) < count:
        k = tuple(int(v) for v in rng.integers(1, max_kernel + 1, 2))
        s = tuple(int(v) for v in rng.integers(1, 4, 2))
        p = tuple(int(rng.integers(0, kk // 2 + 1)) if padding else 0 for kk in k)
        d = tuple(int(v) for v in rng.integers(1, 3, 2)) if dilation else (1, 1)
        ceil = bool(rng.integers(0, 2)) and ceil_mode
        hw = tuple(int(v) for v in rng.integers(1, 14, 2))
        if any(output_size(n, kk, ss, pp, dd, ceil) < 1 for n, kk, ss, pp, dd in zip(hw, k, s, p, d)):
            continue
        lead = [(1, 1), (2, 3), (1,), (3,), (2, 1)][int(rng.integers(0, 5))]
        configs.append((lead + hw, k, s, p, d, ceil))
    return configs


def config_id(config):
    shape, k, s, p, d, ceil_mode = config
    return f"x{shape}-k{k}-s{s}-p{p}-d{d}-{'ceil' if ceil_mode else 'floor'}".replace(" ", "")
