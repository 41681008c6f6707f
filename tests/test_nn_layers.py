"""convpool.nn layers and losses: finite-difference gradients in float64, NumPy references for the
forward passes, and the Module protocol (parameters, modes, state dicts, repr)."""

import numpy as np
import pytest

import convpool as cp
from convpool import nn


def finite_difference_check(module, x, *, samples=12, seed=0, eps=1e-6, tolerance=1e-6):
    """Checks backward against central differences of sum(forward(x) * R), for the input and
    every parameter, at a few random entries of each."""
    rng = np.random.default_rng(seed)
    x = x.astype(np.float64)
    weights = rng.standard_normal(module(x).shape)

    def objective():
        return float((module(x) * weights).sum())

    module.zero_grad()
    module(x)
    grad_input = module.backward(weights)
    targets = [("input", x, grad_input)] + [(name, p.data, p.grad) for name, p in module.named_parameters()]
    for name, array, analytic in targets:
        assert analytic is not None and analytic.shape == array.shape, name
        flat, flat_grad = array.reshape(-1), analytic.reshape(-1)
        for index in rng.choice(flat.size, size=min(samples, flat.size), replace=False):
            saved = flat[index]
            flat[index] = saved + eps
            plus = objective()
            flat[index] = saved - eps
            minus = objective()
            flat[index] = saved
            numeric = (plus - minus) / (2 * eps)
            assert abs(numeric - flat_grad[index]) <= tolerance * (1 + abs(numeric)), (name, index)


def normal(shape, seed=1):
    return np.random.default_rng(seed).standard_normal(shape)


def away_from_zero(shape, seed=1):
    """Values with |x| >= 0.05: finite differences never straddle the kink of ReLU or a tie."""
    values = normal(shape, seed)
    return np.where(values >= 0, values + 0.05, values - 0.05)


GRADIENT_CASES = {
    "Conv2d": (lambda: nn.Conv2d(3, 4, 3, stride=2, padding=1), (2, 3, 7, 6)),
    "Conv2d grouped dilated": (lambda: nn.Conv2d(4, 6, (3, 2), dilation=(2, 1), groups=2, bias=False), (2, 4, 8, 7)),
    "Conv2d same": (lambda: nn.Conv2d(2, 3, 4, padding="same"), (1, 2, 6, 6)),
    "Linear": (lambda: nn.Linear(5, 3), (4, 5)),
    "Linear 3-D input": (lambda: nn.Linear(5, 3, bias=False), (2, 4, 5)),
    "MaxPool2d overlapping": (lambda: nn.MaxPool2d(3, stride=2, padding=1), (2, 3, 7, 7)),
    "MaxPool2d split": (lambda: nn.MaxPool2d(2, stride=1, tie_break="split"), (1, 2, 5, 5)),
    "AvgPool2d": (lambda: nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True, count_include_pad=False), (2, 2, 6, 7)),
    "LPPool2d": (lambda: nn.LPPool2d(3, 2), (2, 2, 6, 6)),
    "StochasticPool2d eval": (lambda: nn.StochasticPool2d(2).eval(), (2, 2, 6, 6)),
    "AdaptiveAvgPool2d uneven": (lambda: nn.AdaptiveAvgPool2d((3, 2)), (2, 3, 7, 5)),
    "AdaptiveAvgPool2d global": (lambda: nn.AdaptiveAvgPool2d(1), (2, 3, 4, 6)),
    "ReLU": (lambda: nn.ReLU(), (3, 4, 5)),
    "LeakyReLU": (lambda: nn.LeakyReLU(0.2), (3, 4, 5)),
    "Flatten": (lambda: nn.Flatten(), (2, 3, 4, 5)),
    "Dropout eval": (lambda: nn.Dropout(0.5).eval(), (3, 4)),
    "BatchNorm2d train": (lambda: nn.BatchNorm2d(3), (4, 3, 3, 2)),
    "BatchNorm2d eval": (lambda: nn.BatchNorm2d(3).eval(), (4, 3, 3, 2)),
    "Sequential LeNet-like": (lambda: nn.Sequential(
        nn.Conv2d(1, 3, 3), nn.ReLU(), nn.MaxPool2d(2), nn.BatchNorm2d(3), nn.Flatten(), nn.Linear(12, 4)),
        (3, 1, 6, 6)),
}


