"""Type stubs of the compiled kernels (cpp/bindings/); docstrings live in the module itself."""

from typing import Any, List, Literal, Optional, Sequence, Tuple, TypedDict, Union, overload

import numpy as np
import numpy.typing as npt

_Pair = Union[int, Tuple[int, int]]
_Float = Union[np.float32, np.float64]
_FloatArray = npt.NDArray[_Float]
_ArrayLike = npt.ArrayLike
_TieBreak = Literal["first", "last", "split"]
_Nan = Literal["propagate", "ignore"]
_Padding = Union[int, Tuple[int, int], Literal["valid", "same"]]
_Gradient = Literal["input", "weight", "bias"]
_Layout = Literal["nchw", "nhwc"]
_OutputSize = Union[Optional[int], Tuple[Optional[int], Optional[int]]]
# out=: an array for a call with one result, a tuple of arrays or None for one with several.
_Out = Union[None, npt.NDArray[Any], Tuple[Optional[npt.NDArray[Any]], ...]]

class _BuildInfo(TypedDict):
    compiler: str
    openmp: int
    isa: Literal["baseline", "avx2", "avx512", "asimd"]
    isas: List[str]

class PackedConv2dWeight:
    def __init__(self, weight: _ArrayLike, winograd: bool = False) -> None: ...
    @property
    def weight(self) -> _FloatArray: ...
    @property
    def shape(self) -> Tuple[int, int, int, int]: ...
    @property
    def dtype(self) -> np.dtype[Any]: ...
    @property
    def winograd(self) -> bool: ...

_Weight = Union[_ArrayLike, PackedConv2dWeight]

