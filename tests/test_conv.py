"""conv2d against the NumPy reference: random configurations, finite differences in float64,
PyTorch's 'same' rule, 3-D input, tiles larger than one cache block, the `needs` selection and
bitwise identity across thread counts."""

import numpy as np
import pytest

import convpool as cp
import reference as ref
from reference import assert_close
from configs import conv_args, conv_config_id, conv_inputs as random_inputs, random_conv_configs

CONFIGS = random_conv_configs(seed=61, count=60)


# One or two images with many channels, which the forward and input gradient cut into row tiles
# and blocks of output channels: the direct path with positions and with channels in the vector
# lanes, and the matrix-product path of a strided 1x1 convolution.
FEW_IMAGE_CONFIGS = [
    dict(shape=(1, 16, 40, 40), weight=(16, 16, 3, 3), stride=1, padding=1, dilation=1, groups=1),
    dict(shape=(1, 64, 20, 20), weight=(72, 64, 3, 3), stride=1, padding=1, dilation=1, groups=1),
    dict(shape=(1, 96, 7, 7), weight=(160, 96, 3, 3), stride=1, padding=1, dilation=1, groups=1),
    dict(shape=(2, 128, 9, 9), weight=(100, 128, 1, 1), stride=2, padding=0, dilation=1, groups=1),
    dict(shape=(1, 64, 15, 15), weight=(96, 32, 3, 3), stride=2, padding=1, dilation=1, groups=2),
    # 4x4 planes: the 4 x 4 register tile of positions by one vector of channels.
    dict(shape=(2, 64, 4, 4), weight=(40, 64, 3, 3), stride=1, padding=1, dilation=1, groups=1),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("config", CONFIGS + FEW_IMAGE_CONFIGS, ids=conv_config_id)
def test_matches_reference(config, dtype):
    x, weight, bias = random_inputs(config, dtype, seed=62)
    args = conv_args(config)
    out = cp.conv2d(x, weight, bias, **args)
    expected = ref.conv2d(x, weight, bias, **args)
    assert out.dtype == dtype and out.shape == expected.shape
    assert_close(out, expected, dtype)

    grad_output = np.cos(np.arange(out.size)).reshape(out.shape).astype(dtype)
    grads = cp.conv2d_backward(grad_output, x, weight, **args)
    expected_grads = ref.conv2d_backward(grad_output, x, weight, **args)
    for name, actual, wanted in zip(("input", "weight", "bias"), grads, expected_grads):
        assert actual.dtype == dtype and actual.shape == wanted.shape, name
        assert_close(actual, wanted, dtype, name)


@pytest.mark.parametrize("config", CONFIGS[:12], ids=conv_config_id)
def test_gradients_match_finite_differences(config):
    x, weight, bias = random_inputs(config, np.float64, seed=63)
    args = conv_args(config)
    out = cp.conv2d(x, weight, bias, **args)
    probe = np.random.default_rng(64).standard_normal(out.shape)
    grad_input, grad_weight, grad_bias = cp.conv2d_backward(probe, x, weight, **args)

    def loss(x_, weight_, bias_):
        return float(np.sum(cp.conv2d(x_, weight_, bias_, **args) * probe))

    rng = np.random.default_rng(65)
    eps = 1e-6
    inputs = (x, weight, bias)
    for position, grad in enumerate((grad_input, grad_weight, grad_bias)):
        array = inputs[position]
        for flat in rng.choice(array.size, size=min(array.size, 8), replace=False):
            index = np.unravel_index(flat, array.shape)
            up, down = list(inputs), list(inputs)
            up[position], down[position] = array.copy(), array.copy()
            up[position][index] += eps
            down[position][index] -= eps
            numeric = (loss(*up) - loss(*down)) / (2 * eps)
            assert grad[index] == pytest.approx(numeric, rel=1e-6, abs=1e-6), (position, index)


def test_same_padding_puts_the_extra_element_after():
    # An even kernel: total padding 3 (dilation 3, kernel 2) is 1 before and 2 after, as PyTorch.
    x = np.arange(2 * 7 * 6, dtype=np.float64).reshape(1, 2, 7, 6)
    weight = np.random.default_rng(66).standard_normal((3, 2, 2, 4))
    out = cp.conv2d(x, weight, padding="same", dilation=(3, 1))
    assert out.shape == (1, 3, 7, 6)
    padded = np.pad(x, ((0, 0), (0, 0), (1, 2), (1, 2)))
    np.testing.assert_allclose(out, ref.conv2d(padded, weight, dilation=(3, 1)), rtol=1e-12)


def test_three_dimensional_input_is_one_image():
    x, weight, bias = random_inputs(dict(shape=(3, 9, 8), weight=(4, 3, 3, 3)), np.float32, seed=67)
    out = cp.conv2d(x, weight, bias, padding=1)
    assert out.shape == (4, 9, 8)
    np.testing.assert_array_equal(out, cp.conv2d(x[None], weight, bias, padding=1)[0])
    grads = cp.conv2d_backward(np.ones_like(out), x, weight, padding=1)
    assert grads[0].shape == x.shape


@pytest.mark.parametrize("shape, weight, args", [
    ((2, 40, 30, 31), (13, 40, 3, 3), dict(padding=1)),           # several column tiles, deep reduction
    ((3, 64, 17, 19), (70, 64, 1, 1), dict()),                      # 1x1
    ((2, 24, 25, 26), (24, 1, 3, 3), dict(padding=1, groups=24)),   # depthwise
    ((2, 8, 28, 27), (16, 1, 5, 5), dict(stride=2, groups=8)),      # depthwise, multiplier 2
    ((5, 3, 40, 38), (16, 3, 7, 7), dict(stride=2, padding=3)),     # a stem
])
def test_larger_shapes_match_reference(shape, weight, args):
    x, w, b = random_inputs(dict(shape=shape, weight=weight), np.float32, seed=68)
    out = cp.conv2d(x, w, b, **args)
    assert_close(out, ref.conv2d(x, w, b, **args), np.float32)
    g = np.sin(np.arange(out.size)).reshape(out.shape).astype(np.float32)
    for actual, wanted in zip(cp.conv2d_backward(g, x, w, **args), ref.conv2d_backward(g, x, w, **args)):
        assert_close(actual, wanted, np.float32)


def test_needs_selects_the_gradients():
    x, weight, _ = random_inputs(dict(shape=(2, 3, 6, 6), weight=(4, 3, 3, 3)), np.float64, seed=69)
    g = np.ones((2, 4, 4, 4))
    full = cp.conv2d_backward(g, x, weight)
    only_weight = cp.conv2d_backward(g, x, weight, needs=("weight",))
    assert only_weight[0] is None and only_weight[2] is None
    np.testing.assert_array_equal(only_weight[1], full[1])
    nothing = cp.conv2d_backward(g, x, weight, needs=[])
    assert nothing == (None, None, None)


def test_empty_batch_gives_empty_results():
    out = cp.conv2d(np.zeros((0, 3, 5, 5), np.float32), np.ones((2, 3, 3, 3), np.float32))
    assert out.shape == (0, 2, 3, 3)
    gx, gw, gb = cp.conv2d_backward(out, np.zeros((0, 3, 5, 5), np.float32), np.ones((2, 3, 3, 3), np.float32))
    assert gx.shape == (0, 3, 5, 5)
    np.testing.assert_array_equal(gw, 0)
    np.testing.assert_array_equal(gb, 0)


@pytest.mark.parametrize("config", CONFIGS[:20] + [
    dict(shape=(1, 32, 33, 35), weight=(20, 32, 3, 3), stride=1, padding=1, dilation=1, groups=1),
    dict(shape=(3, 6, 20, 20), weight=(6, 1, 3, 3), stride=2, padding=1, dilation=1, groups=6),
    dict(shape=(9, 1, 12, 12), weight=(6, 1, 5, 5), stride=1, padding=0, dilation=1, groups=1),
] + FEW_IMAGE_CONFIGS, ids=conv_config_id)
def test_bitwise_identical_for_any_thread_count(config, assert_thread_independent):
    x, weight, bias = random_inputs(config, np.float32, seed=70)
    args = conv_args(config)

    def run():
        out = cp.conv2d(x, weight, bias, **args)
        relu = cp.conv2d(x, weight, bias, activation="relu", **args)
        return (out, relu) + cp.conv2d_backward(np.cos(out), x, weight, **args)

    assert_thread_independent(run)


@pytest.mark.parametrize(
    "shape, weight, stride, groups, column",
    [
        ((3, 2, 9, 11), (4, 2, 3, 3), 1, 1, 0),
        ((2, 1, 12, 12), (6, 1, 5, 5), 1, 1, 0),
        ((2, 3, 15, 17), (5, 3, 5, 5), 2, 1, 0),
        ((2, 3, 9, 11), (3, 1, 3, 3), 1, 3, 10),  # depthwise, infinity in the last column
        ((2, 3, 9, 11), (6, 1, 3, 3), 1, 3, 10),  # depthwise, multiplier 2
    ],
)
def test_infinite_input_reaches_only_the_weights_that_read_it(shape, weight, stride, groups, column):
    # The vector paths compute padded rows past the output's width; a 0 * inf there must not leak
    # a NaN into weights that never read the infinite value.
    rng = np.random.default_rng(70)
    x = rng.standard_normal(shape)
    x[0, 0, 4, column] = np.inf
    w = rng.standard_normal(weight)
    args = dict(stride=stride, padding=1, groups=groups)
    grad_output = rng.standard_normal(ref.conv2d(x, w, **args).shape)
    expected = ref.conv2d_backward(grad_output, x, w, **args)
    actual = cp.conv2d_backward(grad_output, x, w, **args)
    np.testing.assert_allclose(actual[1], expected[1], rtol=1e-11, atol=1e-11)
    assert np.isfinite(actual[1]).sum() == np.isfinite(expected[1]).sum() > 0


@pytest.mark.parametrize("config", CONFIGS[:30], ids=conv_config_id)
def test_relu_activation_equals_relu_of_the_output(config):
    # Every path (matrix product, direct by positions or by channels, depthwise) applies it.
    x, weight, bias = random_inputs(config, np.float32, seed=71)
    args = conv_args(config)
    np.testing.assert_array_equal(cp.conv2d(x, weight, bias, activation="relu", **args),
                                  cp.relu(cp.conv2d(x, weight, bias, **args)))
    with pytest.raises(ValueError, match="activation must be None or 'relu'"):
        cp.conv2d(x, weight, bias, activation="tanh", **args)


# ResNet-18's deep layers at N = 1, where packing the weight on every call costs most.
PACKED_CONFIGS = CONFIGS[:30] + FEW_IMAGE_CONFIGS + [
    dict(shape=(1, 64, 7, 7), weight=(64, 64, 3, 3), stride=1, padding=1, dilation=1, groups=1),
    dict(shape=(1, 32, 14, 14), weight=(64, 32, 3, 3), stride=2, padding=1, dilation=1, groups=1),
    dict(shape=(1, 8, 9, 9), weight=(8, 4, 2, 2), stride=100, padding=0, dilation=8, groups=2),  # matrix product
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("config", PACKED_CONFIGS, ids=conv_config_id)
def test_packed_weight_gives_the_plain_results_bit_for_bit(config, dtype):
    x, weight, bias = random_inputs(config, dtype, seed=72)
    args = conv_args(config)
    packed = cp.PackedConv2dWeight(weight)
    plain = cp.conv2d(x, weight, bias, activation="relu", **args)
    for _ in range(2):  # the second call reads the panels the first one packed
        np.testing.assert_array_equal(cp.conv2d(x, packed, bias, activation="relu", **args), plain)
    # Another input size may take another path or register tile of the same weight.
    taller = np.concatenate([x, x[..., :3, :]], axis=-2)
    np.testing.assert_array_equal(cp.conv2d(taller, packed, bias, **args), cp.conv2d(taller, weight, bias, **args))
    g = np.cos(plain)
    for actual, expected in zip(cp.conv2d_backward(g, x, packed, **args), cp.conv2d_backward(g, x, weight, **args)):
        np.testing.assert_array_equal(actual, expected)


def test_packed_weight_serves_any_groups_its_shape_allows():
    # A (6, 2, 3, 3) weight convolves 2 channels with groups=1 and 6 channels with groups=3.
    rng = np.random.default_rng(73)
    weight = rng.standard_normal((6, 2, 3, 3))
    packed = cp.PackedConv2dWeight(weight)
    for groups in (1, 3, 1):
        x = rng.standard_normal((1, 2 * groups, 9, 9))
        np.testing.assert_array_equal(cp.conv2d(x, packed, groups=groups), cp.conv2d(x, weight, groups=groups))


def test_packed_weight_is_bitwise_identical_for_any_thread_count(assert_thread_independent):
    rng = np.random.default_rng(74)
    x = rng.standard_normal((1, 96, 7, 7)).astype(np.float32)
    packed = cp.PackedConv2dWeight(rng.standard_normal((160, 96, 3, 3)).astype(np.float32))
    assert_thread_independent(lambda: (cp.conv2d(x, packed, padding=1),))


def test_packed_weight_holds_a_read_only_copy():
    import copy
    import pickle

    rng = np.random.default_rng(75)
    weight = rng.standard_normal((8, 4, 3, 3)).astype(np.float32)
    x = rng.standard_normal((2, 4, 10, 10)).astype(np.float32)
    packed = cp.PackedConv2dWeight(weight)
    expected = cp.conv2d(x, weight, padding=1)
    weight[...] = 0  # the packed object keeps the values it was given
    np.testing.assert_array_equal(cp.conv2d(x, packed, padding=1), expected)
    assert packed.shape == (8, 4, 3, 3) and packed.dtype == np.float32
    assert repr(packed) == "PackedConv2dWeight(shape=(8, 4, 3, 3), dtype=float32)"
    view = packed.weight
    assert view.base is packed and not view.flags.writeable
    with pytest.raises(ValueError):
        view.flags.writeable = True
    with pytest.raises(ValueError, match="read-only"):
        view[0] = 1
    assert copy.deepcopy(packed) is packed  # it never changes
    loaded = pickle.loads(pickle.dumps(packed))
    np.testing.assert_array_equal(cp.conv2d(x, loaded, padding=1), expected)


def test_packed_weight_bad_input():
    with pytest.raises(ValueError, match=r"PackedConv2dWeight: weight must be \(C_out, C_in / groups, kH, kW\), "
                                         r"got shape \(3, 3\)"):
        cp.PackedConv2dWeight(np.zeros((3, 3)))
    with pytest.raises(ValueError, match=r"zero-size dimension: shape \(0, 2, 3, 3\)"):
        cp.PackedConv2dWeight(np.zeros((0, 2, 3, 3)))
    with pytest.raises(TypeError, match="PackedConv2dWeight: weight must be float32 or float64, got int64"):
        cp.PackedConv2dWeight(np.zeros((2, 2, 3, 3), np.int64))
    packed = cp.PackedConv2dWeight(np.ones((4, 2, 3, 3), np.float32))
    with pytest.raises(TypeError, match="conv2d: weight is a PackedConv2dWeight of float32 but x is float64"):
        cp.conv2d(np.ones((1, 2, 5, 5)), packed)
    with pytest.raises(ValueError, match=r"weight shape \(4, 2, 3, 3\) needs C_in / groups = 3"):
        cp.conv2d(np.ones((1, 3, 5, 5), np.float32), packed)
    with pytest.raises(TypeError, match="conv2d_backward: weight is a PackedConv2dWeight of float32 but x is float64"):
        cp.conv2d_backward(np.ones((1, 4, 3, 3)), np.ones((1, 2, 5, 5)), packed)


# Winograd's F(2x2, 3x3) on packed weights: 3x3 at stride 1 and dilation 1, one group, 40 channels
# in and out or more, planes of about 10x10 outputs or more (others keep the direct path).
WINOGRAD_CONFIGS = [
    dict(shape=(1, 40, 28, 28), weight=(48, 40, 3, 3), stride=1, padding=1, dilation=1, groups=1),
    dict(shape=(2, 48, 17, 23), weight=(40, 48, 3, 3), stride=1, padding=1, dilation=1, groups=1),  # odd sizes
    dict(shape=(3, 40, 20, 21), weight=(48, 40, 3, 3), stride=1, padding=0, dilation=1, groups=1),
    dict(shape=(1, 64, 14, 14), weight=(64, 64, 3, 3), stride=1, padding=2, dilation=1, groups=1),
    dict(shape=(1, 40, 58, 40), weight=(48, 40, 3, 3), stride=1, padding=1, dilation=1, groups=1),  # many bands
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("config", WINOGRAD_CONFIGS, ids=conv_config_id)
def test_winograd_packed_weight_matches_reference_to_rounding(config, dtype):
    x, weight, bias = random_inputs(config, dtype, seed=76)
    args = conv_args(config)
    packed = cp.PackedConv2dWeight(weight, winograd=True)
    out = cp.conv2d(x, packed, bias, **args)
    direct = cp.conv2d(x, weight, bias, **args)
    assert not np.array_equal(out, direct)  # it took the Winograd path
    expected = ref.conv2d(x.astype(np.float64), weight.astype(np.float64), bias.astype(np.float64), **args)
    # The transforms add a few roundings per term: the error stays a small multiple of the
    # direct sums' (measured in docs/semantics.md), scaled by the sum of |w| |x| a term adds up.
    scale = ref.conv2d(np.abs(x).astype(np.float64), np.abs(weight).astype(np.float64), None, **args)
    tolerance = 16 * np.finfo(dtype).eps * (scale + np.abs(bias.astype(np.float64))[:, None, None])
    assert np.all(np.abs(out - expected) <= tolerance)
    np.testing.assert_array_equal(cp.conv2d(x, packed, bias, activation="relu", **args), cp.relu(out))


def test_winograd_is_bitwise_identical_for_any_thread_count(assert_thread_independent):
    config = WINOGRAD_CONFIGS[1]
    x, weight, bias = random_inputs(config, np.float32, seed=77)
    packed = cp.PackedConv2dWeight(weight, winograd=True)
    assert_thread_independent(lambda: (cp.conv2d(x, packed, bias, padding=1),
                                       cp.conv2d(x[:1], packed, bias, padding=1)))


@pytest.mark.parametrize("config", [
    dict(shape=(1, 16, 28, 28), weight=(24, 16, 3, 3), stride=2, padding=1, dilation=1, groups=1),
    dict(shape=(1, 16, 28, 28), weight=(24, 16, 3, 3), stride=1, padding=2, dilation=2, groups=1),
    dict(shape=(1, 16, 28, 28), weight=(24, 8, 3, 3), stride=1, padding=1, dilation=1, groups=2),
    dict(shape=(1, 16, 28, 28), weight=(24, 16, 5, 5), stride=1, padding=2, dilation=1, groups=1),
    dict(shape=(2, 48, 3, 3), weight=(48, 48, 3, 3), stride=1, padding=1, dilation=1, groups=1),  # too small
    dict(shape=(1, 32, 28, 28), weight=(48, 32, 3, 3), stride=1, padding=1, dilation=1, groups=1),  # too few channels
], ids=conv_config_id)
def test_winograd_packed_weight_keeps_the_direct_path_elsewhere(config):
    x, weight, bias = random_inputs(config, np.float32, seed=78)
    args = conv_args(config)
    np.testing.assert_array_equal(cp.conv2d(x, cp.PackedConv2dWeight(weight, winograd=True), bias, **args),
                                  cp.conv2d(x, weight, bias, **args))


def test_winograd_flag_is_kept_and_checked():
    import pickle

    packed = cp.PackedConv2dWeight(np.ones((4, 2, 3, 3), np.float32), winograd=True)
    assert packed.winograd and not cp.PackedConv2dWeight(np.ones((4, 2, 3, 3))).winograd
    assert repr(packed) == "PackedConv2dWeight(shape=(4, 2, 3, 3), dtype=float32, winograd=True)"
    assert pickle.loads(pickle.dumps(packed)).winograd
    with pytest.raises(TypeError, match="PackedConv2dWeight: winograd must be True or False, got 1"):
        cp.PackedConv2dWeight(np.ones((4, 2, 3, 3)), winograd=1)


def test_a_per_call_winograd_must_agree_with_a_packed_weight():
    rng = np.random.default_rng(7)
    x, weight = rng.standard_normal((1, 48, 12, 12)), rng.standard_normal((48, 48, 3, 3))
    grad = rng.standard_normal((1, 48, 10, 10))
    for flag in (False, True):
        packed = cp.PackedConv2dWeight(weight, winograd=flag)
        # None (the default) and the packed weight's own flag both take the packed weight's choice.
        np.testing.assert_array_equal(cp.conv2d(x, packed), cp.conv2d(x, weight, winograd=flag))
        np.testing.assert_array_equal(cp.conv2d(x, packed, winograd=flag), cp.conv2d(x, weight, winograd=flag))
        np.testing.assert_array_equal(cp.conv2d_backward(grad, x, packed)[0],
                                      cp.conv2d_backward(grad, x, weight, winograd=flag)[0])
        message = (f"winograd={not flag} disagrees with the weight, a PackedConv2dWeight packed with "
                   f"winograd={flag}")
        with pytest.raises(ValueError, match=f"conv2d: {message}"):
            cp.conv2d(x, packed, winograd=not flag)
        with pytest.raises(ValueError, match=f"conv2d_backward: {message}"):
            cp.conv2d_backward(grad, x, packed, winograd=not flag)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("padding", [0, 1, 2])
def test_winograd_argument_forward_and_input_gradient_match_reference(dtype, padding):
    config = dict(shape=(2, 48, 17, 23), weight=(40, 48, 3, 3), stride=1, padding=padding, dilation=1, groups=1)
    x, weight, bias = random_inputs(config, dtype, seed=79)
    args = conv_args(config)
    out = cp.conv2d(x, weight, bias, winograd=True, **args)
    assert not np.array_equal(out, cp.conv2d(x, weight, bias, **args))
    eps = np.finfo(dtype).eps
    scale = ref.conv2d(np.abs(x).astype(np.float64), np.abs(weight).astype(np.float64), None, **args)
    assert np.all(np.abs(out - ref.conv2d(x, weight, bias, **args)) <= 16 * eps * (scale + np.abs(bias)[:, None, None]))
    g = np.cos(out)
    fast = cp.conv2d_backward(g, x, weight, winograd=True, **args)
    direct = cp.conv2d_backward(g, x, weight, **args)
    assert not np.array_equal(fast[0], direct[0])
    expected = ref.conv2d_backward(g, x, weight, **args)[0]
    input_scale = ref.conv2d_backward(np.abs(g).astype(np.float64), x, np.abs(weight).astype(np.float64), **args)[0]
    assert np.all(np.abs(fast[0] - expected) <= 16 * eps * input_scale)
    np.testing.assert_array_equal(fast[1], direct[1])  # the weight and bias gradients keep the direct sums
    np.testing.assert_array_equal(fast[2], direct[2])


def test_winograd_argument_is_checked_and_ignored_where_it_does_not_apply():
    x = np.ones((1, 48, 12, 12), np.float32)
    with pytest.raises(TypeError, match="conv2d: winograd must be None, True or False, got 'yes'"):
        cp.conv2d(x, np.ones((48, 48, 3, 3), np.float32), winograd="yes")
    with pytest.raises(TypeError, match="conv2d_backward: winograd must be None, True or False, got 1"):
        cp.conv2d_backward(np.ones((1, 48, 10, 10), np.float32), x, np.ones((48, 48, 3, 3), np.float32), winograd=1)
    w5 = np.random.default_rng(80).standard_normal((48, 48, 5, 5)).astype(np.float32)
    np.testing.assert_array_equal(cp.conv2d(x, w5, padding=2, winograd=True), cp.conv2d(x, w5, padding=2))


def alternating_rows(shape, magnitude, dtype):
    """+magnitude and -magnitude in alternating rows: the input transform's row differences
    double them."""
    x = np.full(shape, magnitude, dtype)
    x[..., 1::2, :] = -magnitude
    return x


@pytest.mark.parametrize("dtype, magnitude", [(np.float32, 3e38), (np.float64, 1e308)])
def test_winograd_gives_the_direct_sums_where_its_transforms_would_overflow(dtype, magnitude):
    rng = np.random.default_rng(11)
    big = alternating_rows((2, 48, 16, 16), magnitude, dtype)
    small_weight = (rng.standard_normal((48, 48, 3, 3)) * 1e-3).astype(dtype) / 48
    normal = rng.standard_normal((2, 48, 16, 16)).astype(dtype)
    huge_weight = np.full((48, 48, 3, 3), np.finfo(dtype).max / 1.5, dtype)  # U = G g G^T is 2.25 g
    # On ordinary values these calls take F(2x2, 3x3), whose rounding differs from the direct sums.
    assert not np.array_equal(cp.conv2d(normal, small_weight, padding=1, winograd=True),
                              cp.conv2d(normal, small_weight, padding=1))
    for x, weight in ((big, small_weight), (normal * 1e-40 if dtype == np.float64 else normal * 1e-30, huge_weight)):
        direct = cp.conv2d(x, weight, padding=1)
        assert np.isfinite(direct).all()
        for fast in (cp.conv2d(x, weight, padding=1, winograd=True),
                     cp.conv2d(x, cp.PackedConv2dWeight(weight, winograd=True), padding=1),
                     cp.conv2d(x, weight, padding=1, winograd=True, activation="relu")):
            np.testing.assert_array_equal(np.maximum(fast, 0), np.maximum(direct, 0))
    grad = alternating_rows((2, 48, 16, 16), magnitude, dtype)
    direct = cp.conv2d_backward(grad, normal, small_weight, padding=1, needs=("input",))[0]
    assert np.isfinite(direct).all()
    np.testing.assert_array_equal(
        cp.conv2d_backward(grad, normal, small_weight, padding=1, needs=("input",), winograd=True)[0], direct)


def test_winograd_spreads_infinities_and_nan_as_the_direct_sums_do():
    x = np.random.default_rng(12).standard_normal((1, 48, 12, 12)).astype(np.float32)
    weight = np.random.default_rng(13).standard_normal((48, 48, 3, 3)).astype(np.float32)
    x[0, 3, 5, 6] = np.inf
    x[0, 7, 1, 1] = np.nan
    np.testing.assert_array_equal(cp.conv2d(x, weight, padding=1, winograd=True), cp.conv2d(x, weight, padding=1))
