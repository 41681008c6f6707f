"""Random arguments of random types for every compiled function: each call must return or raise
ValueError/TypeError (MemoryError for a copy that cannot be allocated), never crash, hang or
raise anything else."""

import zlib

import numpy as np
import pytest

import convpool as cp

FUNCTIONS = {
    "max_pool2d": 9, "max_pool2d_backward": 10, "avg_pool2d": 7, "avg_pool2d_backward": 8,
    "lp_pool2d": 5, "lp_pool2d_backward": 6, "stochastic_pool2d": 6, "stochastic_pool2d_backward": 6,
    "adaptive_max_pool2d": 5, "adaptive_max_pool2d_backward": 6, "max_unpool2d": 6, "max_unpool2d_backward": 6,
    "fractional_max_pool2d": 7, "fractional_max_pool2d_backward": 3, "conv2d": 7, "conv2d_backward": 8,
    "conv_transpose2d": 8, "conv_transpose2d_backward": 9, "relu": 1, "relu_backward": 2, "set_num_threads": 1,
    "PackedConv2dWeight": 2,
}


def random_array(rng):
    dtype = rng.choice([np.float32, np.float64, np.float16, np.int64, np.int32, np.bool_, np.complex64])
    shape = tuple(int(d) for d in rng.integers(0, 6, size=rng.integers(0, 6)))
    values = np.asarray(rng.standard_normal(shape) * 10.0 ** rng.integers(-3, 4))
    if rng.random() < 0.2:
        values[rng.random(shape) < 0.3] = rng.choice([np.nan, np.inf, -np.inf])
    with np.errstate(invalid="ignore"):
        array = values.astype(dtype)
    if array.ndim >= 2 and rng.random() < 0.3:
        array = array.swapaxes(0, -1)  # non-contiguous
    if rng.random() < 0.05:  # a huge view of one element, whose contiguous copy cannot be allocated
        shape = [(2**40,), (2**20, 2**20), (2**14, 2**10, 2**16), (2**10,) * 4][rng.integers(0, 4)]
        array = np.lib.stride_tricks.as_strided(array.reshape(-1)[:1] if array.size else np.zeros(1, dtype),
                                                shape, (0,) * len(shape))
    return array


def random_value(rng, depth=0):
    kind = rng.integers(0, 12)
    if kind == 0:
        return None
    if kind == 1:
        return int(rng.choice([0, 1, 2, 3, -1, -7, 2**31 - 1, 2**31, 2**40, 2**62, 2**63 - 1, -(2**63)]))
    if kind == 2:
        return float(rng.choice([0.0, 0.5, 1.0, 2.0, -1.0, np.nan, np.inf, 1e300]))
    if kind == 3:
        return str(rng.choice(["first", "last", "split", "same", "valid", "ignore", "propagate", "", "input"]))
    if kind == 4 and depth < 2:
        return tuple(random_value(rng, depth + 1) for _ in range(rng.integers(0, 4)))
    if kind == 5 and depth < 2:
        return [random_value(rng, depth + 1) for _ in range(rng.integers(0, 4))]
    if kind == 6:
        return bool(rng.integers(0, 2))
    if kind == 7:
        return object()
    if kind == 8:
        return np.int64(rng.integers(-3, 8))
    if kind == 9:
        return [np.float32(2.7), np.array(3), np.array(2.5), np.array([2, 2])][rng.integers(0, 4)]
    if kind == 10:  # a packed weight where any argument is expected, conv2d's weight among them
        weight = rng.standard_normal(tuple(int(d) for d in rng.integers(1, 4, size=4)))
        return cp.PackedConv2dWeight(weight.astype(rng.choice([np.float32, np.float64])),
                                     winograd=bool(rng.integers(0, 2)))
    return random_array(rng)


def plausible_call(rng, arity):
    """Mostly sensible arguments with one or two random ones, so calls get past the first check."""
    x = rng.standard_normal((2, 3, 6, 7)).astype(rng.choice([np.float32, np.float64]))
    args = [x, 2, 1, 0, 1, False, False, "first", "propagate", "first"][:arity]
    for position in rng.choice(arity, size=min(arity, rng.integers(1, 3)), replace=False):
        args[position] = random_value(rng)
    return args


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_random_arguments_only_raise_value_or_type_errors(name):
    function = getattr(cp, name)
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    previous_threads = cp.get_num_threads()
    try:
        for trial in range(600):
            arity = FUNCTIONS[name]
            args = (plausible_call(rng, arity) if trial % 2 else
                    [random_value(rng) for _ in range(rng.integers(0, arity + 2))])
            try:
                function(*args)
            except (ValueError, TypeError, MemoryError):
                pass
    finally:
        cp.set_num_threads(previous_threads)
