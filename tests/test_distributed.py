"""Data-parallel training over MPI: each test starts small scripts under ``mpiexec -n 2`` (bounded by
a timeout) and compares what the ranks wrote with each other and with a single-process run."""

import json
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


# Calls fit and evaluate with one argument different on rank 1, case by case in one job: each case
# must raise the same ValueError naming the argument on both ranks (a disagreement found by the
# first exchange leaves the ranks in step for the next case), or, for arguments that are rank 0's
# alone, train to the same weights on both.
DISAGREEMENT_SCRIPT = """
import json, sys
import numpy as np
import convpool as cp
from convpool import distributed, models, nn, optim
from convpool.training import evaluate, fit

comm = distributed.init()
other = comm.rank == 1
rng = np.random.default_rng(0)
images, labels = rng.standard_normal((48, 1, 28, 28)).astype(np.float32), rng.integers(0, 10, 48)

def model():
    cp.manual_seed(0)
    return models.lenet5()

def arguments(**changes):
    network = changes.pop("model", None) or model()
    chosen = dict(loss_fn=nn.CrossEntropyLoss(), train_data=(images, labels), epochs=1, batch_size=8, val_data=None,
                  seed=0, shuffle=True, progress=False, checkpoint_path=None)
    chosen.update(changes)
    optimizer = chosen.pop("optimizer", None) or optim.SGD(network.parameters(), lr=0.1)
    scheduler = chosen.pop("scheduler", None)
    return network, optimizer, scheduler, chosen

def differing(name, value_on_rank_1, default=None):
    return {name: value_on_rank_1} if other else ({name: default} if default is not None else {})

FIT_CASES = {
    "train_data length": differing("train_data", (images[:40], labels[:40])),
    "train_data example shape": differing("train_data", (images[:, :, :27], labels)),
    "epochs": differing("epochs", 2),
    "batch_size": differing("batch_size", 16),
    "seed": differing("seed", 1),
    "seed None": differing("seed", None),
    "shuffle": differing("shuffle", False),
    "val_data given": differing("val_data", (images[:8], labels[:8])),
    "val_data length": {"val_data": (images[:8 + 4 * comm.rank], labels[:8 + 4 * comm.rank])},
    "model": differing("model", models.lenet5(num_classes=7)),
    "loss_fn": differing("loss_fn", nn.CrossEntropyLoss(reduction="sum")),
}
results = {}
for case, changes in FIT_CASES.items():
    network, optimizer, scheduler, chosen = arguments(**changes)
    try:
        fit(network, optimizer=optimizer, scheduler=scheduler, comm=comm, **chosen)
        results[case] = "trained"
    except ValueError as error:
        results[case] = str(error)
for case, make in {
    "optimizer kind": lambda parameters: optim.Adam(parameters, lr=0.1) if other else optim.SGD(parameters, lr=0.1),
    "lr": lambda parameters: optim.SGD(parameters, lr=0.2 if other else 0.1),
    "momentum": lambda parameters: optim.SGD(parameters, lr=0.1, momentum=0.9 if other else 0.0),
}.items():
    network = model()
    try:
        fit(network, nn.CrossEntropyLoss(), make(network.parameters()), (images, labels), batch_size=8,
            progress=False, comm=comm)
        results[case] = "trained"
    except ValueError as error:
        results[case] = str(error)
network = model()
optimizer = optim.SGD(network.parameters(), lr=0.1)
try:
    fit(network, nn.CrossEntropyLoss(), optimizer, (images, labels), batch_size=8, progress=False, comm=comm,
        scheduler=optim.StepLR(optimizer, 1 + comm.rank))
    results["scheduler"] = "trained"
except ValueError as error:
    results["scheduler"] = str(error)
for case, changes in {"evaluate data length": {"data": (images[:40 + 8 * comm.rank], labels[:40 + 8 * comm.rank])},
                      "evaluate model": {"model": models.lenet5(num_classes=7) if other else model()},
                      "evaluate loss_fn": {"loss_fn": nn.CrossEntropyLoss(reduction="sum" if other else "mean")}}.items():
    try:
        evaluate(changes.get("model") or model(), changes.get("loss_fn", nn.CrossEntropyLoss()),
                 changes.get("data", (images, labels)), comm=comm)
        results[case] = "evaluated"
    except ValueError as error:
        results[case] = str(error)
# Rank 0's alone: progress bars and checkpoints; evaluate's batch_size only cuts each rank's share.
network, optimizer, scheduler, chosen = arguments(progress=other, checkpoint_path=sys.argv[1] if not other else None)
fit(network, optimizer=optimizer, scheduler=scheduler, comm=comm, **chosen)
results["weights"] = [float(parameter.data.sum()) for parameter in network.parameters()]
results["evaluate batch_size"] = evaluate(network, nn.CrossEntropyLoss(), (images, labels), batch_size=5 + comm.rank,
                                          comm=comm)
with open(f"{sys.argv[2]}{comm.rank}.json", "w") as file:  # not stdout, where the ranks' lines interleave
    json.dump(results, file)
"""


