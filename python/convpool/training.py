"""The training loop and evaluation; checkpoints (save_checkpoint, load_checkpoint) come from
_checkpoints.py."""

import math
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm

from ._checkpoints import load_checkpoint, save_checkpoint
from .distributed import GradientReducer, SingleProcess, average_buffers, broadcast_training_state, shard

__all__ = ["History", "evaluate", "fit", "load_checkpoint", "predict", "save_checkpoint"]


@dataclass
class History:
    """What ``fit`` measured: one entry per epoch, plus every batch's training loss.

    ``communication_seconds`` is the time each epoch spent exchanging gradients and batch totals
    between ranks, waiting for the slowest rank included (0 in a single process).

    ``stop_reason`` is None when all epochs ran, else why training stopped early.

    Example:
        >>> history = cp.training.History()
        >>> history.train_loss, history.stop_reason
        ([], None)
    """

    train_loss: list = field(default_factory=list)
    train_accuracy: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)
    val_accuracy: list = field(default_factory=list)
    lr: list = field(default_factory=list)
    images_per_second: list = field(default_factory=list)
    batch_loss: list = field(default_factory=list)
    communication_seconds: list = field(default_factory=list)
    stop_reason: str = None


def _check_data(name, data):
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise TypeError(f"{name} must be a pair (inputs, targets)")
    inputs, targets = data
    if len(inputs) != len(targets):
        raise ValueError(f"{name}: {len(inputs)} inputs but {len(targets)} targets")
    if len(inputs) == 0:
        raise ValueError(f"{name} is empty: a loss or an accuracy over no examples is not defined")
    return inputs, targets


def _is_classification(outputs, targets):
    return outputs.ndim == 2 and targets.ndim == 1 and targets.dtype.kind in "iu"


def _batches(count, batch_size):
    return range(0, count, batch_size)


def _settings(obj):
    """A loss's, optimizer's or schedule's kind and its scalar settings (lr, momentum, reduction...),
    comparable between ranks; None for None."""
    if obj is None:
        return None

    def scalar(value):
        return isinstance(value, (bool, int, float, str, np.number)) or (
            isinstance(value, tuple) and all(map(scalar, value)))

    return (type(obj).__name__, sorted((name, value) for name, value in vars(obj).items()
                                       if not name.startswith("_") and scalar(value)))


def _data_facts(inputs, targets):
    """What the ranks must share about a data set: its length and each example's shape and dtype."""
    def describe(array):
        return tuple(np.shape(array)[1:]), str(getattr(array, "dtype", type(array).__name__))

    return len(inputs), describe(inputs), describe(targets)


def _model_facts(model):
    return [(tuple(parameter.data.shape), str(parameter.data.dtype)) for parameter in model.parameters()] + [
        (name, tuple(buffer.shape), str(buffer.dtype)) for name, buffer in model.named_buffers()]


def evaluate(model, loss_fn, data, batch_size=500, comm=None):
    """Mean loss and (for integer targets) accuracy of ``model`` in eval mode over ``data``.

    Returns ``{"loss": float, "accuracy": float or None}``; the model's train/eval mode is restored.
    With ``comm`` (``convpool.distributed.init()``), every rank passes the whole ``data``, evaluates
    its contiguous share, and receives the totals of all ranks: the same result everywhere. The
    ranks first compare the data's length and example shapes, the model's shapes and the loss,
    and every rank raises the same ValueError where they differ.

    Example:
        >>> cp.manual_seed(0)
        >>> model = cp.models.lenet5()
        >>> result = cp.training.evaluate(model, cp.nn.CrossEntropyLoss(), (np.zeros((10, 1, 28, 28), np.float32),
        ...                                                                 np.zeros(10, np.int64)))
        >>> sorted(result)
        ['accuracy', 'loss']
    """
    inputs, targets = _check_data("evaluate: data", data)
    if batch_size < 1:
        raise ValueError(f"evaluate: batch_size={batch_size} must be positive")
    comm = comm or SingleProcess()
    # batch_size only sets how much each rank computes at once: it may differ.
    comm.agree("evaluate", {"data (length, example shape and dtype, of inputs then targets)":
                            _data_facts(inputs, targets), "model (parameter and buffer shapes)": _model_facts(model),
                            "loss_fn": _settings(loss_fn)})
    low, high = shard(len(inputs), comm)
    was_training = model.training
    model.eval()
    total_loss, correct, not_classification = 0.0, 0, 0
    try:
        for start in range(low, high, batch_size):
            stop = min(start + batch_size, high)
            batch_inputs, batch_targets = inputs[start:stop], targets[start:stop]
            outputs = model(batch_inputs)
            total_loss += loss_fn(outputs, batch_targets) * len(batch_inputs)
            if _is_classification(outputs, batch_targets):
                correct += int((outputs.argmax(axis=1) == batch_targets).sum())
            else:
                not_classification += 1
    finally:
        model.train(was_training)
    total_loss, correct, not_classification = comm.sum_small([total_loss, correct, not_classification])
    count = len(inputs)
    return {"loss": float(total_loss) / count,
            "accuracy": int(correct) / count if not not_classification else None}


