"""Data-parallel training over MPI (mpi4py), with a reduction order that does not depend on MPI.

``init()`` returns the communicator ``fit`` and ``evaluate`` take as ``comm=``. Under ``mpiexec``
it wraps ``MPI.COMM_WORLD``; started any other way it is a single process, so the same script runs
anywhere. Gradients are summed by an allreduce written here with point-to-point messages, in an
order fixed by the process count alone: that is what makes two runs with the same count and seed
give bitwise identical weights (MPI's own allreduce may change its algorithm, and so its order,
with the message size).

No rank waits forever for another. ``fit`` and ``evaluate`` start by comparing what every rank was
asked to do (``agree``), and every rank raises the same ValueError where they differ. A rank whose
program ends (it returns, or calls ``sys.exit``) tells the others as it exits; a rank waiting in one
of this module's exchanges then raises ``RankLeft``, and an exception no code catches ends the
whole job (``init``).
"""

import atexit
import os
import pickle
import sys
import time

import numpy as np

from . import _core

__all__ = ["BUCKET_BYTES", "GradientReducer", "MPICommunicator", "RankLeft", "SingleProcess", "average_buffers",
           "broadcast_training_state", "init", "shard"]

# The environment variables MPI launchers set for each process they start, with the job's size.
_LAUNCHER_SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")

# Gradients are reduced through a buffer of at most this many bytes, so that the extra memory is
# bounded whatever the model's size.
BUCKET_BYTES = 16 << 20


class RankLeft(RuntimeError):
    """Another rank's program ended while this rank waited for it in an exchange."""


class SingleProcess:
    """The communicator of a program that runs alone: every collective is the identity.

    Example:
        >>> cp.distributed.SingleProcess().sum_small([1.0, 2.0])
        array([1., 2.])
    """

    rank, size, local_rank, local_size = 0, 1, 0, 1

    def sum_in_place(self, array, scratch=None):
        return array

    def sum_small(self, values):
        return np.asarray(values, dtype=np.float64)

    def broadcast_arrays(self, arrays, root=0):
        pass

    def broadcast_object(self, value, root=0):
        return value

    def barrier(self):
        pass

    def agree(self, function_name, facts):
        pass

    def abort(self, message):
        raise SystemExit(message)

    def __repr__(self):
        return "SingleProcess()"


# The tag of the message a rank sends every other rank as its program ends (on a communicator of
# its own, so that it never meets the exchanges' messages).
_LEAVING_TAG = 1


