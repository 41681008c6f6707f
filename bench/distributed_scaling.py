"""Data-parallel training on this machine, and a model of how it scales to many machines.

Measures, for LeNet-5 (bundled MNIST) and ResNet-20 (CIFAR-shaped random images: speed only),
training in 1 process x 2 threads against ``mpiexec -n 2`` processes x 1 thread with the same
global batch: images/s and the share of the step spent exchanging gradients. Rounds are
interleaved and medians reported. Then, from the single-process step time at a fixed per-rank
batch and the model's gradient bytes, predicts the step time and efficiency of N machines:

    step = compute + 2 log2 N latency + 2 (N - 1) / N gradient bytes / bandwidth + totals exchange

    mpiexec must be on PATH (pip install "convpool[mpi]").
    python bench/distributed_scaling.py [--rounds 3]
"""

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys

import numpy as np

# (global batch, images per timed epoch) of each measured model.
MODELS = {"lenet5": (64, 6400), "resnet20": (128, 1280)}

# Links of the scaling model: (name, bytes per second, per-message latency in seconds). The
# latencies are typical figures assumed for the model, not measured here: TCP over 10 Gb/s
# Ethernet, and RDMA over 100 Gb/s InfiniBand or RoCE.
LINKS = (("10 Gb/s", 10e9 / 8, 30e-6), ("100 Gb/s", 100e9 / 8, 3e-6))
NODE_COUNTS = (8, 64, 256)


def build(name):
    from convpool import models

    return models.lenet5() if name == "lenet5" else models.resnet20()


def data(name, count):
    if name == "lenet5":
        from convpool.datasets import load_mnist

        (images, labels), _ = load_mnist()
        return images[:count], labels[:count]
    generator = np.random.default_rng(0)
    return (generator.standard_normal((count, 3, 32, 32), dtype=np.float32),
            generator.integers(0, 10, count).astype(np.int64))


def worker(name):
    """One training run (a warm-up epoch, then a timed one); rank 0 prints a JSON line."""
    import convpool as cp
    from convpool import distributed, nn, optim
    from convpool.training import fit

    comm = distributed.init()
    cp.manual_seed(0)
    global_batch, count = MODELS[name]
    model = build(name)
    optimizer = optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    history = fit(model, nn.CrossEntropyLoss(), optimizer, data(name, count), epochs=2,
                  batch_size=global_batch // comm.size, progress=False, comm=comm)
    seconds = count / history.images_per_second[-1]
    if comm.rank == 0:
        print(json.dumps({"images_per_second": history.images_per_second[-1],
                          "communication_share": history.communication_seconds[-1] / seconds,
                          "threads": cp.get_num_threads(), "processes": comm.size}), flush=True)


def run_worker(name, processes):
    command = [sys.executable, __file__, "--worker", name]
    environment = dict(os.environ)
    if processes > 1:
        command = [shutil.which("mpiexec"), "-n", str(processes)] + command
    else:
        for variable in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE"):
            environment.pop(variable, None)
    output = subprocess.run(command, check=True, capture_output=True, text=True, env=environment).stdout
    return json.loads(output.strip().splitlines()[-1])


def backward_seconds(name, batch, repeats=5):
    """Median seconds of a single-process backward pass at ``batch`` images with all of this
    machine's cores: the time an exchange could hide behind."""
    import time

    from convpool import nn

    model = build(name)
    images, labels = data(name, batch)
    loss = nn.CrossEntropyLoss()
    seconds = []
    for _ in range(repeats + 1):
        loss(model(images), labels)
        started = time.perf_counter()
        model.zero_grad()
        model.backward(loss.backward(), need_input_grad=False)
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds[1:]), model.parameters()


