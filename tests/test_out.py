"""out= on every function, as NumPy's: the results are written into the caller's arrays, which are
returned; each array is checked (dtype, shape, writable, C-contiguous, no memory shared with the
inputs or the other results) before any work."""

import inspect

import numpy as np
import pytest

import convpool as cp
from calls import (A, ADAPTIVE, B, CALLS, FRACTIONAL, INDICES, MEAN, ROW, ROW_INDICES, SAMPLES, SAVED_INVSTD,
                   SAVED_MEAN, STOCHASTIC, VAR, WROW, WT, W, X, covered, expected, g)

def filled_like(result):
    """Arrays shaped like the results, holding garbage the call must overwrite."""
    if isinstance(result, tuple):
        return tuple(None if r is None else filled_like(r) for r in result)
    return np.full_like(result, 7 if result.dtype.kind == "i" else np.nan)


def test_every_exported_function_is_covered():
    assert covered() == expected()


@pytest.mark.parametrize("name", sorted(CALLS))
def test_results_are_written_into_the_given_arrays(name):
    call = CALLS[name]
    expected = call(None)
    out = filled_like(expected)
    result = call(out)
    if isinstance(expected, tuple):
        assert isinstance(result, tuple) and len(result) == len(expected)
        for given, got, wanted in zip(out, result, expected):
            assert got is given
            if wanted is not None:
                np.testing.assert_array_equal(got, wanted)
    else:
        assert result is out
        np.testing.assert_array_equal(result, expected)


def test_some_entries_of_a_tuple_may_be_none():
    values = np.empty((2, 3, 4, 3), np.float32)
    result = cp.max_pool2d(X, 2, return_indices=True, out=(values, None))
    assert result[0] is values and result[1].dtype == np.int64
    np.testing.assert_array_equal(result[1], INDICES)
    grads = cp.conv2d_backward(g((2, 4, 6, 5)), X, W, out=(None, np.empty_like(W), None))
    np.testing.assert_array_equal(grads[1], cp.conv2d_backward(g((2, 4, 6, 5)), X, W)[1])


def test_a_torch_tensor_receives_the_result_through_dlpack():
    torch = pytest.importorskip("torch")
    target = torch.empty(2, 3, 4, 3)
    cp.max_pool2d(torch.from_numpy(X), 2, out=target)
    np.testing.assert_array_equal(target.numpy(), cp.max_pool2d(X, 2))


@pytest.mark.parametrize("call, error, message", [
    (lambda: cp.max_pool2d(X, 2, out=np.empty((2, 3, 4, 4), np.float32)), ValueError,
     "max_pool2d: out has shape (2, 3, 4, 4) but the result has shape (2, 3, 4, 3)"),
    (lambda: cp.max_pool2d(X, 2, out=np.empty((2, 3, 4, 3))), TypeError,
     "max_pool2d: out has dtype float64 but the result is float32"),
    (lambda: cp.max_pool2d(X, 2, out=np.empty((2, 3, 4, 6), np.float32)[..., ::2]), ValueError,
     "out must be a writable C-contiguous array"),
    (lambda: cp.max_pool2d(X, 2, out=np.empty((2, 3, 4, 3), np.float32).astype(">f4")), TypeError,
     "out has dtype >f4 but the result is float32"),
    (lambda: cp.relu(X, out=np.broadcast_to(np.float32(0), X.shape)), ValueError,
     "out must be a writable C-contiguous array"),
    (lambda: cp.relu(X, out=X), ValueError, "relu: out shares memory with an input"),
    (lambda: cp.relu(X, out=[0.0]), TypeError, "relu: out must be a NumPy array or None, got <class 'list'>"),
    (lambda: cp.max_pool2d(X, 2, return_indices=True, out=np.empty((2, 3, 4, 3), np.float32)), TypeError,
     "max_pool2d: out must be None or a tuple of 2 arrays"),
    (lambda: cp.max_pool2d(X, 2, return_indices=True, out=(np.empty((2, 3, 4, 3), np.float32),
                                                           np.empty((2, 3, 4, 3), np.float32))), TypeError,
     "max_pool2d: out[1] has dtype float32 but the result is int64"),
    (lambda: cp.conv2d_backward(g((2, 4, 6, 5)), X, W, needs=("weight",), out=(np.empty_like(X), None, None)),
     ValueError, "conv2d_backward: out[0] is given but needs does not ask for 'input'"),
    (lambda: cp.batch_norm2d(X, running_mean=MEAN, running_var=VAR, out=(np.empty_like(X), MEAN, None)), ValueError,
     "batch_norm2d: out[1] shares memory with running_mean"),
])
def test_unusable_out_arrays_are_refused_before_any_work(call, error, message):
    before = MEAN.copy()
    with pytest.raises(error) as raised:
        call()
    assert message in str(raised.value)
    np.testing.assert_array_equal(MEAN, before)  # the running statistics were not updated


def test_two_results_may_not_share_an_array():
    indices = np.empty((2, 3, 4, 3), np.int64)
    values = indices.reshape(-1).view(np.float32)[:72].reshape(2, 3, 4, 3)  # the first half of the indices' bytes
    with pytest.raises(ValueError, match=r"max_pool2d: out\[1\] shares memory with another out"):
        cp.max_pool2d(X, 2, return_indices=True, out=(values, indices))
    stats = np.empty(6, np.float32)
    with pytest.raises(ValueError, match=r"out\[2\] shares memory with another out"):
        cp.batch_norm2d(X, out=(np.empty_like(X), stats[:3], stats[:3]))


