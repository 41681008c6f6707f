"""Random arguments of random types for every compiled function: each call must return or raise
ValueError/TypeError (MemoryError for a copy that cannot be allocated), never crash, hang or
raise anything else."""

import warnings
import zlib

import numpy as np
import pytest

import convpool as cp
from convpool import _ops
from dlpack_objects import DLPackOnly, FailingExport
from test_stubs import runtime_parameters

try:
    import torch
except ImportError:
    torch = None

def arity(obj):
    """The parameters a compiled function (or class) takes besides out=, from its signature."""
    parameters = runtime_parameters(obj.__init__)[1:] if isinstance(obj, type) else runtime_parameters(obj)
    return len([name for name in parameters if name != "out"])


# Every compiled function but the two that take nothing, with the number of its parameters.
FUNCTIONS = {name: arity(getattr(cp._core, name)) for name in dir(cp._core)
             if not name.startswith("_") and name not in ("build_info", "get_num_threads")}


def test_the_fuzzed_functions_are_the_ops_and_set_num_threads():
    assert set(FUNCTIONS) == set(_ops.compiled_functions()) | set(_ops.classes()) | {"fractional_max_pool2d",
                                                                                   "set_num_threads"}


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


def random_dlpack(rng):
    """An array offered through DLPack, often one that must be refused: read-only, on another
    device, a lying or failing exporter, and torch's negative-bit, meta and from-read-only tensors."""
    array = random_array(rng)
    if array.nbytes > 1 << 20:  # the huge zero-stride views: a tensor of one would need its copy
        array = np.zeros((2, 3, 4, 4), np.float32)
    kind = rng.integers(0, 8)
    if kind == 1:
        array.flags.writeable = False
    if kind == 2:
        return DLPackOnly(array, device=[(2, 0), (1,), "cpu", None, (1.5, 0), (14, 3)][rng.integers(0, 6)])
    if kind == 3:
        return FailingExport(array)
    if kind >= 4 and torch is not None and array.dtype.kind == "f" and array.dtype.itemsize in (4, 8):
        tensor = torch.from_numpy(np.ascontiguousarray(array))
        if kind == 4:
            return tensor._neg_view()
        if kind == 5:
            return torch.empty(tensor.shape, dtype=tensor.dtype, device="meta")
        if kind == 6:
            read_only = np.ascontiguousarray(array)
            read_only.flags.writeable = False
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # torch warns that it cannot keep the flag
                return torch.from_numpy(read_only)
        return tensor
    return DLPackOnly(array)


def random_value(rng, depth=0):
    kind = rng.integers(0, 13)
    if kind == 0:
        return None
    if kind == 1:
        return int(rng.choice([0, 1, 2, 3, -1, -7, 2**31 - 1, 2**31, 2**40, 2**62, 2**63 - 1, -(2**63)]))
    if kind == 2:
        return float(rng.choice([0.0, 0.5, 1.0, 2.0, -1.0, np.nan, np.inf, 1e300]))
    if kind == 3:
        return str(rng.choice(["first", "last", "split", "same", "valid", "ignore", "propagate", "", "input", "nhwc"]))
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
    if kind == 11:
        return random_dlpack(rng)
    return random_array(rng)


def plausible_call(rng, arity):
    """Mostly sensible arguments with one or two random ones, so calls get past the first check."""
    x = rng.standard_normal((2, 3, 6, 7)).astype(rng.choice([np.float32, np.float64]))
    args = [x, 2, 1, 0, 1, False, False, "first", "propagate", "first", "nhwc", None][:arity]
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


def test_running_statistics_and_outs_that_share_memory_are_refused_and_change_nothing():
    # batch_norm2d writes its running statistics and outs in place: drawn from fresh arrays, views
    # of x, the weight, each other; a refused call must leave every array as it was.
    rng = np.random.default_rng(29)
    refused = 0
    for trial in range(300):
        dtype = rng.choice([np.float32, np.float64])
        x = rng.standard_normal((2, 3, 4, 4)).astype(dtype)
        pool = {"x row": x[0, 0, 0, :3], "x": x, "weight": np.ones(3, dtype), "bias": np.zeros(3, dtype),
                "fresh mean": np.zeros(3, dtype), "fresh var": np.ones(3, dtype)}
        choice = lambda *names: pool[names[rng.integers(0, len(names))]]  # noqa: E731
        weight, bias = choice("weight", "fresh mean"), choice("bias", "fresh var", "weight")
        mean, var = choice("fresh mean", "x row", "weight", "fresh var"), choice("fresh var", "fresh mean", "bias")
        out = None if rng.random() < 0.5 else (
            [np.empty_like(x), x][rng.integers(0, 2)], [None, mean, np.empty(3, dtype)][rng.integers(0, 3)], None)
        before = {id(a): a.copy() for a in (x, weight, bias, mean, var)}
        try:
            cp.batch_norm2d(x, weight, bias, mean, var, training=bool(rng.integers(0, 2)), out=out)
        except ValueError as error:
            assert "shares memory" in str(error), str(error)
            refused += 1
            for array in (x, weight, bias, mean, var):
                np.testing.assert_array_equal(array, before[id(array)])
    assert refused > 50
