"""The window arguments (kernel_size, stride, padding, dilation, ...) as every Python entry point
reads them: the 1-D functions, the nn layers, the torch operators and their drop-ins. The compiled
functions read them by the same rules (``to_pair`` and ``bounded_pair`` in
cpp/bindings/common.hpp), with the same messages, so that every entry point takes and refuses the
same arguments.

An argument is an int (any object with ``__index__`` but a bool), or a sequence of them of the
operator's dimension; a 1-element sequence is broadcast, as torch.nn.functional accepts.
"""

import math
import operator
from collections.abc import Sequence

import numpy as np

# The largest window argument the kernels take; their index arithmetic is 64-bit with room to spare.
LARGEST = 2**31

_BOUNDS = {0: "non-negative", 1: "positive"}


def _integer(value):
    """``value`` as an int, or None when it is not an integer (a bool is not one)."""
    if isinstance(value, (bool, np.bool_)):
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None


def _is_sequence(value):
    if isinstance(value, np.ndarray):
        return value.ndim == 1
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes))


def _parse(fn, name, value, dimensions):
    number = _integer(value)
    if number is not None:
        return (number,) * dimensions
    if _is_sequence(value) and len(value) in (1, dimensions):
        numbers = tuple(_integer(entry) for entry in value)
        if None not in numbers:
            return numbers * (dimensions // len(numbers))
    form = "a pair of ints" if dimensions == 2 else "a 1-element sequence"
    raise TypeError(f"{fn}: {name} must be an int or {form}, got {value!r}")


def _bounded(fn, name, numbers, minimum, shown):
    if min(numbers) < minimum:
        raise ValueError(f"{fn}: {name}={shown} must be {_BOUNDS[minimum]}")
    if max(numbers) > LARGEST:
        raise ValueError(f"{fn}: {name}={shown} is too large")
    return numbers


def integer(fn, name, value, minimum=1):
    """A count (channels, features, groups): an int at least ``minimum``."""
    number = _integer(value)
    if number is None:
        raise TypeError(f"{fn}: {name} must be an int, got {value!r}")
    return _bounded(fn, name, (number,), minimum, str(number))[0]


def pair(fn, name, value, minimum):
    """``value`` as an (h, w) tuple of ints, each at least ``minimum`` (0 or 1)."""
    # The forms almost every call uses, an int or a pair of ints, without the general parse: the
    # torch operators read several of these per call.
    if type(value) is int and minimum <= value <= LARGEST:
        return value, value
    if (type(value) is tuple and len(value) == 2 and type(value[0]) is int and type(value[1]) is int
            and minimum <= min(value) and max(value) <= LARGEST):
        return value
    numbers = _parse(fn, name, value, 2)
    return _bounded(fn, name, numbers, minimum, f"({numbers[0]}, {numbers[1]})")


def single(fn, name, value, minimum):
    """``value`` (an int or a 1-element sequence) as an int, at least ``minimum`` (0 or 1)."""
    if type(value) is int and minimum <= value <= LARGEST:
        return value
    number = _parse(fn, name, value, 1)
    return _bounded(fn, name, number, minimum, str(number[0]))[0]


def is_default_stride(stride):
    """None or an empty sequence (torch.nn.functional's ``stride=()``): the kernel size."""
    return stride is None or (_is_sequence(stride) and len(stride) == 0)


def stride_pair(fn, stride, kernel):
    return kernel if is_default_stride(stride) else pair(fn, "stride", stride, 1)


def stride_single(fn, stride, kernel):
    return kernel if is_default_stride(stride) else single(fn, "stride", stride, 1)


def divisor(fn, divisor_override):
    """An average pooling's ``divisor_override``: None, or a non-zero int (PyTorch allows a
    negative one)."""
    if divisor_override is None:
        return None
    number = _integer(divisor_override)
    if number is None:
        raise TypeError(f"{fn}: divisor_override must be None or an int, got {divisor_override!r}")
    if number == 0:
        raise ValueError(f"{fn}: divisor_override must be non-zero")
    if abs(number) > LARGEST:
        raise ValueError(f"{fn}: divisor_override={number} is too large")
    return number


def adaptive_size(fn, output_size, height, width):
    """An adaptive pooling's ``output_size`` for an input of height x width: an int or an (h, w)
    pair, each positive or None (that input size), read as the compiled functions read it
    (``adaptive_output_size`` in cpp/bindings/pooling_args.hpp)."""
    refused = f"{fn}: output_size must be an int or a pair of ints or None, got {output_size!r}"
    if _integer(output_size) is not None:
        sizes = (output_size, output_size)
    elif _is_sequence(output_size) and len(output_size) == 2:
        sizes = tuple(output_size)
    else:
        raise TypeError(refused)
    result = []
    for size, input_size in zip(sizes, (height, width)):
        number = input_size if size is None else _integer(size)
        if number is None:
            raise TypeError(refused)
        if not 1 <= number <= LARGEST:
            raise ValueError(f"{fn}: output_size={output_size!r} must be positive (and at most 2**31)")
        result.append(number)
    return result


def ratio_pair(fn, output_ratio):
    """A fractional pooling's ``output_ratio``: a number or a pair, each strictly between 0 and 1."""
    numbers = tuple(output_ratio) if _is_sequence(output_ratio) else (output_ratio, output_ratio)
    if len(numbers) != 2 or not all(isinstance(r, (int, float, np.integer, np.floating))
                                    and not isinstance(r, (bool, np.bool_)) for r in numbers):
        raise TypeError(f"{fn}: output_ratio must be a number or a pair of numbers, got {output_ratio!r}")
    if not all(0 < r < 1 and math.isfinite(r) for r in numbers):
        raise ValueError(f"{fn}: output_ratio={output_ratio!r} must lie strictly between 0 and 1")
    return numbers
