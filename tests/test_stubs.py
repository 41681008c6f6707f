"""The type stubs of convpool._core name every compiled function with its real parameters."""

import ast
import re
from pathlib import Path

import convpool
from convpool import _core

STUB = Path(convpool.__file__).with_name("_core.pyi")


def stub_parameters():
    functions = {}
    for node in ast.parse(STUB.read_text()).body:
        if isinstance(node, ast.FunctionDef):
            arguments = node.args.posonlyargs + node.args.args + node.args.kwonlyargs
            names = [argument.arg for argument in arguments]
            functions.setdefault(node.name, names)
            # Overloads must agree on the parameter names.
            assert functions[node.name] == names, node.name
    return functions


def runtime_parameters(function):
    # pybind11's docstring starts with the signature: name(a: type, b: type = default) -> result
    signature = function.__doc__.splitlines()[0]
    inside = signature[signature.index("(") + 1: signature.rindex(") ->")]
    return re.findall(r"(?:^|, )(\w+):", inside)


def test_every_compiled_function_has_a_matching_stub():
    stubs = stub_parameters()
    compiled = {name for name in dir(_core) if not name.startswith("_") and callable(getattr(_core, name))}
    assert compiled == set(stubs)
    for name in compiled:
        assert stubs[name] == runtime_parameters(getattr(_core, name)), name


def test_package_is_marked_typed():
    assert STUB.with_name("py.typed").exists()
