"""Checkpoints built to crash, hang or mislead the loader, and saves that are interrupted.

Each case that could crash, hang or exhaust the process runs in a subprocess (child_process.py),
so that a crash fails its test instead of killing pytest; each asserts the exception type and
bounded peak memory and time."""

import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
import zipfile

import numpy as np
import pytest

import convpool as cp
from convpool import nn, optim
from convpool.models import lenet5
from convpool.training import fit, load_checkpoint, save_checkpoint
from child_process import run_child

# --- checkpoints -----------------------------------------------------------------------------

def npy_bytes(array=None, header=None):
    """A .npy member: `array` as NumPy writes it, or only a crafted `header` dict."""
    import io
    buffer = io.BytesIO()
    if header is None:
        np.lib.format.write_array(buffer, np.asarray(array), allow_pickle=True)
    else:
        np.lib.format.write_array_header_1_0(buffer, header)
    return buffer.getvalue()


def write_zip(path, members, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def saved_members(model, optimizer=None, metadata=None):
    arrays = {f"model/{name}": value for name, value in model.state_dict().items()}
    if optimizer is not None:
        arrays.update({f"optimizer/{name}": value for name, value in optimizer.state_dict().items()})
    arrays["metadata"] = np.array(json.dumps(metadata or {}))
    return {f"{name}.npy": npy_bytes(value) for name, value in arrays.items()}


def trained_pair():
    cp.manual_seed(0)
    model = lenet5()
    optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x = np.random.default_rng(0).random((8, 1, 28, 28), np.float32)
    fit(model, nn.CrossEntropyLoss(), optimizer, (x, np.arange(8) % 10), batch_size=8, progress=False)
    return model, optimizer


def assert_unchanged(model, before):
    for (name, expected), actual in zip(before.items(), model.state_dict().values()):
        np.testing.assert_array_equal(actual, expected, err_msg=name)


def test_checkpoint_members_are_checked_before_their_data_is_read(tmp_path):
    model = lenet5()
    members = saved_members(model)
    huge = dict(members)
    huge["model/0.weight.npy"] = npy_bytes(header={"descr": "<f4", "fortran_order": False, "shape": (2**40,)})
    write_zip(tmp_path / "huge.npz", huge)
    with pytest.raises(ValueError, match=r"'model/0.weight.npy' has shape \(1099511627776,\) in the checkpoint"):
        load_checkpoint(tmp_path / "huge.npz", model)
    bomb = dict(members)
    bomb["padding.npy"] = npy_bytes(np.zeros(200_000_000, np.uint8))  # 200 MB of zeros, ~200 KB deflated
    write_zip(tmp_path / "bomb.npz", bomb, zipfile.ZIP_DEFLATED)
    assert os.path.getsize(tmp_path / "bomb.npz") < 2_000_000
    started = time.perf_counter()
    with pytest.raises(ValueError, match=r"unexpected members \['padding'\]"):
        load_checkpoint(tmp_path / "bomb.npz", model)
    assert time.perf_counter() - started < 0.5
    lying = dict(members)
    lying["model/0.bias.npy"] = members["model/0.bias.npy"][:-4]  # fewer bytes than the header says
    write_zip(tmp_path / "short.npz", lying)
    with pytest.raises(ValueError, match="less data than its header declares"):
        load_checkpoint(tmp_path / "short.npz", model)


@pytest.mark.parametrize("entry, value, error, message", [
    ("model/11.bias", np.array(["1"] * 10), ValueError, r"'model/11.bias.npy' has dtype <U1"),
    ("model/11.bias", np.zeros(10, np.complex64), ValueError, r"has dtype complex64"),
    ("model/11.bias", np.zeros(10, np.int64), ValueError, r"has dtype int64"),
    ("model/11.bias", np.array([object()] * 10), ValueError, r"has dtype object"),
    ("model/11.bias", np.zeros(10, [("a", "<f4")]), ValueError, r"has dtype"),
    ("metadata", np.array("{not json"), ValueError, r"metadata is not JSON"),
    ("metadata", np.array("[1, 2]"), ValueError, r"metadata is a JSON list"),
    ("optimizer/momentum_buffer.9", np.zeros(3, np.float32), ValueError, r"'optimizer/momentum_buffer.9.npy' has shape \(3,\)"),
    ("optimizer/lr", np.array(np.nan), ValueError, r"lr=nan must be finite"),
    ("optimizer/lr", np.array(-1.0), ValueError, r"lr=-1.0 must be finite and non-negative"),
    ("optimizer/started", np.zeros(10, np.float32), ValueError, r"'optimizer/started.npy' has dtype float32"),
    # Values the copy into the model's float32 would make infinite.
    ("model/11.bias", np.full(10, 1e300), ValueError, r"'11.bias' holds 1e\+300, beyond float32's largest"),
    ("optimizer/momentum_buffer.9", np.full(10, -1e39), ValueError, r"'momentum_buffer.9' holds -1e\+39, beyond"),
])
def test_a_refused_checkpoint_changes_nothing(tmp_path, entry, value, error, message):
    model, optimizer = trained_pair()
    members = saved_members(model, optimizer, {"epoch": 1})
    members[f"{entry}.npy"] = npy_bytes(value)
    write_zip(tmp_path / "bad.npz", members)
    cp.manual_seed(5)
    target, target_optimizer = lenet5(), None
    target_optimizer = optim.SGD(target.parameters(), lr=0.5, momentum=0.9)
    before = target.state_dict()
    with pytest.raises(error, match=message):
        load_checkpoint(tmp_path / "bad.npz", target, target_optimizer)
    assert_unchanged(target, before)
    assert target_optimizer.lr == 0.5 and target_optimizer.state == {}


def test_load_state_dict_is_all_or_nothing_and_refuses_wrong_kinds():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))
    before = model.state_dict()
    with pytest.raises(TypeError, match="state_dict must be a mapping"):
        model.load_state_dict(["1", "2", "x"])
    for name, value, error, message in [
        ("1.bias", np.array(["a", "b"]), TypeError, r"'1.bias' has dtype <U1, expected real floating-point"),
        ("1.bias", np.zeros(2, np.complex128), TypeError, r"complex128"),
        ("1.bias", np.array([None, None]), TypeError, r"dtype object"),
        ("1.running_var", np.array([1.0, -1.0], np.float32), ValueError, r"'1.running_var' must be non-negative"),
        ("1.running_var", np.array([1.0, np.nan], np.float32), ValueError, r"must be non-negative"),
        ("1.num_batches_tracked", np.array(1.5), TypeError, r"expected integer"),
        # Integers the copy into int64 would wrap to -1 and -3.
        ("1.num_batches_tracked", np.array(2**64 - 1, np.uint64), ValueError,
         r"'1.num_batches_tracked' holds 18446744073709551615, outside int64's range"),
        ("1.num_batches_tracked", np.array(2**64 - 3, np.uint64), ValueError, r"outside int64's range"),
        ("1.bias", np.array([1.0, 3.5e38]), ValueError, r"'1.bias' holds 3.5e\+38, beyond float32's largest"),
        ("1.bias", "xy", TypeError, r"'1.bias' must be an array, got str"),
    ]:
        state = model.state_dict()
        state["0.weight"] = np.full((2, 1, 3, 3), 7.0, np.float32)  # would be written first
        state[name] = value
        with pytest.raises(error, match=message):
            model.load_state_dict(state)
        assert_unchanged(model, before)