def set_num_threads(n: int) -> None: ...
def get_num_threads() -> int: ...
def build_info() -> _BuildInfo: ...
@overload
def max_pool2d(
    x: _ArrayLike,
    kernel_size: _Pair,
    stride: Optional[_Pair] = None,
    padding: _Pair = 0,
    dilation: _Pair = 1,
    ceil_mode: bool = False,
    return_indices: Literal[False] = False,
    tie_break: _TieBreak = "first",
    nan: _Nan = "propagate",
    layout: _Layout = "nchw",
    out: _Out = None,
) -> _FloatArray: ...
@overload
def max_pool2d(
    x: _ArrayLike,
    kernel_size: _Pair,
    stride: Optional[_Pair] = None,
    padding: _Pair = 0,
    dilation: _Pair = 1,
    ceil_mode: bool = False,
    *,
    return_indices: Literal[True],
    tie_break: _TieBreak = "first",
    nan: _Nan = "propagate",
    layout: _Layout = "nchw",
    out: _Out = None,
) -> Tuple[_FloatArray, npt.NDArray[np.int64]]: ...
def max_pool2d_backward(
    grad_output: _ArrayLike,
    x: _ArrayLike,
    indices: Optional[_ArrayLike],
    kernel_size: _Pair,
    stride: Optional[_Pair] = None,
    padding: _Pair = 0,
    dilation: _Pair = 1,
    ceil_mode: bool = False,
    tie_break: _TieBreak = "first",
    nan: _Nan = "propagate",
    layout: _Layout = "nchw",
    out: _Out = None,
) -> _FloatArray: ...
def avg_pool2d(
    x: _ArrayLike,
    kernel_size: _Pair,
    stride: Optional[_Pair] = None,
    padding: _Pair = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: Optional[int] = None,
    layout: _Layout = "nchw",
    out: _Out = None,
) -> _FloatArray: ...
def avg_pool2d_backward(
    grad_output: _ArrayLike,
    input_shape: Sequence[int],
    kernel_size: _Pair,
    stride: Optional[_Pair] = None,
    padding: _Pair = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: Optional[int] = None,
    layout: _Layout = "nchw",
    out: _Out = None,
) -> _FloatArray: ...
def lp_pool2d(
    x: _ArrayLike, norm_type: float, kernel_size: _Pair, stride: Optional[_Pair] = None, ceil_mode: bool = False,
    out: _Out = None,
) -> _FloatArray: ...
def lp_pool2d_backward(
    grad_output: _ArrayLike,
    x: _ArrayLike,
    norm_type: float,
    kernel_size: _Pair,
    stride: Optional[_Pair] = None,
    ceil_mode: bool = False,
    out: _Out = None,
) -> _FloatArray: ...
@overload
def stochastic_pool2d(
    x: _ArrayLike,
    kernel_size: _Pair,
    stride: Optional[_Pair] = None,
    training: bool = True,
    seed: Optional[int] = None,
    return_indices: Literal[False] = False,
    out: _Out = None,
) -> _FloatArray: ...
@overload
def stochastic_pool2d(
    x: _ArrayLike,
    kernel_size: _Pair,
    stride: Optional[_Pair] = None,
    training: bool = True,
    seed: Optional[int] = None,
    *,
    return_indices: Literal[True],
    out: _Out = None,
) -> Tuple[_FloatArray, npt.NDArray[np.int64]]: ...
def stochastic_pool2d_backward(
    grad_output: _ArrayLike,
    x: _ArrayLike,
    indices: Optional[_ArrayLike],
    kernel_size: _Pair,
    stride: Optional[_Pair] = None,
    training: bool = True,
    out: _Out = None,
) -> _FloatArray: ...
@overload
def adaptive_max_pool2d(
    x: _ArrayLike,
    output_size: _OutputSize,
    return_indices: Literal[False] = False,
    tie_break: _TieBreak = "first",
    nan: _Nan = "propagate",
    out: _Out = None,
) -> _FloatArray: ...
@overload
def adaptive_max_pool2d(
    x: _ArrayLike,
    output_size: _OutputSize,
    *,
    return_indices: Literal[True],
    tie_break: _TieBreak = "first",
    nan: _Nan = "propagate",
    out: _Out = None,
) -> Tuple[_FloatArray, npt.NDArray[np.int64]]: ...
def adaptive_max_pool2d_backward(
    grad_output: _ArrayLike,
    x: _ArrayLike,
    indices: Optional[_ArrayLike],
    output_size: _OutputSize,
    tie_break: _TieBreak = "first",
    nan: _Nan = "propagate",
    out: _Out = None,
) -> _FloatArray: ...
def fractional_max_pool2d(
    x: _ArrayLike,
    kernel_size: _Pair,
    output_size: _Pair,
    _random_samples: _ArrayLike,
    out: _Out = None,
) -> Tuple[_FloatArray, npt.NDArray[np.int64]]: ...
def fractional_max_pool2d_backward(
    grad_output: _ArrayLike,
    x: _ArrayLike,
    indices: _ArrayLike,
    out: _Out = None,
) -> _FloatArray: ...
def max_unpool2d(
    x: _ArrayLike,
    indices: _ArrayLike,
    kernel_size: _Pair,
    stride: Optional[_Pair] = None,
    padding: _Pair = 0,
    output_size: Optional[Sequence[int]] = None,
    out: _Out = None,
) -> _FloatArray: ...
def max_unpool2d_backward(
    grad_output: _ArrayLike,
    indices: _ArrayLike,
    kernel_size: _Pair,
    stride: Optional[_Pair] = None,
    padding: _Pair = 0,
    output_size: Optional[Sequence[int]] = None,
    out: _Out = None,
) -> _FloatArray: ...
def conv2d(
    x: _ArrayLike,
    weight: _Weight,
    bias: Optional[_ArrayLike] = None,
    stride: _Pair = 1,
    padding: _Padding = 0,
    dilation: _Pair = 1,
    groups: int = 1,
    activation: Optional[Literal["relu"]] = None,
    out: _Out = None,
    winograd: Optional[bool] = None,
    layout: _Layout = "nchw",
) -> _FloatArray: ...
def conv2d_backward(
    grad_output: _ArrayLike,
    x: _ArrayLike,
    weight: _Weight,
    stride: _Pair = 1,
    padding: _Padding = 0,
    dilation: _Pair = 1,
    groups: int = 1,
    needs: Sequence[_Gradient] = ("input", "weight", "bias"),
    out: _Out = None,
    winograd: Optional[bool] = None,
    layout: _Layout = "nchw",
) -> Tuple[Optional[_FloatArray], Optional[_FloatArray], Optional[_FloatArray]]: ...
def conv_transpose2d(
    x: _ArrayLike,
    weight: _ArrayLike,
    bias: Optional[_ArrayLike] = None,
    stride: _Pair = 1,
    padding: _Pair = 0,
    output_padding: _Pair = 0,
    groups: int = 1,
    dilation: _Pair = 1,
    out: _Out = None,
) -> _FloatArray: ...
def conv_transpose2d_backward(
    grad_output: _ArrayLike,
    x: _ArrayLike,
    weight: _ArrayLike,
    stride: _Pair = 1,
    padding: _Pair = 0,
    output_padding: _Pair = 0,
    groups: int = 1,
    dilation: _Pair = 1,
    needs: Sequence[_Gradient] = ("input", "weight", "bias"),
    out: _Out = None,
) -> Tuple[Optional[_FloatArray], Optional[_FloatArray], Optional[_FloatArray]]: ...
def relu(x: _ArrayLike, residual: Optional[_ArrayLike] = None, out: _Out = None) -> _FloatArray: ...
def relu_backward(grad_output: _ArrayLike, y: _ArrayLike, out: _Out = None) -> _FloatArray: ...
def batch_norm2d(
    x: _ArrayLike,
    weight: Optional[_ArrayLike] = None,
    bias: Optional[_ArrayLike] = None,
    running_mean: Optional[_FloatArray] = None,
    running_var: Optional[_FloatArray] = None,
    training: bool = True,
    momentum: float = 0.1,
    eps: float = 1e-05,
    activation: Optional[Literal["relu"]] = None,
    layout: _Layout = "nchw",
    out: _Out = None,
) -> Tuple[_FloatArray, _FloatArray, _FloatArray]: ...
def batch_norm2d_backward(
    grad_output: _ArrayLike,
    x: _ArrayLike,
    weight: Optional[_ArrayLike],
    saved_mean: _ArrayLike,
    saved_invstd: _ArrayLike,
    training: bool = True,
    needs: Sequence[_Gradient] = ("input", "weight", "bias"),
    activation: Optional[Literal["relu"]] = None,
    output: Optional[_ArrayLike] = None,
    layout: _Layout = "nchw",
    out: _Out = None,
) -> Tuple[Optional[_FloatArray], Optional[_FloatArray], Optional[_FloatArray]]: ...
def adaptive_avg_pool2d(
    x: _ArrayLike, output_size: _OutputSize, layout: _Layout = "nchw", out: _Out = None
) -> _FloatArray: ...
def adaptive_avg_pool2d_backward(
    grad_output: _ArrayLike, input_shape: Sequence[int], layout: _Layout = "nchw", out: _Out = None
) -> _FloatArray: ...