@pytest.mark.parametrize("case", GRADIENT_CASES, ids=str)
def test_backward_matches_finite_differences(case):
    make, shape = GRADIENT_CASES[case]
    cp.manual_seed(3)
    module = make().double()
    x = away_from_zero(shape)
    if "Pool" in case and ("LP" in case or "Stochastic" in case):
        x = np.abs(x)  # stochastic pooling needs non-negative input; Lp is smooth away from 0
    finite_difference_check(module, x)


@pytest.mark.parametrize("loss, target", [
    (nn.CrossEntropyLoss(), np.array([2, 0, 1, 2])),
    (nn.CrossEntropyLoss(reduction="sum"), np.array([1, 1, 0, 2])),
    (nn.MSELoss(), normal((4, 3), seed=5)),
    (nn.MSELoss(reduction="sum"), normal((4, 3), seed=6)),
])
def test_loss_gradients_match_finite_differences(loss, target):
    logits = normal((4, 3), seed=7)
    loss(logits, target)
    analytic = loss.backward()
    eps = 1e-6
    for index in np.ndindex(logits.shape):
        shifted = logits.copy()
        shifted[index] += eps
        plus = loss(shifted, target)
        shifted[index] -= 2 * eps
        minus = loss(shifted, target)
        assert abs((plus - minus) / (2 * eps) - analytic[index]) < 1e-6


def test_cross_entropy_is_stable_and_matches_definition():
    logits = np.array([[1000.0, 0.0, -1000.0], [1.0, 2.0, 3.0]])
    target = np.array([0, 1])
    expected = (0.0 + -(2.0 - np.log(np.exp(1.0) + np.exp(2.0) + np.exp(3.0)))) / 2
    assert nn.CrossEntropyLoss()(logits, target) == pytest.approx(expected)
    probabilities = nn.softmax(logits)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1)
    np.testing.assert_allclose(nn.log_softmax(logits)[1], np.log(probabilities[1]))


@pytest.mark.parametrize("logits, target, error", [
    (np.zeros((2, 3)), np.array([0, 3]), ValueError),
    (np.zeros((2, 3)), np.array([-1, 0]), ValueError),
    (np.zeros((2, 3)), np.array([0, 1, 2]), ValueError),
    (np.zeros((2, 3)), np.array([0.0, 1.0]), TypeError),
    (np.zeros(3), np.array([0]), ValueError),
])
def test_cross_entropy_refuses_bad_targets(logits, target, error):
    with pytest.raises(error, match="CrossEntropyLoss"):
        nn.CrossEntropyLoss()(logits, target)


def test_batchnorm_forward_and_running_statistics():
    layer = nn.BatchNorm2d(2, momentum=0.3).double()
    x = normal((4, 2, 3, 3)) * 3 + 1
    y = layer(x)
    mean = x.mean(axis=(0, 2, 3))
    variance = x.var(axis=(0, 2, 3))
    np.testing.assert_allclose(y, (x - mean[:, None, None]) / np.sqrt(variance[:, None, None] + 1e-5))
    np.testing.assert_allclose(layer.running_mean, 0.3 * mean)
    np.testing.assert_allclose(layer.running_var, 0.7 + 0.3 * variance * 36 / 35)
    assert int(layer.num_batches_tracked) == 1
    layer.eval()
    np.testing.assert_allclose(layer(x), (x - layer.running_mean[:, None, None])
                               / np.sqrt(layer.running_var[:, None, None] + 1e-5))
    with pytest.raises(ValueError, match=r"BatchNorm2d: input must be \(N, 2, H, W\)"):
        layer(normal((4, 3, 3, 3)))
    with pytest.raises(ValueError, match="more than one value"):
        layer.train()(normal((1, 2, 1, 1)))


def test_adaptive_average_pooling_uses_pytorch_windows():
    x = normal((2, 3, 7, 5))
    y = nn.AdaptiveAvgPool2d((3, None))(x)
    # PyTorch: output i averages rows floor(7i/3) .. ceil(7(i+1)/3) - 1: 0-2, 2-4, 4-6.
    expected = np.stack([x[:, :, 0:3].mean(axis=2), x[:, :, 2:5].mean(axis=2), x[:, :, 4:7].mean(axis=2)], axis=2)
    np.testing.assert_allclose(y, expected)


