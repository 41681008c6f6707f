"""adaptive_max_pool2d and its backward: against the NumPy reference (overlapping windows, every tie
rule and NaN policy), PyTorch when installed, thread counts, the layer, and bad input."""

import numpy as np
import pytest

import convpool as cp
import reference as ref

# (input shape, output size): sizes that divide, that do not (overlapping windows), that grow,
# None entries, global pooling, 3-D input.
CONFIGS = [
    ((2, 3, 8, 8), 4),
    ((2, 3, 7, 5), (3, 2)),
    ((1, 2, 5, 9), (4, None)),
    ((3, 4, 3), (5, 7)),
    ((2, 2, 11, 6), 1),
    ((1, 1, 10, 13), (3, 4)),
    # Rows wider than the kernel's 16 strands: whole blocks, a tail, overlapping windows.
    ((2, 3, 9, 40), (2, 1)),
    ((1, 2, 6, 70), (4, 3)),
]


def sizes(shape, output_size):
    pair = output_size if isinstance(output_size, tuple) else (output_size, output_size)
    return tuple(shape[i - 2] if v is None else v for i, v in enumerate(pair))


@pytest.mark.parametrize("nan", ["propagate", "ignore"])
@pytest.mark.parametrize("tie_break", ["first", "last", "split"])
@pytest.mark.parametrize("config", CONFIGS)
def test_matches_reference(config, tie_break, nan):
    shape, output_size = config
    rng = np.random.default_rng(101)
    x = rng.integers(-2, 3, shape).astype(np.float64)  # many ties
    x[rng.random(shape) < 0.05] = np.nan
    out_h, out_w = sizes(shape, output_size)
    out, indices = cp.adaptive_max_pool2d(x, output_size, return_indices=True, tie_break=tie_break, nan=nan)
    expected, expected_indices = ref.adaptive_max_pool2d(x, out_h, out_w, "first" if tie_break == "split"
                                                         else tie_break, nan)
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(indices, expected_indices)
    grad_output = np.cos(np.arange(out.size)).reshape(out.shape)
    grad = cp.adaptive_max_pool2d_backward(grad_output, x, None if tie_break == "split" else indices, output_size,
                                           tie_break=tie_break, nan=nan)
    np.testing.assert_allclose(grad, ref.adaptive_max_pool2d_backward(grad_output, x, tie_break, nan),
                               rtol=1e-12, atol=1e-15)


def test_overlapping_windows_follow_the_tie_rule():
    # Three inputs, two outputs: windows [0, 2) and [1, 3) share the middle input.
    x = np.array([[[0.0, 5.0, 5.0]]])
    for tie_break, expected in (("first", [0, 2, 0]), ("last", [0, 1, 1]), ("split", [0, 1.5, 0.5])):
        out, indices = cp.adaptive_max_pool2d(x, (1, 2), return_indices=True, tie_break=tie_break)
        np.testing.assert_array_equal(out, [[[5.0, 5.0]]])
        grad = cp.adaptive_max_pool2d_backward(np.ones((1, 1, 2)), x, indices, (1, 2), tie_break=tie_break)
        np.testing.assert_array_equal(grad[0, 0], expected)


@pytest.mark.parametrize("config", CONFIGS)
def test_matches_torch(config):
    torch = pytest.importorskip("torch")
    shape, output_size = config
    x = np.random.default_rng(102).standard_normal(shape)
    tx = torch.tensor(x, requires_grad=True)
    expected, expected_indices = torch.nn.functional.adaptive_max_pool2d(tx, output_size, return_indices=True)
    out, indices = cp.adaptive_max_pool2d(x, output_size, return_indices=True)
    np.testing.assert_array_equal(out, expected.detach().numpy())
    np.testing.assert_array_equal(indices, expected_indices.numpy())
    grad_output = np.random.default_rng(103).standard_normal(out.shape)
    expected.backward(torch.tensor(grad_output))
    np.testing.assert_allclose(cp.adaptive_max_pool2d_backward(grad_output, x, indices, output_size),
                               tx.grad.numpy(), rtol=1e-12, atol=1e-15)


def test_bitwise_identical_for_any_thread_count(assert_thread_independent):
    x = np.random.default_rng(104).integers(-2, 3, (2, 3, 17, 11)).astype(np.float32)

    def run():
        results = []
        for tie_break in ("first", "last", "split"):
            out, indices = cp.adaptive_max_pool2d(x, (5, 4), return_indices=True, tie_break=tie_break)
            results += [out, indices, cp.adaptive_max_pool2d_backward(np.cos(out), x, indices, (5, 4),
                                                                      tie_break=tie_break)]
        return results

    assert_thread_independent(run)


def test_layer_matches_torch():
    torch = pytest.importorskip("torch")
    ours = cp.nn.AdaptiveMaxPool2d((3, None))
    assert repr(ours) == "AdaptiveMaxPool2d(output_size=(3, None), tie_break='first')"
    theirs = cp.nn.to_torch(cp.nn.Sequential(ours))
    x = np.random.default_rng(105).standard_normal((2, 3, 7, 6))
    tx = torch.tensor(x, requires_grad=True)
    expected = theirs(tx)
    np.testing.assert_array_equal(ours(x), expected.detach().numpy())
    expected.backward(torch.ones_like(expected))
    np.testing.assert_array_equal(ours.backward(np.ones((2, 3, 3, 6))), tx.grad.numpy())


@pytest.mark.parametrize("call, error, message", [
    (lambda x: cp.adaptive_max_pool2d(x, 0), ValueError, "output_size=0 must be positive"),
    (lambda x: cp.adaptive_max_pool2d(x, (2, 2, 2)), TypeError, "output_size must be an int or a pair"),
    (lambda x: cp.adaptive_max_pool2d(x, 2, tie_break="middle"), ValueError, "tie_break"),
    (lambda x: cp.adaptive_max_pool2d_backward(np.ones((1, 2, 2, 2), np.float32), x, None, 2), ValueError,
     "indices are required for tie_break='first'"),
    (lambda x: cp.adaptive_max_pool2d_backward(np.ones((1, 2, 2, 2), np.float32), x,
                                               np.zeros((1, 2, 3, 3), np.int64), 2), ValueError,
     "indices has shape (1, 2, 3, 3) but the pooling of x gives (1, 2, 2, 2)"),
    (lambda x: cp.adaptive_max_pool2d_backward(np.ones((1, 2, 2, 2), np.float32), x,
                                               np.full((1, 2, 2, 2), 25, np.int64), 2), ValueError,
     "indices has 8 value(s) outside [0, 25)"),
    (lambda x: cp.adaptive_max_pool2d_backward(np.ones((1, 2, 3, 3), np.float32), x, None, 2, tie_break="split"),
     ValueError, "grad_output has shape (1, 2, 3, 3)"),
])
def test_bad_input_is_refused(call, error, message):
    x = np.zeros((1, 2, 5, 5), np.float32)
    with pytest.raises(error) as raised:
        call(x)
    assert message in str(raised.value)
