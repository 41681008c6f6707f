"""The training loop, evaluation, and checkpoints that an interrupted save cannot corrupt."""

import json
import math
import os
import secrets
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm


@dataclass
class History:
    """What ``fit`` measured: one entry per epoch, plus every batch's training loss.

    ``stop_reason`` is None when all epochs ran, else why training stopped early.
    """

    train_loss: list = field(default_factory=list)
    train_accuracy: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)
    val_accuracy: list = field(default_factory=list)
    lr: list = field(default_factory=list)
    images_per_second: list = field(default_factory=list)
    batch_loss: list = field(default_factory=list)
    stop_reason: str = None


def _check_data(name, data):
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise TypeError(f"{name} must be a pair (inputs, targets)")
    inputs, targets = data
    if len(inputs) != len(targets):
        raise ValueError(f"{name}: {len(inputs)} inputs but {len(targets)} targets")
    return inputs, targets


def _is_classification(outputs, targets):
    return outputs.ndim == 2 and targets.ndim == 1 and targets.dtype.kind in "iu"


def _batches(count, batch_size):
    return range(0, count, batch_size)


def evaluate(model, loss_fn, data, batch_size=500):
    """Mean loss and (for integer targets) accuracy of ``model`` in eval mode over ``data``.

    Returns ``{"loss": float, "accuracy": float or None}``; the model's train/eval mode is restored.
    """
    inputs, targets = _check_data("evaluate: data", data)
    was_training = model.training
    model.eval()
    total_loss, correct, classification = 0.0, 0, True
    try:
        for start in _batches(len(inputs), batch_size):
            batch_inputs, batch_targets = inputs[start:start + batch_size], targets[start:start + batch_size]
            outputs = model(batch_inputs)
            total_loss += loss_fn(outputs, batch_targets) * len(batch_inputs)
            classification = classification and _is_classification(outputs, batch_targets)
            if classification:
                correct += int((outputs.argmax(axis=1) == batch_targets).sum())
    finally:
        model.train(was_training)
    count = max(len(inputs), 1)
    return {"loss": total_loss / count, "accuracy": correct / count if classification else None}


def predict(model, inputs, batch_size=500):
    """The model's outputs for ``inputs`` in eval mode, computed in batches."""
    was_training = model.training
    model.eval()
    try:
        return np.concatenate([model(inputs[start:start + batch_size])
                               for start in _batches(len(inputs), batch_size)])
    finally:
        model.train(was_training)


def fit(model, loss_fn, optimizer, train_data, epochs=1, batch_size=64, val_data=None, scheduler=None,
        seed=0, shuffle=True, progress=True, checkpoint_path=None):
    """Train ``model`` with mini-batches of ``train_data = (inputs, targets)``.

    Each epoch visits the examples in an order shuffled by ``seed`` (the same seed gives the same
    batches), shows a progress bar with the running loss, accuracy and images per second, then
    evaluates ``val_data`` if given, steps ``scheduler``, and saves ``checkpoint_path`` (atomically)
    if given. A non-finite loss stops training before it reaches the weights, with a warning; the
    returned ``History`` then says why in ``stop_reason``.
    """
    inputs, targets = _check_data("fit: train_data", train_data)
    if epochs < 0 or batch_size < 1:
        raise ValueError(f"fit: epochs={epochs} must be non-negative and batch_size={batch_size} positive")
    if val_data is not None:
        _check_data("fit: val_data", val_data)
    history = History()
    order_generator = np.random.default_rng(seed)
    count = len(inputs)
    for epoch in range(1, epochs + 1):
        model.train()
        order = order_generator.permutation(count) if shuffle else np.arange(count)
        loss_sum, correct, seen, classification = 0.0, 0, 0, True
        bar = tqdm(total=count, desc=f"epoch {epoch}/{epochs}", unit="img", unit_scale=True,
                   disable=not progress, leave=True)
        started = time.perf_counter()
        for batch_number, start in enumerate(_batches(count, batch_size)):
            chosen = order[start:start + batch_size]
            batch_inputs, batch_targets = inputs[chosen], targets[chosen]
            outputs = model(batch_inputs)
            loss = loss_fn(outputs, batch_targets)
            if not math.isfinite(loss):
                bar.close()
                history.stop_reason = (
                    f"fit: stopped at epoch {epoch}, batch {batch_number + 1}: the loss is {loss} "
                    f"(lr={optimizer.lr:g}); the weights are those before this batch. "
                    "A smaller learning rate usually helps."
                )
                warnings.warn(history.stop_reason, RuntimeWarning, stacklevel=2)
                return history
            model.zero_grad()
            model.backward(loss_fn.backward(), need_input_grad=False)
            optimizer.step()

            history.batch_loss.append(loss)
            loss_sum += loss * len(chosen)
            seen += len(chosen)
            classification = classification and _is_classification(outputs, batch_targets)
            if classification:
                correct += int((outputs.argmax(axis=1) == batch_targets).sum())
            bar.update(len(chosen))
            if batch_number % 20 == 0:
                bar.set_postfix(_progress_fields(loss_sum / seen, correct / seen if classification else None),
                                refresh=False)
        elapsed = time.perf_counter() - started
        history.train_loss.append(loss_sum / max(seen, 1))
        history.train_accuracy.append(correct / max(seen, 1) if classification else None)
        history.images_per_second.append(seen / elapsed if elapsed > 0 else float("inf"))
        history.lr.append(optimizer.lr)
        fields = _progress_fields(history.train_loss[-1], history.train_accuracy[-1])
        if val_data is not None:
            result = evaluate(model, loss_fn, val_data)
            history.val_loss.append(result["loss"])
            history.val_accuracy.append(result["accuracy"])
            fields.update(_progress_fields(result["loss"], result["accuracy"], prefix="val_"))
        bar.set_postfix(fields)
        bar.close()
        if scheduler is not None:
            scheduler.step()
        if checkpoint_path is not None:
            save_checkpoint(checkpoint_path, model, optimizer, metadata={"epoch": epoch})
    return history


