"""Channels-last (layout='nhwc') conv2d against the NumPy reference on transposed arrays: random
configurations (grouped, depthwise with channel multipliers, strided, dilated, 'same'), the
layers whose channels do not fill a vector, the paths of many channels, finite differences in
float64, packed weights, thread counts, and bad input."""

import numpy as np
import pytest

import convpool as cp
import reference as ref
from configs import conv_args, conv_config_id, conv_inputs as random_inputs, random_conv_configs
from reference import assert_close, to_nchw, to_nhwc

CONFIGS = random_conv_configs(seed=71, count=50)

# Shapes that take each path of the channels-last convolution: a register tile of each width
# (16, 32 and 64 channels), more input channels than one block of the reduction, few input
# channels (the weight gradient's copied im2col rows), too few output or input channels to fill a
# vector (the NCHW kernels on transposed copies), strides larger than the kernel (pixels no tap
# reaches), depthwise layers with and without a channel multiplier, and many groups.
PATH_CONFIGS = [
    dict(shape=(3, 16, 9, 10), weight=(16, 16, 3, 3), stride=1, padding=1, dilation=1, groups=1),
    dict(shape=(2, 32, 7, 6), weight=(32, 32, 3, 3), stride=2, padding=1, dilation=1, groups=1),
    dict(shape=(2, 64, 5, 5), weight=(64, 64, 3, 3), stride=1, padding=1, dilation=1, groups=1),
    dict(shape=(1, 600, 4, 4), weight=(24, 600, 3, 3), stride=1, padding=1, dilation=1, groups=1),
    dict(shape=(1, 1100, 3, 3), weight=(8, 1100, 1, 1), stride=1, padding=0, dilation=1, groups=1),
    dict(shape=(4, 3, 12, 12), weight=(32, 3, 7, 7), stride=2, padding=3, dilation=1, groups=1),
    dict(shape=(3, 1, 12, 12), weight=(6, 1, 5, 5), stride=1, padding=0, dilation=1, groups=1),
    dict(shape=(2, 4, 9, 9), weight=(40, 4, 1, 1), stride=3, padding=0, dilation=1, groups=1),
    dict(shape=(2, 24, 8, 8), weight=(24, 1, 3, 3), stride=1, padding=1, dilation=1, groups=24),
    dict(shape=(2, 20, 9, 8), weight=(20, 1, 3, 3), stride=2, padding=1, dilation=2, groups=20),
    dict(shape=(2, 5, 7, 7), weight=(15, 1, 3, 3), stride=2, padding=1, dilation=1, groups=5),
    dict(shape=(2, 32, 6, 6), weight=(64, 8, 3, 3), stride=1, padding="same", dilation=2, groups=4),
    dict(shape=(5, 17, 6, 5), weight=(33, 17, 2, 3), stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=1),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("config", CONFIGS + PATH_CONFIGS, ids=conv_config_id)
def test_matches_reference(config, dtype):
    x, weight, bias = random_inputs(config, dtype, seed=72)
    args = conv_args(config)
    out = cp.conv2d(to_nhwc(x), weight, bias, layout="nhwc", **args)
    expected = ref.conv2d(x, weight, bias, **args)
    assert out.dtype == dtype and out.shape == to_nhwc(expected).shape
    assert_close(to_nchw(out), expected, dtype)

    grad_output = np.cos(np.arange(expected.size)).reshape(expected.shape).astype(dtype)
    grads = cp.conv2d_backward(to_nhwc(grad_output), to_nhwc(x), weight, layout="nhwc", **args)
    grad_input, grad_weight, grad_bias = ref.conv2d_backward(grad_output, x, weight, **args)
    assert grads[0].shape == to_nhwc(grad_input).shape
    assert_close(to_nchw(grads[0]), grad_input, dtype, "input")
    assert_close(grads[1], grad_weight, dtype, "weight")
    assert_close(grads[2], grad_bias, dtype, "bias")


@pytest.mark.parametrize("config", PATH_CONFIGS[:3] + PATH_CONFIGS[5:11], ids=conv_config_id)
def test_relu_and_packed_weight(config):
    x, weight, bias = random_inputs(config, np.float32, seed=73)
    args = conv_args(config)
    x = to_nhwc(x)
    plain = cp.conv2d(x, weight, bias, layout="nhwc", **args)
    np.testing.assert_array_equal(cp.conv2d(x, weight, bias, layout="nhwc", activation="relu", **args),
                                  np.maximum(plain, 0))
    packed = cp.PackedConv2dWeight(weight)
    for _ in range(2):  # packing once, then reusing the packed panels
        np.testing.assert_array_equal(cp.conv2d(x, packed, bias, layout="nhwc", **args), plain)
    # The same packed weight serves NCHW calls too.
    np.testing.assert_array_equal(cp.conv2d(to_nchw(x), packed, bias, **args),
                                  cp.conv2d(to_nchw(x), weight, bias, **args))


@pytest.mark.parametrize("config", [PATH_CONFIGS[0], PATH_CONFIGS[5], PATH_CONFIGS[9], PATH_CONFIGS[12]],
                         ids=conv_config_id)
def test_gradients_match_finite_differences(config):
    x, weight, bias = random_inputs(config, np.float64, seed=74)
    args = conv_args(config)
    x = to_nhwc(x)
    out = cp.conv2d(x, weight, bias, layout="nhwc", **args)
    probe = np.random.default_rng(75).standard_normal(out.shape)
    grads = cp.conv2d_backward(probe, x, weight, layout="nhwc", **args)
    rng = np.random.default_rng(76)
    for which, array in enumerate((x, weight, bias)):
        for _ in range(4):
            index = tuple(int(rng.integers(0, n)) for n in array.shape)
            step = 1e-6
            shifted = [a.copy() for a in (x, weight, bias)]
            shifted[which][index] += step
            above = np.sum(probe * cp.conv2d(*shifted, layout="nhwc", **args))
            shifted[which][index] -= 2 * step
            below = np.sum(probe * cp.conv2d(*shifted, layout="nhwc", **args))
            np.testing.assert_allclose(grads[which][index], (above - below) / (2 * step), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("config", PATH_CONFIGS, ids=conv_config_id)
def test_bitwise_identical_for_any_thread_count(config, assert_thread_independent):
    x, weight, bias = random_inputs(config, np.float32, seed=77)
    args = conv_args(config)
    x = to_nhwc(x)

    def run():
        out = cp.conv2d(x, weight, bias, layout="nhwc", **args)
        return [out, *cp.conv2d_backward(np.cos(out), x, weight, layout="nhwc", **args)]

    assert_thread_independent(run)


def test_one_image_without_a_batch_dimension():
    x, weight, bias = random_inputs(PATH_CONFIGS[0], np.float64, seed=78)
    args = conv_args(PATH_CONFIGS[0])
    image = to_nhwc(x[1])  # (H, W, C)
    out = cp.conv2d(image, weight, bias, layout="nhwc", **args)
    np.testing.assert_array_equal(out, cp.conv2d(to_nhwc(x), weight, bias, layout="nhwc", **args)[1])
    grads = cp.conv2d_backward(np.ones_like(out), image, weight, layout="nhwc", **args)
    assert grads[0].shape == image.shape


def test_empty_batch_gives_empty_results():
    x = np.zeros((0, 5, 5, 3))
    weight = np.ones((4, 3, 3, 3))
    assert cp.conv2d(x, weight, layout="nhwc").shape == (0, 3, 3, 4)
    grad_input, grad_weight, grad_bias = cp.conv2d_backward(np.zeros((0, 3, 3, 4)), x, weight, layout="nhwc")
    assert grad_input.shape == x.shape
    assert not grad_weight.any() and not grad_bias.any()


def test_out_is_written_in_the_layout():
    x, weight, bias = random_inputs(PATH_CONFIGS[2], np.float32, seed=79)
    x = to_nhwc(x)
    out = np.empty((2, 5, 5, 64), np.float32)
    assert cp.conv2d(x, weight, bias, padding=1, layout="nhwc", out=out) is out
    np.testing.assert_array_equal(out, cp.conv2d(x, weight, bias, padding=1, layout="nhwc"))
    with pytest.raises(ValueError, match="shape"):
        cp.conv2d(x, weight, bias, padding=1, layout="nhwc", out=np.empty((2, 64, 5, 5), np.float32))


@pytest.mark.parametrize("layout", ["NHWC", "channels_last", "", 1, None])
def test_unknown_layout_names_the_accepted_ones(layout):
    x = np.zeros((1, 4, 4, 3), np.float32)
    weight = np.zeros((2, 3, 1, 1), np.float32)
    for call in (lambda: cp.conv2d(x, weight, layout=layout),
                 lambda: cp.conv2d_backward(np.zeros((1, 4, 4, 2), np.float32), x, weight, layout=layout)):
        with pytest.raises(ValueError, match="layout must be 'nchw' or 'nhwc'"):
            call()


def test_shapes_are_read_in_the_layout():
    weight = np.zeros((2, 3, 3, 3), np.float32)
    with pytest.raises(ValueError, match=r"\(N, H, W, C_in\)"):
        cp.conv2d(np.zeros((4, 4), np.float32), weight, layout="nhwc")
    # (1, 3, 8, 8) read as NHWC has 8 input channels, not the weight's 3.
    with pytest.raises(ValueError, match="C_in / groups = 8"):
        cp.conv2d(np.zeros((1, 3, 8, 8), np.float32), weight, layout="nhwc")
    with pytest.raises(ValueError, match="too large for input"):
        cp.conv2d(np.zeros((1, 2, 8, 3), np.float32), weight, layout="nhwc")
    with pytest.raises(ValueError, match="grad_output"):
        cp.conv2d_backward(np.zeros((1, 2, 6, 6), np.float32), np.zeros((1, 8, 8, 3), np.float32), weight,
                           layout="nhwc")


def test_matches_torch_channels_last():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(80)
    for config in PATH_CONFIGS:
        x, weight, bias = random_inputs(config, np.float32, seed=int(rng.integers(1 << 30)))
        args = conv_args(config)
        tx = torch.from_numpy(x).contiguous(memory_format=torch.channels_last).requires_grad_(True)
        tw = torch.from_numpy(weight).requires_grad_(True)
        tb = torch.from_numpy(bias).requires_grad_(True)
        ty = torch.nn.functional.conv2d(tx, tw, tb, **args)
        probe = torch.from_numpy(rng.standard_normal(tuple(ty.shape)).astype(np.float32))
        ty.backward(probe)
        out = cp.conv2d(to_nhwc(x), weight, bias, layout="nhwc", **args)
        grads = cp.conv2d_backward(to_nhwc(probe.numpy()), to_nhwc(x), weight, layout="nhwc", **args)
        theirs_all = (to_nhwc(ty.detach().numpy()), to_nhwc(tx.grad.numpy()), tw.grad.numpy(), tb.grad.numpy())
        for ours, theirs in zip((out, *grads), theirs_all):
            scale = 1 + np.abs(theirs).max()
            np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-4 * scale, err_msg=conv_config_id(config))


def test_torch_channels_last_tensors_run_in_place_and_stay_channels_last(monkeypatch):
    torch = pytest.importorskip("torch")
    import convpool.torch as cpt
    from convpool import _core

    seen = []
    conv2d, conv2d_backward = _core.conv2d, _core.conv2d_backward

    def recording(function):
        def call(first, second, *args, **kwargs):
            seen.append((kwargs.get("layout", "nchw"), first.__array_interface__["data"][0],
                         second.__array_interface__["data"][0]))
            return function(first, second, *args, **kwargs)
        return call

    monkeypatch.setattr(_core, "conv2d", recording(conv2d))
    monkeypatch.setattr(_core, "conv2d_backward", recording(conv2d_backward))
    for config in PATH_CONFIGS[:3] + PATH_CONFIGS[8:10]:
        x, weight, bias = random_inputs(config, np.float64, seed=81)
        args = conv_args(config)
        tx = torch.from_numpy(x).contiguous(memory_format=torch.channels_last).requires_grad_(True)
        tw, tb = torch.from_numpy(weight).requires_grad_(True), torch.from_numpy(bias).requires_grad_(True)
        seen.clear()
        y = cpt.conv2d(tx, tw, tb, **args)
        assert seen == [("nhwc", tx.data_ptr(), weight.__array_interface__["data"][0])]  # x read in place
        assert y.is_contiguous(memory_format=torch.channels_last) and not y.is_contiguous()
        expected = torch.nn.functional.conv2d(tx, tw, tb, **args)
        torch.testing.assert_close(y, expected)
        probe = torch.randn_like(expected).contiguous(memory_format=torch.channels_last)
        grads = torch.autograd.grad(y, (tx, tw, tb), probe)
        assert seen[1][:2] == ("nhwc", probe.data_ptr())  # the gradient, channels last, read in place too
        assert grads[0].is_contiguous(memory_format=torch.channels_last)
        for ours, theirs in zip(grads, torch.autograd.grad(expected, (tx, tw, tb), probe)):
            torch.testing.assert_close(ours, theirs)


def test_torch_channels_last_passes_opcheck():
    torch = pytest.importorskip("torch")
    pytest.importorskip("convpool.torch")  # defines the operators

    x = torch.randn(2, 16, 7, 6, dtype=torch.float64).contiguous(memory_format=torch.channels_last)
    weight, bias = torch.randn(8, 16, 3, 3, dtype=torch.float64), torch.randn(8, dtype=torch.float64)
    torch.library.opcheck(torch.ops.convpool.conv2d.default, (x, weight, bias, [1, 2], [1, 0], [1, 1], 1))
    depthwise = torch.randn(16, 1, 3, 3, dtype=torch.float64)
    torch.library.opcheck(torch.ops.convpool.conv2d.default, (x, depthwise, None, [2, 1], [1, 1], [1, 1], 16))
