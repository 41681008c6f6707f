"""What a call costs above its kernel: convpool.torch operators on small tensors (argument reading,
the custom operator's dispatch), an nn layer's forward and backward on a small array (the saved
state of each call), and a whole LeNet-5 training step, in microseconds, medians of --repeats.

    python bench/python_overhead.py [--threads 2] [--repeats 9]

Run two builds in turn, interleaved, to compare them: these rows move by a few microseconds.
"""

import argparse
import statistics
import timeit

import numpy as np

import convpool as cp
from convpool import nn

try:
    import torch
    import convpool.torch as cpt
except ImportError:  # the convpool.torch rows are then left out
    torch = None


def median_microseconds(call, number, repeats):
    call()
    return statistics.median(timeit.repeat(call, number=number, repeat=repeats)) / number * 1e6


def rows():
    if torch is not None:
        x, w, row = torch.randn(8, 16, 32, 32), torch.randn(16, 16, 3, 3), torch.randn(8, 16, 64)
        yield "convpool.torch.max_pool2d (8, 16, 32, 32), 3, 2, 1", 200, lambda: cpt.max_pool2d(x, 3, 2, 1)
        yield "convpool.torch.avg_pool2d (8, 16, 32, 32), 2", 200, lambda: cpt.avg_pool2d(x, 2)
        yield "convpool.torch.max_pool1d (8, 16, 64), 2", 200, lambda: cpt.max_pool1d(row, 2)
        yield "convpool.torch.conv2d (8, 16, 32, 32), 16x3x3, padding 1", 200, lambda: cpt.conv2d(x, w, padding=1)

    relu = nn.ReLU()
    small = np.random.default_rng(0).standard_normal((64, 100)).astype(np.float32)

    def relu_step():
        relu(small)
        relu.backward(small)

    yield "nn.ReLU forward + backward (64, 100)", 200, relu_step

    cp.manual_seed(0)
    model, loss_fn = cp.models.lenet5(), nn.CrossEntropyLoss()
    images = np.random.default_rng(1).standard_normal((64, 1, 28, 28)).astype(np.float32)
    labels = np.random.default_rng(2).integers(0, 10, 64)

    def lenet_step():
        loss_fn(model(images), labels)
        model.zero_grad()
        model.backward(loss_fn.backward(), need_input_grad=False)

    yield "LeNet-5 step, batch 64 (forward, loss, backward)", 20, lenet_step


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    cp.set_num_threads(args.threads)
    if torch is not None:
        torch.set_num_threads(args.threads)
    print(f"threads={args.threads}, medians of {args.repeats}, convpool ISA {cp.build_info()['isa']}")
    print("\n| call | µs |\n|---|---:|")
    for label, number, call in rows():
        print(f"| {label} | {median_microseconds(call, number, args.repeats):.1f} |", flush=True)


if __name__ == "__main__":
    main()
