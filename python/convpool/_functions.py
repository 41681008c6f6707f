"""The compiled kernels as the package exports them.

Two things pybind11 does not do: torch.nn.functional's ``input=`` keyword for the first argument,
and argument errors that name the function and its parameters. pybind11's own message for a
call that matches no signature prints the repr of every argument, which for an image batch is
hundreds of lines of numbers.
"""

import ast
import functools
import inspect


def _parameters(function):
    """inspect.Parameters from pybind11's signature line, ``name(a: t, b: t = default) -> r``."""
    line = function.__doc__.splitlines()[0]
    arguments = ast.parse(f"def {line}: pass").body[0].args
    positional = arguments.args
    defaults = [inspect.Parameter.empty] * (len(positional) - len(arguments.defaults)) + [
        ast.literal_eval(default) for default in arguments.defaults]
    return [inspect.Parameter(argument.arg, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default,
                              annotation=ast.unparse(argument.annotation))
            for argument, default in zip(positional, defaults)]


def _describe(parameter):
    if parameter.default is inspect.Parameter.empty:
        return parameter.name
    return f"{parameter.name}={parameter.default!r}"


def _mismatch(name, parameters, args, kwargs):
    """Why a call matches no signature, naming arguments and types but never printing values."""
    names = [parameter.name for parameter in parameters]
    accepted = f"{name}({', '.join(map(_describe, parameters))})"
    unknown = [key for key in kwargs if key not in names]
    if unknown:
        return f"{name}() got an unexpected keyword argument {unknown[0]!r}; it takes {accepted}"
    if len(args) > len(names):
        return f"{name}() takes at most {len(names)} arguments ({len(args)} given): {accepted}"
    twice = [key for key in kwargs if key in names[:len(args)]]
    if twice:
        return f"{name}() got multiple values for argument {twice[0]!r}: {accepted}"
    given = set(names[:len(args)]) | set(kwargs)
    missing = [p.name for p in parameters if p.default is inspect.Parameter.empty and p.name not in given]
    if missing:
        return f"{name}() missing required argument {missing[0]!r}: {accepted}"
    values = dict(zip(names, args), **kwargs)
    wrong = [f"{p.name} must be {p.annotation}, got {type(values[p.name]).__name__}" for p in parameters
             if p.name in values and p.annotation in ("bool", "int", "float")
             and not isinstance(values[p.name], {"bool": bool, "int": int, "float": (int, float)}[p.annotation])]
    if wrong:
        return f"{name}(): {wrong[0]}"
    types = ", ".join(type(value).__name__ for value in args)
    return f"{name}(): these argument types are not accepted ({types}); it takes {accepted}"


def exported(function):
    """``function`` with the ``input=`` keyword and argument errors that print no arrays."""
    name = function.__name__
    parameters = _parameters(function)
    first = parameters[0].name if parameters else None

    @functools.wraps(function)
    def call(*args, **kwargs):
        if "input" in kwargs and first not in (None, "input"):
            if args or first in kwargs:
                raise TypeError(f"{name}() got multiple values for its first argument ({first}, also "
                                f"called input)")
            args = (kwargs.pop("input"),)
        try:
            return function(*args, **kwargs)
        except TypeError as error:
            if not str(error).startswith(f"{name}(): incompatible function arguments"):
                raise
            raise TypeError(_mismatch(name, parameters, args, kwargs)) from None

    call.__signature__ = inspect.Signature(parameters)
    return call