def exchange_seconds(nodes, gradient_bytes, parameter_arrays, bandwidth, latency, ring=False):
    """Seconds per step of the exchanges between ``nodes`` ranks: the gradients' allreduce, and the
    per-step float64 totals (loss, counts, which parameters were reached) that every rank gathers,
    which MPI does in about log2 N rounds. convpool's allreduce (recursive halving and doubling)
    sends 2 log2 p messages carrying 2 (p - 1) / p of the gradients, p the largest power of two
    <= N, plus the whole gradients twice when N is not a power of two; a ring would send 2 (N - 1)
    messages of 1 / N of them."""
    if ring:
        allreduce = 2 * (nodes - 1) * (latency + gradient_bytes / nodes / bandwidth)
    else:
        powered = 1 << (nodes.bit_length() - 1)
        folded = nodes != powered
        messages = 2 * int(math.log2(powered)) + 2 * folded
        allreduce = messages * latency + (2 * (powered - 1) / powered + 2 * folded) * gradient_bytes / bandwidth
    small = math.ceil(math.log2(nodes)) * latency + nodes * (3 + parameter_arrays) * 8 / bandwidth
    return allreduce + small


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--worker", choices=tuple(MODELS), help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.worker:
        return worker(arguments.worker)
    if shutil.which("mpiexec") is None:
        sys.exit("distributed_scaling.py: needs mpiexec (pip install \"convpool[mpi]\")")

    print("## This machine: same global batch, 1 process x 2 threads against 2 processes x 1 thread")
    print(f"medians of {arguments.rounds} interleaved rounds; 'exchange' is the share of the timed epoch "
          "spent in the gradient and totals exchange, waiting for the other rank included\n")
    print("| model | global batch | 1 x 2 images/s | 2 x 1 images/s | 2 x 1 / 1 x 2 | exchange share |")
    print("|---|---:|---:|---:|---:|---:|")
    single_rate = {}
    for name, (global_batch, _) in MODELS.items():
        single, double = [], []
        for _ in range(arguments.rounds):
            single.append(run_worker(name, 1))
            double.append(run_worker(name, 2))
        one = statistics.median(result["images_per_second"] for result in single)
        two = statistics.median(result["images_per_second"] for result in double)
        share = statistics.median(result["communication_share"] for result in double)
        single_rate[name] = one
        print(f"| {name} | {global_batch} | {one:,.0f} | {two:,.0f} | {two / one:.2f}x | {share:.1%} |")

    import convpool as cp

    print(f"\n## Scaling model: one process per machine with {cp.get_num_threads()} threads, the per-rank "
          "batch fixed")
    print("compute = this machine's training step (1 x 2 above); link latency assumed (10 Gb/s: 30 us TCP, "
          "100 Gb/s: 3 us RDMA); efficiency = compute / step; 'overlap' = efficiency if the exchange ran "
          "hidden behind the backward pass, bucket by bucket; 'ring' = efficiency with a ring allreduce\n")
    print("| model | per-rank batch | compute ms (backward ms) | gradient MB | link | N | exchange ms | "
          "efficiency | with overlap | ring |")
    print("|---|---:|---:|---:|---|---:|---:|---:|---:|---:|")
    for name, (global_batch, _) in MODELS.items():
        compute = global_batch / single_rate[name]
        backward, parameters = backward_seconds(name, global_batch)
        gradient_bytes = sum(parameter.data.nbytes for parameter in parameters)
        for link, bandwidth, latency in LINKS:
            for nodes in NODE_COUNTS:
                exchange = exchange_seconds(nodes, gradient_bytes, len(parameters), bandwidth, latency)
                ring = exchange_seconds(nodes, gradient_bytes, len(parameters), bandwidth, latency, ring=True)
                overlapped = compute + max(exchange - backward, 0.0)
                print(f"| {name} | {global_batch} | {compute * 1e3:.1f} ({backward * 1e3:.1f}) | "
                      f"{gradient_bytes / 1e6:.2f} | {link} | {nodes} | {exchange * 1e3:.2f} | "
                      f"{compute / (compute + exchange):.1%} | {compute / overlapped:.1%} | "
                      f"{compute / (compute + ring):.1%} |")


if __name__ == "__main__":
    main()
