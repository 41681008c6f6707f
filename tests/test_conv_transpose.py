"""conv_transpose2d against the NumPy reference (random configurations, float32 and float64),
float64 finite differences, PyTorch when installed, bitwise identity across thread counts, the
layer, and bad input."""

import numpy as np
import pytest

import convpool as cp
import reference as ref
from reference import assert_close
from configs import conv_transpose_config_id, random_conv_transpose_configs

CONFIGS = random_conv_transpose_configs(seed=81, count=40) + [
    # Output padding at least the stride, allowed by a larger dilation: the last rows and columns
    # receive fewer contributions.
    dict(shape=(2, 3, 5, 4), weight=(3, 2, 3, 3), stride=1, padding=1, output_padding=1, groups=1, dilation=2),
    # Decoder shapes: 2x upsampling of a many-channel map, one and two images.
    dict(shape=(1, 64, 7, 7), weight=(64, 32, 4, 4), stride=2, padding=1, output_padding=0, groups=1, dilation=1),
    dict(shape=(2, 48, 6, 5), weight=(48, 40, 3, 3), stride=2, padding=1, output_padding=1, groups=1, dilation=1),
]


def geometry(config):
    return {key: config[key] for key in ("stride", "padding", "output_padding", "groups", "dilation")}


def random_inputs(config, dtype, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(config["shape"]).astype(dtype)
    weight = rng.standard_normal(config["weight"]).astype(dtype)
    bias = rng.standard_normal(config["weight"][1] * config["groups"]).astype(dtype)
    return x, weight, bias


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("config", CONFIGS, ids=conv_transpose_config_id)
def test_matches_reference(config, dtype):
    x, weight, bias = random_inputs(config, dtype, seed=82)
    args = geometry(config)
    out = cp.conv_transpose2d(x, weight, bias, **args)
    expected = ref.conv_transpose2d(x, weight, bias, **args)
    assert out.dtype == dtype and out.shape == expected.shape
    assert_close(out, expected, dtype)

    grad_output = np.cos(np.arange(out.size)).reshape(out.shape).astype(dtype)
    grads = cp.conv_transpose2d_backward(grad_output, x, weight, **args)
    for name, actual, wanted in zip(("input", "weight", "bias"), grads,
                                    ref.conv_transpose2d_backward(grad_output, x, weight, **args)):
        assert actual.dtype == dtype and actual.shape == wanted.shape, name
        assert_close(actual, wanted, dtype, name)


@pytest.mark.parametrize("config", CONFIGS[:8], ids=conv_transpose_config_id)
def test_gradients_match_finite_differences(config):
    x, weight, bias = random_inputs(config, np.float64, seed=83)
    if x.ndim == 4 and x.shape[0] == 0:
        pytest.skip("an empty batch has nothing to perturb")
    args = geometry(config)
    out = cp.conv_transpose2d(x, weight, bias, **args)
    probe = np.random.default_rng(84).standard_normal(out.shape)
    grads = cp.conv_transpose2d_backward(probe, x, weight, **args)

    def loss(*arrays):
        return float(np.sum(cp.conv_transpose2d(*arrays, **args) * probe))

    rng = np.random.default_rng(85)
    eps = 1e-6
    arrays = [x, weight, bias]
    for which, grad in enumerate(grads):
        for flat in rng.choice(arrays[which].size, size=min(5, arrays[which].size), replace=False):
            plus = [a.copy() for a in arrays]
            minus = [a.copy() for a in arrays]
            plus[which].flat[flat] += eps
            minus[which].flat[flat] -= eps
            numeric = (loss(*plus) - loss(*minus)) / (2 * eps)
            assert grad.flat[flat] == pytest.approx(numeric, rel=1e-6, abs=1e-7)


@pytest.mark.parametrize("config", CONFIGS[:10] + CONFIGS[-3:], ids=conv_transpose_config_id)
def test_bitwise_identical_for_any_thread_count(config, assert_thread_independent):
    x, weight, bias = random_inputs(config, np.float32, seed=86)
    args = geometry(config)

    def run():
        out = cp.conv_transpose2d(x, weight, bias, **args)
        return (out,) + cp.conv_transpose2d_backward(np.cos(out), x, weight, **args)

    assert_thread_independent(run)


@pytest.mark.parametrize("config", CONFIGS, ids=conv_transpose_config_id)
def test_matches_torch(config):
    torch = pytest.importorskip("torch")
    x, weight, bias = random_inputs(config, np.float64, seed=87)
    args = geometry(config)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, weight, bias))
    expected = torch.nn.functional.conv_transpose2d(tx, tw, tb, **args)
    out = cp.conv_transpose2d(x, weight, bias, **args)
    np.testing.assert_allclose(out, expected.detach().numpy(), rtol=1e-10, atol=1e-10)
    grad_output = np.random.default_rng(88).standard_normal(out.shape)
    expected.backward(torch.tensor(grad_output))
    for actual, tensor in zip(cp.conv_transpose2d_backward(grad_output, x, weight, **args), (tx, tw, tb)):
        np.testing.assert_allclose(actual, tensor.grad.numpy(), rtol=1e-10, atol=1e-10)