def out_of_range(indices, plane_size):
    """indices with one entry moved outside [0, plane_size) (and not -1)."""
    bad = indices.copy()
    bad.flat[bad.size // 2] = plane_size + 5
    return bad


# Every function that routes values by indices, with one index outside its plane: name -> call(out).
REFUSED_INDEX_CALLS = {
    "max_pool2d_backward": lambda out: cp.max_pool2d_backward(g((2, 3, 4, 3)), X, out_of_range(INDICES, 56), 2,
                                                              out=out),
    "max_pool1d_backward": lambda out: cp.max_pool1d_backward(g((2, 3, 3)), ROW, out_of_range(ROW_INDICES, 7), 2,
                                                              out=out),
    "stochastic_pool2d_backward": lambda out: cp.stochastic_pool2d_backward(g((2, 3, 4, 3)), A,
                                                                            out_of_range(STOCHASTIC, 56), 2, out=out),
    "adaptive_max_pool2d_backward": lambda out: cp.adaptive_max_pool2d_backward(
        g((2, 3, 3, 3)), X, out_of_range(ADAPTIVE, 56), 3, out=out),
    "fractional_max_pool2d_backward": lambda out: cp.fractional_max_pool2d_backward(
        g((2, 3, 4, 4)), X, out_of_range(FRACTIONAL, 56), out=out),
    "max_unpool2d": lambda out: cp.max_unpool2d(g((2, 3, 4, 3)), out_of_range(INDICES, 56), 2, output_size=(8, 7),
                                                out=out),
    "max_unpool2d_backward": lambda out: cp.max_unpool2d_backward(g((2, 3, 8, 7)), out_of_range(INDICES, 56), 2,
                                                                  output_size=(8, 7), out=out),
}


def test_every_function_taking_indices_is_covered():
    functions = {name: getattr(cp, name) for name in cp.__all__ if inspect.isfunction(getattr(cp, name))}
    takes_indices = {name for name, function in functions.items() if "indices" in inspect.signature(function).parameters}
    assert takes_indices == set(REFUSED_INDEX_CALLS)


@pytest.mark.parametrize("name", sorted(REFUSED_INDEX_CALLS))
def test_a_call_refused_for_its_indices_leaves_out_unchanged(name):
    # Without out= the kernels count bad indices as they go; with it they are checked first.
    call = REFUSED_INDEX_CALLS[name]
    with pytest.raises(ValueError, match="indices has 1 value"):
        call(None)
    shape = CALLS[name](None).shape
    out = np.full(shape, 7.0, np.float32)
    with pytest.raises(ValueError, match="indices has 1 value"):
        call(out)
    np.testing.assert_array_equal(out, np.full(shape, 7.0, np.float32))


# Every array the calls above read (the results' shapes come from the calls themselves).
INPUTS = {"X": X, "A": A, "W": W, "B": B, "WT": WT, "ROW": ROW, "WROW": WROW, "INDICES": INDICES,
          "STOCHASTIC": STOCHASTIC, "ADAPTIVE": ADAPTIVE, "SAMPLES": SAMPLES, "FRACTIONAL": FRACTIONAL,
          "ROW_INDICES": ROW_INDICES, "MEAN": MEAN, "VAR": VAR, "SAVED_MEAN": SAVED_MEAN, "SAVED_INVSTD": SAVED_INVSTD}


def aliasing(array, shape, dtype):
    """A C-contiguous view of `shape` and `dtype` over the start of `array`'s memory, or None where
    it is too small: an out that passes every check but the overlap one."""
    count = int(np.prod(shape)) * np.dtype(dtype).itemsize
    if array.nbytes < count:
        return None
    return array.reshape(-1).view(np.uint8)[:count].view(dtype).reshape(shape)


@pytest.mark.parametrize("name", sorted(CALLS))
def test_an_out_over_an_input_is_refused_and_changes_nothing(name):
    # Refused with nothing changed where the call reads that array; else (an array it does not read)
    # the results written there are the call's.
    expected = CALLS[name](None)
    results = expected if isinstance(expected, tuple) else (expected,)
    before = {key: value.copy() for key, value in INPUTS.items()}
    tried = 0
    for position, result in enumerate(results):
        if result is None:
            continue
        for key, array in INPUTS.items():
            view = aliasing(array, result.shape, result.dtype)
            if view is None:
                continue
            out = tuple(view if index == position else None for index in range(len(results)))
            try:
                got = CALLS[name](out if isinstance(expected, tuple) else view)
            except ValueError as error:
                assert "shares memory with an input" in str(error), (name, key, str(error))
                changed = {}
            else:
                np.testing.assert_array_equal(got[position] if isinstance(expected, tuple) else got, result,
                                              err_msg=f"{name}: out over {key}")
                changed = {key}
            for other, value in INPUTS.items():
                if other not in changed:
                    np.testing.assert_array_equal(value, before[other], err_msg=f"{name}: out over {key} changed {other}")
                value[...] = before[other]
            tried += 1
    if not tried:
        pytest.skip("each result is larger than every array the call reads")
