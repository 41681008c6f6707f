"""Checkpoints that an interrupted save cannot corrupt: save_checkpoint writes a new file and
renames it over the old, load_checkpoint validates every member before changing anything.
convpool.training exports both."""

import json
import math
import os
import re
import secrets
import stat
import zipfile
import zlib

import numpy as np

from .nn.module import LOADABLE_KINDS, apply_state


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
