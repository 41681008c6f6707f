"""convpool.torch: the custom operators pass torch.library.opcheck (schema, fake tensors, autograd
registration, tracing) and float64 gradcheck, the tie rules reach loss.backward(), the nn drop-ins
equal torch.nn with the same weights, convert swaps them in, and bad tensors are refused."""

import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import convpool as cp  # noqa: E402
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
    torch.library.opcheck(torch.ops.convpool.avg_pool2d.default, (x, [3, 3], [2, 2], [1, 1], True, False, 5))
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


def test_batch_norm_adaptive_max_and_transposed_convolution_pass_opcheck():
    x = distinct((3, 4, 7, 6), seed=6)
    weight = torch.rand(4, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(4, dtype=torch.float64, requires_grad=True)
    for training, statistics in ((True, True), (True, False), (False, True)):
        running = (torch.rand(4, dtype=torch.float64), torch.rand(4, dtype=torch.float64) + 0.5) if statistics \
            else (None, None)
        torch.library.opcheck(torch.ops.convpool.batch_norm2d.default,
                              (x, weight, bias, *running, training, 0.1, 1e-5))
    torch.library.opcheck(torch.ops.convpool.batch_norm2d.default, (x, None, None, None, None, True, 0.1, 1e-5))
    for tie_break in ("first", "last", "split"):
        torch.library.opcheck(torch.ops.convpool.adaptive_max_pool2d.default, (x, [4, 4], tie_break, "propagate"))
    kernel = torch.randn(4, 3, 3, 2, dtype=torch.float64, requires_grad=True)
    channel_bias = torch.randn(6, dtype=torch.float64, requires_grad=True)
    torch.library.opcheck(torch.ops.convpool.conv_transpose2d.default,
                          (x, kernel, None, [2, 1], [1, 0], [1, 0], 1, [1, 1]))
    torch.library.opcheck(torch.ops.convpool.conv_transpose2d.default,
                          (x, kernel[:, :, :, :], channel_bias[:6], [1, 2], [0, 1], [0, 1], 2, [1, 1]))


def test_the_data_reaches_the_kernel_without_a_copy():
    from convpool.torch._operators import _array

    x = torch.randn(2, 3, 8, 8)
    assert _array("f", "x", x).__array_interface__["data"][0] == x.data_ptr()
    running_mean, running_var = torch.zeros(3), torch.ones(3)
    cpt.batch_norm(x, running_mean, running_var, training=True, momentum=1.0)
    # momentum 1 makes the running mean the batch mean: written into the tensors' own memory.
    torch.testing.assert_close(running_mean, x.mean(dim=(0, 2, 3)))
    torch.testing.assert_close(running_var, x.var(dim=(0, 2, 3), unbiased=True))


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
    gamma = torch.rand(4, dtype=torch.float64, requires_grad=True)
    beta = torch.randn(4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda *t: cpt.batch_norm(t[0], None, None, *t[1:], training=True),
                                    (x, gamma, beta))
    running = (torch.rand(4, dtype=torch.float64), torch.rand(4, dtype=torch.float64) + 0.5)
    assert torch.autograd.gradcheck(lambda *t: cpt.batch_norm(t[0], *running, *t[1:]), (x, gamma, beta))
    assert torch.autograd.gradcheck(lambda t: cpt.adaptive_max_pool2d(t, (4, 5)), (x,))
    kernel = torch.randn(4, 3, 2, 3, dtype=torch.float64, requires_grad=True)
    channel_bias = torch.randn(6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda *t: cpt.conv_transpose2d(*t, stride=2, padding=1, output_padding=1, groups=2), (x, kernel, channel_bias))
    row = distinct((2, 3, 11), seed=8)
    assert torch.autograd.gradcheck(lambda t: cpt.max_pool1d(t, 3, 2, 1), (row,))
    assert torch.autograd.gradcheck(lambda t: cpt.avg_pool1d(t, 3, 2, 1), (row,))
    assert torch.autograd.gradcheck(lambda *t: cpt.conv1d(*t, padding=1), (row, kernel[:2, :, 0], channel_bias[:2]))


def test_tie_rules_reach_autograd():
    # docs/semantics.md's example: [0, 5, 5, 0], windows of 2 at stride 1.
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


def modern_cnn(nn):
    return torch.nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
                               nn.AdaptiveMaxPool2d((5, 6)), nn.ConvTranspose2d(8, 4, 3, stride=2, padding=1),
                               nn.BatchNorm2d(4, momentum=None), torch.nn.Flatten(1, 2),
                               nn.Conv1d(4 * 9, 5, 3, padding=1), nn.MaxPool1d(2, ceil_mode=True),
                               nn.AvgPool1d(2, stride=1), torch.nn.Flatten(), torch.nn.Linear(5 * 5, 3))