def test_dropout_scales_kept_elements_and_routes_gradient_through_the_same_mask():
    layer = nn.Dropout(0.25, seed=4)
    x = np.ones((200, 50), dtype=np.float32)
    y = layer(x)
    kept = y != 0
    np.testing.assert_array_equal(y[kept], np.float32(1 / 0.75))
    assert 0.7 < kept.mean() < 0.8
    grad = layer.backward(np.full_like(x, 2.0))
    np.testing.assert_array_equal(grad, 2 * y)
    assert layer(x) is not None and not np.array_equal(layer(x), y)  # a fresh mask each call
    np.testing.assert_array_equal(layer.eval()(x), x)
    np.testing.assert_array_equal(nn.Dropout(1.0)(x), 0)
    with pytest.raises(ValueError, match="Dropout: p=1.5"):
        nn.Dropout(1.5)


def test_stochastic_pool_layer_samples_differently_per_call_but_reproducibly_per_seed():
    x = np.abs(normal((2, 3, 8, 8))).astype(np.float32)
    first, second = nn.StochasticPool2d(2, seed=9), nn.StochasticPool2d(2, seed=9)
    outputs = [first(x) for _ in range(3)]
    assert not np.array_equal(outputs[0], outputs[1])
    for output in outputs:
        np.testing.assert_array_equal(output, second(x))
    grad = first.backward(np.ones_like(outputs[0]))
    # Each window's gradient lands on the element it picked, which holds the output value.
    assert (grad != 0).sum() <= outputs[0].size
    np.testing.assert_allclose(np.sort(x[grad != 0]), np.sort(outputs[2][outputs[2] != 0].ravel()))


def test_max_pool_layer_tie_break_on_overlapping_windows():
    x = np.array([[[[0.0, 5.0, 5.0, 0.0]]]])
    grads = {}
    for rule in ("first", "last", "split"):
        layer = nn.MaxPool2d((1, 2), stride=1, tie_break=rule)
        layer(x)
        grads[rule] = layer.backward(np.ones((1, 1, 1, 3)))[0, 0, 0].tolist()
    assert grads == {"first": [0, 2, 1, 0], "last": [0, 1, 2, 0], "split": [0, 1.5, 1.5, 0]}


def test_first_layer_can_skip_its_input_gradient():
    cp.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8, 2))
    x = normal((2, 1, 4, 4)).astype(np.float32)
    model(x)
    assert model.backward(np.ones((2, 2), dtype=np.float32), need_input_grad=False) is None
    with_input = [p.grad.copy() for p in model.parameters()]
    model.zero_grad()
    model(x)
    assert model.backward(np.ones((2, 2), dtype=np.float32)).shape == x.shape
    for expected, parameter in zip(with_input, model.parameters()):
        np.testing.assert_array_equal(parameter.grad, expected)


def test_gradients_accumulate_until_zero_grad():
    layer = nn.Linear(3, 2)
    x = normal((4, 3)).astype(np.float32)
    layer(x)
    layer.backward(np.ones((4, 2), dtype=np.float32))
    once = layer.weight.grad.copy()
    layer(x)
    layer.backward(np.ones((4, 2), dtype=np.float32))
    np.testing.assert_allclose(layer.weight.grad, 2 * once)
    layer.zero_grad()
    assert layer.weight.grad is None and layer.bias.grad is None


def test_pytorch_default_initialisation_bounds():
    cp.manual_seed(1)
    conv = nn.Conv2d(6, 16, 5)
    linear = nn.Linear(400, 120)
    for weight, fan_in in ((conv.weight, 150), (linear.weight, 400)):
        bound = 1 / np.sqrt(fan_in)
        assert weight.dtype == np.float32
        assert np.abs(weight.data).max() <= bound
        assert np.abs(weight.data).max() > 0.95 * bound  # uniform over the whole range
    cp.manual_seed(1)
    np.testing.assert_array_equal(nn.Conv2d(6, 16, 5).weight.data, conv.weight.data)


