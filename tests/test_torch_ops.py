"""convpool.torch: the custom operators pass torch.library.opcheck (schema, fake tensors, autograd
registration, tracing) and float64 gradcheck, the tie rules reach loss.backward(), the nn drop-ins
equal torch.nn with the same weights, convert swaps them in, and bad tensors are refused."""

import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import convpool.torch as cpt  # noqa: E402


def distinct(shape, seed):
    """float64 values without ties, so that max pooling is differentiable for gradcheck."""
    values = np.random.default_rng(seed).permutation(int(np.prod(shape))).reshape(shape) / 7.0
    return torch.tensor(values, requires_grad=True)


@pytest.mark.parametrize("args", [
    ((2, 2), (2, 2), (0, 0), (1, 1), False, "first", "propagate"),
    ((3, 3), (2, 1), (1, 1), (1, 1), True, "last", "ignore"),
    ((2, 3), (1, 2), (0, 1), (2, 1), False, "split", "propagate"),
])
def test_max_pool2d_passes_opcheck(args):
    x = distinct((2, 3, 9, 8), seed=1)
    torch.library.opcheck(torch.ops.convpool.max_pool2d.default, (x,) + args)


def test_avg_pool2d_and_conv2d_pass_opcheck():
    x = distinct((2, 3, 9, 8), seed=2)
    torch.library.opcheck(torch.ops.convpool.avg_pool2d.default, (x, [3, 3], [2, 2], [1, 1], True, False))
    weight = torch.randn(4, 3, 3, 2, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(4, dtype=torch.float64, requires_grad=True)
    torch.library.opcheck(torch.ops.convpool.conv2d.default, (x, weight, bias, [1, 2], [1, 0], [1, 1], 1))
    torch.library.opcheck(torch.ops.convpool.conv2d.default, (x, weight, None, [2, 1], [0, 1], [2, 1], 1))


def test_lp_adaptive_and_relu_pass_opcheck():
    x = distinct((2, 3, 9, 8), seed=4)
    torch.library.opcheck(torch.ops.convpool.lp_pool2d.default, (x, 2.5, [3, 2], [2, 2], True))
    torch.library.opcheck(torch.ops.convpool.adaptive_avg_pool2d.default, (x, [4, 3]))
    torch.library.opcheck(torch.ops.convpool.relu.default, (x - 500 / 7,))


def test_stochastic_pool2d_passes_opcheck_and_matches_the_numpy_function():
    x = distinct((2, 3, 8, 9), seed=5)
    for training in (True, False):
        torch.library.opcheck(torch.ops.convpool.stochastic_pool2d.default, (x, [2, 3], [2, 2], training, 7))
    out = cpt.stochastic_pool2d(x, (2, 3), 2, seed=7)
    out.backward(torch.ones_like(out))
    import convpool as cp
    expected, indices = cp.stochastic_pool2d(x.detach().numpy(), (2, 3), 2, seed=7, return_indices=True)
    np.testing.assert_array_equal(out.detach().numpy(), expected)
    np.testing.assert_array_equal(x.grad.numpy(),
                                  cp.stochastic_pool2d_backward(np.ones_like(expected), x.detach().numpy(), indices,
                                                                (2, 3), 2))
    torch.manual_seed(3)
    first = cpt.StochasticPool2d(2)(x)
    torch.manual_seed(3)
    assert torch.equal(first, cpt.StochasticPool2d(2)(x))  # torch's generator gives the seeds
    positive = (x.detach() + 1).requires_grad_(True)  # finite differences must not step below zero
    assert torch.autograd.gradcheck(lambda t: cpt.stochastic_pool2d(t, 2, training=False), (positive,))


def test_gradients_match_finite_differences():
    x = distinct((2, 4, 7, 6), seed=3)
    assert torch.autograd.gradcheck(lambda t: cpt.max_pool2d(t, 3, 2, 1, ceil_mode=True), (x,))
    assert torch.autograd.gradcheck(lambda t: cpt.avg_pool2d(t, 3, 2, 1, count_include_pad=False), (x,))
    weight = torch.randn(6, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda *t: cpt.conv2d(*t, stride=2, padding=1, groups=2), (x, weight, bias))
    assert torch.autograd.gradcheck(lambda t: cpt.lp_pool2d(t, 3, 2), (x,))
    assert torch.autograd.gradcheck(lambda t: cpt.adaptive_avg_pool2d(t, (3, None)), (x,))
    assert torch.autograd.gradcheck(lambda t: cpt.relu(t - 20.07), (x,))


def test_tie_rules_reach_autograd():
    # README's example: [0, 5, 5, 0], windows of 2 at stride 1.
    for tie_break, expected in (("first", [0, 2, 1, 0]), ("last", [0, 1, 2, 0]), ("split", [0, 1.5, 1.5, 0])):
        x = torch.tensor([[[[0.0, 5.0, 5.0, 0.0]]]], requires_grad=True)
        cpt.max_pool2d(x, (1, 2), stride=1, tie_break=tie_break).sum().backward()
        assert x.grad.flatten().tolist() == expected


def test_functions_equal_torch_on_channels_last_input():
    x = torch.randn(2, 8, 10, 9).contiguous(memory_format=torch.channels_last)
    weight = torch.randn(5, 8, 3, 3)
    torch.testing.assert_close(cpt.max_pool2d(x, 3, 2, 1), torch.nn.functional.max_pool2d(x, 3, 2, 1))
    torch.testing.assert_close(cpt.avg_pool2d(x, 2), torch.nn.functional.avg_pool2d(x, 2))
    torch.testing.assert_close(cpt.conv2d(x, weight, padding=1), torch.nn.functional.conv2d(x, weight, padding=1),
                               rtol=1e-4, atol=1e-4)


def small_cnn(nn):
    return torch.nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                               nn.Conv2d(8, 6, 3, stride=2, bias=False), nn.AvgPool2d(2, ceil_mode=True),
                               nn.LPPool2d(2, 2, stride=1), nn.AdaptiveAvgPool2d((2, None)),
                               torch.nn.Flatten(), torch.nn.Linear(6 * 2 * 1, 3))