def test_batch_norm_adaptive_max_transposed_and_one_d_modules_equal_torch_nn():
    torch.manual_seed(2)
    theirs = modern_cnn(torch.nn).double()
    ours = modern_cnn(cpt).double()
    ours.load_state_dict(theirs.state_dict())
    for step in range(2):
        x = torch.randn(4, 3, 12, 12, dtype=torch.float64)
        expected, out = theirs(x), ours(x)
        torch.testing.assert_close(out, expected)
        expected.square().sum().backward()
        out.square().sum().backward()
    for (name, a), b in zip(ours.named_parameters(), theirs.parameters()):
        torch.testing.assert_close(a.grad, b.grad, msg=name)
    for (name, a), b in zip(ours.named_buffers(), theirs.buffers()):
        torch.testing.assert_close(a, b, msg=name)  # running statistics and batch counters
    ours.eval(), theirs.eval()
    torch.testing.assert_close(ours(x), theirs(x))
    y = torch.randn(4, 8, 6, 6, dtype=torch.float64)  # forward(y, output_size) picks the output padding
    torch.testing.assert_close(ours[4](y, (12, 12)), theirs[4](y, (12, 12)))


def test_drop_ins_compile_into_one_graph():
    torch.manual_seed(3)
    theirs = small_cnn(torch.nn)
    ours = small_cnn(cpt)
    ours.load_state_dict(theirs.state_dict())
    compiled = torch.compile(ours, fullgraph=True)
    x = torch.randn(4, 3, 16, 16)
    out, expected = compiled(x), theirs(x)
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-5)
    out.sum().backward()
    expected.sum().backward()
    for (name, a), b in zip(ours.named_parameters(), theirs.parameters()):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-4, atol=1e-5, msg=name)


def test_convert_runs_a_resnet18_training_step():
    import copy

    from convpool import models
    from convpool.nn import to_torch

    # In float64: in float32, a pre-activation within rounding of 0 (a few per ResNet-18 step at
    # some initialisations) takes another side of a ReLU in each library, and the gradients differ
    # by whole values from there on.
    cp.manual_seed(4)
    torch.manual_seed(4)
    model = to_torch(models.resnet18(num_classes=10)).double()
    reference = copy.deepcopy(model)
    cpt.convert(model)
    swapped = {type(module).__name__ for module in model.modules() if type(module).__module__ == "convpool.torch.nn"}
    assert {"Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d", "AdaptiveAvgPool2d"} <= swapped
    x, labels = torch.randn(2, 3, 64, 64, dtype=torch.float64), torch.tensor([1, 7])
    for network in (model, reference):
        optimizer = torch.optim.SGD(network.parameters(), lr=0.1, momentum=0.9)
        loss = torch.nn.functional.cross_entropy(network(x), labels)
        loss.backward()
        optimizer.step()
    for (name, a), b in zip(model.named_parameters(), reference.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12, msg=name)


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


def test_padding_convpool_does_not_take_is_refused_and_left_alone_by_convert():
    with pytest.raises(ValueError, match="convpool.torch.Conv1d: only padding_mode='zeros' is supported, got "
                                         "'reflect'"):
        cpt.Conv1d(1, 1, 3, padding_mode="reflect")
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 1, 3, padding="same"),
                                torch.nn.Conv1d(1, 1, 3, padding_mode="circular"))
    cpt.convert(model)
    assert type(model[0]) is cpt.Conv2d and type(model[1]) is torch.nn.Conv1d


@pytest.mark.parametrize("kernel, dilation", [((3, 3), 1), ((2, 4), 1), ((4, 3), 2)])
def test_same_and_valid_padding_are_pytorchs(kernel, dilation):
    # An odd total padding puts the extra zero row or column at the end, as PyTorch does.
    x = distinct((2, 3, 8, 9), seed=7)
    weight = distinct((4, 3) + kernel, seed=8)
    for padding in ("same", "valid"):
        ours = cpt.conv2d(x, weight, padding=padding, dilation=dilation)
        torch.testing.assert_close(ours, torch.nn.functional.conv2d(x, weight, padding=padding, dilation=dilation))
        assert torch.autograd.gradcheck(lambda t, w: cpt.conv2d(t, w, padding=padding, dilation=dilation),
                                        (x, weight))
    row, row_weight = distinct((2, 3, 11), seed=9), distinct((4, 3, kernel[1]), seed=10)
    torch.testing.assert_close(cpt.conv1d(row, row_weight, padding="same", dilation=dilation),
                               torch.nn.functional.conv1d(row, row_weight, padding="same", dilation=dilation))
    layer = torch.nn.Conv2d(3, 4, kernel, padding="same", dilation=dilation).double()
    torch.testing.assert_close(cpt.convert(torch.nn.Sequential(layer))(x), layer(x))
    with pytest.raises(ValueError, match="convpool.torch.conv2d: padding='same' is not supported for strided"):
        cpt.conv2d(x, weight, stride=2, padding="same")
    with pytest.raises(ValueError, match="convpool.torch.conv2d: padding must be an int, a tuple of ints, 'valid' or "
                                         "'same', got 'full'"):
        cpt.conv2d(x, weight, padding="full")


