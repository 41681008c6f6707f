"""The compiled kernels as the package exports them.

Three things pybind11 does not do: torch.nn.functional's ``input=`` keyword for the first
argument; arrays of other libraries through DLPack (PyTorch tensors, JAX arrays), read in place;
and argument errors that name the function and its parameters. pybind11's own message for a
call that matches no signature prints the repr of every argument, which for an image batch is
hundreds of lines of numbers.
"""

import ast
import functools
import inspect
import operator

import numpy as np

# DLPack's device types (dlpack.h's DLDeviceType), to name where a refused array lives.
_DLPACK_DEVICES = {1: "cpu", 2: "cuda", 3: "cuda_host", 4: "opencl", 7: "vulkan", 8: "metal", 9: "vpi",
                   10: "rocm", 11: "rocm_host", 13: "cuda_managed", 14: "oneapi", 15: "webgpu", 16: "hexagon",
                   17: "maia"}
_DLPACK_CPU = 1


def _mapped_writable(address, size):
    """Whether the bytes [address, address + size) lie in memory this process has mapped writable,
    read from Linux's /proc/self/maps (False where it cannot be read: nothing is then proven)."""
    end = address + size
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:  # in address order
                span, permissions = line.split(None, 2)[:2]
                low, high = (int(bound, 16) for bound in span.split("-"))
                if high <= address:
                    continue
                if low > address or "w" not in permissions:
                    return False
                if end <= high:
                    return True
                address = high  # the span goes on into the next mapping, if it starts here
    except (OSError, ValueError):
        return False
    return False


def _dlpack_device(function_name, argument, value, kind):
    """(device type, device id) from ``value.__dlpack_device__()``, or a TypeError naming the argument
    when it raises or returns anything but two integers."""
    try:
        device_type, device_id = value.__dlpack_device__()
        return operator.index(device_type), operator.index(device_id)
    except Exception as error:
        device = getattr(value, "device", None)
        where = f" on {device}" if device is not None else ""
        raise TypeError(f"{function_name}: {argument} (a {kind}{where}) cannot be read through DLPack: its "
                        f"__dlpack_device__() gave no (device type, device id) pair ({type(error).__name__}: "
                        f"{error}); convpool reads arrays in CPU memory") from None


def from_dlpack(function_name, argument, value, written=False):
    """``value`` as a NumPy array sharing its memory when it is another library's array that
    speaks DLPack; anything else (NumPy arrays included) unchanged.

    An array in another device's memory, of a dtype NumPy cannot hold (bfloat16), a torch tensor
    that requires grad or carries a lazy negation or conjugation (a view whose memory holds other
    values than it shows), or an exporter that fails, is a TypeError naming the function and the
    argument. An array the call writes (``written``: an ``out``) must also be provably writable:
    not marked read-only by its exporter, and mapped writable in this process's memory.
    """
    if isinstance(value, np.ndarray) or not hasattr(value, "__dlpack__"):
        return value
    kind = type(value).__name__
    if hasattr(value, "__dlpack_device__"):
        device_type, device_id = _dlpack_device(function_name, argument, value, kind)
        if device_type != _DLPACK_CPU:
            device = _DLPACK_DEVICES.get(device_type, f"DLPack device type {device_type}")
            raise TypeError(f"{function_name}: {argument} is a {kind} on {device}:{device_id}; convpool "
                            "runs on the CPU: copy it to host memory first")
    for lazy, resolve in (("is_neg", "resolve_neg"), ("is_conj", "resolve_conj")):
        flag = getattr(value, lazy, None)
        if callable(flag) and flag() is True:
            raise TypeError(f"{function_name}: {argument} is a {kind} with a lazy {lazy[3:]}ation bit ("
                            f"{lazy}() is True): its memory holds other values than it shows, and DLPack "
                            f"passes the memory; call .{resolve}() first")
    try:
        array = np.from_dlpack(value)
    except Exception as error:
        dtype = f" of dtype {value.dtype}" if hasattr(value, "dtype") else ""
        raise TypeError(f"{function_name}: {argument} (a {kind}{dtype}) cannot be read through DLPack: "
                        f"{type(error).__name__}: {error}") from None
    if written and array.size and not (array.flags.writeable and _mapped_writable(
            array.__array_interface__["data"][0], array.nbytes)):
        raise ValueError(f"{function_name}: {argument} (a {kind}) is read-only memory: it is marked read-only "
                         f"or not mapped writable in this process")
    return array


def numpy_arguments(function_name, names, args, kwargs):
    """``args`` and ``kwargs`` of a call with ``input=`` moved to the first parameter and every
    DLPack array turned into a NumPy array over the same memory (in ``out``, a tuple's entries
    too)."""
    if "input" in kwargs and names[0] != "input":
        if args or names[0] in kwargs:
            raise TypeError(f"{function_name}() got multiple values for its first argument ({names[0]}, also "
                            f"called input)")
        args = (kwargs.pop("input"),)

    def convert(name, value):
        if name != "out":
            return from_dlpack(function_name, name, value)
        if isinstance(value, tuple):
            return tuple(from_dlpack(function_name, f"out[{index}]", entry, written=True)
                         for index, entry in enumerate(value))
        return from_dlpack(function_name, name, value, written=True)

    args = tuple(convert(names[index] if index < len(names) else f"argument {index + 1}", value)
                 for index, value in enumerate(args))
    kwargs = {key: convert(key, value) for key, value in kwargs.items()}
    return args, kwargs


def numpy_facing(function):
    """A Python function of the package with ``input=`` and DLPack arrays, as the kernels have."""
    names = list(inspect.signature(function).parameters)

    @functools.wraps(function)
    def call(*args, **kwargs):
        args, kwargs = numpy_arguments(function.__name__, names, args, kwargs)
        return function(*args, **kwargs)

    return call


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
    """``function`` with the ``input=`` keyword, DLPack arrays, and argument errors that print no
    arrays."""
    name = function.__name__
    parameters = _parameters(function)
    names = [parameter.name for parameter in parameters]

    @functools.wraps(function)
    def call(*args, **kwargs):
        args, kwargs = numpy_arguments(name, names, args, kwargs)
        try:
            return function(*args, **kwargs)
        except TypeError as error:
            if not str(error).startswith(f"{name}(): incompatible function arguments"):
                raise
            raise TypeError(_mismatch(name, parameters, args, kwargs)) from None

    call.__signature__ = inspect.Signature(parameters)
    return call
