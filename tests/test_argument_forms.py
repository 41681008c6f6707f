"""torch.nn.functional's argument forms (1-element sequences, stride=(), input=) and argument
errors that name the function and its parameters without printing the arrays."""

import inspect

import numpy as np
import pytest

import convpool as cp

X = np.random.default_rng(0).standard_normal((2, 3, 9, 9)).astype(np.float32)
W = np.random.default_rng(1).standard_normal((4, 3, 3, 3)).astype(np.float32)

POOLS = {
    "max": lambda x, k, s: cp.max_pool2d(x, k, s),
    "avg": lambda x, k, s: cp.avg_pool2d(x, k, s),
    "lp": lambda x, k, s: cp.lp_pool2d(x, 2, k, s),
    "stochastic": lambda x, k, s: cp.stochastic_pool2d(np.abs(x), k, s, training=False),
}


@pytest.mark.parametrize("pool", POOLS)
def test_one_element_sequences_broadcast_and_empty_stride_means_the_kernel(pool):
    run = POOLS[pool]
    expected = run(X, 3, 2)
    for kernel, stride in [((3,), 2), ([3], (2,)), (3, [2])]:
        np.testing.assert_array_equal(run(X, kernel, stride), expected)
    np.testing.assert_array_equal(run(X, 3, ()), run(X, 3, None))
    np.testing.assert_array_equal(run(X, (3,), []), run(X, 3, 3))


def test_convolution_takes_one_element_sequences():
    expected = cp.conv2d(X, W, None, 2, 1, 1)
    np.testing.assert_array_equal(cp.conv2d(X, W, None, (2,), (1,), [1]), expected)
    np.testing.assert_array_equal(cp.max_pool2d(X, 3, 2, padding=(1,), dilation=(1,)), cp.max_pool2d(X, 3, 2, 1, 1))


def test_first_argument_by_keyword_input():
    np.testing.assert_array_equal(cp.max_pool2d(input=X, kernel_size=2), cp.max_pool2d(X, 2))
    np.testing.assert_array_equal(cp.conv2d(input=X, weight=W, padding="same"), cp.conv2d(X, W, padding="same"))
    np.testing.assert_array_equal(cp.relu(input=X), cp.relu(X))
    with pytest.raises(TypeError, match=r"max_pool2d\(\) got multiple values for its first argument \(x"):
        cp.max_pool2d(X, input=X, kernel_size=2)


@pytest.mark.parametrize("call, message", [
    (lambda: cp.conv2d(X, W, pad=1), r"conv2d\(\) got an unexpected keyword argument 'pad'; it takes conv2d\(x, "
                                     r"weight, bias=None, stride=1, padding=0, dilation=1, groups=1, "
                                     r"activation=None, out=None, winograd=None, layout=.nchw.\)"),
    (lambda: cp.max_pool2d(X, 2, 2, 0, 1, False, False, "first", "propagate", "nchw", None, 7),
     r"takes at most 11 arguments \(12"),
    (lambda: cp.max_pool2d(X), r"max_pool2d\(\) missing required argument 'kernel_size'"),
    (lambda: cp.max_pool2d(X, 2, ceil_mode="yes"), r"max_pool2d\(\): ceil_mode must be bool, got str"),
    (lambda: cp.conv2d(X, W, stride=1, **{"stride ": 2}), r"unexpected keyword argument 'stride '"),
    (lambda: cp.batch_norm2d(X, training="no"), r"batch_norm2d\(\): training must be bool, got str"),
])
def test_argument_errors_name_the_parameters_and_print_no_array(call, message):
    with pytest.raises(TypeError, match=message) as error:
        call()
    text = str(error.value)
    assert "array(" not in text and len(text) < 400
    assert error.value.__suppress_context__  # pybind11's message, with the arrays, is not chained


def test_signatures_are_visible():
    parameters = inspect.signature(cp.conv2d).parameters
    assert list(parameters) == ["x", "weight", "bias", "stride", "padding", "dilation", "groups", "activation", "out",
                                "winograd", "layout"]
    assert parameters["padding"].default == 0 and parameters["x"].default is inspect.Parameter.empty
    assert cp.conv2d.__doc__ == cp._core.conv2d.__doc__
