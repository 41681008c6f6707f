"""The training loop, evaluation, and checkpoints that an interrupted save cannot corrupt."""

import json
import math
import os
import re
import secrets
import stat
import time
import warnings
import zipfile
import zlib
from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm

from .distributed import GradientReducer, SingleProcess, average_buffers, broadcast_training_state, shard
from .nn.module import LOADABLE_KINDS, apply_state

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


def save_checkpoint(path, model, optimizer=None, metadata=None):
    """Save the model's (and optimizer's) state to ``path`` (an .npz file) atomically.

    The arrays are written to a temporary file in the same folder, flushed to disk, then renamed
    over ``path``: a crash during the save leaves the previous checkpoint intact, and the next
    save removes the temporary files that crashed saves of the same ``path`` left behind.
    ``path`` may be a symbolic link (the file it points to is replaced) but not a folder, device
    or pipe. ``metadata`` is any JSON-serialisable dict, returned by ``load_checkpoint``.

    Example:
        >>> import os, tempfile
        >>> cp.manual_seed(0)
        >>> model = cp.models.lenet5()
        >>> path = os.path.join(tempfile.mkdtemp(), "lenet5.npz")
        >>> cp.training.save_checkpoint(path, model, metadata={"epoch": 3})
        >>> cp.manual_seed(1)
        >>> restored = cp.models.lenet5()
        >>> cp.training.load_checkpoint(path, restored)
        {'epoch': 3}
        >>> x = np.ones((1, 1, 28, 28), np.float32)
        >>> np.array_equal(restored(x), model(x))
        True
    """
    arrays = {f"model/{name}": value for name, value in model.state_dict().items()}
    if optimizer is not None:
        arrays.update({f"optimizer/{name}": value for name, value in optimizer.state_dict().items()})
    arrays["metadata"] = np.array(json.dumps(metadata or {}))
    path = os.fspath(path)
    target = os.path.realpath(path)  # through symbolic links: the rename replaces the file itself
    if os.path.lexists(target) and not stat.S_ISREG(os.stat(target).st_mode):
        raise ValueError(f"save_checkpoint: '{path}' exists and is not a regular file")
    directory, name = os.path.split(target)
    _remove_stale_temporaries(directory, name)
    # A fresh name of our own rather than mkstemp's: mkstemp makes the file private (0600), while
    # opening it with mode 0666 lets the process umask decide, as for any file it writes.
    temporary = os.path.join(directory, f".{name}.{os.getpid()}-{secrets.token_hex(8)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(descriptor, "wb") as file:
            np.savez(file, **arrays)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, target)
    except BaseException:
        os.unlink(temporary)
        raise
    if hasattr(os, "O_DIRECTORY"):  # make the rename itself durable
        folder = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


def _remove_stale_temporaries(directory, name):
    """Delete the temporary files of saves of ``name`` whose process no longer runs (killed
    mid-save); a save still running in another process keeps its own."""
    pattern = re.compile(rf"\.{re.escape(name)}\.(\d+)-[0-9a-f]{{16}}\.tmp")
    for entry in os.listdir(directory):
        match = pattern.fullmatch(entry)
        if match and not _process_exists(int(match.group(1))):
            try:
                os.unlink(os.path.join(directory, entry))
            except FileNotFoundError:  # another save removed it first
                pass