def lenet():
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(8, 3))


def test_module_protocol():
    cp.manual_seed(2)
    model = lenet()
    names = [name for name, _ in model.named_parameters()]
    assert names == ["0.weight", "0.bias", "1.weight", "1.bias", "5.weight", "5.bias"]
    assert len(model.parameters()) == 6 and len(model) == 6 and isinstance(model[1], nn.BatchNorm2d)
    assert list(model.state_dict()) == names + ["1.running_mean", "1.running_var", "1.num_batches_tracked"]
    assert all(module.training for module in model.modules())
    model.eval()
    assert not any(module.training for module in model.modules())
    text = repr(model)
    assert text.startswith("Sequential(\n  (0): Conv2d(1, 2, kernel_size=(3, 3), stride=(1, 1))")
    assert "(3): MaxPool2d(kernel_size=(2, 2)" in text and "tie_break='first'" in text
    model.double()
    assert all(p.dtype == np.float64 for p in model.parameters()) and model[1].running_var.dtype == np.float64
    assert model[1].num_batches_tracked.dtype == np.int64


def test_state_dict_round_trip_and_refusals():
    cp.manual_seed(3)
    source, target = lenet(), lenet()
    source(normal((4, 1, 6, 6)).astype(np.float32))  # moves the running statistics
    target.load_state_dict(source.state_dict())
    for (name, expected), actual in zip(source.state_dict().items(), target.state_dict().values()):
        np.testing.assert_array_equal(actual, expected, err_msg=name)

    state = source.state_dict()
    state["5.weight"] = np.zeros((4, 8), dtype=np.float32)
    before = target.state_dict()
    with pytest.raises(ValueError, match=r"'5.weight' has shape \(4, 8\) in the state but \(3, 8\) in the model"):
        target.load_state_dict(state)
    for expected, actual in zip(before.values(), target.state_dict().values()):
        np.testing.assert_array_equal(actual, expected)  # nothing was half-loaded
    del state["5.weight"]
    with pytest.raises(ValueError, match=r"missing \['5.weight'\]"):
        target.load_state_dict(state)
    state["5.weight"], state["extra"] = source[5].weight.data, np.zeros(1)
    with pytest.raises(ValueError, match=r"unexpected \['extra'\]"):
        target.load_state_dict(state)
    target.load_state_dict(state, strict=False)


def test_layer_argument_errors():
    with pytest.raises(ValueError, match="groups=3 must divide in_channels=4"):
        nn.Conv2d(4, 6, 3, groups=3)
    with pytest.raises(ValueError, match=r"Linear: input of shape \(2, 4\) has 4 features, expected in_features=5"):
        nn.Linear(5, 3)(np.zeros((2, 4), dtype=np.float32))
    with pytest.raises(TypeError, match="Sequential: argument 1 is int"):
        nn.Sequential(nn.ReLU(), 3)
    with pytest.raises(TypeError, match="weight is float32 but x is float64"):
        nn.Conv2d(1, 1, 1)(np.zeros((1, 1, 2, 2)))
    with pytest.raises(ValueError, match="reduction must be one of"):
        nn.MSELoss(reduction="none")
    with pytest.raises(ValueError, match="MSELoss: prediction"):
        nn.MSELoss()(np.zeros(3), np.zeros(4))


def test_residual_adds_the_shortcut_and_sums_the_gradients():
    body = nn.Conv2d(2, 2, 3, padding=1).double()
    block = nn.Residual(body)
    x = normal((2, 2, 5, 5))
    g = normal((2, 2, 5, 5))
    body_out = body(x)
    body_grad = body.backward(g)
    np.testing.assert_allclose(block(x), body_out + x)
    block.zero_grad()
    np.testing.assert_allclose(block.backward(g), body_grad + g)
    block(x)
    assert block.backward(g, need_input_grad=False) is None
    assert [name for name, _ in block.named_parameters()] == ["body.weight", "body.bias"]


