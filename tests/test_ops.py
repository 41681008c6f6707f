"""convpool._ops.OPS, the one declaration of every op, names what exists, and everything the package
exports, every layer on a kernel and every torch operator belongs to an op in it."""

import inspect
import re
from pathlib import Path

import pytest

import convpool as cp
from convpool import _core, _ops

TESTS = Path(__file__).parent
SEMANTICS = (TESTS.parent / "docs" / "semantics.md").read_text()


@pytest.mark.parametrize("op", _ops.OPS, ids=lambda op: op.name)
def test_each_op_names_what_exists(op):
    for name in op.functions() + list(op.classes):
        assert callable(getattr(cp, name)) and name in cp.__all__, name
    for layer in filter(None, (op.layer, op.one_d_layer)):
        assert issubclass(getattr(cp.nn, layer), cp.nn.Module) and layer in cp.nn.__all__, layer
    if op.semantics:
        assert f"(semantics-{op.semantics})=" in SEMANTICS
    # compiled: convpool's function is the kernel's binding, not Python around it.
    assert op.compiled == (getattr(cp, op.name).__module__ == "convpool._core")


def test_the_package_exports_the_ops_and_the_utilities_only():
    assert set(cp.__all__) == set(_ops.functions()) | set(_ops.classes()) | set(_ops.UTILITIES)


def test_every_compiled_function_belongs_to_an_op():
    compiled = {name for name in dir(_core) if not name.startswith("_") and callable(getattr(_core, name))}
    utilities = {"build_info", "get_num_threads", "set_num_threads"}
    # fractional_max_pool2d's compiled kernel takes the samples; convpool's draws them (compiled=False).
    assert compiled == set(_ops.compiled_functions()) | set(_ops.classes()) | utilities | {"fractional_max_pool2d"}


def test_every_layer_on_a_kernel_belongs_to_an_op():
    without_kernels = {"Module", "Parameter", "Sequential", "Residual", "Linear", "Flatten", "Dropout", "LeakyReLU",
                       "CrossEntropyLoss", "MSELoss"}
    layers = {name for name in cp.nn.__all__ if inspect.isclass(getattr(cp.nn, name))} - without_kernels
    assert layers == {layer for op in _ops.OPS for layer in (op.layer, op.one_d_layer) if layer}


def test_the_torch_operators_and_drop_ins_are_the_ops():
    pytest.importorskip("torch")
    import convpool.torch as cpt
    from convpool.torch import _operators

    assert set(_operators._LIBRARY._op_defs) == {f"convpool::{name}" for op in _ops.OPS
                                                  for name in (op.name, op.backward)}
    functions = {name for name in cpt.__all__ if inspect.isfunction(getattr(cpt, name))} - {"convert"}
    assert functions == {name for op in _ops.OPS for name in (op.torch, op.one_d) if name}
    classes = {name for name in cpt.__all__ if inspect.isclass(getattr(cpt, name))}
    assert classes == {name for op in _ops.OPS for name in (op.drop_in, op.one_d_layer) if name}


def test_every_forward_operator_passes_opcheck_in_some_test():
    checked = set()
    for path in TESTS.glob("test_*.py"):
        checked |= set(re.findall(r"opcheck\(torch\.ops\.convpool\.(\w+)\.default", path.read_text()))
    assert checked >= {op.name for op in _ops.OPS}


@pytest.mark.parametrize("name, label", [("max_pool2d_backward", "semantics-max-pooling"),
                                         ("MaxPool1d", "semantics-one-dimension"),
                                         ("conv1d_backward", "semantics-one-dimension"),
                                         ("batch_norm", "semantics-batch-normalization"),
                                         ("PackedConv2dWeight", "semantics-convolution"), ("relu", None),
                                         ("Linear", None)])
def test_semantics_of_names_the_section(name, label):
    assert _ops.semantics_of(name) == label
