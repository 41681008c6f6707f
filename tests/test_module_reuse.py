"""A module called more than once in a forward pass: each call's backward uses that call's state."""

import copy

import numpy as np
import pytest

import convpool as cp
from convpool import nn


def normal(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def unrolled_gradients(reused, unrolled, x, g):
    """The input gradients of ``reused`` (which calls a module twice) and of ``unrolled`` (the same
    network with copies of its modules, one per use)."""
    out, out_unrolled = reused(x), unrolled(x)
    np.testing.assert_array_equal(out, out_unrolled)
    reused.zero_grad()
    unrolled.zero_grad()
    return reused.backward(g), unrolled.backward(g)


def test_a_relu_used_twice_in_a_sequential():
    cp.manual_seed(1)
    first, second = nn.Linear(6, 6).double(), nn.Linear(6, 4).double()
    relu = nn.ReLU()
    reused = nn.Sequential(first, relu, second, relu)
    unrolled = nn.Sequential(copy.deepcopy(first), nn.ReLU(), copy.deepcopy(second), nn.ReLU())
    x, g = normal((5, 6), 1), normal((5, 4), 2)
    grad, grad_unrolled = unrolled_gradients(reused, unrolled, x, g)
    np.testing.assert_array_equal(grad, grad_unrolled)


def test_a_block_applied_twice_sums_its_parameter_gradients():
    cp.manual_seed(2)
    block = nn.Sequential(nn.Conv2d(3, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(), nn.MaxPool2d(3, 1, 1))
    block.double()
    reused = nn.Sequential(block, block)
    copies = copy.deepcopy(block), copy.deepcopy(block)
    twice_updated = copy.deepcopy(block)
    twice_updated(twice_updated(normal((2, 3, 6, 6), 3)))
    unrolled = nn.Sequential(*copies)
    x, g = normal((2, 3, 6, 6), 3), normal((2, 3, 6, 6), 4)
    grad, grad_unrolled = unrolled_gradients(reused, unrolled, x, g)
    np.testing.assert_array_equal(grad, grad_unrolled)
    for (name, shared), first, second in zip(block.named_parameters(), copies[0].parameters(),
                                             copies[1].parameters()):
        np.testing.assert_array_equal(shared.grad, second.grad + first.grad, err_msg=name)
    # Both uses updated the running statistics, one after the other as two calls do.
    np.testing.assert_array_equal(block[1].running_mean, twice_updated[1].running_mean)


def test_a_module_in_both_paths_of_a_residual_block():
    cp.manual_seed(3)
    relu = nn.ReLU()
    linear = nn.Linear(4, 4).double()
    reused = nn.Residual(nn.Sequential(linear, relu), relu)
    unrolled = nn.Residual(nn.Sequential(copy.deepcopy(linear), nn.ReLU()), nn.ReLU())
    x, g = normal((3, 4), 5), normal((3, 4), 6)
    grad, grad_unrolled = unrolled_gradients(reused, unrolled, x, g)
    np.testing.assert_array_equal(grad, grad_unrolled)


class Twice(nn.Module):
    """A user's module that applies the same layer twice."""

    def __init__(self, layer):
        super().__init__()
        self.layer = layer

    def forward(self, x):
        return self.layer(self.layer(x))

    def backward(self, grad_output, need_input_grad=True):
        return self.layer.backward(self.layer.backward(grad_output), need_input_grad)


def test_a_layer_applied_twice_by_a_users_module_matches_finite_differences():
    cp.manual_seed(4)
    model = Twice(nn.Conv2d(2, 2, 3, padding=1).double())
    x, g = normal((1, 2, 4, 4), 7), normal((1, 2, 4, 4), 8)
    model(x)
    model.zero_grad()
    grad = model.backward(g)
    weight = model.layer.weight
    step = 1e-6

    def central_difference(array, index):
        saved = array[index]
        array[index] = saved + step
        above = (model(x) * g).sum()
        array[index] = saved - step
        below = (model(x) * g).sum()
        array[index] = saved
        return (above - below) / (2 * step)

    for index in [(0, 0, 0, 0), (0, 1, 2, 3), (0, 0, 3, 1)]:
        assert grad[index] == pytest.approx(central_difference(x, index), rel=1e-6)
    for index in [(0, 0, 0, 0), (1, 0, 2, 1), (1, 1, 1, 1)]:
        assert weight.grad[index] == pytest.approx(central_difference(weight.data, index), rel=1e-6)


def test_each_forward_serves_one_backward():
    relu = nn.ReLU()
    with pytest.raises(RuntimeError, match="ReLU.backward: no forward call left to differentiate"):
        relu.backward(np.ones(2))
    relu(np.array([1.0, -1.0]))
    np.testing.assert_array_equal(relu.backward(np.ones(2)), [1.0, 0.0])
    with pytest.raises(RuntimeError, match="no forward call left"):
        relu.backward(np.ones(2))
    # need_input_grad=False consumes its call too.
    relu(np.array([1.0, -1.0]))
    assert relu.backward(np.ones(2), need_input_grad=False) is None
    with pytest.raises(RuntimeError, match="no forward call left"):
        relu.backward(np.ones(2))


def test_forward_passes_without_backward_keep_only_the_latest():
    cp.manual_seed(5)
    model = cp.models.lenet5()
    x = normal((2, 1, 28, 28)).astype(np.float32)
    for _ in range(4):  # inference: no backward follows
        model(x)
    assert all(len(layer.__dict__.get("_saved", [])) <= 1 for layer in model.modules())
    model.zero_grad()
    model.backward(np.ones((2, 10), np.float32))
    with pytest.raises(RuntimeError, match="no forward call left"):
        model.backward(np.ones((2, 10), np.float32))