def test_residual_refuses_mismatched_paths_and_non_modules():
    block = nn.Residual(nn.Conv2d(2, 3, 3, padding=1))
    with pytest.raises(ValueError, match=r"Residual: the body gives shape \(1, 3, 4, 4\) but the shortcut \(1, 2, 4, 4\)"):
        block(np.zeros((1, 2, 4, 4), np.float32))
    with pytest.raises(TypeError, match="Residual: shortcut is function, not a Module"):
        nn.Residual(nn.ReLU(), lambda x: x)


def test_resnet_cifar_depths():
    assert len(cp.models.resnet20()[3]) == 3 and len(cp.models.resnet8()[3]) == 1
    with pytest.raises(ValueError, match="depth=10 must be 6n"):
        cp.models.resnet_cifar(10)


def trained_statistics(model, seed=1):
    """Gives every BatchNorm2d of ``model`` running statistics and affine parameters that are not
    the defaults, so that folding them is a real test."""
    rng = np.random.default_rng(seed)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            c = module.num_features
            module.running_mean[...] = rng.standard_normal(c)
            module.running_var[...] = rng.uniform(0.5, 2.0, c)
            module.weight.data[...] = rng.standard_normal(c)
            module.bias.data[...] = rng.standard_normal(c)
    return model


def test_fuse_conv_bn_matches_the_unfused_eval_model():
    cp.manual_seed(2)
    model = trained_statistics(cp.models.resnet8())
    x = np.random.default_rng(3).standard_normal((4, 3, 32, 32)).astype(np.float32)
    expected = model.eval()(x)
    fused = nn.fuse_conv_bn(model.train())
    assert model.training  # the original is left alone
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fused.modules())
    assert sum(isinstance(m, nn.Conv2d) for m in fused.modules()) == sum(isinstance(m, nn.Conv2d) for m in model.modules())
    np.testing.assert_allclose(fused(x), expected, rtol=1e-4, atol=1e-4)


def test_freeze_folds_and_packs_and_computes_what_fuse_conv_bn_computes(monkeypatch):
    cp.manual_seed(2)
    model = trained_statistics(cp.models.resnet8())
    x = np.random.default_rng(3).standard_normal((2, 3, 32, 32)).astype(np.float32)
    fused = nn.fuse_conv_bn(model)
    frozen = nn.freeze(model.train())
    assert model.training and not frozen.training
    convolutions = [m for m in frozen.modules() if isinstance(m, nn.Conv2d)]
    assert convolutions and all(isinstance(m.weight.data.base, cp.PackedConv2dWeight) for m in convolutions)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in frozen.modules())
    weights_passed = []
    real_conv2d = cp._core.conv2d
    monkeypatch.setattr(cp._core, "conv2d", lambda x, weight, *a, **k: (
        weights_passed.append(type(weight)), real_conv2d(x, weight, *a, **k))[1])
    out = frozen(x)
    assert weights_passed == [cp.PackedConv2dWeight] * len(convolutions)
    np.testing.assert_array_equal(out, fused(x))
    np.testing.assert_allclose(out, model.eval()(x), rtol=1e-4, atol=1e-4)

    first = convolutions[0]
    with pytest.raises(ValueError, match="read-only"):
        first.weight.data += 1
    with pytest.raises(ValueError, match=r"'0\.weight' is read-only in the model \(a weight packed by nn\.freeze\)"):
        frozen.load_state_dict(frozen.state_dict())
    # A new array in its place is used as it is.
    first.weight.data = np.zeros_like(first.weight.data)
    weights_passed.clear()
    frozen(x)
    assert weights_passed[0] is np.ndarray


def test_freeze_with_winograd_is_the_fused_model_to_rounding():
    cp.manual_seed(2)
    model = trained_statistics(cp.models.resnet18(num_classes=10))
    x = np.random.default_rng(3).standard_normal((1, 3, 64, 64)).astype(np.float32)
    frozen = nn.freeze(model, winograd=True)
    assert all(m.weight.data.base.winograd for m in frozen.modules() if isinstance(m, nn.Conv2d))
    expected = nn.fuse_conv_bn(model)(x)
    out = frozen(x)
    assert not np.array_equal(out, expected)  # its 64-channel 3x3 layers on 16x16 planes took F(2x2, 3x3)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)


