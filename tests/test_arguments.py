"""Every entry point takes the same window arguments: the NumPy function, the nn layer, the torch
operator and the torch drop-in either all give the same result or all raise the same exception."""

import numpy as np
import pytest

import convpool as cp
from convpool import _arguments, nn

torch = pytest.importorskip("torch")
cpt = pytest.importorskip("convpool.torch")

# Forms of a window argument: ints, 1- and 2-sequences, NumPy integers, and what must be refused
# (floats, bools, strings, wrong lengths, out-of-range values).
SIZES = [2, (2,), (2, 3), [3, 2], np.int64(2), (np.int64(2), 3), np.array([2, 3]), 0, -1, (2, 0), 2.5, (2.0, 2),
         True, "2", (2, 3, 4), (), 2**40]
STRIDES = [None, (), 1, (1, 2), [2], 0, (1, -1), 1.5, False, (1, 2, 3)]
PADDINGS = [0, 1, (1, 0), -1, 2, 1.5, (0, 0, 0)]
DILATIONS = [1, 2, (1, 2), 0, 1.5]
SIZES_1D = [2, (2,), [3], np.int64(2), (2, 3), 0, -1, 2.5, True, "2", ()]


def outcome(call):
    """The result as an array, or the class of the exception raised."""
    try:
        result = call()
    except (TypeError, ValueError) as error:
        return type(error)
    if isinstance(result, torch.Tensor):
        result = result.numpy()
    return np.asarray(result)


def agree(calls):
    outcomes = {name: outcome(call) for name, call in calls.items()}
    first_name, first = next(iter(outcomes.items()))
    for name, other in outcomes.items():
        if isinstance(first, type) or isinstance(other, type):
            assert other is first, f"{name} gives {other}, {first_name} gives {first}"
        else:
            np.testing.assert_array_equal(other, first, err_msg=f"{name} against {first_name}")
    return first


X = np.random.default_rng(0).standard_normal((2, 3, 9, 8))


def max_pool2d_entry_points(**arguments):
    t = torch.from_numpy(X)
    return {
        "convpool.max_pool2d": lambda: cp.max_pool2d(X, **arguments),
        "nn.MaxPool2d": lambda: nn.MaxPool2d(**arguments)(X),
        "convpool.torch.max_pool2d": lambda: cpt.max_pool2d(t, **arguments),
        "convpool.torch.MaxPool2d": lambda: cpt.MaxPool2d(**arguments)(t),
    }


@pytest.mark.parametrize("kernel_size", SIZES, ids=repr)
def test_max_pool2d_kernel_sizes(kernel_size):
    agree(max_pool2d_entry_points(kernel_size=kernel_size))


@pytest.mark.parametrize("stride", STRIDES, ids=repr)
def test_max_pool2d_strides(stride):
    agree(max_pool2d_entry_points(kernel_size=3, stride=stride))


@pytest.mark.parametrize("padding", PADDINGS, ids=repr)
def test_max_pool2d_paddings(padding):
    agree(max_pool2d_entry_points(kernel_size=3, padding=padding))


@pytest.mark.parametrize("dilation", DILATIONS, ids=repr)
def test_max_pool2d_dilations(dilation):
    agree(max_pool2d_entry_points(kernel_size=2, dilation=dilation))


@pytest.mark.parametrize("divisor_override", [None, 1, 5, 0, -2, 2.5, True], ids=repr)
@pytest.mark.parametrize("padding", [0, 1], ids=repr)
def test_avg_pool2d_divisor_override(divisor_override, padding):
    t = torch.from_numpy(X)
    arguments = dict(kernel_size=3, stride=2, padding=padding, divisor_override=divisor_override)
    agree({
        "convpool.avg_pool2d": lambda: cp.avg_pool2d(X, **arguments),
        "nn.AvgPool2d": lambda: nn.AvgPool2d(**arguments)(X),
        "convpool.torch.avg_pool2d": lambda: cpt.avg_pool2d(t, **arguments),
        "convpool.torch.AvgPool2d": lambda: cpt.AvgPool2d(**arguments)(t),
    })


def test_the_avg_pool2d_drop_in_with_divisor_override_is_torchs_forward_and_backward():
    x = torch.randn(2, 3, 7, 7, dtype=torch.float64, requires_grad=True)
    ours = cpt.AvgPool2d(3, 2, 1, divisor_override=4)
    theirs = torch.nn.AvgPool2d(3, 2, 1, divisor_override=4)
    torch.testing.assert_close(ours(x), theirs(x))
    grad_ours, = torch.autograd.grad(ours(x).sum(), x)
    grad_theirs, = torch.autograd.grad(theirs(x).sum(), x)
    torch.testing.assert_close(grad_ours, grad_theirs)
    converted = cpt.convert(torch.nn.Sequential(torch.nn.AvgPool2d(3, divisor_override=2)))
    assert type(converted[0]) is cpt.AvgPool2d and converted[0].divisor_override == 2


