"""The seed material's benchmark: 5000 forward+backward passes of 2x2 stride-2 max pooling on a
(64, 3, 28, 28) float64 batch, in seconds, for convpool (new arrays each pass, and out= buffers
allocated once) and (when installed) PyTorch, with the same thread count, best of --rounds.

    python bench/seed_benchmark.py [--threads 2] [--rounds 5]
"""

import argparse
import time

import numpy as np

import convpool as cp

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    torch = None

PASSES = 5000


def convpool_passes(x, grad):
    start = time.perf_counter()
    for _ in range(PASSES):
        _, indices = cp.max_pool2d(x, 2, return_indices=True)
        cp.max_pool2d_backward(grad, x, indices, 2)
    return time.perf_counter() - start


def convpool_passes_into_buffers(x, grad):
    """The same passes writing into arrays allocated once (out=)."""
    values, indices = np.empty(grad.shape), np.empty(grad.shape, np.int64)
    grad_input = np.empty_like(x)
    start = time.perf_counter()
    for _ in range(PASSES):
        cp.max_pool2d(x, 2, return_indices=True, out=(values, indices))
        cp.max_pool2d_backward(grad, x, indices, 2, out=grad_input)
    return time.perf_counter() - start


def torch_passes(x, grad):
    tx, tg = torch.from_numpy(x).requires_grad_(True), torch.from_numpy(grad)
    start = time.perf_counter()
    for _ in range(PASSES):
        tx.grad = None
        F.max_pool2d(tx, 2).backward(tg)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    cp.set_num_threads(args.threads)
    if torch is not None:
        torch.set_num_threads(args.threads)
    x = np.random.default_rng(0).standard_normal((64, 3, 28, 28))
    grad = np.ones((64, 3, 14, 14))
    ours, buffered, theirs = [], [], []
    for _ in range(args.rounds):  # interleaved, so that a busy neighbour slows all alike
        ours.append(convpool_passes(x, grad))
        buffered.append(convpool_passes_into_buffers(x, grad))
        if torch is not None:
            theirs.append(torch_passes(x, grad))
    print(f"threads={args.threads}, {PASSES} forward+backward passes, best of {args.rounds} rounds")
    print(f"convpool: {min(ours):.3f} s (rounds: {', '.join(f'{t:.3f}' for t in ours)})")
    print(f"convpool with out= buffers: {min(buffered):.3f} s (rounds: {', '.join(f'{t:.3f}' for t in buffered)})")
    if theirs:
        print(f"PyTorch:  {min(theirs):.3f} s (rounds: {', '.join(f'{t:.3f}' for t in theirs)}); "
              f"speed-up {min(theirs) / min(ours):.1f}x")


if __name__ == "__main__":
    main()
