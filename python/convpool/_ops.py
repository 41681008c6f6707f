"""Every operation of convpool, declared once: its functions, its layer, its PyTorch operator and
drop-in, its 1-D twin and the section of docs/semantics.md that specifies it. The package's
exports and ``__all__``, the documentation's links to the semantics and the tests' tables of
functions, layers and operators are read from OPS (tests/test_ops.py checks that each entry names
what exists, and that nothing exported is missing from it)."""

from dataclasses import dataclass
from typing import Optional, Tuple


@dataclass(frozen=True)
class Op:
    name: str  # the forward function: convpool.<name>
    semantics: Optional[str]  # its section of docs/semantics.md, the label "semantics-<semantics>"
    layer: Optional[str] = None  # convpool.nn.<layer>
    torch: Optional[str] = None  # convpool.torch.<torch>, its torch.nn.functional twin
    drop_in: Optional[str] = None  # convpool.torch.<drop_in>, its torch.nn twin
    one_d: Optional[str] = None  # convpool.<one_d>, the same kernel on (N, C, L), with layer and torch twins
    one_d_layer: Optional[str] = None
    compiled: bool = True  # whether convpool.<name> is the compiled function itself
    classes: Tuple[str, ...] = ()  # convpool's classes that belong to the op

    @property
    def backward(self):
        return self.name + "_backward"

    def functions(self):
        """The NumPy functions of the op: forward and backward, 2-D and 1-D."""
        names = [self.name, self.backward]
        return names + ([self.one_d, self.one_d + "_backward"] if self.one_d else [])


OPS = (
    Op("max_pool2d", "max-pooling", "MaxPool2d", "max_pool2d", "MaxPool2d", "max_pool1d", "MaxPool1d"),
    Op("avg_pool2d", "average-pooling", "AvgPool2d", "avg_pool2d", "AvgPool2d", "avg_pool1d", "AvgPool1d"),
    Op("lp_pool2d", "lp-pooling", "LPPool2d", "lp_pool2d", "LPPool2d"),
    Op("stochastic_pool2d", "stochastic-pooling", "StochasticPool2d", "stochastic_pool2d", "StochasticPool2d"),
    Op("adaptive_avg_pool2d", "adaptive-average-pooling", "AdaptiveAvgPool2d", "adaptive_avg_pool2d",
       "AdaptiveAvgPool2d"),
    Op("adaptive_max_pool2d", "adaptive-max-pooling", "AdaptiveMaxPool2d", "adaptive_max_pool2d", "AdaptiveMaxPool2d"),
    Op("fractional_max_pool2d", "fractional-max-pooling", "FractionalMaxPool2d", "fractional_max_pool2d",
       "FractionalMaxPool2d", compiled=False),
    Op("max_unpool2d", "max-unpooling", "MaxUnpool2d", "max_unpool2d", "MaxUnpool2d"),
    Op("conv2d", "convolution", "Conv2d", "conv2d", "Conv2d", "conv1d", "Conv1d", classes=("PackedConv2dWeight",)),
    Op("conv_transpose2d", "transposed-convolution", "ConvTranspose2d", "conv_transpose2d", "ConvTranspose2d"),
    Op("batch_norm2d", "batch-normalization", "BatchNorm2d", "batch_norm", "BatchNorm2d"),
    Op("relu", None, "ReLU", "relu", "ReLU"),
)

# What convpool exports besides the ops' functions.
UTILITIES = ("build_info", "get_num_threads", "manual_seed", "set_num_threads")


def functions():
    """Every NumPy function of every op, in OPS's order."""
    return [name for op in OPS for name in op.functions()]


def classes():
    """The classes that belong to ops (PackedConv2dWeight)."""
    return [name for op in OPS for name in op.classes]


def compiled_functions():
    """The ops' functions that are convpool._core's (the others are Python over the kernels)."""
    return [name for op in OPS for name in (op.name, op.backward) if op.compiled or name == op.backward]


def semantics_of(name):
    """The semantics section (label) of a function, layer or torch operator named ``name``."""
    for op in OPS:
        if name in (*op.functions(), *op.classes, op.layer, op.torch, op.drop_in, op.one_d_layer):
            is_one_d = op.one_d and name in (op.one_d, op.one_d_layer, op.one_d + "_backward")
            if is_one_d:
                return "semantics-one-dimension"
            return op.semantics and "semantics-" + op.semantics
    return None