@pytest.mark.parametrize("output_size", [2, (2, 3), [3, 2], (None, 2), (None, None), np.int64(2), 0, (2, 0), 2.5,
                                         (2, 3.7), True, "2", (2, 3, 4), None, 2**40], ids=repr)
@pytest.mark.parametrize("kind", ["avg", "max"])
def test_adaptive_output_sizes(kind, output_size):
    t = torch.from_numpy(X)
    function, layer = getattr(cp, f"adaptive_{kind}_pool2d"), getattr(nn, f"Adaptive{kind.title()}Pool2d")
    agree({
        f"convpool.adaptive_{kind}_pool2d": lambda: function(X, output_size),
        f"nn.Adaptive{kind.title()}Pool2d": lambda: layer(output_size)(X),
        f"convpool.torch.adaptive_{kind}_pool2d": lambda: getattr(cpt, f"adaptive_{kind}_pool2d")(t, output_size),
        f"convpool.torch.Adaptive{kind.title()}Pool2d": lambda: getattr(cpt, f"Adaptive{kind.title()}Pool2d")(
            output_size)(t),
    })


X_1D = np.random.default_rng(1).standard_normal((2, 3, 9))


@pytest.mark.parametrize("kernel_size", SIZES_1D, ids=repr)
@pytest.mark.parametrize("stride", [None, 1, (2,), (1, 2), 0, 1.5], ids=repr)
def test_max_pool1d_arguments(kernel_size, stride):
    t = torch.from_numpy(X_1D)
    arguments = dict(kernel_size=kernel_size, stride=stride)
    agree({
        "convpool.max_pool1d": lambda: cp.max_pool1d(X_1D, **arguments),
        "nn.MaxPool1d": lambda: nn.MaxPool1d(**arguments)(X_1D),
        "convpool.torch.max_pool1d": lambda: cpt.max_pool1d(t, **arguments),
        "convpool.torch.MaxPool1d": lambda: cpt.MaxPool1d(**arguments)(t),
    })


@pytest.mark.parametrize("kernel_size", SIZES_1D, ids=repr)
def test_avg_pool1d_arguments(kernel_size):
    t = torch.from_numpy(X_1D)
    agree({
        "convpool.avg_pool1d": lambda: cp.avg_pool1d(X_1D, kernel_size),
        "nn.AvgPool1d": lambda: nn.AvgPool1d(kernel_size)(X_1D),
        "convpool.torch.avg_pool1d": lambda: cpt.avg_pool1d(t, kernel_size),
        "convpool.torch.AvgPool1d": lambda: cpt.AvgPool1d(kernel_size)(t),
    })


@pytest.mark.parametrize("name, value", [(name, value) for name, values in [
    ("stride", [1, (1, 2), [2], 0, 1.5, True, (1, 2, 3)]),
    ("padding", [0, (1, 0), -1, 1.5, "same", "valid", "full"]),
    ("dilation", [1, (2, 1), 0, 2.5]),
    ("groups", [1, 3, 2, 0, 1.5, True]),
] for value in values], ids=repr)
def test_conv2d_arguments(name, value):
    weight = np.random.default_rng(2).standard_normal((3, 3 // (value if name == "groups" and value == 3 else 1),
                                                       3, 3))
    t, w = torch.from_numpy(X), torch.from_numpy(weight)
    agree({
        "convpool.conv2d": lambda: cp.conv2d(X, weight, **{name: value}),
        "convpool.torch.conv2d": lambda: cpt.conv2d(t, w, **{name: value}),
    })


def test_the_normaliser_reads_every_form_as_the_compiled_functions_do():
    assert _arguments.pair("f", "kernel_size", np.array([2, 3]), 1) == (2, 3)
    assert _arguments.pair("f", "kernel_size", (4,), 1) == (4, 4)
    assert _arguments.single("f", "kernel_size", [4], 1) == 4
    assert _arguments.stride_pair("f", (), (3, 3)) == (3, 3)
    with pytest.raises(TypeError, match=r"f: kernel_size must be an int or a pair of ints, got \(2, 3, 4\)"):
        _arguments.pair("f", "kernel_size", (2, 3, 4), 1)
    with pytest.raises(ValueError, match=r"f: padding=\(1, -1\) must be non-negative"):
        _arguments.pair("f", "padding", (1, -1), 0)
    with pytest.raises(ValueError, match=r"f: stride=\(2147483649, 1\) is too large"):
        _arguments.pair("f", "stride", (2**31 + 1, 1), 1)
    with pytest.raises(TypeError, match="f: groups must be an int, got True"):
        _arguments.integer("f", "groups", True)