def test_drop_in_modules_equal_torch_nn():
    torch.manual_seed(0)
    theirs = small_cnn(torch.nn).double()
    ours = small_cnn(cpt).double()
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(4, 3, 16, 16, dtype=torch.float64)
    expected, out = theirs(x), ours(x)
    torch.testing.assert_close(out, expected)
    expected.sum().backward()
    out.sum().backward()
    for (name, a), b in zip(ours.named_parameters(), theirs.parameters()):
        torch.testing.assert_close(a.grad, b.grad, msg=name)


def test_convert_swaps_layers_and_keeps_the_weights():
    torch.manual_seed(1)
    model = small_cnn(torch.nn).double()
    x = torch.randn(2, 3, 16, 16, dtype=torch.float64)
    expected = model(x)
    weight = model[0].weight
    converted = cpt.convert(model, tie_break="split")
    assert converted is model and isinstance(model[0], cpt.Conv2d) and model[0].weight is weight
    assert isinstance(model[2], cpt.MaxPool2d) and model[2].tie_break == "split"
    assert isinstance(model[1], cpt.ReLU) and isinstance(model[4], cpt.AvgPool2d)
    assert isinstance(model[5], cpt.LPPool2d) and isinstance(model[6], cpt.AdaptiveAvgPool2d)
    assert type(model[8]) is torch.nn.Linear
    torch.testing.assert_close(model(x), expected)


@pytest.mark.parametrize("tensor, message", [
    (torch.zeros(1, 1, 4, 4, dtype=torch.int64), "has dtype torch.int64"),
    (torch.zeros(1, 1, 4, 4, dtype=torch.float16), "has dtype torch.float16"),
])
def test_bad_tensors_are_refused(tensor, message):
    with pytest.raises(TypeError, match=message):
        cpt.max_pool2d(tensor, 2)


def test_import_without_torch_names_the_extra():
    code = "import sys; sys.modules['torch'] = None; import convpool.torch"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "pip install 'convpool[torch]'" in result.stderr
