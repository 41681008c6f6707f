"""The Module protocol: explicit forward and backward, parameters with accumulated gradients."""

import functools
import itertools
import threading
from collections import OrderedDict
from collections.abc import Mapping
from types import SimpleNamespace

import numpy as np

from .. import _core
from .._rng import generator

# The dtype kinds a loaded array may have, by the kind of the array it replaces: real floating
# point for float parameters and buffers (no complex, string, object or structured arrays, no
# booleans or integers standing in for weights), integers for counters.
LOADABLE_KINDS = {"f": "f", "i": "iu", "u": "iu", "b": "b"}
_KIND_NAMES = {"f": "real floating-point", "i": "integer", "u": "unsigned integer", "b": "boolean"}


def check_state_array(what, value, kinds):
    """``value`` as an array if its dtype kind is one of ``kinds`` (e.g. "f").

    The kind is checked before any conversion, so that no object or string array is ever
    turned into numbers; the shape is checked by the caller, which names both.
    """
    if not isinstance(value, np.ndarray):
        if not isinstance(value, (int, float, np.generic, list, tuple)):
            raise TypeError(f"{what} must be an array, got {type(value).__name__}")
        value = np.asarray(value)
    if value.dtype.kind not in kinds or value.dtype.fields is not None:
        expected = " or ".join(_KIND_NAMES[kind] for kind in kinds)
        raise TypeError(f"{what} has dtype {value.dtype}, expected {expected} values")
    return value


def check_conversion(what, value, dtype):
    """Refuse ``value`` when its copy into an array of ``dtype`` would change it beyond rounding:
    an integer outside the dtype's range (the copy would wrap it: 2**64 - 1 into int64 is -1) or a
    finite number beyond its largest (the copy would make it infinite)."""
    dtype = np.dtype(dtype)
    if value.size == 0 or value.dtype.kind == "b":
        return
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        low, high = int(value.min()), int(value.max())
        if low < info.min or high > info.max:
            raise ValueError(f"{what} holds {low if low < info.min else high}, outside {dtype}'s range "
                             f"[{info.min}, {info.max}]")
    elif dtype.kind == "f":
        finite = np.isfinite(value)
        with np.errstate(over="ignore"):
            overflows = finite & ~np.isfinite(value.astype(dtype))
        if overflows.any():
            raise ValueError(f"{what} holds {value[overflows].flat[0]}, beyond {dtype}'s largest "
                             f"{np.finfo(dtype).max}")


# A forward pass is one outermost forward call on a thread; everything a module saves for its
# backward belongs to the pass it was saved in, so a module called again in the same pass keeps
# both calls' state, and a new pass drops what an earlier one left unused (a forward in eval or
# inference that no backward followed).
_forward_depth = threading.local()
_pass_numbers = itertools.count(1)


def _current_pass():
    return getattr(_forward_depth, "pass_number", 0)


def _within_forward_pass(forward):
    @functools.wraps(forward)
    def run(self, *args, **kwargs):
        depth = getattr(_forward_depth, "depth", 0)
        if depth == 0:
            _forward_depth.pass_number = next(_pass_numbers)
        _forward_depth.depth = depth + 1
        try:
            return forward(self, *args, **kwargs)
        finally:
            _forward_depth.depth = depth

    return run


def apply_state(updates):
    """Copy validated (target, value) pairs in place; see ``Module.check_state_dict``."""
    for target, value in updates:
        np.copyto(target, value, casting="unsafe")


class Parameter:
    """A trainable array and the gradient accumulated into it by ``backward``.

    ``grad`` is None until a backward pass reaches the parameter (and again after ``zero_grad``).

    Example:
        >>> p = cp.nn.Parameter(np.zeros(3))
        >>> p.accumulate(np.ones(3)); p.accumulate(np.ones(3))
        >>> p.grad
        array([2., 2., 2.])
    """

    __slots__ = ("data", "grad")

    def __init__(self, data):
        self.data = np.ascontiguousarray(data)
        self.grad = None

    @property
    def shape(self):
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    def accumulate(self, grad):
        # A fresh gradient array from a kernel is adopted as is; only later passes add into it.
        if self.grad is None:
            self.grad = grad
        else:
            self.grad += grad

    def __repr__(self):
        return f"Parameter(shape={self.data.shape}, dtype={self.data.dtype})"


def uniform_parameter(shape, bound):
    """A float32 Parameter drawn uniformly from [-bound, bound) by the package generator: PyTorch's
    default initialisation of weights and biases (bound = 1/sqrt(fan_in))."""
    return Parameter(generator().uniform(-bound, bound, size=shape).astype(np.float32))


