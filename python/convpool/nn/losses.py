"""Losses (forward returns a Python float, backward the gradient of the logits) and softmax."""

import numpy as np

from .module import Module

_REDUCTIONS = ("mean", "sum")


def log_softmax(x, axis=-1):
    """log(softmax(x)), computed from x - max(x) so that large logits do not overflow.

    Example:
        >>> cp.nn.log_softmax(np.array([0.0, 0.0])).round(4)
        array([-0.6931, -0.6931])
    """
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def softmax(x, axis=-1):
    """exp(x) normalized to sum 1 along ``axis``, computed from x - max(x).

    Example:
        >>> cp.nn.softmax(np.array([[0.0, np.log(3.0)]])).round(4)
        array([[0.25, 0.75]])
    """
    shifted = np.exp(x - x.max(axis=axis, keepdims=True))
    return shifted / shifted.sum(axis=axis, keepdims=True)


def _check_reduction(name, reduction):
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{name}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")


class CrossEntropyLoss(Module):
    """Softmax cross-entropy of logits (N, C) against integer class labels (N,).

    Args:
        reduction: "mean" (over the batch) or "sum".

    Example:
        >>> loss = cp.nn.CrossEntropyLoss()
        >>> round(float(loss(np.array([[2.0, 0.0], [0.0, 2.0]]), np.array([0, 1]))), 4)
        0.1269
        >>> loss.backward().round(4)
        array([[-0.0596,  0.0596],
               [ 0.0596, -0.0596]])
    """

    layouts = ("nchw", "nhwc")

    def __init__(self, reduction="mean"):
        super().__init__()
        _check_reduction("CrossEntropyLoss", reduction)
        self.reduction = reduction

    def forward(self, logits, target):
        logits = np.asarray(logits)
        target = np.asarray(target)
        if logits.ndim != 2:
            raise ValueError(f"CrossEntropyLoss: logits must be (N, C), got shape {logits.shape}")
        if target.shape != logits.shape[:1]:
            raise ValueError(
                f"CrossEntropyLoss: target must be (N,) = ({logits.shape[0]},) for logits "
                f"{logits.shape}, got shape {target.shape}"
            )
        if target.dtype.kind not in "iu":
            raise TypeError(f"CrossEntropyLoss: target must hold integer class labels, got {target.dtype}")
        classes = logits.shape[1]
        if target.size and (target.min() < 0 or target.max() >= classes):
            raise ValueError(
                f"CrossEntropyLoss: target labels must be in [0, {classes}), got "
                f"[{target.min()}, {target.max()}]"
            )
        log_probabilities = log_softmax(logits)
        rows = np.arange(target.shape[0])
        total = -log_probabilities[rows, target].sum(dtype=np.float64)
        divisor = max(target.shape[0], 1) if self.reduction == "mean" else 1
        self.save_for_backward(probabilities=np.exp(log_probabilities), target=target, divisor=divisor)
        return float(total / divisor)

    def backward(self, grad_output=1.0, need_input_grad=True):
        saved = self.saved_for_backward()
        grad = saved.probabilities
        grad[np.arange(saved.target.shape[0]), saved.target] -= 1
        grad *= grad.dtype.type(grad_output / saved.divisor)
        return grad

    def extra_repr(self):
        return f"reduction={self.reduction!r}"


class MSELoss(Module):
    """Mean (or sum) of squared differences between prediction and target of the same shape.

    Args:
        reduction: "mean" (over the batch) or "sum".

    Example:
        >>> loss = cp.nn.MSELoss()
        >>> float(loss(np.array([1.0, 3.0]), np.array([0.0, 0.0])))
        5.0
        >>> loss.backward()
        array([1., 3.])
    """

    layouts = ("nchw", "nhwc")

    def __init__(self, reduction="mean"):
        super().__init__()
        _check_reduction("MSELoss", reduction)
        self.reduction = reduction

    def forward(self, prediction, target):
        prediction = np.asarray(prediction)
        target = np.asarray(target)
        if prediction.shape != target.shape:
            raise ValueError(
                f"MSELoss: prediction {prediction.shape} and target {target.shape} must have the same shape"
            )
        difference = prediction - target
        divisor = max(prediction.size, 1) if self.reduction == "mean" else 1
        self.save_for_backward(difference=difference, divisor=divisor)
        return float(np.square(difference, dtype=np.float64).sum() / divisor)

    def backward(self, grad_output=1.0, need_input_grad=True):
        saved = self.saved_for_backward()
        return saved.difference * saved.difference.dtype.type(2.0 * grad_output / saved.divisor)

    def extra_repr(self):
        return f"reduction={self.reduction!r}"
