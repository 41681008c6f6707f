"""Whole models in channels-last layout (Module.to_layout): the same outputs, gradients and
running statistics as in NCHW, checkpoints that load across layouts, the layers that refuse, and
training on channels-last data."""

import numpy as np
import pytest

import convpool as cp
from convpool import nn
from reference import to_nchw, to_nhwc


def two_copies(build):
    cp.manual_seed(5)
    first = build()
    second = build()
    second.load_state_dict(first.state_dict())
    return first, second


def run_step(model, x, labels):
    """One forward and backward: the logits, each parameter's gradient, the input gradient."""
    loss = nn.CrossEntropyLoss()
    model.zero_grad()
    logits = model(x)
    loss(logits, labels)
    grad_input = model.backward(loss.backward())
    return logits, [p.grad for p in model.parameters()], grad_input


MODELS = {
    "resnet8 (conv, batch norm, residual, global pooling)": lambda: cp.models.resnet8(num_classes=5),
    "lenet5 (max pooling, flatten, linear)": lambda: cp.models.lenet5(),
    "lenet5 with average pooling": lambda: cp.models.lenet5(pool="avg"),
    "dropout and a strided stem": lambda: nn.Sequential(
        nn.Conv2d(1, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(3, 2, 1),
        nn.Flatten(), nn.Dropout(0.3, seed=4), nn.Linear(16 * 7 * 7, 5)),
}


@pytest.mark.parametrize("name", MODELS)
def test_training_step_matches_nchw(name):
    nchw, nhwc = two_copies(MODELS[name])
    channels = 3 if name.startswith("resnet") else 1
    size = 12 if name.startswith("resnet") else 28
    rng = np.random.default_rng(6)
    x = rng.standard_normal((4, channels, size, size)).astype(np.float32)
    labels = rng.integers(0, 5, 4)
    assert nhwc.to_layout("nhwc") is nhwc and all(m.layout == "nhwc" for m in nhwc.modules())
    logits, grads, grad_input = run_step(nchw, x, labels)
    logits_l, grads_l, grad_input_l = run_step(nhwc, to_nhwc(x), labels)
    np.testing.assert_allclose(logits_l, logits, rtol=1e-4, atol=1e-4)
    for ours, theirs in zip(grads_l, grads):
        np.testing.assert_allclose(ours, theirs, rtol=1e-3, atol=1e-4 * (1 + np.abs(theirs).max()))
    assert grad_input_l.shape == to_nhwc(grad_input).shape
    np.testing.assert_allclose(to_nchw(grad_input_l), grad_input, rtol=1e-3, atol=1e-5)
    for (name_a, a), (name_b, b) in zip(nchw.named_buffers(), nhwc.named_buffers()):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6, err_msg=name_a)


def test_a_checkpoint_loads_across_layouts_with_the_same_outputs(tmp_path):
    cp.manual_seed(7)
    model = cp.models.resnet8(num_classes=4)
    x = np.random.default_rng(8).standard_normal((3, 3, 10, 10)).astype(np.float32)
    run_step(model, x, np.array([0, 1, 2]))  # moves the running statistics off their start
    expected = model.eval()(x)
    path = tmp_path / "model.npz"
    np.savez(path, **model.state_dict())
    cp.manual_seed(9)
    other = cp.models.resnet8(num_classes=4).to_layout("nhwc").eval()
    with np.load(path) as state:
        other.load_state_dict(dict(state))
    np.testing.assert_allclose(other(to_nhwc(x)), expected, rtol=1e-4, atol=1e-5)
    # And back: the state of the channels-last model is the same arrays.
    for (name, a), b in zip(model.state_dict().items(), other.state_dict().values()):
        np.testing.assert_array_equal(a, b, err_msg=name)


def test_layers_without_channels_last_kernels_are_named_and_nothing_changes():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.LPPool2d(2, 2), nn.Sequential(nn.StochasticPool2d(2)))
    with pytest.raises(ValueError, match=r"1 \(LPPool2d\), 2\.0 \(StochasticPool2d\) cannot run layout='nhwc'"):
        model.to_layout("nhwc")
    assert all(m.layout == "nchw" for m in model.modules())
    with pytest.raises(ValueError, match="layout must be 'nchw' or 'nhwc', got 'NHWC'"):
        model.to_layout("NHWC")
    assert model.to_layout("nchw") is model


def test_channels_last_layers_check_their_input_in_the_layout():
    bn = nn.BatchNorm2d(3).to_layout("nhwc")
    with pytest.raises(ValueError, match=r"input must be \(N, H, W, 3\), got \(2, 3, 4, 4\)"):
        bn(np.zeros((2, 3, 4, 4), np.float32))
    with pytest.raises(ValueError, match="flatten it first"):
        nn.Linear(4, 2).to_layout("nhwc")(np.zeros((1, 3, 3, 4), np.float32))


def test_flatten_gives_the_nchw_feature_order():
    x = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
    flatten = nn.Flatten().to_layout("nhwc")
    np.testing.assert_array_equal(flatten(to_nhwc(x)), x.reshape(2, -1))
    grad = flatten.backward(x.reshape(2, -1))
    np.testing.assert_array_equal(grad, to_nhwc(x))


def test_fit_trains_on_channels_last_data():
    cp.manual_seed(10)
    rng = np.random.default_rng(11)
    # Two classes told apart by which half of the image is bright.
    labels = rng.integers(0, 2, 64)
    images = rng.standard_normal((64, 8, 8, 3)).astype(np.float32) * 0.1
    for image, label in zip(images, labels):
        image[:, :4] += label
        image[:, 4:] += 1 - label
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
                          nn.Flatten(), nn.Linear(32, 2)).to_layout("nhwc")
    optimizer = cp.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    loss = nn.CrossEntropyLoss()
    history = cp.training.fit(model, loss, optimizer, (images, labels), epochs=5, batch_size=16, progress=False)
    assert history.train_loss[-1] < history.train_loss[0] / 2
    assert cp.training.evaluate(model, loss, (images, labels))["accuracy"] > 0.9
    assert cp.training.predict(model, images[:5]).shape == (5, 2)