def _process_exists(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    return True


# The metadata is a JSON text; a larger one is not a checkpoint of this library.
_MAX_METADATA_CHARACTERS = 1 << 20


def load_checkpoint(path, model, optimizer=None):
    """Restore a checkpoint written by ``save_checkpoint`` into ``model`` (and ``optimizer``).

    All or nothing: every member's name, dtype and shape is checked against the model (and
    optimizer) from its header before any data is read, then every value, and only then is
    anything written. A file that is not such a checkpoint, or does not fit, raises ValueError
    (or TypeError for an array of the wrong kind) naming the path and the entry; the model and
    optimizer are then unchanged. Returns the checkpoint's metadata dict.

    Example:
        >>> import os, tempfile
        >>> cp.manual_seed(0)
        >>> path = os.path.join(tempfile.mkdtemp(), "model.npz")
        >>> cp.training.save_checkpoint(path, cp.models.lenet5(), metadata={"epoch": 3})
        >>> cp.training.load_checkpoint(path, cp.models.lenet5())
        {'epoch': 3}
    """
    path = os.fspath(path)
    expected = {f"model/{name}": (target.shape, LOADABLE_KINDS[target.dtype.kind])
                for name, target in model.state_targets().items()}
    if optimizer is not None:
        expected.update({f"optimizer/{key}": spec for key, spec in optimizer.state_spec().items()})
    expected["metadata"] = ((), "U")
    arrays = _read_checkpoint_members(path, expected, skipped="optimizer/" if optimizer is None else None)
    try:
        model_state = {name[len("model/"):]: value for name, value in arrays.items() if name.startswith("model/")}
        model_updates = model.check_state_dict(model_state)
        optimizer_state = None
        if optimizer is not None:
            optimizer_state = {name[len("optimizer/"):]: value for name, value in arrays.items()
                               if name.startswith("optimizer/")}
            if not optimizer_state:
                raise ValueError("it holds no optimizer state")
            optimizer_state = optimizer.check_state_dict(optimizer_state)
        metadata = _parse_metadata(arrays.get("metadata"))
    except ValueError as error:
        raise ValueError(f"load_checkpoint: '{path}' does not fit: {error}") from error
    except TypeError as error:
        raise TypeError(f"load_checkpoint: '{path}' does not fit: {error}") from error
    apply_state(model_updates)
    if optimizer is not None:
        optimizer.apply_state(optimizer_state)
    return metadata


def _parse_metadata(array):
    if array is None:
        return {}
    try:
        metadata = json.loads(str(array[()]))
    except ValueError as error:
        raise ValueError(f"its metadata is not JSON: {error}") from error
    if not isinstance(metadata, dict):
        raise ValueError(f"its metadata is a JSON {type(metadata).__name__}, not an object")
    return metadata


def _read_checkpoint_members(path, expected, skipped=None):
    """The members of the .npz at ``path``, each checked against ``expected`` (name ->
    (shape, dtype kinds)) from its header before its data is read; a member of another name is
    never read, and one whose name starts with ``skipped`` is passed over."""
    unreadable = f"load_checkpoint: cannot read '{path}' as a checkpoint"
    try:
        # Non-blocking, so that a FIFO cannot hang the open; anything but a regular file is refused.
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as error:
        raise ValueError(f"{unreadable}: {error}") from error
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        raise ValueError(f"{unreadable}: not a regular file")
    with os.fdopen(descriptor, "rb") as file:
        try:
            with zipfile.ZipFile(file) as archive:
                members = [info for info in archive.infolist()
                           if not (skipped and info.filename.startswith(skipped))]
                names = [info.filename.removesuffix(".npy") for info in members]
                unexpected = sorted(set(names) - set(expected))
                if unexpected:
                    raise _NotFitting(f"unexpected members {unexpected}")
                repeated = sorted({name for name in names if names.count(name) > 1})
                if repeated:  # zipfile would read the last copy: which one was meant is unknown
                    raise ValueError(f"members {repeated} appear more than once")
                return {name: _read_member(archive, info, *expected[name]) for name, info in zip(names, members)}
        except _NotFitting as error:
            raise ValueError(f"load_checkpoint: '{path}' does not fit: {error}") from None
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, NotImplementedError) as error:
            raise ValueError(f"{unreadable}: {type(error).__name__}: {error}") from error


class _NotFitting(Exception):
    """A well-formed member that is not what the model or optimizer expects."""


def _read_member(archive, info, shape, kinds):
    name = info.filename
    with archive.open(info) as member:
        version = np.lib.format.read_magic(member)
        if version == (1, 0):
            declared_shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(member)
        elif version == (2, 0):
            declared_shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(member)
        else:
            raise ValueError(f"member '{name}' has .npy format version {version}")
        if dtype.kind not in kinds or dtype.fields is not None or dtype.hasobject:
            raise _NotFitting(f"'{name}' has dtype {dtype}, expected kind {' or '.join(kinds)}")
        if declared_shape != shape:
            raise _NotFitting(f"'{name}' has shape {declared_shape} in the checkpoint but {shape} in the model")
        size = math.prod(shape) * dtype.itemsize
        if kinds == "U" and size > 4 * _MAX_METADATA_CHARACTERS:
            raise _NotFitting(f"'{name}' is {size} bytes, more than a checkpoint's metadata")
        data = member.read(size)
        if len(data) != size or member.read(1):  # the second read also verifies the CRC
            raise ValueError(f"member '{name}' holds {'less' if len(data) != size else 'more'} data than "
                             f"its header declares")
    return np.frombuffer(data, dtype).reshape(shape, order="F" if fortran_order else "C").copy()
