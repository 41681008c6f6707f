"""Arrays of other libraries through DLPack: every NumPy-facing function reads them in place and
returns NumPy arrays; arrays it cannot read (another device, bfloat16, a torch tensor that
requires grad) are a TypeError naming the function and the argument."""

import numpy as np
import pytest

import convpool as cp
from convpool._functions import from_dlpack
from dlpack_objects import DLPackOnly, FailingExport, LyingDevice


def random(*shape, dtype=np.float32, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def test_a_dlpack_only_array_is_read_in_place():
    x = random(2, 3, 8, 8)
    assert np.shares_memory(from_dlpack("f", "x", DLPackOnly(x)), x)
    np.testing.assert_array_equal(cp.max_pool2d(DLPackOnly(x), 2), cp.max_pool2d(x, 2))
    np.testing.assert_array_equal(cp.max_pool1d(input=DLPackOnly(x[:, :, 0]), kernel_size=2),
                                  cp.max_pool1d(x[:, :, 0], 2))


def test_arrays_on_another_device_are_refused_naming_it():
    x = DLPackOnly(random(1, 1, 4, 4), device=(2, 1))
    with pytest.raises(TypeError, match=r"max_pool2d: x is a DLPackOnly on cuda:1; convpool runs on the CPU"):
        cp.max_pool2d(x, 2)
    with pytest.raises(TypeError, match=r"conv1d: weight is a DLPackOnly on rocm:0"):
        cp.conv1d(random(1, 2, 8), DLPackOnly(random(3, 2, 3), device=(10, 0)))


def test_exporters_that_misbehave_are_type_errors_naming_the_argument():
    x = random(1, 1, 4, 4)
    for garbage in ("garbage", (1,), (1, 2, 3), ("1", 0), None):
        with pytest.raises(TypeError, match=r"max_pool2d: x \(a LyingDevice\) cannot be read through DLPack: its "
                                            r"__dlpack_device__\(\) gave no \(device type, device id\) pair"):
            cp.max_pool2d(LyingDevice(x, garbage), 2)
    with pytest.raises(TypeError, match=r"relu: x \(a FailingExport\) cannot be read through DLPack: KeyError"):
        cp.relu(FailingExport(x))


def test_an_out_its_exporter_marks_read_only_is_refused():
    read_only = np.zeros((1, 1, 2, 2), np.float32)
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match=r"relu: out \(a DLPackOnly\) is read-only memory"):
        cp.relu(np.ones((1, 1, 2, 2), np.float32), out=DLPackOnly(read_only))
    read_only_indices = np.zeros((1, 1, 2, 2), np.int64)
    read_only_indices.flags.writeable = False
    with pytest.raises(ValueError, match=r"max_pool2d: out\[1\] \(a DLPackOnly\) is read-only memory"):
        cp.max_pool2d(random(1, 1, 4, 4), 2, return_indices=True, out=(None, DLPackOnly(read_only_indices)))
    np.testing.assert_array_equal(read_only, 0)
    writable = np.zeros((1, 1, 2, 2), np.float32)
    cp.relu(np.ones((1, 1, 2, 2), np.float32), out=DLPackOnly(writable))
    np.testing.assert_array_equal(writable, 1.0)


torch = pytest.importorskip("torch")


def tensor(array):
    return torch.from_numpy(array.copy())