class Module:
    """Base class of layers and models, shaped like ``torch.nn.Module`` with an explicit backward.

    Subclasses implement ``forward(x)``, which keeps what its backward needs with
    ``save_for_backward``, and ``backward(grad_output, need_input_grad=True)``, which takes it back
    with ``saved_for_backward``, adds each parameter's gradient into ``param.grad`` and returns
    the gradient with respect to the forward's input (or None when ``need_input_grad`` is False,
    which lets a network's first layer skip that work).

    A module may be called several times in one forward pass (a ReLU or a block used twice): each
    call's state is kept, and the backward calls, in the reverse order of the forward calls, take
    them back last first. Each forward serves one backward. A forward pass is one outermost call
    (``model(x)``); a new one drops the state an earlier pass left without a backward.

    Example:
        >>> class Square(cp.nn.Module):
        ...     def forward(self, x):
        ...         self.save_for_backward(x=x)
        ...         return x * x
        ...     def backward(self, grad_output, need_input_grad=True):
        ...         return 2 * self.saved_for_backward().x * grad_output
        ...
        >>> square = Square()
        >>> square(np.array([1.0, 3.0])), square.backward(np.ones(2))
        (array([1., 9.]), array([2., 6.]))
    """

    # The layouts of image activations the module's forward takes: 'nchw' (N, C, H, W), and
    # 'nhwc' (N, H, W, C, channels last) where it has channels-last kernels or does not look at
    # the axes. ``to_layout`` switches a whole model.
    layouts = ("nchw",)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "forward" in cls.__dict__:
            cls.forward = _within_forward_pass(cls.__dict__["forward"])

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "layout", "nchw")

    def __setattr__(self, name, value):
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        elif name in self._buffers:
            self._buffers[name] = value
        object.__setattr__(self, name, value)

    def register_buffer(self, name, array):
        """Keep ``array`` as state saved by ``state_dict`` but not trained (running statistics)."""
        self._buffers[name] = array
        object.__setattr__(self, name, array)

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def save_for_backward(self, **values):
        """Keep ``values`` (arrays, shapes, flags) for the backward of this forward call."""
        pass_number = _current_pass()
        if self.__dict__.get("_saved_pass") != pass_number:
            self.__dict__["_saved_pass"] = pass_number
            self.__dict__["_saved"] = []
            self.__dict__["_differentiated"] = 0
        self.__dict__["_saved"].append(SimpleNamespace(**values))

    def saved_for_backward(self):
        """What the latest forward call not yet differentiated saved, as attributes; a backward
        calls this first (also when it returns early), so that its call counts as differentiated.
        The state itself stays until the next forward pass replaces it, as a layer's cached input
        did: freeing it at the backward instead made the allocator hand pages back to the system
        and fault them in again at the next forward."""
        saved = self.__dict__.get("_saved", ())
        differentiated = self.__dict__.get("_differentiated", 0)
        if differentiated >= len(saved):
            raise RuntimeError(f"{type(self).__name__}.backward: no forward call left to differentiate (each "
                               f"forward call serves one backward)")
        self.__dict__["_differentiated"] = differentiated + 1
        return saved[len(saved) - 1 - differentiated]

    def forward(self, x):
        raise NotImplementedError(f"{type(self).__name__} does not define forward")

    def backward(self, grad_output, need_input_grad=True):
        raise NotImplementedError(f"{type(self).__name__} does not define backward")

    def children(self):
        return iter(self._modules.values())

    def named_modules(self, prefix=""):
        yield prefix, self
        for name, child in self._modules.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self):
        return (module for _, module in self.named_modules())

    def named_parameters(self):
        for prefix, module in self.named_modules():
            for name, parameter in module._parameters.items():
                yield (f"{prefix}.{name}" if prefix else name), parameter

    def parameters(self):
        return [parameter for _, parameter in self.named_parameters()]

    def named_buffers(self):
        for prefix, module in self.named_modules():
            for name, buffer in module._buffers.items():
                yield (f"{prefix}.{name}" if prefix else name), buffer

    def zero_grad(self):
        for parameter in self.parameters():
            parameter.grad = None

    def train(self, mode=True):
        for module in self.modules():
            object.__setattr__(module, "training", bool(mode))
        return self

    def eval(self):
        return self.train(False)

    def to_layout(self, layout):
        """Run every module's image activations in ``layout``: 'nchw', (N, C, H, W), or 'nhwc',
        (N, H, W, C), channels last, which vectorizes over the channels. Inputs, outputs and
        gradients of the image layers are then in that layout; parameters and buffers keep their
        shapes and values (a weight stays (C_out, C_in, kH, kW)), so a state dict or checkpoint
        saved in one layout loads in the other and gives the same outputs. A ValueError names the
        modules that cannot run the layout, and changes nothing.

        Example:
            >>> cp.manual_seed(0)
            >>> net = cp.nn.Sequential(cp.nn.Conv2d(3, 8, 3), cp.nn.ReLU(), cp.nn.AdaptiveAvgPool2d(1),
            ...                        cp.nn.Flatten(), cp.nn.Linear(8, 2))
            >>> x = np.random.default_rng(0).standard_normal((4, 3, 6, 6)).astype(np.float32)
            >>> y = net(x)
            >>> y_nhwc = net.to_layout("nhwc")(np.ascontiguousarray(x.transpose(0, 2, 3, 1)))
            >>> bool(np.allclose(y, y_nhwc, atol=1e-6))
            True
        """
        if layout not in ("nchw", "nhwc"):
            raise ValueError(f"to_layout: layout must be 'nchw' or 'nhwc', got {layout!r}")
        refused = [f"{name or 'the model'} ({type(module).__name__})" for name, module in self.named_modules()
                   if layout not in module.layouts]
        if refused:
            raise ValueError(f"to_layout: {', '.join(refused)} cannot run layout={layout!r} (no channels-last "
                             f"kernels yet)")
        for module in self.modules():
            object.__setattr__(module, "layout", layout)
        return self

    def to(self, dtype):
        """Convert every floating-point parameter and buffer to ``dtype`` (float32 or float64)."""
        dtype = np.dtype(dtype)
        if dtype not in (np.float32, np.float64):
            raise TypeError(f"to: dtype must be float32 or float64, got {dtype}")
        for module in self.modules():
            for parameter in module._parameters.values():
                parameter.data = parameter.data.astype(dtype)
                parameter.grad = None
            for name, buffer in list(module._buffers.items()):
                if buffer.dtype.kind == "f":
                    setattr(module, name, buffer.astype(dtype))
        return self

    def double(self):
        return self.to(np.float64)

    def float(self):
        return self.to(np.float32)

    def state_dict(self):
        """Copies of every parameter and buffer, keyed by dotted name (``features.0.weight``)."""
        state = OrderedDict((name, p.data.copy()) for name, p in self.named_parameters())
        state.update((name, b.copy()) for name, b in self.named_buffers())
        return state

    def load_state_dict(self, state_dict, strict=True):
        """Copy arrays from ``state_dict`` into this model's parameters and buffers.

        Every array must have the shape the model expects and a dtype of the same kind (real
        floating point for parameters and float buffers, integer for counters); with ``strict``
        the names must match exactly. Nothing is changed unless the whole state is accepted.
        """
        apply_state(self.check_state_dict(state_dict, strict))

    def state_targets(self):
        """The arrays ``load_state_dict`` writes, by dotted name."""
        targets = OrderedDict((name, p.data) for name, p in self.named_parameters())
        targets.update(self.named_buffers())
        return targets

    def check_state_dict(self, state_dict, strict=True):
        """Validate ``state_dict`` against this model without changing anything.

        Returns the (target, value) pairs that ``apply_state`` copies; raises TypeError or
        ValueError naming the entry otherwise.
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"load_state_dict: state_dict must be a mapping of names to arrays, "
                            f"got {type(state_dict).__name__}")
        targets = self.state_targets()
        missing = [name for name in targets if name not in state_dict]
        unexpected = [name for name in state_dict if name not in targets]
        if strict and (missing or unexpected):
            raise ValueError(
                f"load_state_dict: the state does not match {type(self).__name__}: "
                f"missing {missing}, unexpected {unexpected}"
            )
        owners = {}
        for prefix, module in self.named_modules():
            for name in (*module._parameters, *module._buffers):
                owners[f"{prefix}.{name}" if prefix else name] = (module, name)
        updates = []
        for name, target in targets.items():
            if name not in state_dict:
                continue
            value = check_state_array(f"load_state_dict: '{name}'", state_dict[name],
                                      LOADABLE_KINDS[target.dtype.kind])
            if value.shape != target.shape:
                raise ValueError(
                    f"load_state_dict: '{name}' has shape {value.shape} in the state but "
                    f"{target.shape} in the model"
                )
            check_conversion(f"load_state_dict: '{name}'", value, target.dtype)
            if not target.flags.writeable:
                raise ValueError(f"load_state_dict: '{name}' is read-only in the model (a weight packed by "
                                 f"nn.freeze); load the state before freezing")
            module, local_name = owners[name]
            module._check_state_entry(local_name, value, name)
            updates.append((target, value))
        return updates

    def _check_state_entry(self, name, value, full_name):
        """A layer's own constraints on one of its loaded arrays (a variance must be >= 0)."""

    def extra_repr(self):
        return ""

    def __repr__(self):
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        if self._modules:
            for name, child in self._modules.items():
                child_lines = repr(child).split("\n")
                lines.append(f"  ({name}): " + "\n  ".join(child_lines))
            lines.append(")")
            return "\n".join(lines)
        return lines[0] + ")"


