"""Data-parallel training over MPI: each test starts small scripts under ``mpiexec -n 2`` (bounded by
a timeout) and compares what the ranks wrote with each other and with a single-process run."""

import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from convpool import distributed

try:
    import mpi4py  # noqa: F401
except ImportError:
    mpi4py = None
MPIEXEC = shutil.which("mpiexec")
needs_mpi = pytest.mark.skipif(mpi4py is None or MPIEXEC is None,
                               reason="needs the 'mpi' extra (mpi4py and the mpich wheel, which has mpiexec)")

# Trains on a few hundred bundled MNIST images and saves every rank's parameters and buffers:
# argv = model ("lenet64": LeNet-5 in float64, "resnet8": batch norm and shortcuts in float32),
# per-rank batch size, output prefix, and optionally a checkpoint to start from.
TRAINING_SCRIPT = """
import sys
import numpy as np
import convpool as cp
from convpool import distributed, models, nn, optim
from convpool.datasets import load_mnist
from convpool.training import fit, load_checkpoint

comm = distributed.init()
model_name, batch_size, prefix = sys.argv[1], int(sys.argv[2]), sys.argv[3]
cp.manual_seed(comm.rank)  # different initial weights on each rank: fit must broadcast rank 0's
if model_name == "lenet64":
    model = models.lenet5().to(np.float64)
else:
    model = models.resnet8(in_channels=1)
(images, labels), _ = load_mnist()
# 385 images: the last global batch of 64 holds one image, so one rank computes nothing in it.
train = (images[:385].astype(model.parameters()[0].dtype), labels[:385])
validation = (images[1000:1101].astype(train[0].dtype), labels[1000:1101])
optimizer = optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
if len(sys.argv) > 4:
    load_checkpoint(sys.argv[4], model, optimizer)
history = fit(model, nn.CrossEntropyLoss(), optimizer, train, epochs=2, batch_size=batch_size,
              val_data=validation, seed=7, progress=False, checkpoint_path=prefix + "checkpoint.npz", comm=comm)
state = dict(model.state_dict())
state["val_loss"] = np.array(history.val_loss)
state["batch_loss"] = np.array(history.batch_loss)
np.savez(f"{prefix}rank{comm.rank}.npz", **state)
print(f"rank {comm.rank} of {comm.size} threads {cp.get_num_threads()} done", flush=True)
"""


# Sums vectors of several lengths over the ranks and checks, on rank 0, that every rank holds the
# same bits as one fixed tree of additions (pairs of the first ranks folded when the count is not a
# power of two, then halving); and that the gradient reducer gives those bits whatever its bucket.
SUM_SCRIPT = """
import numpy as np
from mpi4py import MPI
from convpool.distributed import GradientReducer, MPICommunicator
from convpool.nn import Parameter

comm = MPICommunicator(MPI.COMM_WORLD)

def tree_sum(values):
    powered = 1 << (len(values).bit_length() - 1)
    folded = len(values) - powered
    partial = [values[2 * i] + values[2 * i + 1] for i in range(folded)] + values[2 * folded:]
    distance = powered // 2
    while distance:
        partial = [partial[i] + partial[i + distance] for i in range(distance)]
        distance //= 2
    return partial[0]

failures = []
for dtype in (np.float32, np.float64):
    for length in (0, 1, 2, 3, 7, 1000, 4099):
        mine = np.random.default_rng([comm.rank, length]).standard_normal(length).astype(dtype)
        everyone = comm.comm.allgather(mine)
        results = comm.comm.gather(comm.sum_in_place(mine.copy()))
        if comm.rank == 0 and not all(r.dtype == dtype and np.array_equal(r, tree_sum(everyone)) for r in results):
            failures.append(f"sum of {length} {np.dtype(dtype).name}")

shapes = [(3, 4), (5,), (2, 2, 3), (7,)]
def reduced(bucket_bytes):
    parameters = [Parameter(np.zeros(shape, np.float32)) for shape in shapes]
    for index, (parameter, shape) in enumerate(zip(parameters, shapes)):
        # the second parameter is never reached, the last only on rank 0
        if index != 1 and (index != 3 or comm.rank == 0):
            parameter.grad = np.random.default_rng([comm.rank, index]).standard_normal(shape).astype(np.float32)
    reducer = GradientReducer(comm, parameters, bucket_bytes=bucket_bytes)
    reducer.reduce(0.5, comm.sum_small(reducer.reached()))
    return [parameter.grad for parameter in parameters]

small, large = reduced(12), reduced(1 << 20)
if small[1] is not None or large[1] is not None:
    failures.append("a parameter no rank reached got a gradient")
for index in (0, 2, 3):
    if not np.array_equal(small[index], large[index]):
        failures.append(f"bucket size changed gradient {index}")
    contributions = [np.random.default_rng([rank, index]).standard_normal(shapes[index]).astype(np.float32)
                     * np.float32(0.5) if index != 3 or rank == 0 else np.zeros(shapes[index], np.float32)
                     for rank in range(comm.size)]
    if not np.array_equal(large[index], tree_sum(contributions)):
        failures.append(f"gradient {index} is not the tree sum")
if comm.rank == 0:
    print("failures:", failures)
"""


def run(command, timeout=240, env=None):
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    return result.returncode, result.stdout, result.stderr


def train(tmp_path, name, model, batch_size, processes, checkpoint=None):
    script = tmp_path / "train.py"
    script.write_text(TRAINING_SCRIPT)
    prefix = str(tmp_path / name) + "-"
    command = [sys.executable, str(script), model, str(batch_size), prefix] + ([str(checkpoint)] if checkpoint else [])
    if processes > 1:
        command = [MPIEXEC, "-n", str(processes)] + command
    code, out, err = run(command)
    assert code == 0, out + err
    states = []
    for rank in range(processes):
        with np.load(f"{prefix}rank{rank}.npz") as archive:
            states.append({key: archive[key] for key in archive.files})
    return states, out