class MPICommunicator:
    """``MPI.COMM_WORLD`` (or ``comm``) with the collectives training needs, each in a fixed order."""

    def __init__(self, comm):
        self.comm = comm
        self.rank, self.size = comm.Get_rank(), comm.Get_size()
        from mpi4py import MPI

        self._mpi = MPI
        node = comm.Split_type(MPI.COMM_TYPE_SHARED)
        self.local_rank, self.local_size = node.Get_rank(), node.Get_size()
        node.Free()
        self._notices = comm.Dup()
        self._left = False

    def _wait(self, requests):
        """Wait for the requests while watching for a rank whose program ended: MPI's own waits
        would block forever on a rank that left. Polls at full speed for 10 ms, as MPI's own waits
        do (a rank waits that long for a slower one's backward pass, and a wake-up from a sleep
        would delay every exchange), then every 0.1 ms."""
        MPI = self._mpi
        status = MPI.Status()
        polls, started = 0, time.perf_counter()
        while not MPI.Request.Testall(requests):
            if self._notices.Iprobe(source=MPI.ANY_SOURCE, tag=_LEAVING_TAG, status=status):
                raise RankLeft(f"convpool.distributed: rank {status.Get_source()} of {self.size} ended its program "
                               f"(it returned or called sys.exit) while rank {self.rank} waited for it in an "
                               "exchange of fit or evaluate: every rank must make the same calls")
            polls += 1
            if polls % 256 == 0 and time.perf_counter() - started > 0.01:
                time.sleep(1e-4)

    def _exchange(self, array, partner, received):
        """Send ``array`` to ``partner`` and receive its message into ``received``."""
        self._wait([self.comm.Isend(array, dest=partner), self.comm.Irecv(received, source=partner)])

    def sum_in_place(self, array, scratch=None):
        """Replace the 1-D ``array`` by its sum over the ranks, the same bits on every rank.

        Recursive halving then doubling (Rabenseifner's allreduce): 2 log2 N messages carrying
        2 (N - 1) / N of the array, where a ring needs 2 (N - 1) messages. Every element is added
        up along one binary tree fixed by the rank count alone, whatever the array's length or the
        bucket it travels in. With N not a power of two, the first 2 (N - p) ranks (p the largest
        power of two below N) first fold pairwise into p. ``scratch`` is the receive buffer (as long
        as ``array``).
        """
        count = array.shape[0]
        if scratch is None or scratch.shape[0] < count or scratch.dtype != array.dtype:
            scratch = np.empty(count, dtype=array.dtype)
        powered = 1 << (self.size.bit_length() - 1)
        folded = self.size - powered  # pairs (2i, 2i + 1) that fold into rank 2i + 1
        if self.rank < 2 * folded:
            if self.rank % 2 == 0:
                self._wait([self.comm.Isend(array, dest=self.rank + 1)])
                self._wait([self.comm.Irecv(array, source=self.rank + 1)])
                return array
            self._wait([self.comm.Irecv(scratch[:count], source=self.rank - 1)])
            array += scratch[:count]
        virtual = self.rank // 2 if self.rank < 2 * folded else self.rank - folded
        base, extra = divmod(count, powered)

        def elements(first_chunk, chunks):
            low = first_chunk * base + min(first_chunk, extra)
            high = (first_chunk + chunks) * base + min(first_chunk + chunks, extra)
            return slice(low, high)

        def rank_of(other):
            return 2 * other + 1 if other < folded else other + folded

        first, distance = 0, powered // 2
        while distance:  # halving: keep the half of the current chunks that my bit selects
            partner = rank_of(virtual ^ distance)
            upper = bool(virtual & distance)
            kept, sent = (first + distance, first) if upper else (first, first + distance)
            kept_elements = elements(kept, distance)
            received = scratch[:kept_elements.stop - kept_elements.start]
            self._exchange(array[elements(sent, distance)], partner, received)
            array[kept_elements] += received
            first, distance = kept, distance // 2
        distance = 1
        while distance < powered:  # doubling: swap finished halves until every rank has all chunks
            partner = rank_of(virtual ^ distance)
            partner_first = first ^ distance
            self._exchange(array[elements(first, distance)], partner, array[elements(partner_first, distance)])
            first, distance = min(first, partner_first), distance * 2
        if self.rank < 2 * folded:
            self._wait([self.comm.Isend(array, dest=self.rank - 1)])
        return array

    def sum_small(self, values):
        """The float64 sum over the ranks of a short vector, added in rank order."""
        values = np.ascontiguousarray(values, dtype=np.float64)
        gathered = np.empty((self.size,) + values.shape, dtype=np.float64)
        self._wait([self.comm.Iallgather(values, gathered)])
        return gathered.sum(axis=0)

    def broadcast_arrays(self, arrays, root=0):
        """Overwrite each contiguous array in place with root's."""
        for array in arrays:
            self._wait([self.comm.Ibcast(array.reshape(-1), root=root)])

    def broadcast_object(self, value, root=0):
        message = np.frombuffer(pickle.dumps(value), np.uint8) if self.rank == root else None
        length = np.array([0 if message is None else message.size], np.int64)
        self._wait([self.comm.Ibcast(length, root=root)])
        if message is None:
            message = np.empty(int(length[0]), np.uint8)
        self._wait([self.comm.Ibcast(message, root=root)])
        return value if self.rank == root else pickle.loads(message.tobytes())

    def gather_objects(self, value):
        """Every rank's ``value``, in rank order, on every rank."""
        message = np.frombuffer(pickle.dumps(value), np.uint8)
        lengths = np.empty(self.size, np.int64)
        self._wait([self.comm.Iallgather(np.array([message.size], np.int64), lengths)])
        received = np.empty(int(lengths.sum()), np.uint8)
        self._wait([self.comm.Iallgatherv(message, [received, lengths])])
        ends = np.cumsum(lengths)
        return [pickle.loads(received[end - length:end].tobytes()) for end, length in zip(ends, lengths)]

    def agree(self, function_name, facts):
        """Raise the same ValueError on every rank when the ranks' ``facts`` (a dict: what this rank
        was asked to do) differ, naming each entry that differs and its value on each rank."""
        everyone = self.gather_objects(facts)
        differing = [name for name in facts if any(other.get(name) != everyone[0].get(name) for other in everyone)]
        if differing:
            details = "; ".join(f"{name}: " + ", ".join(f"rank {rank} {other.get(name)!r}"
                                                        for rank, other in enumerate(everyone))
                                for name in differing)
            raise ValueError(f"{function_name}: the ranks disagree on {', '.join(differing)} ({details}); every rank "
                             f"must call {function_name} with the same arguments and data")

    def barrier(self):
        self._wait([self.comm.Ibarrier()])

    def leave(self):
        """Tell every other rank that this rank's program is ending, then wait until each has said
        the same, as their programs end too: a rank still inside an exchange raises RankLeft
        instead of waiting forever (and ends the job, init). Called at exit; once."""
        if self._left:
            return
        self._left = True
        others = [rank for rank in range(self.size) if rank != self.rank]
        empty = np.empty(0, np.uint8)
        sent = [self._notices.Isend(empty, dest=rank, tag=_LEAVING_TAG) for rank in others]
        received = [self._notices.Irecv(np.empty(0, np.uint8), source=rank, tag=_LEAVING_TAG) for rank in others]
        self._mpi.Request.Waitall(sent + received)

    def abort(self, message):
        """End every rank of the job, after printing ``message`` on this one."""
        sys.stderr.write(f"{message}\n")
        sys.stderr.flush()
        # The abort has mpiexec kill every process, its output forwarders included; a moment first
        # lets them pass on what this rank just printed.
        time.sleep(0.5)
        self.comm.Abort(1)

    def __repr__(self):
        return f"MPICommunicator(rank={self.rank}, size={self.size}, local_rank={self.local_rank})"