def fuses_activation(layer, following):
    """Whether ``layer`` can apply ``following`` (an activation layer) in its own pass: the layer
    lists the activation in ``fused_activations`` and ``following`` runs its class's backward (an
    instance override, as guided backpropagation installs, needs the activation's own backward)."""
    activation = getattr(following, "activation", None)
    return (activation is not None and activation in getattr(layer, "fused_activations", ())
            and "backward" not in vars(following))


class Sequential(Module):
    """Modules applied in order; backward runs them in reverse.

    Example:
        >>> cp.manual_seed(0)
        >>> net = cp.nn.Sequential(cp.nn.Conv2d(1, 4, 3), cp.nn.ReLU(), cp.nn.MaxPool2d(2), cp.nn.Flatten(),
        ...                        cp.nn.Linear(36, 10))
        >>> net(np.ones((2, 1, 8, 8), np.float32)).shape
        (2, 10)
        >>> len(net.parameters())
        4
    """

    layouts = ("nchw", "nhwc")

    def __init__(self, *modules):
        super().__init__()
        for index, module in enumerate(modules):
            if not isinstance(module, Module):
                raise TypeError(f"Sequential: argument {index} is {type(module).__name__}, not a Module")
            setattr(self, str(index), module)

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, index):
        layers = list(self._modules.values())
        if isinstance(index, slice):
            return Sequential(*layers[index])
        return layers[index]

    def forward(self, x):
        layers = list(self._modules.values())
        # Positions of activations applied by the layer before them (fuses_activation), which the
        # backward skips: that layer's backward takes their gradient too.
        folded = set()
        position = 0
        while position < len(layers):
            layer = layers[position]
            following = layers[position + 1] if position + 1 < len(layers) else None
            if fuses_activation(layer, following):
                x = layer.forward(x, activation=following.activation)
                folded.add(position + 1)
                position += 2
            else:
                x = layer(x)
                position += 1
        self.save_for_backward(folded=folded)
        return x

    def backward(self, grad_output, need_input_grad=True):
        layers = list(self._modules.values())
        folded = self.saved_for_backward().folded
        for position in range(len(layers) - 1, -1, -1):
            if position not in folded:
                grad_output = layers[position].backward(grad_output, need_input_grad or position > 0)
        return grad_output