def test_needs_selects_the_gradients():
    config = CONFIGS[-1]
    x, weight, _ = random_inputs(config, np.float32, seed=89)
    grad_output = np.ones_like(cp.conv_transpose2d(x, weight, **geometry(config)))
    grad_input, grad_weight, grad_bias = cp.conv_transpose2d_backward(grad_output, x, weight, needs=("weight",),
                                                                      **geometry(config))
    assert grad_input is None and grad_bias is None and grad_weight.shape == weight.shape


def test_layer_matches_torch():
    torch = pytest.importorskip("torch")
    cp.manual_seed(4)
    ours = cp.nn.ConvTranspose2d(6, 4, 3, stride=2, padding=1, output_padding=1).double()
    assert repr(ours) == "ConvTranspose2d(6, 4, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), output_padding=(1, 1))"
    theirs = cp.nn.to_torch(ours)
    x = np.random.default_rng(90).standard_normal((2, 6, 5, 7))
    tx = torch.tensor(x, requires_grad=True)
    expected = theirs(tx)
    out = ours(x)
    assert out.shape == (2, 4, 10, 14)
    np.testing.assert_allclose(out, expected.detach().numpy(), rtol=1e-10, atol=1e-10)
    grad_output = np.random.default_rng(91).standard_normal(out.shape)
    expected.backward(torch.tensor(grad_output))
    np.testing.assert_allclose(ours.backward(grad_output), tx.grad.numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(ours.weight.grad, theirs.weight.grad.numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(ours.bias.grad, theirs.bias.grad.numpy(), rtol=1e-10, atol=1e-10)


def test_layer_initialisation_follows_torch():
    # PyTorch's bound: 1/sqrt(fan_in) with fan_in = out_channels / groups * kH * kW for this layout.
    layer = cp.nn.ConvTranspose2d(3, 8, (2, 4), groups=1)
    bound = 1 / np.sqrt(8 * 2 * 4)
    assert layer.weight.data.shape == (3, 8, 2, 4)
    assert np.abs(layer.weight.data).max() <= bound and np.abs(layer.weight.data).max() > 0.8 * bound


@pytest.mark.parametrize("call, message", [
    (lambda x, w: cp.conv_transpose2d(x, w, stride=2, output_padding=2), "output_padding=(2, 2) must be smaller"),
    (lambda x, w: cp.conv_transpose2d(x, w[:3]), "needs C_in = 4 in dimension 0"),
    (lambda x, w: cp.conv_transpose2d(x, w, groups=3), "groups=3 must divide C_in=4"),
    (lambda x, w: cp.conv_transpose2d(x, w, np.zeros(5, np.float32)), "bias has shape (5,)"),
    (lambda x, w: cp.conv_transpose2d(x, w, padding=9), "leaves no output"),
    (lambda x, w: cp.conv_transpose2d(x, w, stride=2**31), "too large"),
    (lambda x, w: cp.conv_transpose2d(x, w, padding=-1), "padding=(-1, -1) must be non-negative"),
    (lambda x, w: cp.conv_transpose2d(x[0, 0], w), "x must be (N, C_in, H, W) or (C_in, H, W)"),
    (lambda x, w: cp.conv_transpose2d_backward(np.zeros((2, 6, 4, 4), np.float32), x, w), "grad_output has shape"),
])
def test_bad_input_is_refused(call, message):
    x = np.zeros((2, 4, 3, 3), np.float32)
    weight = np.zeros((4, 6, 3, 3), np.float32)
    with pytest.raises(ValueError) as error:
        call(x, weight)
    assert message in str(error.value)


def test_mismatched_dtypes_are_refused():
    with pytest.raises(TypeError, match="weight"):
        cp.conv_transpose2d(np.zeros((1, 2, 3, 3), np.float32), np.zeros((2, 2, 3, 3), np.float64))