def test_fake_shapes_refuse_what_the_kernels_refuse():
    # A fake tensor of a shape the real call cannot have would let tracing succeed where running fails.
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode():
        x = torch.empty(2, 4, 3, 3)
        cases = [
            (lambda: torch.ops.convpool.conv2d(x, torch.empty(4, 4, 5, 5), None, [1, 1], [0, 0], [1, 1], 1),
             r"convpool.torch.conv2d: the window does not fit the input of shape \(2, 4, 3, 3\)"),
            (lambda: torch.ops.convpool.conv2d(x, torch.empty(4, 3, 1, 1), None, [1, 1], [0, 0], [1, 1], 1),
             r"convpool.torch.conv2d: weight of shape \(4, 3, 1, 1\) with groups=1 does not fit"),
            (lambda: torch.ops.convpool.max_pool2d(x, [5, 5], [1, 1], [0, 0], [1, 1], False, "first", "propagate"),
             "convpool.torch.max_pool2d: the window does not fit"),
            (lambda: torch.ops.convpool.avg_pool2d(x, [4, 4], [1, 1], [0, 0], False, True),
             "convpool.torch.avg_pool2d: the window does not fit"),
        ]
        for call, message in cases:
            with pytest.raises(ValueError, match=message):
                call()


def test_batch_norm_momentum_and_eps_must_be_numbers():
    x = torch.randn(2, 3, 4, 4)
    with pytest.raises(TypeError, match="convpool.torch.batch_norm: momentum must be a float, got None"):
        cpt.batch_norm(x, torch.zeros(3), torch.ones(3), training=True, momentum=None)


def test_fractional_max_pool2d_equals_torch_with_its_generator():
    x = distinct((2, 3, 11, 10), seed=9)
    samples = torch.rand(2, 3, 2, dtype=torch.float64)
    torch.library.opcheck(torch.ops.convpool.fractional_max_pool2d.default, (x, [3, 2], [5, 6], samples))
    assert torch.autograd.gradcheck(lambda t: cpt.fractional_max_pool2d(t, 3, (5, 4), _random_samples=samples), (x,))
    theirs, ours = torch.nn.FractionalMaxPool2d(2, output_ratio=0.5), cpt.FractionalMaxPool2d(2, output_ratio=0.5)
    for module in (theirs, ours):
        torch.manual_seed(10)  # the same draw of samples from torch's generator
        out = module(x)
        out.square().sum().backward()
        module.result, module.grad, x.grad = out.detach(), x.grad, None
    torch.testing.assert_close(ours.result, theirs.result)
    torch.testing.assert_close(ours.grad, theirs.grad)
    model = torch.nn.Sequential(torch.nn.FractionalMaxPool2d(3, output_size=4))
    cpt.convert(model)
    assert type(model[0]) is cpt.FractionalMaxPool2d and model[0].output_size == (4, 4)


def test_max_unpool2d_equals_torch():
    theirs, ours = torch.nn.MaxUnpool2d(2), cpt.MaxUnpool2d(2)
    for shape, output_size in (((2, 3, 8, 6), []), ((2, 3, 9, 7), [9, 7])):  # the default size, and a given one
        x = distinct(shape, seed=11)
        pooled, indices = torch.nn.functional.max_pool2d(x.detach(), 2, return_indices=True)
        pooled.requires_grad_(True)
        torch.library.opcheck(torch.ops.convpool.max_unpool2d.default, (pooled, indices, [2, 2], [2, 2], [0, 0],
                                                                          output_size))
        assert torch.autograd.gradcheck(lambda t: cpt.max_unpool2d(t, indices, 2, output_size=output_size or None),
                                        (pooled,))
        torch.testing.assert_close(ours(pooled, indices, output_size=output_size or None),
                                   theirs(pooled, indices, output_size=output_size or None))
    model = torch.nn.ModuleList([torch.nn.MaxUnpool2d(3, stride=2, padding=1)])
    cpt.convert(model)
    assert type(model[0]) is cpt.MaxUnpool2d and model[0].padding == (1, 1)