class Residual(Module):
    """``body(x) + shortcut(x)``, the shortcut being ``x`` itself when None: a residual block.

    The backward sends the gradient through both paths and returns the sum of their input
    gradients. A block with a post-activation is ``Sequential(Residual(body, shortcut), ReLU())``.

    Example:
        >>> cp.manual_seed(0)
        >>> block = cp.nn.Residual(cp.nn.Sequential(cp.nn.Conv2d(4, 4, 3, padding=1), cp.nn.ReLU()))
        >>> block(np.ones((1, 4, 5, 5), np.float32)).shape
        (1, 4, 5, 5)
    """

    layouts = ("nchw", "nhwc")

    def __init__(self, body, shortcut=None):
        super().__init__()
        for name, module in (("body", body), ("shortcut", shortcut)):
            if module is not None and not isinstance(module, Module):
                raise TypeError(f"Residual: {name} is {type(module).__name__}, not a Module")
        self.body = body
        if shortcut is None:
            object.__setattr__(self, "shortcut", None)
        else:
            self.shortcut = shortcut

    fused_activations = ("relu",)

    def forward(self, x, activation=None):
        """``activation="relu"``: the ReLU after the block applied to the sum in the same pass (a
        Sequential asks for it); the backward then takes the ReLU's gradient too."""
        out = self.body(x)
        skip = x if self.shortcut is None else self.shortcut(x)
        if out.shape != skip.shape:
            raise ValueError(f"Residual: the body gives shape {out.shape} but the shortcut {skip.shape}; "
                             f"a shortcut must match the body where it changes the shape")
        # A new array either way: the body's last layer may keep its output for its own backward.
        if activation == "relu":
            output = _core.relu(out, residual=skip)
            self.save_for_backward(relu_output=output)
            return output
        self.save_for_backward(relu_output=None)
        return out + skip

    def backward(self, grad_output, need_input_grad=True):
        relu_output = self.saved_for_backward().relu_output
        if relu_output is not None:
            grad_output = _core.relu_backward(grad_output, relu_output)
        # The reverse of the forward's order, so that a module both paths call is differentiated
        # last call first.
        if self.shortcut is None:
            grad_skip = grad_output
        else:
            grad_skip = self.shortcut.backward(grad_output, need_input_grad)
        grad_body = self.body.backward(grad_output, need_input_grad)
        return grad_body + grad_skip if need_input_grad else None
