"""batch_norm2d and its backward against the NumPy reference: training and evaluation, running
statistics, absent weight and bias, the fused ReLU, float64 finite differences, bitwise identity
across thread counts, channels last (bitwise the NCHW results), and the arguments it refuses."""

import numpy as np
import pytest

import convpool as cp
import reference as ref
from reference import to_nchw, to_nhwc

SHAPES = [(2, 3, 5, 7), (1, 4, 1, 1 + 64), (8, 16, 8, 8), (3, 1, 33, 2), (2, 5, 1, 1)]


def inputs(shape, dtype, seed):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 3 + 1.5).astype(dtype)
    weight = rng.standard_normal(shape[1]).astype(dtype)
    bias = rng.standard_normal(shape[1]).astype(dtype)
    running_mean = rng.standard_normal(shape[1]).astype(dtype)
    running_var = rng.uniform(0.5, 2, shape[1]).astype(dtype)
    return x, weight, bias, running_mean, running_var


def assert_close(actual, expected, dtype, what=""):
    tol = 2e-5 if dtype == np.float32 else 1e-11
    np.testing.assert_allclose(actual, expected, rtol=tol, atol=tol * (1 + np.abs(expected).max(initial=0)),
                               err_msg=what)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("relu", [False, True])
def test_matches_reference(shape, dtype, training, affine, relu):
    x, weight, bias, running_mean, running_var = inputs(shape, dtype, seed=1)
    if not affine:
        weight = bias = None
    if training and shape[0] * shape[2] * shape[3] == 1:
        pytest.skip("training needs more than one value per channel")
    expected, mean, invstd, new_mean, new_var = ref.batch_norm2d(x, weight, bias, running_mean, running_var,
                                                                 training, 0.1, 1e-5, relu)
    out, saved_mean, saved_invstd = cp.batch_norm2d(x, weight, bias, running_mean, running_var, training=training,
                                                     activation="relu" if relu else None)
    assert out.dtype == dtype and out.shape == x.shape
    assert_close(out, expected, dtype, "out")
    assert_close(saved_mean, mean, dtype, "saved_mean")
    assert_close(saved_invstd, invstd, dtype, "saved_invstd")
    assert_close(running_mean, new_mean, dtype, "running_mean")  # updated in place in training only
    assert_close(running_var, new_var, dtype, "running_var")

    grad_output = np.cos(np.arange(x.size)).reshape(x.shape).astype(dtype)
    grads = cp.batch_norm2d_backward(grad_output, x, weight, saved_mean, saved_invstd, training=training,
                                     activation="relu" if relu else None, output=out if relu else None)
    wanted = ref.batch_norm2d_backward(grad_output, x, weight, saved_mean.astype(np.float64),
                                       saved_invstd.astype(np.float64), training, out if relu else None)
    for name, actual, expect in zip(("input", "weight", "bias"), grads, wanted):
        assert actual.dtype == dtype and actual.shape == expect.shape, name
        assert_close(actual, expect, dtype, name)


def test_training_without_running_statistics_uses_the_batch():
    x, weight, bias, _, _ = inputs((4, 3, 6, 6), np.float64, seed=2)
    out, mean, invstd = cp.batch_norm2d(x, weight, bias)
    np.testing.assert_allclose(mean, x.mean(axis=(0, 2, 3)), rtol=1e-13)
    np.testing.assert_allclose(invstd, 1 / np.sqrt(x.var(axis=(0, 2, 3)) + 1e-5), rtol=1e-13)
    normalized = (out - bias[:, None, None]) / weight[:, None, None]
    np.testing.assert_allclose(normalized.mean(axis=(0, 2, 3)), 0, atol=1e-12)


def test_running_statistics_over_several_steps():
    rng = np.random.default_rng(3)
    running_mean, running_var = np.zeros(4), np.ones(4)
    expected_mean, expected_var = running_mean.copy(), running_var.copy()
    for step in range(5):
        x = rng.standard_normal((3, 4, 5, 5)) * (step + 1) + step
        cp.batch_norm2d(x, None, None, running_mean, running_var, momentum=0.3)
        count = 3 * 5 * 5
        expected_mean = 0.7 * expected_mean + 0.3 * x.mean(axis=(0, 2, 3))
        expected_var = 0.7 * expected_var + 0.3 * x.var(axis=(0, 2, 3)) * count / (count - 1)
    np.testing.assert_allclose(running_mean, expected_mean, rtol=1e-13)
    np.testing.assert_allclose(running_var, expected_var, rtol=1e-13)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("relu", [False, True])
