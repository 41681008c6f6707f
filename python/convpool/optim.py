"""Optimizers with ``torch.optim``'s update rules, and learning-rate schedules.

Optimizers update each ``Parameter.data`` in place from its ``.grad``; parameters whose grad is
None (not reached by the last backward) are left alone, as PyTorch does.
"""

import math

import numpy as np


class Optimizer:
    def __init__(self, params, lr):
        self.params = list(params)
        if not self.params:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        if lr < 0:
            raise ValueError(f"{type(self).__name__}: lr={lr} must be non-negative")
        self.lr = lr
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

    def load_state_dict(self, state):
        if "lr" not in state:
            raise ValueError(f"{type(self).__name__}.load_state_dict: the state has no 'lr'")
        for key, value in state.items():
            name, _, index = key.rpartition(".")
            if name and index.isdigit():
                index = int(index)
                if index >= len(self.params) or np.shape(value) != self.params[index].shape:
                    expected = self.params[index].shape if index < len(self.params) else "no parameter"
                    raise ValueError(
                        f"{type(self).__name__}.load_state_dict: '{key}' has shape {np.shape(value)}, "
                        f"the optimizer's parameter {index} has {expected}"
                    )
        self.lr = float(state["lr"])
        self._load_scalars(state)
        self.state = {}
        for key, value in state.items():
            name, _, index = key.rpartition(".")
            if name and index.isdigit():
                self._buffers(name)[int(index)][...] = value

    def _scalars(self):
        return {}

    def _load_scalars(self, state):
        pass


class SGD(Optimizer):
    """Stochastic gradient descent with PyTorch's momentum, dampening, Nesterov and weight decay:

    g = grad + weight_decay * p;  b = momentum * b + (1 - dampening) * g  (b = g on the first step);
    p -= lr * (g + momentum * b if nesterov else b)
    """

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

    def _load_scalars(self, state):
        started = np.asarray(state.get("started", np.zeros(len(self.params), dtype=bool)), dtype=bool)
        if started.shape != (len(self.params),):
            raise ValueError(f"SGD.load_state_dict: 'started' has shape {started.shape}, expected ({len(self.params)},)")
        self._started = started.copy()


class Adam(Optimizer):
    """Adam (Kingma & Ba) as ``torch.optim.Adam``, with L2 weight decay added to the gradient."""

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
    """lr = base_lr * gamma ** (epoch // step_size)."""

    def __init__(self, optimizer, step_size, gamma=0.1):
        super().__init__(optimizer)
        if step_size < 1:
            raise ValueError(f"StepLR: step_size={step_size} must be at least 1")
        self.step_size, self.gamma = step_size, gamma

    def lr_at(self, epoch):
        return self.base_lr * self.gamma ** (epoch // self.step_size)


class CosineAnnealingLR(_Schedule):
    """lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2."""

    def __init__(self, optimizer, T_max, eta_min=0.0):
        super().__init__(optimizer)
        if T_max < 1:
            raise ValueError(f"CosineAnnealingLR: T_max={T_max} must be at least 1")
        self.T_max, self.eta_min = T_max, eta_min

    def lr_at(self, epoch):
        return self.eta_min + (self.base_lr - self.eta_min) * (1 + math.cos(math.pi * epoch / self.T_max)) / 2
