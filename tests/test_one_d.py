"""max_pool1d, avg_pool1d and conv1d (and their layers): against the 2-D NumPy references on the
height-1 view, against PyTorch's 1-D functions when installed (values, indices, gradients), the
tie rules, argument forms and errors that name the 1-D function."""

import numpy as np
import pytest

import convpool as cp
import reference as ref


def pool_configs(seed, count):
    rng = np.random.default_rng(seed)
    configs = []
    while len(configs) < count:
        k, s, d = int(rng.integers(1, 6)), int(rng.integers(1, 4)), int(rng.integers(1, 3))
        p = int(rng.integers(0, k // 2 + 1))
        length = int(rng.integers(1, 30))
        ceil_mode = bool(rng.integers(0, 2))
        if length + 2 * p < d * (k - 1) + 1:
            continue
        shape = ((int(rng.integers(1, 4)),) if rng.integers(0, 4) else ()) + (int(rng.integers(1, 4)), length)
        configs.append((shape, k, s, p, d, ceil_mode))
    return configs


POOL_CONFIGS = pool_configs(seed=71, count=30)


def ties(shape, seed):
    rng = np.random.default_rng(seed)
    return rng.integers(-2, 3, shape).astype(np.float64)


@pytest.mark.parametrize("config", POOL_CONFIGS)
@pytest.mark.parametrize("tie_break", ["first", "last", "split"])
def test_max_pool1d_matches_the_2d_reference(config, tie_break):
    shape, k, s, p, d, ceil_mode = config
    x = ties(shape, seed=72)
    args = dict(kernel_size=k, stride=s, padding=p, dilation=d, ceil_mode=ceil_mode, tie_break=tie_break)
    out, indices = cp.max_pool1d(x, return_indices=True, **args)
    view = x[..., None, :]
    two_d = dict(kernel_size=(1, k), stride=(1, s), padding=(0, p), dilation=(1, d), ceil_mode=ceil_mode)
    expected, expected_indices = ref.max_pool2d(view, tie_break="first" if tie_break == "split" else tie_break,
                                                **two_d)
    np.testing.assert_array_equal(out, expected[..., 0, :])
    np.testing.assert_array_equal(indices, expected_indices[..., 0, :])
    grad_output = np.cos(np.arange(out.size)).reshape(out.shape)
    grad = cp.max_pool1d_backward(grad_output, x, None if tie_break == "split" else indices, **args)
    expected_grad = ref.max_pool2d_backward(grad_output[..., None, :], view, tie_break=tie_break, **two_d)
    np.testing.assert_allclose(grad, expected_grad[..., 0, :], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("config", POOL_CONFIGS)
@pytest.mark.parametrize("count_include_pad", [True, False])
def test_avg_pool1d_matches_the_2d_reference(config, count_include_pad):
    shape, k, s, p, _, ceil_mode = config
    x = np.random.default_rng(73).standard_normal(shape)
    args = dict(kernel_size=k, stride=s, padding=p, ceil_mode=ceil_mode, count_include_pad=count_include_pad)
    out = cp.avg_pool1d(x, **args)
    two_d = dict(kernel_size=(1, k), stride=(1, s), padding=(0, p), ceil_mode=ceil_mode,
                 count_include_pad=count_include_pad)
    np.testing.assert_allclose(out, ref.avg_pool2d(x[..., None, :], **two_d)[..., 0, :], rtol=1e-12)
    grad_output = np.cos(np.arange(out.size)).reshape(out.shape)
    expected = ref.avg_pool2d_backward(grad_output[..., None, :], x.shape[:-1] + (1, x.shape[-1]), **two_d)
    np.testing.assert_allclose(cp.avg_pool1d_backward(grad_output, x.shape, **args), expected[..., 0, :],
                               rtol=1e-12, atol=1e-15)


def conv_configs(seed, count):
    rng = np.random.default_rng(seed)
    configs = []
    while len(configs) < count:
        groups = int(rng.integers(1, 3))
        cin, cout = groups * int(rng.integers(1, 5)), groups * int(rng.integers(1, 6))
        k, s, d = int(rng.integers(1, 6)), int(rng.integers(1, 4)), int(rng.integers(1, 3))
        padding = [0, 1, 2, "valid", "same"][int(rng.integers(0, 5))]
        if padding == "same":
            s = 1
        length = int(rng.integers(1, 40))
        total = {"valid": 0, "same": d * (k - 1)}.get(padding, 2 * padding if not isinstance(padding, str) else 0)
        if length + total < d * (k - 1) + 1:
            continue
        shape = ((int(rng.integers(1, 4)),) if rng.integers(0, 4) else ()) + (cin, length)
        configs.append(dict(shape=shape, weight=(cout, cin // groups, k), stride=s, padding=padding, dilation=d,
                            groups=groups))
    return configs


CONV_CONFIGS = conv_configs(seed=74, count=30)


@pytest.mark.parametrize("config", CONV_CONFIGS)
def test_conv1d_matches_the_2d_reference(config):
    rng = np.random.default_rng(75)
    x, weight = rng.standard_normal(config["shape"]), rng.standard_normal(config["weight"])
    bias = rng.standard_normal(config["weight"][0])
    args = {key: config[key] for key in ("stride", "padding", "dilation", "groups")}
    two_d = dict(stride=(1, args["stride"]), dilation=(1, args["dilation"]), groups=args["groups"],
                 padding=args["padding"] if isinstance(args["padding"], str) else (0, args["padding"]))
    out = cp.conv1d(x, weight, bias, **args)
    np.testing.assert_allclose(out, ref.conv2d(x[..., None, :], weight[..., None, :], bias, **two_d)[..., 0, :],
                               rtol=1e-11, atol=1e-11)
    grad_output = np.cos(np.arange(out.size)).reshape(out.shape)
    expected = ref.conv2d_backward(grad_output[..., None, :], x[..., None, :], weight[..., None, :], **two_d)
    grad_input, grad_weight, grad_bias = cp.conv1d_backward(grad_output, x, weight, **args)
    np.testing.assert_allclose(grad_input, expected[0][..., 0, :], rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(grad_weight, expected[1][..., 0, :], rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(grad_bias, expected[2], rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("config", POOL_CONFIGS[:15])
def test_pooling_matches_torch(config):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    shape, k, s, p, d, ceil_mode = config
    x = np.random.default_rng(76).standard_normal(shape)
    tx = torch.tensor(x, requires_grad=True)
    expected, expected_indices = F.max_pool1d(tx, k, s, p, d, ceil_mode, return_indices=True)
    out, indices = cp.max_pool1d(x, k, s, p, d, ceil_mode, return_indices=True)
    np.testing.assert_array_equal(out, expected.detach().numpy())
    np.testing.assert_array_equal(indices, expected_indices.numpy())
    grad_output = np.random.default_rng(77).standard_normal(out.shape)
    expected.backward(torch.tensor(grad_output))
    np.testing.assert_allclose(cp.max_pool1d_backward(grad_output, x, indices, k, s, p, d, ceil_mode),
                               tx.grad.numpy(), rtol=1e-12)
    # PyTorch refuses a window that starts in the padding only at its ceil_mode edge; so does convpool.
    expected = F.avg_pool1d(torch.tensor(x), k, s, p, ceil_mode, count_include_pad=False)
    np.testing.assert_allclose(cp.avg_pool1d(x, k, s, p, ceil_mode, count_include_pad=False), expected.numpy(),
                               rtol=1e-12)


@pytest.mark.filterwarnings("ignore:Using padding='same'")  # PyTorch's note on its own copy
@pytest.mark.parametrize("config", CONV_CONFIGS[:15])
def test_conv1d_matches_torch(config):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(78)
    x, weight = rng.standard_normal(config["shape"]), rng.standard_normal(config["weight"])
    args = {key: config[key] for key in ("stride", "padding", "dilation", "groups")}
    expected = torch.nn.functional.conv1d(torch.tensor(x), torch.tensor(weight), **args)
    np.testing.assert_allclose(cp.conv1d(x, weight, **args), expected.numpy(), rtol=1e-10, atol=1e-10)


def test_layers_match_torch():
    torch = pytest.importorskip("torch")
    cp.manual_seed(5)
    ours = cp.nn.Sequential(cp.nn.Conv1d(3, 8, 5, padding=2), cp.nn.ReLU(), cp.nn.MaxPool1d(2),
                            cp.nn.Conv1d(8, 4, 3, stride=2, bias=False), cp.nn.AvgPool1d(3, stride=1, padding=1),
                            cp.nn.Flatten(), cp.nn.Linear(4 * 7, 2)).double()
    assert repr(ours[0]) == "Conv1d(3, 8, kernel_size=(5,), stride=(1,), padding=(2,))"
    theirs = cp.nn.to_torch(ours)
    x = np.random.default_rng(79).standard_normal((2, 3, 30))
    tx = torch.tensor(x, requires_grad=True)
    expected = theirs(tx)
    out = ours(x)
    np.testing.assert_allclose(out, expected.detach().numpy(), rtol=1e-10, atol=1e-12)
    grad_output = np.random.default_rng(80).standard_normal(out.shape)
    expected.backward(torch.tensor(grad_output))
    np.testing.assert_allclose(ours.backward(grad_output), tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    for (name, parameter), tensor in zip(ours.named_parameters(), theirs.parameters()):
        np.testing.assert_allclose(parameter.grad, tensor.grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=name)


def test_tie_rules_hold_in_one_dimension():
    # docs/semantics.md's [0, 5, 5, 0] with windows of 3 at stride 1: both windows tie between the fives.
    x = np.array([[[0.0, 5.0, 5.0, 0.0]]])
    ones = np.ones((1, 1, 2))
    for tie_break, expected in (("first", [0, 2, 0, 0]), ("last", [0, 0, 2, 0]), ("split", [0, 1, 1, 0])):
        _, indices = cp.max_pool1d(x, 3, 1, return_indices=True, tie_break=tie_break)
        grad = cp.max_pool1d_backward(ones, x, None if tie_break == "split" else indices, 3, 1, tie_break=tie_break)
        np.testing.assert_array_equal(grad[0, 0], expected)


def test_argument_forms():
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    np.testing.assert_array_equal(cp.max_pool1d(input=x, kernel_size=(2,), stride=()), cp.max_pool1d(x, 2))
    np.testing.assert_array_equal(cp.avg_pool1d(x, [2], stride=None, padding=(1,)), cp.avg_pool1d(x, 2, 2, 1))
    weight = np.ones((5, 3, 3), np.float32)
    assert cp.conv1d(x[0], weight, padding="same").shape == (5, 4)


@pytest.mark.parametrize("call, error, message", [
    (lambda x: cp.max_pool1d(x, 9), ValueError, "max_pool1d: kernel_size=(1, 9) too large"),
    (lambda x: cp.max_pool1d(x, (2, 2)), TypeError, "max_pool1d: kernel_size must be an int or a 1-element sequence, got (2, 2)"),
    (lambda x: cp.max_pool1d(x, 2.5), TypeError, "max_pool1d: kernel_size must be an int or a 1-element sequence, got 2.5"),
    (lambda x: cp.avg_pool1d(x[0, 0], 2), ValueError, "avg_pool1d: x must be (N, C, L) or (C, L), got shape (4,)"),
    (lambda x: cp.conv1d(x, np.ones((2, 3, 3, 3), np.float32)), ValueError, "conv1d: weight must be (C_out, C_in / groups, k), got shape (2, 3, 3, 3)"),
    (lambda x: cp.conv1d(x, np.ones((2, 2, 3), np.float32)), ValueError, "conv1d: weight shape (2, 2, 1, 3) needs"),
    (lambda x: cp.conv1d(x, np.ones((2, 3, 3), np.float64)), TypeError, "conv1d: weight"),
    (lambda x: cp.avg_pool1d_backward(np.ones((2, 3, 2)), (2, 3), 2), ValueError, "avg_pool1d_backward:"),
])
def test_errors_name_the_1d_function(call, error, message):
    x = np.zeros((2, 3, 4), np.float32)
    with pytest.raises(error) as raised:
        call(x)
    assert message in str(raised.value)