def test_a_checkpoint_holding_a_member_twice_is_refused(tmp_path):
    # zipfile reads the last of two members of one name: which one was meant cannot be known.
    model, optimizer = trained_pair()
    save_checkpoint(tmp_path / "twice.npz", model, optimizer)
    with zipfile.ZipFile(tmp_path / "twice.npz", "a") as archive, pytest.warns(UserWarning, match="Duplicate name"):
        archive.writestr("model/11.bias.npy", npy_bytes(np.full(10, 7.0, np.float32)))
    target = lenet5()
    before = target.state_dict()
    with pytest.raises(ValueError, match=r"members \['model/11.bias'\] appear more than once"):
        load_checkpoint(tmp_path / "twice.npz", target)
    assert_unchanged(target, before)


def test_malformed_checkpoint_files_raise_value_error(tmp_path):
    model = lenet5()
    save_checkpoint(tmp_path / "good.npz", model)
    data = (tmp_path / "good.npz").read_bytes()
    (tmp_path / "truncated.npz").write_bytes(data[: len(data) // 2])
    (tmp_path / "empty.npz").write_bytes(b"")
    np.save(tmp_path / "array.npy", np.zeros(3))
    os.mkdir(tmp_path / "folder")
    for name in ("truncated.npz", "empty.npz", "array.npy", "folder", "missing.npz"):
        with pytest.raises(ValueError, match=rf"cannot read '.*{name}' as a checkpoint"):
            load_checkpoint(tmp_path / name, model)
    with pytest.raises(ValueError, match="not a regular file"):
        load_checkpoint("/dev/null", model)


def test_loading_from_a_fifo_does_not_hang(tmp_path):
    fifo = tmp_path / "pipe.npz"
    os.mkfifo(fifo)
    code, out, err = run_child(f"""
from convpool.models import lenet5
from convpool.training import load_checkpoint
try:
    load_checkpoint({str(fifo)!r}, lenet5())
except ValueError as error:
    print("refused:", error)
""", timeout=30)
    assert code == 0 and "not a regular file" in out, err


def test_saving_refuses_devices_and_folders_and_writes_through_symlinks(tmp_path):
    model = lenet5()
    # A device of our own, like /dev/null (1, 3): were it replaced, only this copy would be lost.
    targets = [tmp_path / "pipe", tmp_path / "folder"]
    os.mkfifo(targets[0])
    os.mkdir(targets[1])
    try:
        os.mknod(tmp_path / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        targets.append(tmp_path / "null")
    except PermissionError:  # no device nodes in this sandbox
        pass
    for target in targets:
        with pytest.raises(ValueError, match="exists and is not a regular file"):
            save_checkpoint(target, model)
    assert all(not os.path.isfile(target) for target in targets)
    for target in targets:
        os.rmdir(target) if os.path.isdir(target) else os.unlink(target)
    real = tmp_path / "real.npz"
    save_checkpoint(real, model, metadata={"version": 1})
    link = tmp_path / "link.npz"
    link.symlink_to(real)
    save_checkpoint(link, model, metadata={"version": 2})
    assert link.is_symlink() and load_checkpoint(real, lenet5()) == {"version": 2}
    assert sorted(os.listdir(tmp_path)) == ["link.npz", "real.npz"]


def test_a_killed_save_leaves_the_old_checkpoint_and_the_next_save_cleans_up(tmp_path):
    path = tmp_path / "model.npz"
    save_checkpoint(path, lenet5(), metadata={"version": 1})
    original = path.read_bytes()
    saver = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        import numpy as np
        from convpool.models import lenet5
        from convpool.training import save_checkpoint
        def stall(file, **arrays):
            file.write(b"PK partial")
            file.flush()
            print("writing", flush=True)
            time.sleep(60)
        np.savez = stall
        save_checkpoint({str(path)!r}, lenet5(), metadata={{"version": 2}})
        """)], stdout=subprocess.PIPE, text=True)
    try:
        assert saver.stdout.readline().strip() == "writing"
        os.kill(saver.pid, signal.SIGKILL)
    finally:
        saver.wait(timeout=30)
    leftovers = [name for name in os.listdir(tmp_path) if name.endswith(".tmp")]
    assert len(leftovers) == 1 and path.read_bytes() == original
    save_checkpoint(path, lenet5(), metadata={"version": 3})
    assert os.listdir(tmp_path) == ["model.npz"]
    assert load_checkpoint(path, lenet5()) == {"version": 3}