def _launched_size():
    """The job size an MPI launcher announced in the environment, or None when none started us."""
    for name in _LAUNCHER_SIZE_VARIABLES:
        if name in os.environ:
            return int(os.environ[name])
    return None


_world = None


def init(threads=None):
    """The communicator of this process: every rank of the job under ``mpiexec``, else one process.

    Under ``mpiexec`` each rank's kernel threads are set to ``threads``, by default this node's
    cores divided by the ranks running on it; an exception that no code catches ends every rank
    (an MPI abort after the traceback is printed), so that no rank waits forever for one that
    died; and a rank whose program ends tells the others (``MPICommunicator.leave``), so that one
    still waiting for it in ``fit`` or ``evaluate`` raises ``RankLeft``, which ends the job the same
    way. Calling ``init`` again returns the same communicator.

    Example:
        >>> comm = cp.distributed.init()  # started without mpiexec: one process
        >>> comm.rank, comm.size
        (0, 1)
    """
    global _world
    if _world is not None:
        return _world
    launched = _launched_size()
    if launched is None or launched == 1:
        _world = SingleProcess()
        return _world
    try:
        from mpi4py import MPI
    except ImportError as error:
        raise ImportError(
            f"convpool.distributed: this program was started by an MPI launcher with {launched} processes, "
            "but mpi4py is not installed; install the 'mpi' extra: pip install \"convpool[mpi]\"") from error
    world = MPICommunicator(MPI.COMM_WORLD)
    if threads is None:
        threads = max(1, len(os.sched_getaffinity(0)) // world.local_size)
    _core.set_num_threads(threads)
    _abort_job_on_uncaught_exception(world)
    # Registered after mpi4py's own exit handler (MPI_Finalize), so it runs before it.
    atexit.register(world.leave)
    _world = world
    return world


def _abort_job_on_uncaught_exception(world):
    previous = sys.excepthook

    def abort(kind, value, traceback):
        previous(kind, value, traceback)
        world.abort(f"convpool.distributed: rank {world.rank} of {world.size} failed with {kind.__name__}: "
                    f"{value}; ending every rank")

    sys.excepthook = abort


def broadcast_training_state(comm, model, optimizer=None, root=0):
    """Make every rank's parameters, buffers (and optimizer state) root's."""
    if comm.size == 1:
        return
    comm.broadcast_arrays([parameter.data for parameter in model.parameters()], root)
    comm.broadcast_arrays([buffer for _, buffer in model.named_buffers()], root)
    if optimizer is not None:
        state = comm.broadcast_object(optimizer.state_dict() if comm.rank == root else None, root)
        if comm.rank != root:
            optimizer.load_state_dict(state)


def average_buffers(comm, model, root=0):
    """Floating-point buffers (BatchNorm's running statistics) averaged over the ranks, the
    others (counters) taken from root, so that every rank evaluates the same model."""
    if comm.size == 1:
        return
    buffers = [buffer for _, buffer in model.named_buffers()]
    averaged = [buffer for buffer in buffers if buffer.dtype.kind == "f"]
    for array in averaged:
        flat = array.reshape(-1)
        comm.sum_in_place(flat)
        flat /= comm.size
    comm.broadcast_arrays([buffer for buffer in buffers if buffer.dtype.kind != "f"], root)


class GradientReducer:
    """Sums every parameter's gradient over the ranks through one reused bucket per dtype.

    Each rank scales its own gradients by its ``weight`` (its share of the global batch) while
    copying them into the bucket, so the sum is the gradient of the whole batch. A parameter no
    rank's backward reached keeps ``grad = None`` everywhere.
    """

    def __init__(self, comm, parameters, bucket_bytes=BUCKET_BYTES):
        self.comm = comm
        self.parameters = list(parameters)
        self.bucket_bytes = bucket_bytes
        self._buckets = {}

    def _bucket(self, dtype, needed):
        elements = max(1, min(needed, self.bucket_bytes // dtype.itemsize))
        if dtype not in self._buckets or self._buckets[dtype][0].shape[0] < elements:
            self._buckets[dtype] = (np.empty(elements, dtype=dtype), np.empty(elements, dtype=dtype))
        return self._buckets[dtype]

    def reached(self):
        """1 for each parameter this rank's backward reached, else 0: summed over the ranks, what
        ``reduce`` takes."""
        return [float(parameter.grad is not None) for parameter in self.parameters]

    def reduce(self, weight, reached):
        by_dtype = {}
        for parameter, count in zip(self.parameters, reached):
            if count == 0:
                continue
            if parameter.grad is None:
                parameter.grad = np.zeros_like(parameter.data)
            by_dtype.setdefault(parameter.grad.dtype, []).append(parameter)
        for dtype, parameters in by_dtype.items():
            self._reduce_stream(dtype, [parameter.grad.reshape(-1) for parameter in parameters], weight)

    def _reduce_stream(self, dtype, gradients, weight):
        """The gradients, seen as one concatenated vector, reduced one bucket-sized piece at a time."""
        total = sum(gradient.shape[0] for gradient in gradients)
        bucket, scratch = self._bucket(dtype, total)
        capacity = bucket.shape[0]
        for start in range(0, total, capacity):
            length = min(capacity, total - start)
            pieces = list(_pieces(gradients, start, length))
            for gradient, low, high, offset in pieces:
                np.multiply(gradient[low:high], weight, out=bucket[offset:offset + high - low])
            self.comm.sum_in_place(bucket[:length], scratch)
            for gradient, low, high, offset in pieces:
                gradient[low:high] = bucket[offset:offset + high - low]


def _pieces(arrays, start, length):
    """(array, low, high, offset in the window) for the parts of the concatenated ``arrays`` that
    fall in the window [start, start + length)."""
    position = 0
    for array in arrays:
        low, high = max(start - position, 0), min(start + length - position, array.shape[0])
        if low < high:
            yield array, low, high, position + low - start
        position += array.shape[0]
        if position >= start + length:
            return


def shard(count, comm):
    """This rank's [low, high) of ``count`` items cut into ``comm.size`` contiguous parts that
    differ in length by at most one (the first parts are the longer).

    Example:
        >>> [cp.distributed.shard(10, comm) for comm in (type("Rank", (), {"rank": r, "size": 3}) for r in range(3))]
        [(0, 4), (4, 7), (7, 10)]
    """
    base, extra = divmod(count, comm.size)
    low = comm.rank * base + min(comm.rank, extra)
    return low, low + base + (comm.rank < extra)
