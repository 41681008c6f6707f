"""PyTorch's own ModuleInfo samples (torch.testing._internal.common_modules.module_db) through every
convpool.torch drop-in: the same constructor arguments, state and inputs as torch's module, and the
same outputs and gradients, in training and in evaluation."""

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("expecttest")  # torch.testing._internal imports it
from torch.testing._internal.common_modules import module_db  # noqa: E402

import convpool.torch as cpt  # noqa: E402

DROP_INS = [cpt.MaxPool2d, cpt.MaxPool1d, cpt.AvgPool2d, cpt.AvgPool1d, cpt.LPPool2d, cpt.AdaptiveAvgPool2d,
            cpt.AdaptiveMaxPool2d, cpt.FractionalMaxPool2d, cpt.ReLU, cpt.BatchNorm2d, cpt.Conv2d, cpt.Conv1d,
            cpt.ConvTranspose2d]
INFOS = {info.module_cls: info for info in module_db}


def samples(drop_in, training, dtype):
    """(index, constructor input, forward input) of torch's samples for the drop-in's base class."""
    base = drop_in.__mro__[1] if drop_in.__mro__[1] in INFOS else next(c for c in drop_in.__mro__ if c in INFOS)
    info = INFOS[base]
    inputs = info.module_inputs_func(info, device="cpu", dtype=dtype, requires_grad=True, training=training)
    return base, list(enumerate(inputs))


def detached(value):
    if isinstance(value, torch.Tensor):
        return value.detach().clone().requires_grad_(value.requires_grad)
    if isinstance(value, (tuple, list)):
        return type(value)(detached(v) for v in value)
    return value


def tensors_in(value):
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in tensors_in(v)]
    return []


def lp_norm_of_negative_inputs(module, torch_out, ours):
    """torch's LPPool2d raises each input to a non-integer p without taking its absolute value, so
    negative inputs give NaN; convpool gives the norm (README: the drop-ins' one deviation)."""
    return isinstance(module, torch.nn.LPPool2d) and float(module.norm_type) % 1 != 0 and torch_out.isnan().any()


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=str)
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("drop_in", DROP_INS, ids=lambda cls: cls.__name__)
def test_module_db_samples(drop_in, training, dtype):
    base, cases = samples(drop_in, training, dtype)
    assert cases, f"torch has no ModuleInfo samples for {base.__name__}"
    for index, sample in cases:
        args, kwargs = sample.constructor_input.args, sample.constructor_input.kwargs
        theirs = base(*args, **kwargs).to(dtype).train(training)
        ours = drop_in(*args, **kwargs).to(dtype).train(training)
        ours.load_state_dict(theirs.state_dict())
        forward_args = sample.forward_input.args
        their_inputs, our_inputs = detached(forward_args), detached(forward_args)
        torch.manual_seed(index)
        their_out = theirs(*their_inputs, **sample.forward_input.kwargs)
        torch.manual_seed(index)
        our_out = ours(*our_inputs, **sample.forward_input.kwargs)
        where = f"{base.__name__} sample {index}: {args} {kwargs}"
        their_tensors, our_tensors = tensors_in(their_out), tensors_in(our_out)
        assert len(their_tensors) == len(our_tensors), where
        if lp_norm_of_negative_inputs(theirs, their_tensors[0], our_tensors[0]):
            finite = ~their_tensors[0].isnan()
            torch.testing.assert_close(our_tensors[0][finite], their_tensors[0][finite], msg=where)
            assert our_tensors[0].isfinite().all(), where
            continue
        for their, our in zip(their_tensors, our_tensors):
            torch.testing.assert_close(our, their, msg=where)
        for name in ("running_mean", "running_var", "num_batches_tracked"):
            if getattr(theirs, name, None) is not None:
                torch.testing.assert_close(getattr(ours, name), getattr(theirs, name), msg=f"{where}: {name}")
        if not their_tensors[0].requires_grad or their_tensors[0].numel() == 0 and not list(theirs.parameters()):
            continue
        grad = torch.randn(their_tensors[0].shape, dtype=dtype, generator=torch.Generator().manual_seed(index))
        their_leaves = tensors_in(their_inputs) + list(theirs.parameters())
        our_leaves = tensors_in(our_inputs) + list(ours.parameters())
        their_grads = torch.autograd.grad(their_tensors[0], their_leaves, grad, allow_unused=True)
        our_grads = torch.autograd.grad(our_tensors[0], our_leaves, grad, allow_unused=True)
        for their, our in zip(their_grads, our_grads):
            if their is None:
                assert our is None or not our.any(), where
            else:
                torch.testing.assert_close(our, their, msg=f"{where}: gradient")


def test_every_drop_in_with_a_torch_counterpart_is_run():
    """The list above covers every drop-in class that torch has ModuleInfo samples for."""
    drop_ins = {value for value in vars(cpt).values()
                if isinstance(value, type) and issubclass(value, torch.nn.Module) and value.__module__.startswith(
                    "convpool.torch")}
    with_samples = {cls for cls in drop_ins if any(base in INFOS for base in cls.__mro__[1:])}
    assert with_samples == set(DROP_INS)
