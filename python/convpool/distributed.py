"""Data-parallel training over MPI (mpi4py), with a reduction order that does not depend on MPI.

``init()`` returns the communicator ``fit`` and ``evaluate`` take as ``comm=``. Under ``mpiexec``
it wraps ``MPI.COMM_WORLD``; started any other way it is a single process, so the same script runs
anywhere. Gradients are summed by an allreduce written here with point-to-point messages, in an
order fixed by the process count alone: that is what makes two runs with the same count and seed
give bitwise identical weights (MPI's own allreduce may change its algorithm, and so its order,
with the message size).
"""

import os
import sys
import time

import numpy as np

from . import _core

# The environment variables MPI launchers set for each process they start, with the job's size.
_LAUNCHER_SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")

# Gradients are reduced through a buffer of at most this many bytes, so that the extra memory is
# bounded whatever the model's size.
BUCKET_BYTES = 16 << 20


class SingleProcess:
    """The communicator of a program that runs alone: every collective is the identity."""

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

    def abort(self, message):
        raise SystemExit(message)

    def __repr__(self):
        return "SingleProcess()"


class MPICommunicator:
    """``MPI.COMM_WORLD`` (or ``comm``) with the collectives training needs, each in a fixed order."""

    def __init__(self, comm):
        self.comm = comm
        self.rank, self.size = comm.Get_rank(), comm.Get_size()
        from mpi4py import MPI

        node = comm.Split_type(MPI.COMM_TYPE_SHARED)
        self.local_rank, self.local_size = node.Get_rank(), node.Get_size()
        node.Free()

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
                self.comm.Send(array, dest=self.rank + 1)
                self.comm.Recv(array, source=self.rank + 1)
                return array
            self.comm.Recv(scratch[:count], source=self.rank - 1)
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
            self.comm.Sendrecv(array[elements(sent, distance)], dest=partner, recvbuf=received, source=partner)
            array[kept_elements] += received
            first, distance = kept, distance // 2
        distance = 1
        while distance < powered:  # doubling: swap finished halves until every rank has all chunks
            partner = rank_of(virtual ^ distance)
            partner_first = first ^ distance
            self.comm.Sendrecv(array[elements(first, distance)], dest=partner,
                               recvbuf=array[elements(partner_first, distance)], source=partner)
            first, distance = min(first, partner_first), distance * 2
        if self.rank < 2 * folded:
            self.comm.Send(array, dest=self.rank - 1)
        return array

    def sum_small(self, values):
        """The float64 sum over the ranks of a short vector, added in rank order."""
        values = np.ascontiguousarray(values, dtype=np.float64)
        gathered = np.empty((self.size,) + values.shape, dtype=np.float64)
        self.comm.Allgather(values, gathered)
        return gathered.sum(axis=0)

    def broadcast_arrays(self, arrays, root=0):
        """Overwrite each contiguous array in place with root's."""
        for array in arrays:
            self.comm.Bcast(array.reshape(-1), root=root)

    def broadcast_object(self, value, root=0):
        return self.comm.bcast(value, root=root)

    def barrier(self):
        self.comm.Barrier()

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
    cores divided by the ranks running on it, and an exception that no code catches ends every
    rank (an MPI abort after the traceback is printed), so that no rank waits forever for one
    that died. Calling ``init`` again returns the same communicator.
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
    differ in length by at most one (the first parts are the longer)."""
    base, extra = divmod(count, comm.size)
    low = comm.rank * base + min(comm.rank, extra)
    return low, low + base + (comm.rank < extra)