def _progress_fields(loss, accuracy, prefix=""):
    fields = {f"{prefix}loss": f"{loss:.4f}"}
    if accuracy is not None:
        fields[f"{prefix}acc"] = f"{accuracy:.2%}"
    return fields


def save_checkpoint(path, model, optimizer=None, metadata=None):
    """Save the model's (and optimizer's) state to ``path`` (an .npz file) atomically.

    The arrays are written to a temporary file in the same folder, flushed to disk, then renamed
    over ``path``: a crash during the save leaves the previous checkpoint intact.
    ``metadata`` is any JSON-serialisable dict, returned by ``load_checkpoint``.
    """
    arrays = {f"model/{name}": value for name, value in model.state_dict().items()}
    if optimizer is not None:
        arrays.update({f"optimizer/{name}": value for name, value in optimizer.state_dict().items()})
    arrays["metadata"] = np.array(json.dumps(metadata or {}))
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    # A fresh name of our own rather than mkstemp's: mkstemp makes the file private (0600), while
    # opening it with mode 0666 lets the process umask decide, as for any file it writes.
    temporary = os.path.join(directory, f".{os.path.basename(path)}.{secrets.token_hex(8)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(descriptor, "wb") as file:
            np.savez(file, **arrays)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
    if hasattr(os, "O_DIRECTORY"):  # make the rename itself durable
        folder = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


def load_checkpoint(path, model, optimizer=None):
    """Restore a checkpoint written by ``save_checkpoint`` into ``model`` (and ``optimizer``).

    Refuses (ValueError naming the parameter and both shapes) a checkpoint that does not match the
    model; the model is then left unchanged. Returns the checkpoint's metadata dict.
    """
    path = os.fspath(path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (OSError, ValueError) as error:
        raise ValueError(f"load_checkpoint: cannot read '{path}' as a checkpoint: {error}") from error
    model_state = {name[len("model/"):]: value for name, value in arrays.items() if name.startswith("model/")}
    previous = model.state_dict()
    try:
        model.load_state_dict(model_state)
        if optimizer is not None:
            optimizer_state = {name[len("optimizer/"):]: value for name, value in arrays.items()
                               if name.startswith("optimizer/")}
            if not optimizer_state:
                raise ValueError("it holds no optimizer state")
            try:
                optimizer.load_state_dict(optimizer_state)
            except ValueError:
                model.load_state_dict(previous)
                raise
    except ValueError as error:
        raise ValueError(f"load_checkpoint: '{path}' does not fit: {error}") from error
    return json.loads(str(arrays["metadata"])) if "metadata" in arrays else {}
