"""The type stubs of convpool._core name every compiled function with its real parameters."""

import ast
import inspect
import re
from pathlib import Path

import pytest

import convpool
from convpool import _core, nn

STUB = Path(convpool.__file__).with_name("_core.pyi")


def stub_classes():
    """{class name: {member name: the member's ast node}} of the stub."""
    return {node.name: {member.name: member for member in node.body if isinstance(member, ast.FunctionDef)}
            for node in ast.parse(STUB.read_text()).body if isinstance(node, ast.ClassDef)
            and not node.name.startswith("_")}


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
    compiled = {name for name in dir(_core) if not name.startswith("_") and callable(getattr(_core, name))
                and not isinstance(getattr(_core, name), type)}
    assert compiled == set(stubs)
    for name in compiled:
        assert stubs[name] == runtime_parameters(getattr(_core, name)), name


def test_every_compiled_class_has_a_matching_stub():
    classes = stub_classes()
    compiled = {name for name in dir(_core) if isinstance(getattr(_core, name), type)}
    assert compiled == set(classes)
    for name in compiled:
        cls = getattr(_core, name)
        public = {member for member in vars(cls) if not member.startswith("_")}
        assert public == {member for member in classes[name] if not member.startswith("_")}, name
        stub_init = [argument.arg for argument in classes[name]["__init__"].args.args[1:]]
        assert stub_init == runtime_parameters(cls.__init__)[1:], name


def defaults_of(arguments):
    """{name: default} of an ast.arguments, defaults evaluated as literals."""
    positional = arguments.posonlyargs + arguments.args
    defaults = dict(zip([a.arg for a in positional[len(positional) - len(arguments.defaults):]],
                        map(ast.literal_eval, arguments.defaults)))
    defaults.update({a.arg: ast.literal_eval(d) for a, d in zip(arguments.kwonlyargs, arguments.kw_defaults) if d})
    return defaults


def runtime_defaults(function):
    # The signature line is Python syntax: parse it as a def.
    signature = function.__doc__.splitlines()[0]
    tree = ast.parse(f"def {signature}: pass")
    return defaults_of(tree.body[0].args)


def test_stub_defaults_are_the_compiled_functions_defaults():
    # The bindings hold the defaults; the stubs (each overload) repeat them for type checkers.
    for node in ast.parse(STUB.read_text()).body:
        if isinstance(node, ast.FunctionDef):
            stub = defaults_of(node.args)
            runtime = runtime_defaults(getattr(_core, node.name))
            assert stub == {name: runtime[name] for name in stub if name in runtime}, node.name
            assert set(stub) <= set(runtime), node.name


@pytest.mark.parametrize("layer, function", [
    (nn.MaxPool2d, _core.max_pool2d), (nn.AvgPool2d, _core.avg_pool2d), (nn.LPPool2d, _core.lp_pool2d),
    (nn.StochasticPool2d, _core.stochastic_pool2d), (nn.Conv2d, _core.conv2d),
])
def test_layer_defaults_are_the_compiled_functions_defaults(layer, function):
    kernel = runtime_defaults(function)
    shared = {name: parameter.default for name, parameter in inspect.signature(layer).parameters.items()
              if name in kernel and name != "bias" and parameter.default is not inspect.Parameter.empty}
    assert shared, layer
    assert shared == {name: kernel[name] for name in shared}, layer


def test_package_is_marked_typed():
    assert STUB.with_name("py.typed").exists()
