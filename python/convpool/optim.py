"""Optimizers with ``torch.optim``'s update rules, and learning-rate schedules.

Optimizers update each ``Parameter.data`` in place from its ``.grad``; parameters whose grad is
None (not reached by the last backward) are left alone, as PyTorch does.
"""

import math
from collections.abc import Mapping

import numpy as np

from .nn.module import check_conversion, check_state_array

__all__ = ["Adam", "CosineAnnealingLR", "Optimizer", "SGD", "StepLR"]


def _check_lr(owner, lr):
    if isinstance(lr, (bool, np.bool_)) or not isinstance(lr, (int, float, np.integer, np.floating)):
        raise TypeError(f"{owner}: lr must be a number, got {lr!r}")
    if not (math.isfinite(lr) and lr >= 0):
        raise ValueError(f"{owner}: lr={lr} must be finite and non-negative")
    return float(lr)


class Optimizer:
    """Base class of the optimizers: ``params`` (a list of ``nn.Parameter``), ``lr``, per-parameter
    state arrays, ``zero_grad()``, ``state_dict()`` and ``load_state_dict()``; a subclass writes
    ``step()``.

    Example:
        >>> class Plain(cp.optim.Optimizer):
        ...     def step(self):
        ...         for parameter in self.params:
        ...             if parameter.grad is not None:
        ...                 parameter.data -= self.lr * parameter.grad
        ...
        >>> p = cp.nn.Parameter(np.array([1.0]))
        >>> p.grad = np.array([2.0])
        >>> Plain([p], lr=0.25).step()
        >>> p.data
        array([0.5])
    """

    # Per-parameter state arrays this optimizer keeps (saved as "<name>.<index>").
    buffer_names = ()

    def __init__(self, params, lr):
        self.params = list(params)
        if not self.params:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        self.lr = _check_lr(type(self).__name__, lr)
        # Per-parameter state arrays, created on the first step: name -> list aligned with params.
        self.state = {}

    def zero_grad(self):
        for parameter in self.params:
            parameter.grad = None

    def _buffers(self, name):
        if name not in self.state:
            self.state[name] = [np.zeros_like(p.data) for p in self.params]
        return self.state[name]

    def state_dict(self):
        """Flat name -> array map (``lr``, scalars, and ``<state>.<index>`` arrays) for checkpoints."""
        state = {"lr": np.asarray(self.lr, dtype=np.float64)}
        state.update(self._scalars())
        for name, buffers in self.state.items():
            for index, buffer in enumerate(buffers):
                state[f"{name}.{index}"] = buffer.copy()
        return state

    def state_spec(self):
        """What ``load_state_dict`` accepts: key -> (shape, dtype kinds). Only ``lr`` is required."""
        spec = {"lr": ((), "fiu")}
        spec.update(self._scalar_spec())
        for name in self.buffer_names:
            spec.update({f"{name}.{index}": (p.shape, "f") for index, p in enumerate(self.params)})
        return spec

    def load_state_dict(self, state):
        """Restore a ``state_dict``; nothing changes unless all of it is accepted."""
        self.apply_state(self.check_state_dict(state))

    def check_state_dict(self, state):
        """Validate ``state`` without changing anything; returns what ``apply_state`` takes."""
        owner = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state, Mapping):
            raise TypeError(f"{owner}: state must be a mapping of names to arrays, got {type(state).__name__}")
        if "lr" not in state:
            raise ValueError(f"{owner}: the state has no 'lr'")
        spec = self.state_spec()
        checked = {}
        for key, value in state.items():
            if key not in spec:
                raise ValueError(f"{owner}: unexpected entry '{key}' (expected {sorted(spec)})")
            shape, kinds = spec[key]
            value = check_state_array(f"{owner}: '{key}'", value, kinds)
            if value.shape != shape:
                raise ValueError(f"{owner}: '{key}' has shape {value.shape}, expected {shape}")
            name, _, index = key.rpartition(".")
            if name in self.buffer_names:  # kept in the parameter's dtype
                check_conversion(f"{owner}: '{key}'", value, self.params[int(index)].dtype)
            checked[key] = value
        checked["lr"] = _check_lr(f"{owner}: 'lr'", checked["lr"][()])
        self._check_scalars(checked)
        return checked

    def apply_state(self, checked):
        self.lr = checked["lr"]
        self._load_scalars(checked)
        self.state = {}
        for key, value in checked.items():
            name, _, index = key.rpartition(".")
            if name in self.buffer_names:
                self._buffers(name)[int(index)][...] = value

    def _scalars(self):
        return {}

    def _scalar_spec(self):
        return {}

    def _check_scalars(self, checked):
        pass

    def _load_scalars(self, state):
        pass