def predict(model, inputs, batch_size=500):
    """The model's outputs for ``inputs`` in eval mode, computed in batches.

    Empty ``inputs`` give the model's output for an empty batch: an array with 0 rows.

    Example:
        >>> cp.manual_seed(0)
        >>> cp.training.predict(cp.models.lenet5(), np.zeros((1200, 1, 28, 28), np.float32)).shape  # in batches of 500
        (1200, 10)
    """
    if batch_size < 1:
        raise ValueError(f"predict: batch_size={batch_size} must be positive")
    was_training = model.training
    model.eval()
    try:
        if len(inputs) == 0:
            return model(inputs)
        return np.concatenate([model(inputs[start:start + batch_size])
                               for start in _batches(len(inputs), batch_size)])
    finally:
        model.train(was_training)


def fit(model, loss_fn, optimizer, train_data, epochs=1, batch_size=64, val_data=None, scheduler=None,
        seed=0, shuffle=True, progress=True, checkpoint_path=None, comm=None):
    """Train ``model`` with mini-batches of ``train_data = (inputs, targets)``.

    Each epoch visits the examples in an order shuffled by ``seed`` (the same seed gives the same
    batches), shows a progress bar with the running loss, accuracy and images per second, then
    evaluates ``val_data`` if given, steps ``scheduler``, and saves ``checkpoint_path`` (atomically)
    if given. A non-finite loss stops training before it reaches the weights, with a warning; the
    returned ``History`` then says why in ``stop_reason``.

    With ``comm`` from ``convpool.distributed.init()``, training is data-parallel: every rank
    passes the whole data set and the same arguments (the ranks compare them first, and every rank
    raises the same ValueError where they differ; ``progress`` and ``checkpoint_path`` are rank 0's
    alone), starts from rank 0's parameters, buffers and optimizer state (``seed=None``: rank 0
    draws the shuffling seed for all), and computes ``batch_size`` examples of each global batch of
    ``batch_size × comm.size``; the gradients are then summed over the ranks in a fixed order, each
    weighted by the rank's share of the batch, so every rank applies the same update. BatchNorm
    normalises with each rank's own batch statistics; its running statistics are averaged over
    the ranks at the end of each epoch. Rank 0 alone shows progress, warns and saves checkpoints;
    every rank returns the same ``History``.

    Example:
        >>> (images, labels), _ = cp.datasets.load_mnist()
        >>> cp.manual_seed(0)
        >>> model = cp.models.lenet5()
        >>> optimizer = cp.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        >>> history = cp.training.fit(model, cp.nn.CrossEntropyLoss(), optimizer, (images[:2000], labels[:2000]),
        ...                           epochs=2, progress=False)
        >>> len(history.train_loss), history.train_loss[1] < history.train_loss[0]
        (2, True)
    """
    inputs, targets = _check_data("fit: train_data", train_data)
    if epochs < 0 or batch_size < 1:
        raise ValueError(f"fit: epochs={epochs} must be non-negative and batch_size={batch_size} positive")
    if val_data is not None:
        _check_data("fit: val_data", val_data)
    comm = comm or SingleProcess()
    # progress and checkpoint_path are rank 0's alone: they may differ.
    comm.agree("fit", {
        "train_data (length, example shape and dtype, of inputs then targets)": _data_facts(inputs, targets),
        "val_data": None if val_data is None else _data_facts(*val_data),
        "epochs": epochs, "batch_size": batch_size, "seed": seed, "shuffle": bool(shuffle),
        "model (parameter and buffer shapes)": _model_facts(model), "loss_fn": _settings(loss_fn),
        "optimizer": _settings(optimizer), "scheduler": _settings(scheduler)})
    if seed is None:  # every rank shuffles with rank 0's fresh seed
        seed = comm.broadcast_object(np.random.SeedSequence().entropy)
    broadcast_training_state(comm, model, optimizer)
    reducer = GradientReducer(comm, model.parameters()) if comm.size > 1 else None
    # A loss that averages over the batch averages each rank's part with its share as weight.
    averaging = getattr(loss_fn, "reduction", "mean") == "mean"
    global_batch = batch_size * comm.size
    history = History()
    order_generator = np.random.default_rng(seed)
    count = len(inputs)
    for epoch in range(1, epochs + 1):
        model.train()
        order = order_generator.permutation(count) if shuffle else np.arange(count)
        loss_sum, correct, seen, classification = 0.0, 0, 0, True
        bar = tqdm(total=count, desc=f"epoch {epoch}/{epochs}", unit="img", unit_scale=True,
                   disable=not progress or comm.rank != 0, leave=True)
        started = time.perf_counter()
        communication = 0.0
        for batch_number, start in enumerate(_batches(count, global_batch)):
            batch = order[start:start + global_batch]
            low, high = shard(len(batch), comm)
            chosen = batch[low:high]
            weight = len(chosen) / len(batch) if averaging else 1.0
            loss, batch_correct, not_classification = 0.0, 0, 0
            if len(chosen):
                batch_inputs, batch_targets = inputs[chosen], targets[chosen]
                outputs = model(batch_inputs)
                loss = loss_fn(outputs, batch_targets)
                if _is_classification(outputs, batch_targets):
                    batch_correct = int((outputs.argmax(axis=1) == batch_targets).sum())
                else:
                    not_classification = 1
            if reducer is not None:  # every rank learns the batch's loss before any weight changes
                model.zero_grad()
                if len(chosen):
                    model.backward(loss_fn.backward(), need_input_grad=False)
                exchanged = time.perf_counter()
                totals = comm.sum_small([loss * weight, batch_correct, not_classification, *reducer.reached()])
                communication += time.perf_counter() - exchanged
                loss, batch_correct, not_classification = float(totals[0]), int(totals[1]), totals[2]
            if not math.isfinite(loss):
                bar.close()
                history.stop_reason = (
                    f"fit: stopped at epoch {epoch}, batch {batch_number + 1}: the loss is {loss} "
                    f"(lr={optimizer.lr:g}); the weights are those before this batch. "
                    "A smaller learning rate usually helps."
                )
                if comm.rank == 0:
                    warnings.warn(history.stop_reason, RuntimeWarning, stacklevel=2)
                return history
            if reducer is None:
                model.zero_grad()
                model.backward(loss_fn.backward(), need_input_grad=False)
            else:
                exchanged = time.perf_counter()
                reducer.reduce(weight, totals[3:])
                communication += time.perf_counter() - exchanged
            optimizer.step()

            history.batch_loss.append(loss)
            loss_sum += loss * len(batch)
            seen += len(batch)
            classification = classification and not not_classification
            correct += batch_correct
            bar.update(len(batch))
            if batch_number % 20 == 0:
                bar.set_postfix(_progress_fields(loss_sum / seen, correct / seen if classification else None),
                                refresh=False)
        elapsed = time.perf_counter() - started
        history.train_loss.append(loss_sum / max(seen, 1))
        history.train_accuracy.append(correct / max(seen, 1) if classification else None)
        history.images_per_second.append(seen / elapsed if elapsed > 0 else float("inf"))
        history.communication_seconds.append(communication)
        history.lr.append(optimizer.lr)
        average_buffers(comm, model)
        fields = _progress_fields(history.train_loss[-1], history.train_accuracy[-1])
        if val_data is not None:
            result = evaluate(model, loss_fn, val_data, comm=comm)
            history.val_loss.append(result["loss"])
            history.val_accuracy.append(result["accuracy"])
            fields.update(_progress_fields(result["loss"], result["accuracy"], prefix="val_"))
        bar.set_postfix(fields)
        bar.close()
        if scheduler is not None:
            scheduler.step()
        if checkpoint_path is not None and comm.rank == 0:
            save_checkpoint(checkpoint_path, model, optimizer, metadata={"epoch": epoch})
    comm.barrier()  # rank 0's last checkpoint is on disk when fit returns on any rank
    return history


def _progress_fields(loss, accuracy, prefix=""):
    fields = {f"{prefix}loss": f"{loss:.4f}"}
    if accuracy is not None:
        fields[f"{prefix}acc"] = f"{accuracy:.2%}"
    return fields