def test_every_operator_has_an_autograd_formula():
    # Without one, torch differentiates an operator (a backward one under create_graph=True) as a
    # silent zero with a UserWarning.
    names = list(torch.ops.convpool)
    assert len(names) == 24
    for name in names:
        assert torch._C._dispatch_has_kernel_for_dispatch_key(f"convpool::{name}", "Autograd"), name


def second_derivative_cases():
    samples = torch.rand(2, 3, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    _, unpool_indices = torch.nn.functional.max_pool2d(distinct((2, 3, 7, 7), seed=2), 2, return_indices=True)
    return {
        "conv2d": (lambda x, w, b: cpt.conv2d(x, w, b, stride=2, padding=1, dilation=(1, 2)),
                   [(2, 4, 9, 9), (6, 4, 3, 3), (6,)]),
        "conv2d groups": (lambda x, w: cpt.conv2d(x, w, groups=2), [(2, 4, 6, 6), (4, 2, 3, 3)]),
        "conv_transpose2d": (lambda x, w, b: cpt.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1),
                             [(2, 3, 4, 4), (3, 4, 3, 3), (4,)]),
        "avg_pool2d": (lambda x: cpt.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False),
                       [(2, 3, 7, 7)]),
        "adaptive_avg_pool2d": (lambda x: cpt.adaptive_avg_pool2d(x, (3, 4)), [(2, 3, 7, 9)]),
        "relu": (lambda x: cpt.relu(x) ** 3, [(2, 3, 4, 4)]),
        "max_pool2d": (lambda x: cpt.max_pool2d(x, 3, 2, 1) ** 2, [(2, 3, 7, 7)]),
        "max_pool2d last, NaN ignored": (lambda x: cpt.max_pool2d(x, 3, 1, tie_break="last", nan="ignore") ** 2,
                                         [(2, 3, 5, 5)]),
        "adaptive_max_pool2d": (lambda x: cpt.adaptive_max_pool2d(x, (3, 4)) ** 2, [(2, 3, 7, 9)]),
        "fractional_max_pool2d": (lambda x: cpt.fractional_max_pool2d(x, 2, (4, 4), _random_samples=samples) ** 2,
                                  [(2, 3, 7, 7)]),
        "stochastic_pool2d": (lambda x: cpt.stochastic_pool2d(x.abs() + 1, 2, seed=3) ** 2, [(2, 3, 6, 6)]),
        "max_unpool2d": (lambda x: cpt.max_unpool2d(x, unpool_indices, 2, output_size=(7, 7)) ** 2, [(2, 3, 3, 3)]),
    }


@pytest.mark.parametrize("name", sorted(second_derivative_cases()))
def test_second_derivatives_pass_gradgradcheck(name):
    function, shapes = second_derivative_cases()[name]
    inputs = [distinct(shape, seed=index).requires_grad_(True) for index, shape in enumerate(shapes)]
    assert torch.autograd.gradgradcheck(function, inputs)


def test_second_derivatives_of_conv2d_are_pytorchs():
    x, weight = distinct((1, 2, 6, 6), seed=4).requires_grad_(True), distinct((3, 2, 3, 3), seed=5).requires_grad_(True)
    results = []
    for conv in (cpt.conv2d, torch.nn.functional.conv2d):
        (grad_x,) = torch.autograd.grad(conv(x, weight, padding=1).pow(2).sum(), x, create_graph=True)
        results.append(torch.autograd.grad(grad_x.pow(2).sum(), (x, weight)))
    for ours, theirs in zip(*results):
        assert theirs.abs().sum() > 0
        torch.testing.assert_close(ours, theirs)


@pytest.mark.parametrize("function, message", [
    (lambda x: cpt.lp_pool2d(x, 2, 2), "convpool.torch.lp_pool2d: second derivatives .* are not implemented: the "
                                       "backward is not linear in x; use torch.nn.functional.lp_pool2d"),
    (lambda x: cpt.batch_norm(x, None, None, training=True), "convpool.torch.batch_norm: second derivatives"),
    (lambda x: cpt.max_pool2d(x, 3, 1, tie_break="split"), "tie_break='split' divides among ties"),
    (lambda x: cpt.adaptive_max_pool2d(x, 3, tie_break="split"), "tie_break='split' divides among ties"),
    (lambda x: cpt.stochastic_pool2d(x.abs(), 2, training=False), "stochastic_pool2d: .* in evaluation the backward "
                                                                   "is not linear in x$"),
])
def test_second_derivatives_that_are_not_implemented_raise_instead_of_giving_zero(function, message):
    x = distinct((2, 3, 6, 6), seed=6).requires_grad_(True)
    (grad_x,) = torch.autograd.grad(function(x).pow(2).sum(), x, create_graph=True)
    with pytest.raises(NotImplementedError, match=message):
        torch.autograd.grad(grad_x.pow(2).sum(), x)