def test_torch_tensors_give_the_numpy_results():
    x, w, b = random(2, 4, 9, 9), random(6, 4, 3, 3, seed=1), random(6, seed=2)
    grad = random(2, 6, 7, 7, seed=3)
    cases = [
        (cp.max_pool2d, (x, 3), {"stride": 2, "tie_break": "split"}),
        (cp.avg_pool2d, (x, 2), {}),
        (cp.adaptive_max_pool2d, (x, (4, 3)), {}),
        (cp.adaptive_avg_pool2d, (x, 1), {}),
        (cp.lp_pool2d, (x, 2.0, 3), {}),
        (cp.relu, (x,), {}),
        (cp.conv2d, (x, w, b), {"padding": 0}),
        (cp.conv2d_backward, (grad, x, w), {}),
        (cp.conv_transpose2d, (grad, w.transpose(0, 1, 2, 3).copy()), {}),
        (cp.max_pool1d, (x[:, :, 0], 3), {"stride": 1}),
        (cp.conv1d, (x[:, :, 0], w[:, :, 0]), {"bias": b}),
    ]
    for function, args, kwargs in cases:
        expected = function(*args, **kwargs)
        got = function(*[tensor(a) if isinstance(a, np.ndarray) else a for a in args],
                       **{k: tensor(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()})
        for e, g in zip(expected if isinstance(expected, tuple) else (expected,),
                        got if isinstance(got, tuple) else (got,)):
            assert type(g) is type(e), function.__name__
            if e is not None:
                np.testing.assert_array_equal(g, e, err_msg=function.__name__)


def test_indices_and_running_statistics_cross_without_copies():
    x = random(2, 3, 6, 6)
    pooled, indices = cp.max_pool2d(x, 2, return_indices=True)
    np.testing.assert_array_equal(cp.max_unpool2d(tensor(pooled), torch.from_numpy(indices), 2),
                                  cp.max_unpool2d(pooled, indices, 2))
    running_mean, running_var = torch.zeros(3), torch.ones(3)
    cp.batch_norm2d(tensor(x), running_mean=running_mean, running_var=running_var, momentum=0.5)
    # The kernel updated the tensors' own memory: no copy was made on the way in.
    np.testing.assert_allclose(running_mean.numpy(), 0.5 * x.mean(axis=(0, 2, 3)), rtol=1e-5, atol=1e-6)
    assert np.all(running_var.numpy() != 1.0)
    t = torch.randn(2, 3, 4, 4)
    assert np.shares_memory(from_dlpack("f", "x", t), t.numpy())


def test_strided_tensors_are_read_too():
    x = random(2, 3, 8, 8)
    channels_last = tensor(x).to(memory_format=torch.channels_last)
    np.testing.assert_array_equal(cp.avg_pool2d(channels_last, 2), cp.avg_pool2d(x, 2))
    np.testing.assert_array_equal(cp.relu(tensor(x).transpose(2, 3)), cp.relu(x.transpose(0, 1, 3, 2)))


def test_tensors_numpy_cannot_hold_are_refused_naming_the_argument():
    with pytest.raises(TypeError, match=r"max_pool2d: x \(a Tensor of dtype torch.bfloat16\) cannot be read"):
        cp.max_pool2d(torch.zeros(1, 1, 4, 4, dtype=torch.bfloat16), 2)
    with pytest.raises(TypeError, match=r"conv2d: weight \(a Tensor of dtype torch.float32\) cannot be read.*detach"):
        cp.conv2d(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 3, 3, requires_grad=True))
    with pytest.raises(TypeError, match=r"max_pool2d: x must be float32 or float64, got float16"):
        cp.max_pool2d(torch.zeros(1, 1, 4, 4, dtype=torch.float16), 2)


def test_jax_arrays_when_jax_is_installed():
    jnp = pytest.importorskip("jax.numpy")
    x = random(2, 3, 8, 8)
    np.testing.assert_array_equal(cp.max_pool2d(jnp.asarray(x), 2), cp.max_pool2d(x, 2))


def test_tensors_with_a_lazy_negation_are_refused_as_inputs_and_outs():
    # Their memory holds the values before the negation, and DLPack passes the memory.
    x = torch.tensor([[[[-1.0, -2.0], [-3.0, -4.0]]]])
    conjugated_imaginary = torch.complex(torch.zeros(1, 1, 2, 2), x).conj().imag
    for lazy in (x._neg_view(), conjugated_imaginary):
        assert lazy.is_neg()
        with pytest.raises(TypeError, match=r"relu: x is a Tensor with a lazy negation bit.*\.resolve_neg\(\)"):
            cp.relu(lazy)
        with pytest.raises(TypeError, match=r"relu: out is a Tensor with a lazy negation bit"):
            cp.relu(x.numpy(), out=lazy)
        np.testing.assert_array_equal(cp.relu(lazy.resolve_neg()), [[[[1.0, 2.0], [3.0, 4.0]]]])


def test_a_meta_tensor_is_refused_naming_its_device():
    with pytest.raises(TypeError, match=r"max_pool2d: x \(a Tensor on meta\) cannot be read through DLPack.*CPU"):
        cp.max_pool2d(torch.empty(1, 1, 4, 4, device="meta"), 2)


def test_an_out_tensor_over_memory_numpy_marks_read_only():
    # torch.from_numpy warns that it cannot keep NumPy's read-only flag and treats the tensor as
    # writable: torch's own in-place operations write it, and so does out= (the memory itself is
    # mapped writable; read-only mapped memory is refused, test_memory_safety.py).
    read_only = np.zeros((1, 1, 2, 2), np.float32)
    read_only.flags.writeable = False
    with pytest.warns(UserWarning, match="not writable"):
        tensor = torch.from_numpy(read_only)
    cp.relu(np.ones((1, 1, 2, 2), np.float32), out=tensor)
    np.testing.assert_array_equal(read_only, 1.0)