class SGD(Optimizer):
    """Stochastic gradient descent with PyTorch's momentum, dampening, Nesterov and weight decay:

    g = grad + weight_decay * p;  b = momentum * b + (1 - dampening) * g  (b = g on the first step);
    p -= lr * (g + momentum * b if nesterov else b)

    Args:
        params: the parameters to update (``model.parameters()``).
        lr: the learning rate, finite and non-negative.
        momentum, dampening, weight_decay, nesterov: PyTorch's.

    Example:
        >>> p = cp.nn.Parameter(np.array([1.0]))
        >>> p.grad = np.array([0.5])
        >>> cp.optim.SGD([p], lr=0.1).step()
        >>> p.data
        array([0.95])
    """

    buffer_names = ("momentum_buffer",)

    def __init__(self, params, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
        super().__init__(params, lr)
        if momentum < 0 or weight_decay < 0:
            raise ValueError(f"SGD: momentum={momentum} and weight_decay={weight_decay} must be non-negative")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: nesterov needs momentum > 0 and dampening = 0")
        self.momentum, self.dampening = momentum, dampening
        self.weight_decay, self.nesterov = weight_decay, nesterov
        # PyTorch starts each parameter's buffer at its first gradient, not at the first step.
        self._started = np.zeros(len(self.params), dtype=bool)

    def step(self):
        buffers = self._buffers("momentum_buffer") if self.momentum else None
        for index, parameter in enumerate(self.params):
            grad = parameter.grad
            if grad is None:
                continue
            if self.weight_decay:
                grad = grad + self.weight_decay * parameter.data
            if buffers is not None:
                buffer = buffers[index]
                if self._started[index]:
                    buffer *= self.momentum
                    buffer += (1.0 - self.dampening) * grad
                else:
                    buffer[...] = grad
                    self._started[index] = True
                grad = grad + self.momentum * buffer if self.nesterov else buffer
            parameter.data -= parameter.data.dtype.type(self.lr) * grad

    def _scalars(self):
        return {"started": self._started.copy()}

    def _scalar_spec(self):
        return {"started": ((len(self.params),), "b")}

    def _load_scalars(self, state):
        self._started = np.array(state.get("started", np.zeros(len(self.params), dtype=bool)), dtype=bool)


class Adam(Optimizer):
    """Adam (Kingma & Ba) as ``torch.optim.Adam``, with L2 weight decay added to the gradient.

    Args:
        params: the parameters to update.
        lr, betas, eps, weight_decay: PyTorch's.

    Example:
        >>> p = cp.nn.Parameter(np.array([1.0]))
        >>> p.grad = np.array([0.5])
        >>> cp.optim.Adam([p], lr=0.1).step()
        >>> p.data.round(6)  # Adam's first step moves by lr whatever the gradient's size
        array([0.9])
    """

    buffer_names = ("exp_avg", "exp_avg_sq")

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, lr)
        if not (0.0 <= betas[0] < 1.0 and 0.0 <= betas[1] < 1.0):
            raise ValueError(f"Adam: betas={betas} must be in [0, 1)")
        self.betas, self.eps, self.weight_decay = betas, eps, weight_decay
        self.steps = 0

    def step(self):
        beta1, beta2 = self.betas
        self.steps += 1
        first, second = self._buffers("exp_avg"), self._buffers("exp_avg_sq")
        step_size = self.lr / (1.0 - beta1 ** self.steps)
        root_correction = math.sqrt(1.0 - beta2 ** self.steps)
        for index, parameter in enumerate(self.params):
            grad = parameter.grad
            if grad is None:
                continue
            if self.weight_decay:
                grad = grad + self.weight_decay * parameter.data
            first[index] *= beta1
            first[index] += (1.0 - beta1) * grad
            second[index] *= beta2
            second[index] += (1.0 - beta2) * grad * grad
            denominator = np.sqrt(second[index]) / root_correction + self.eps
            parameter.data -= (step_size * first[index] / denominator).astype(parameter.data.dtype)

    def _scalars(self):
        return {"steps": np.asarray(self.steps)}

    def _scalar_spec(self):
        return {"steps": ((), "iu")}

    def _check_scalars(self, checked):
        if "steps" in checked and checked["steps"] < 0:
            raise ValueError(f"Adam.load_state_dict: 'steps'={int(checked['steps'])} must be non-negative")

    def _load_scalars(self, state):
        self.steps = int(state.get("steps", 0))


class _Schedule:
    """Sets ``optimizer.lr`` from the number of ``step()`` calls (one per epoch)."""

    def __init__(self, optimizer):
        self.optimizer = optimizer
        self.base_lr = optimizer.lr
        self.epoch = 0

    def step(self):
        self.epoch += 1
        self.optimizer.lr = self.lr_at(self.epoch)

    def get_last_lr(self):
        return self.optimizer.lr


class StepLR(_Schedule):
    """lr = base_lr * gamma ** (epoch // step_size).

    Args:
        optimizer: the optimizer whose ``lr`` it sets.
        step_size: epochs between decays.
        gamma: the factor of each decay.

    Example:
        >>> optimizer = cp.optim.SGD([cp.nn.Parameter(np.zeros(1))], lr=1.0)
        >>> schedule = cp.optim.StepLR(optimizer, step_size=2)
        >>> [(schedule.step(), optimizer.lr)[1] for epoch in range(4)]
        [1.0, 0.1, 0.1, 0.010000000000000002]
    """

    def __init__(self, optimizer, step_size, gamma=0.1):
        super().__init__(optimizer)
        if step_size < 1:
            raise ValueError(f"StepLR: step_size={step_size} must be at least 1")
        self.step_size, self.gamma = step_size, gamma

    def lr_at(self, epoch):
        return self.base_lr * self.gamma ** (epoch // self.step_size)


class CosineAnnealingLR(_Schedule):
    """lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2.

    Args:
        optimizer: the optimizer whose ``lr`` it sets.
        T_max: the epochs of the half cosine.
        eta_min: the learning rate at its end.

    Example:
        >>> optimizer = cp.optim.SGD([cp.nn.Parameter(np.zeros(1))], lr=1.0)
        >>> schedule = cp.optim.CosineAnnealingLR(optimizer, T_max=4)
        >>> [round((schedule.step(), optimizer.lr)[1], 4) for epoch in range(4)]
        [0.8536, 0.5, 0.1464, 0.0]
    """

    def __init__(self, optimizer, T_max, eta_min=0.0):
        super().__init__(optimizer)
        if T_max < 1:
            raise ValueError(f"CosineAnnealingLR: T_max={T_max} must be at least 1")
        self.T_max, self.eta_min = T_max, eta_min

    def lr_at(self, epoch):
        return self.eta_min + (self.base_lr - self.eta_min) * (1 + math.cos(math.pi * epoch / self.T_max)) / 2