def test_conv2d_layer_with_winograd_calls_the_kernels_with_it():
    cp.manual_seed(5)
    layer = nn.Conv2d(48, 40, 3, padding=1, winograd=True)
    assert repr(layer) == "Conv2d(48, 40, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), winograd=True)"
    x = np.random.default_rng(6).standard_normal((2, 48, 14, 14)).astype(np.float32)
    out = layer(x)
    np.testing.assert_array_equal(out, cp.conv2d(x, layer.weight.data, layer.bias.data, padding=1, winograd=True))
    g = np.cos(out)
    grad_input = layer.backward(g)
    expected = cp.conv2d_backward(g, x, layer.weight.data, padding=1, winograd=True)
    np.testing.assert_array_equal(grad_input, expected[0])
    np.testing.assert_array_equal(layer.weight.grad, expected[1])
    layer.winograd = False  # switched off, the direct sums again
    np.testing.assert_array_equal(layer(x), cp.conv2d(x, layer.weight.data, layer.bias.data, padding=1))
    with pytest.raises(TypeError, match="Conv2d: winograd must be None, True or False, got 1"):
        nn.Conv2d(3, 4, 3, winograd=1)


def test_fuse_conv_bn_eval_folds_a_biased_convolution_in_float64():
    cp.manual_seed(4)
    conv = nn.Conv2d(3, 5, 3, padding=1).double()
    bn = trained_statistics(nn.Sequential(nn.BatchNorm2d(5).double()))[0].eval()
    x = np.random.default_rng(5).standard_normal((2, 3, 6, 6))
    fused = nn.fuse_conv_bn_eval(conv, bn)
    np.testing.assert_allclose(fused(x), bn(conv(x)), rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="does not follow a convolution with 5 output channels"):
        nn.fuse_conv_bn_eval(conv, nn.BatchNorm2d(4))
    with pytest.raises(ValueError, match="track_running_stats=False"):
        nn.fuse_conv_bn_eval(conv, nn.BatchNorm2d(5, track_running_stats=False))


def applied_by_the_layer_before(model):
    """Positions of a Sequential's layers its forward did not call: the activations it folded."""
    return [position for position, layer in enumerate(model) if not layer.__dict__.get("_saved")]


def test_sequential_folds_a_relu_into_the_batch_norm_before_it_bitwise():
    cp.manual_seed(7)
    layers = [nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 2, 3), nn.ReLU()]
    model = nn.Sequential(*layers)
    x = normal((2, 3, 6, 6)).astype(np.float32)
    out = model(x)
    assert applied_by_the_layer_before(model) == [2, 4]  # the ReLUs after the batch norm and after the last convolution
    g = normal(out.shape).astype(np.float32)
    model.zero_grad()
    grad = model.backward(g)
    fused_grads = [p.grad.copy() for p in model.parameters()]
    # The same layers one at a time, unfused.
    cp.manual_seed(7)
    separate = [nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 2, 3), nn.ReLU()]
    y = x
    for layer in separate:
        y = layer(y)
    np.testing.assert_array_equal(out, y)
    for layer in reversed(separate):
        g = layer.backward(g)
    np.testing.assert_array_equal(grad, g)
    separate_grads = [p.grad for layer in separate for p in layer.parameters()]
    for a, b in zip(fused_grads, separate_grads):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(layers[1].running_mean, separate[1].running_mean)


def test_sequential_folds_a_relu_into_the_convolution_before_it_bitwise():
    cp.manual_seed(8)
    model = cp.models.lenet5()
    x = normal((3, 1, 28, 28)).astype(np.float32)
    out = model(x)
    assert applied_by_the_layer_before(model) == [1, 4]  # the ReLUs after the convolutions (not those after Linear)
    g = normal(out.shape).astype(np.float32)
    model.zero_grad()
    grad = model.backward(g)
    # The same layers one at a time, unfolded.
    y = x
    for layer in model:
        y = type(layer).forward(layer, y)
    np.testing.assert_array_equal(out, y)
    folded_grads = [p.grad.copy() for p in model.parameters()]
    model.zero_grad()
    for layer in reversed(list(model)):
        g = layer.backward(g)
    np.testing.assert_array_equal(grad, g)
    for a, b in zip(folded_grads, [p.grad for p in model.parameters()]):
        np.testing.assert_array_equal(a, b)