@needs_mpi
def test_ranks_that_disagree_on_an_argument_of_fit_or_evaluate_all_raise_naming_it(tmp_path):
    script = tmp_path / "disagree.py"
    script.write_text(DISAGREEMENT_SCRIPT)
    code, out, err = run([MPIEXEC, "-n", "2", sys.executable, str(script), str(tmp_path / "c.npz"),
                          str(tmp_path / "results")], timeout=120)
    assert code == 0, out + err
    results = [json.loads((tmp_path / f"results{rank}.json").read_text()) for rank in range(2)]
    assert results[0] == results[1]  # every rank raised the same errors, and trained to the same weights
    refused = {"train_data length": "train_data", "train_data example shape": "train_data", "epochs": "epochs",
               "batch_size": "batch_size", "seed": "seed", "seed None": "seed", "shuffle": "shuffle",
               "val_data given": "val_data", "val_data length": "val_data", "model": "model",
               "loss_fn": "loss_fn", "optimizer kind": "optimizer", "lr": "optimizer", "momentum": "optimizer",
               "scheduler": "scheduler"}
    for case, argument in refused.items():
        assert results[0][case].startswith(f"fit: the ranks disagree on {argument}"), (case, results[0][case])
        assert "every rank must call fit with the same arguments and data" in results[0][case]
    assert results[0]["evaluate data length"].startswith("evaluate: the ranks disagree on data")
    assert results[0]["evaluate model"].startswith("evaluate: the ranks disagree on model")
    assert results[0]["evaluate loss_fn"].startswith("evaluate: the ranks disagree on loss_fn")
    assert (tmp_path / "c.npz").exists()


@needs_mpi
@pytest.mark.parametrize("leaving", [
    "sys.exit(0)", "sys.exit(1)", "pass  # returns without calling fit",
    "alone = models.lenet5(); fit(alone, nn.CrossEntropyLoss(), optim.SGD(alone.parameters(), lr=0.1), "
    "(np.zeros((8, 1, 28, 28), np.float32), np.zeros(8, np.int64)), progress=False)  # without comm",
])
def test_a_rank_that_ends_its_program_early_ends_the_job_instead_of_hanging(leaving, tmp_path):
    script = tmp_path / "leave.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        import numpy as np
        from convpool import distributed, models, nn, optim
        from convpool.training import fit
        comm = distributed.init()
        if comm.rank == 1:
            {leaving}
        else:
            model = models.lenet5()
            fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1),
                (np.zeros((64, 1, 28, 28), np.float32), np.zeros(64, np.int64)), epochs=3, progress=False, comm=comm)
            print("rank 0 finished training", flush=True)
    """))
    code, out, err = run([MPIEXEC, "-n", "2", sys.executable, str(script)], timeout=60)
    assert code != 0, out + err
    assert "rank 0 finished training" not in out
    assert "RankLeft: convpool.distributed: rank 1 of 2 ended its program" in err, out + err