def test_gradients_match_finite_differences(training, relu):
    x, weight, bias, running_mean, running_var = inputs((3, 2, 4, 5), np.float64, seed=4)
    activation = "relu" if relu else None

    def forward(x_, weight_, bias_):
        return cp.batch_norm2d(x_, weight_, bias_, running_mean.copy(), running_var.copy(), training=training,
                               activation=activation)

    out, mean, invstd = forward(x, weight, bias)
    probe = np.random.default_rng(5).standard_normal(x.shape)
    grads = cp.batch_norm2d_backward(probe, x, weight, mean, invstd, training=training, activation=activation,
                                     output=out)

    def loss(*args):
        return float(np.sum(forward(*args)[0] * probe))

    eps = 1e-6
    rng = np.random.default_rng(6)
    for position, (array, grad) in enumerate(zip((x, weight, bias), grads)):
        for flat in rng.choice(array.size, size=min(array.size, 8), replace=False):
            args = [x, weight, bias]
            plus, minus = array.copy(), array.copy()
            plus.flat[flat] += eps
            minus.flat[flat] -= eps
            numeric = (loss(*args[:position], plus, *args[position + 1:])
                       - loss(*args[:position], minus, *args[position + 1:])) / (2 * eps)
            assert abs(grad.flat[flat] - numeric) < 1e-6 * (1 + abs(numeric)), (position, flat)


def test_relu_fusion_equals_the_two_steps():
    x, weight, bias, running_mean, running_var = inputs((4, 6, 7, 9), np.float32, seed=7)
    fused, mean, invstd = cp.batch_norm2d(x, weight, bias, activation="relu")
    plain, _, _ = cp.batch_norm2d(x, weight, bias)
    np.testing.assert_array_equal(fused, cp.relu(plain))
    g = np.sin(np.arange(x.size)).reshape(x.shape).astype(np.float32)
    fused_grads = cp.batch_norm2d_backward(g, x, weight, mean, invstd, activation="relu", output=fused)
    plain_grads = cp.batch_norm2d_backward(cp.relu_backward(g, fused), x, weight, mean, invstd)
    for a, b in zip(fused_grads, plain_grads):
        np.testing.assert_array_equal(a, b)


def test_needs_selects_the_gradients():
    x, weight, bias, _, _ = inputs((2, 3, 4, 4), np.float32, seed=8)
    out, mean, invstd = cp.batch_norm2d(x, weight, bias)
    g = np.ones_like(x)
    full = cp.batch_norm2d_backward(g, x, weight, mean, invstd)
    for needs in [("input",), ("weight",), ("bias",), ("weight", "bias"), ()]:
        got = cp.batch_norm2d_backward(g, x, weight, mean, invstd, needs=needs)
        for name, a, b in zip(("input", "weight", "bias"), got, full):
            if name in needs:
                np.testing.assert_array_equal(a, b)
            else:
                assert a is None


@pytest.mark.parametrize("shape", [(16, 8, 9, 9), (2, 3, 40, 40), (5, 64, 4, 4)])
def test_bitwise_identical_for_any_thread_count(shape, assert_thread_independent):
    x, weight, bias, running_mean, running_var = inputs(shape, np.float32, seed=9)

    def run():
        rm, rv = running_mean.copy(), running_var.copy()
        out, mean, invstd = cp.batch_norm2d(x, weight, bias, rm, rv, activation="relu")
        grads = cp.batch_norm2d_backward(np.cos(out), x, weight, mean, invstd, activation="relu", output=out)
        return (out, mean, invstd, rm, rv) + grads

    assert_thread_independent(run)