def assert_states_equal(first, second):
    assert first.keys() == second.keys()
    for key in first:
        np.testing.assert_array_equal(first[key], second[key], err_msg=key)


@needs_mpi
def test_two_ranks_follow_one_process_with_the_same_global_batch(tmp_path):
    (one,), _ = train(tmp_path, "one", "lenet64", 64, 1)
    (rank0, rank1), out = train(tmp_path, "two", "lenet64", 32, 2)
    assert "rank 0 of 2 threads 1 done" in out and "rank 1 of 2 threads 1 done" in out
    assert_states_equal(rank0, rank1)
    assert len(one["batch_loss"]) == len(rank0["batch_loss"]) == 2 * 7
    for key in one:
        np.testing.assert_allclose(rank0[key], one[key], rtol=1e-9, atol=1e-12, err_msg=key)


@needs_mpi
def test_batch_norm_model_is_identical_on_every_rank_and_across_runs(tmp_path):
    (first0, first1), _ = train(tmp_path, "first", "resnet8", 32, 2)
    (second0, _), _ = train(tmp_path, "second", "resnet8", 32, 2)
    assert_states_equal(first0, first1)  # running statistics averaged, counters from rank 0
    assert_states_equal(first0, second0)
    assert np.all(np.isfinite(first0["batch_loss"])) and first0["batch_loss"][-1] < first0["batch_loss"][0]


@needs_mpi
def test_checkpoints_move_between_process_counts(tmp_path):
    (two,), _ = train(tmp_path, "single", "resnet8", 64, 1)
    (rank0, rank1), _ = train(tmp_path, "resumed", "resnet8", 32, 2, checkpoint=tmp_path / "single-checkpoint.npz")
    assert_states_equal(rank0, rank1)
    assert rank0["batch_loss"][0] < two["batch_loss"][0]  # resumed from trained weights, not from scratch
    (again,), _ = train(tmp_path, "again", "resnet8", 64, 1, checkpoint=tmp_path / "resumed-checkpoint.npz")
    assert again["batch_loss"][0] < two["batch_loss"][0]


@needs_mpi
@pytest.mark.parametrize("processes", [2, 3, 4, 5])
def test_sums_are_one_fixed_tree_on_every_rank(processes, tmp_path):
    script = tmp_path / "sums.py"
    script.write_text(SUM_SCRIPT)
    code, out, err = run([MPIEXEC, "-n", str(processes), sys.executable, str(script)], timeout=120)
    assert code == 0, out + err
    assert "failures: []" in out, out


@needs_mpi
def test_an_exception_on_one_rank_ends_the_job_with_its_message(tmp_path):
    script = tmp_path / "fail.py"
    script.write_text(textwrap.dedent("""
        import numpy as np
        from convpool import distributed, models, nn, optim
        from convpool.training import fit
        comm = distributed.init()
        if comm.rank == 1:
            raise RuntimeError("rank 1 ran out of luck")
        model = models.lenet5()
        images = np.zeros((64, 1, 28, 28), np.float32)
        fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1), (images, np.zeros(64, np.int64)),
            epochs=100, progress=False, comm=comm)  # rank 0 waits in the first broadcast
    """))
    code, out, err = run([MPIEXEC, "-n", "2", sys.executable, str(script)], timeout=60)
    assert code != 0, out + err
    assert "RuntimeError: rank 1 ran out of luck" in err, out + err
    assert "rank 1 of 2 failed with RuntimeError" in err, out + err


def test_without_mpiexec_the_program_runs_as_one_process():
    code, out, err = run([sys.executable, "-c",
                          "from convpool import distributed; c = distributed.init(); "
                          "print(type(c).__name__, c.rank, c.size, c.local_rank, c.local_size)"])
    assert code == 0, err
    assert out.split() == ["SingleProcess", "0", "1", "0", "1"]


def test_a_launcher_without_mpi4py_is_an_import_error_naming_the_extra():
    environment = dict(os.environ, PMI_SIZE="2")
    code, out, err = run([sys.executable, "-c",
                          "import sys; sys.modules['mpi4py'] = None\n"
                          "from convpool import distributed\n"
                          "distributed.init()"], env=environment)
    assert code != 0
    assert "started by an MPI launcher with 2 processes, but mpi4py is not installed" in err
    assert 'pip install "convpool[mpi]"' in err


@needs_mpi
def test_demo_under_mpiexec_prints_once(tmp_path):
    code, out, err = run([MPIEXEC, "-n", "2", sys.executable, "-m", "convpool", "demo", "--epochs", "1",
                          "--train-images", "256", "--no-progress", "--out", str(tmp_path)])
    assert code == 0, out + err
    assert out.count("test accuracy:") == 1
    assert "2 processes" in out
    assert (tmp_path / "lenet5.npz").exists()


def test_shards_cover_the_batch_in_rank_order():
    class Ranks:
        def __init__(self, rank, size):
            self.rank, self.size = rank, size

    for count in (0, 1, 5, 64):
        for size in (1, 2, 3, 8):
            bounds = [distributed.shard(count, Ranks(rank, size)) for rank in range(size)]
            assert bounds[0][0] == 0 and bounds[-1][1] == count
            assert all(bounds[rank][1] == bounds[rank + 1][0] for rank in range(size - 1))
            lengths = [high - low for low, high in bounds]
            assert max(lengths) - min(lengths) <= 1 and lengths == sorted(lengths, reverse=True)