# Channels last: fewer channels than one block, whole blocks of 16, 32 and 64 and a block with a
# remainder; planes of one value per image, fewer than the 32 running sums, and of several chunks.
NHWC_SHAPES = [(3, 5, 4, 7), (2, 16, 6, 6), (4, 32, 1, 1), (2, 64, 50, 45), (3, 83, 5, 3), (1, 130, 7, 7)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", NHWC_SHAPES)
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("relu", [False, True])
def test_channels_last_equals_nchw_bit_for_bit(shape, dtype, training, relu):
    x, weight, bias, running_mean, running_var = inputs(shape, dtype, seed=11)
    activation = "relu" if relu else None
    results = {}
    for layout, x_in in (("nchw", x), ("nhwc", to_nhwc(x))):
        rm, rv = running_mean.copy(), running_var.copy()
        out, mean, invstd = cp.batch_norm2d(x_in, weight, bias, rm, rv, training=training, activation=activation,
                                            layout=layout)
        grad_output = np.sin(np.arange(x.size)).reshape(x.shape).astype(dtype)
        grad_output = grad_output if layout == "nchw" else to_nhwc(grad_output)
        grads = cp.batch_norm2d_backward(grad_output, x_in, weight, mean, invstd, training=training,
                                         activation=activation, output=out, layout=layout)
        assert out.shape == x_in.shape and grads[0].shape == x_in.shape
        transposed = (lambda a: a) if layout == "nchw" else to_nchw
        results[layout] = [transposed(out), mean, invstd, rm, rv, transposed(grads[0]), grads[1], grads[2]]
    for nchw, nhwc in zip(results["nchw"], results["nhwc"]):
        assert nchw.tobytes() == nhwc.tobytes()


def test_channels_last_float32_overflow_and_infinities_as_nchw():
    # Channels of both kinds in a whole block and in the remainder: squares or sums overflowing
    # float32, an infinity, and ordinary values.
    x = np.random.default_rng(12).standard_normal((2, 70, 6, 6)).astype(np.float32)
    x[:, 3::16] = 1e38
    x[:, 5::16] = 3e19
    x[0, 7, 2, 2] = np.inf
    x[1, 66, 0, 1] = -np.inf
    nchw = cp.batch_norm2d(x)
    nhwc = cp.batch_norm2d(to_nhwc(x), layout="nhwc")
    for a, b in zip((nchw[0], *nchw[1:]), (to_nchw(nhwc[0]), *nhwc[1:])):
        assert a.tobytes() == b.tobytes()


def test_empty_batch_in_evaluation():
    x = np.zeros((0, 3, 4, 4), np.float32)
    out, mean, invstd = cp.batch_norm2d(x, None, None, np.zeros(3, np.float32), np.ones(3, np.float32),
                                        training=False)
    assert out.shape == x.shape
    np.testing.assert_allclose(invstd, 1 / np.sqrt(1 + 1e-5), rtol=1e-6)


def bad_calls():
    x = np.ones((2, 3, 4, 4), np.float32)
    c3 = np.ones(3, np.float32)
    return [
        (lambda: cp.batch_norm2d(x[0]), ValueError, r"x must be \(N, C, H, W\), got shape \(3, 4, 4\)"),
        (lambda: cp.batch_norm2d(x, np.ones(4, np.float32)), ValueError, r"weight has shape \(4,\).*C = \(3,\)"),
        (lambda: cp.batch_norm2d(x, c3, np.ones(3)), TypeError, "bias is float64 but x is float32"),
        (lambda: cp.batch_norm2d(x, None, None, c3.copy(), None), ValueError, "both be given or both be None"),
        (lambda: cp.batch_norm2d(x, None, None, np.ones(2, np.float32), np.ones(2, np.float32)), ValueError,
         r"running_mean has shape \(2,\)"),
        (lambda: cp.batch_norm2d(x, None, None, np.ones(3), np.ones(3)), TypeError,
         "running_mean is float64 but x is float32"),
        (lambda: cp.batch_norm2d(x, None, None, np.ones(6, np.float32)[::2], c3.copy()), ValueError,
         "writable contiguous"),
        (lambda: cp.batch_norm2d(x, None, None, [0.0, 0.0, 0.0], c3.copy()), TypeError, "must be a NumPy array"),
        (lambda: cp.batch_norm2d(x, training=False), ValueError, "needs running_mean and running_var"),
        (lambda: cp.batch_norm2d(np.ones((1, 3, 1, 1), np.float32)), ValueError,
         r"more than one value per channel, got x shape \(1, 3, 1, 1\)"),
        (lambda: cp.batch_norm2d(x, activation="gelu"), ValueError, "activation must be None or 'relu'"),
        (lambda: cp.batch_norm2d(x, momentum=float("nan")), ValueError, "momentum must be finite"),
        (lambda: cp.batch_norm2d(x, eps=-1.0), ValueError, "eps must be finite and positive in training"),
        (lambda: cp.batch_norm2d_backward(x[:1], x, None, c3, c3), ValueError, r"grad_output has shape \(1, 3, 4, 4\)"),
        (lambda: cp.batch_norm2d_backward(x, x, None, c3, None), ValueError, "saved_mean and saved_invstd"),
        (lambda: cp.batch_norm2d_backward(x, x, None, c3, c3, activation="relu"), ValueError, "output="),
        (lambda: cp.batch_norm2d_backward(x, x, None, c3, c3, needs=("input", "mean")), ValueError, "needs must be"),
        (lambda: cp.batch_norm2d(x, layout="NHWC"), ValueError, "layout must be 'nchw' or 'nhwc', got 'NHWC'"),
        (lambda: cp.batch_norm2d(x[0], layout="nhwc"), ValueError, r"x must be \(N, H, W, C\), got shape \(3, 4, 4\)"),
        (lambda: cp.batch_norm2d(x, c3, layout="nhwc"), ValueError, r"weight has shape \(3,\).*C = \(4,\)"),
        (lambda: cp.batch_norm2d_backward(x, x, None, c3, c3, layout="nhwc"), ValueError, r"saved_mean has shape"),
    ]


@pytest.mark.parametrize("index", range(len(bad_calls())))
def test_bad_arguments_raise(index):
    call, error, message = bad_calls()[index]
    with pytest.raises(error, match=message):
        call()


def test_frozen_running_statistics_are_refused_not_copied():
    x = np.ones((2, 3, 4, 4), np.float32)
    frozen = np.zeros(3, np.float32)
    frozen.setflags(write=False)
    with pytest.raises(ValueError, match="running_mean is updated in place"):
        cp.batch_norm2d(x, None, None, frozen, np.ones(3, np.float32))


def test_running_statistics_sharing_memory_with_what_the_call_reads_or_writes_are_refused():
    # They are written in place: a view of x, the weight, or one array for both would be read after
    # being overwritten (or overwrite each other) and corrupt the result.
    x = np.random.default_rng(3).standard_normal((2, 3, 4, 4))
    weight, shared = np.ones(3), np.zeros(3)
    out = np.empty_like(x)
    cases = [
        (dict(running_mean=x[0, 0, 0, :3], running_var=np.ones(3)), "running_mean is updated in place and shares "
                                                                    "memory with an input"),
        (dict(weight=weight, running_mean=weight, running_var=np.ones(3)), "running_mean is updated in place and "
                                                                           "shares memory with an input"),
        (dict(running_mean=shared, running_var=shared), "running_var is updated in place and shares memory with "
                                                        "running_mean"),
        (dict(running_mean=np.zeros(3), running_var=out.reshape(-1)[:3], out=(out, None, None)),
         r"out\[0\] shares memory with running_var"),
    ]
    for kwargs, message in cases:
        given = {key: value.copy() for key, value in kwargs.items() if isinstance(value, np.ndarray)}
        with pytest.raises(ValueError, match=message):
            cp.batch_norm2d(x, **kwargs)
        for key, before in given.items():
            np.testing.assert_array_equal(kwargs[key], before, err_msg=key)
    # In evaluation they are only read: sharing memory with x is then harmless.
    stats = np.abs(x[0, 0, 0, :3]) + 1
    np.testing.assert_allclose(cp.batch_norm2d(x, running_mean=stats, running_var=stats, training=False)[0],
                               (x - stats[:, None, None]) / np.sqrt(stats[:, None, None] + 1e-5), rtol=1e-12)


def test_float32_values_near_the_largest_keep_finite_statistics():
    # Sums of 64 values of 1e38, or squares of 1e19 and more, overflow float32 but not float64.
    x = np.full((2, 2, 4, 4), 1e38, np.float32)
    x[:, :, :2] = -1e38
    x[:, 1] *= 1e-19  # 1e19: only the squares overflow
    running_mean, running_var = np.zeros(2, np.float32), np.ones(2, np.float32)
    out, mean, invstd = cp.batch_norm2d(x, running_mean=running_mean, running_var=running_var)
    np.testing.assert_array_equal(mean, [0, 0])
    np.testing.assert_allclose(invstd, [1e-38, 1e-19], rtol=1e-6)
    np.testing.assert_allclose(out, np.sign(x), rtol=1e-5)  # normalized: exactly the signs
    np.testing.assert_array_equal(running_mean, [0, 0])
    assert running_var[0] == np.inf and np.isclose(running_var[1], 0.1 * 1e38 * 32 / 31, rtol=1e-6)
    grads = cp.batch_norm2d_backward(np.ones_like(x), x, None, mean, invstd)
    assert all(np.isfinite(grad).all() for grad in grads)


def test_an_infinite_value_gives_an_infinite_mean_as_pytorch_does():
    x = np.random.default_rng(4).standard_normal((4, 3, 5, 5)).astype(np.float32)
    x[0, 0, 0, 0] = np.inf
    x[1, 1, 0, 0] = -np.inf
    running_mean, running_var = np.zeros(3, np.float32), np.ones(3, np.float32)
    cp.batch_norm2d(x, running_mean=running_mean, running_var=running_var)
    assert running_mean[0] == np.inf and running_mean[1] == -np.inf and np.isfinite(running_mean[2])
    assert np.isnan(running_var[:2]).all() and np.isfinite(running_var[2])


def test_eps_must_be_positive_in_training_as_pytorch_requires():
    x = np.ones((2, 3, 4, 4))
    for eps in (0.0, -1e-5):
        with pytest.raises(ValueError, match="batch_norm2d: eps must be finite and positive in training, got"):
            cp.batch_norm2d(x, eps=eps)
    # In evaluation the running variance may make eps = 0 meaningful.
    out = cp.batch_norm2d(x, running_mean=np.zeros(3), running_var=np.full(3, 4.0), training=False, eps=0.0)[0]
    np.testing.assert_array_equal(out, 0.5 * x)


def test_torch_channels_last_runs_in_place_and_stays_channels_last(monkeypatch):
    torch = pytest.importorskip("torch")
    import convpool.torch as cpt
    from convpool import _core

    seen = []
    forward, backward = _core.batch_norm2d, _core.batch_norm2d_backward

    def recording(function, position):
        def call(*args, **kwargs):
            seen.append((kwargs.get("layout", "nchw"), args[position].__array_interface__["data"][0]))
            return function(*args, **kwargs)
        return call

    monkeypatch.setattr(_core, "batch_norm2d", recording(forward, 0))
    monkeypatch.setattr(_core, "batch_norm2d_backward", recording(backward, 0))
    x, weight, bias, running_mean, running_var = inputs((4, 24, 5, 6), np.float64, seed=13)
    tx = torch.from_numpy(x).contiguous(memory_format=torch.channels_last).requires_grad_(True)
    tw, tb = torch.from_numpy(weight).requires_grad_(True), torch.from_numpy(bias).requires_grad_(True)
    for training in (True, False):
        ours_stats = [torch.from_numpy(running_mean.copy()), torch.from_numpy(running_var.copy())]
        theirs_stats = [s.clone() for s in ours_stats]
        seen.clear()
        y = cpt.batch_norm(tx, *ours_stats, tw, tb, training=training)
        assert seen == [("nhwc", tx.data_ptr())]  # x read in place
        assert y.is_contiguous(memory_format=torch.channels_last) and not y.is_contiguous()
        expected = torch.nn.functional.batch_norm(tx, *theirs_stats, tw, tb, training=training)
        torch.testing.assert_close(y, expected)
        for ours, theirs in zip(ours_stats, theirs_stats):
            torch.testing.assert_close(ours, theirs)
        probe = torch.randn_like(expected).contiguous(memory_format=torch.channels_last)
        grads = torch.autograd.grad(y, (tx, tw, tb), probe)
        assert seen[1] == ("nhwc", probe.data_ptr())  # the gradient read in place too
        assert grads[0].is_contiguous(memory_format=torch.channels_last)
        for ours, theirs in zip(grads, torch.autograd.grad(expected, (tx, tw, tb), probe)):
            torch.testing.assert_close(ours, theirs)


def test_torch_channels_last_passes_opcheck():
    torch = pytest.importorskip("torch")
    pytest.importorskip("convpool.torch")  # defines the operators

    x = torch.randn(3, 20, 4, 5, dtype=torch.float64).contiguous(memory_format=torch.channels_last)
    weight, bias = torch.randn(20, dtype=torch.float64), torch.randn(20, dtype=torch.float64)
    mean, var = torch.zeros(20, dtype=torch.float64), torch.ones(20, dtype=torch.float64)
    for training in (True, False):
        torch.library.opcheck(torch.ops.convpool.batch_norm2d.default, (x, weight, bias, mean, var, training, 0.1, 1e-5))
