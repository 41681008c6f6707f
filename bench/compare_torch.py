"""Times convpool against PyTorch in the same process with the same thread count.

    python bench/compare_torch.py [--threads 2] [--repeats 15]

Prints a Markdown table: median time per call of each, the speed-up (PyTorch time / convpool
time) and convpool's effective bandwidth, counting the bytes a kernel must move at least (inputs
read once, outputs written once; indices are int64).
"""

import argparse
import statistics
import time

import numpy as np

import convpool as cp

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # the table then has convpool's columns only
    torch = None

# (label, shape, kernel, stride, padding) from real networks.
SHAPES = [
    ("ResNet/VGG k3 s2 p1", (32, 64, 112, 112), 3, 2, 1),
    ("VGG k2 s2", (32, 64, 112, 112), 2, 2, 0),
    ("LeNet k2 s2", (64, 6, 28, 28), 2, 2, 0),
    ("large window k7 s1 p3", (8, 16, 64, 64), 7, 1, 3),
]


def median_seconds(fn, repeats, min_block_seconds=0.02):
    """Median over `repeats` blocks of the time of one call; short calls are batched in blocks."""
    fn()
    start = time.perf_counter()
    fn()
    once = max(time.perf_counter() - start, 1e-7)
    per_block = max(1, int(min_block_seconds / once))
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(per_block):
            fn()
        samples.append((time.perf_counter() - start) / per_block)
    return statistics.median(samples)


def cases(x, k, s, p):
    """For one shape: a list of (op, convpool callable, bytes moved) and a dict op -> PyTorch callable."""
    n_in = x.size * 4
    out, idx = cp.max_pool2d(x, k, s, p, return_indices=True)
    n_out = out.size * 4
    n_idx = idx.size * 8
    g = np.ones_like(out)
    # Lp and stochastic pooling take no padding: they pool the same x with padding 0.
    lp_out = cp.lp_pool2d(x, 2, k, s)
    lp_g = np.ones_like(lp_out)
    relu_x = np.maximum(x, 0)

    def max_train():
        _, i = cp.max_pool2d(x, k, s, p, return_indices=True)
        cp.max_pool2d_backward(g, x, i, k, s, p)

    def max_train_split():
        cp.max_pool2d(x, k, s, p)
        cp.max_pool2d_backward(g, x, None, k, s, p, tie_break="split")

    def avg_train():
        cp.avg_pool2d(x, k, s, p)
        cp.avg_pool2d_backward(g, x.shape, k, s, p)

    def lp_train():
        cp.lp_pool2d(x, 2, k, s)
        cp.lp_pool2d_backward(lp_g, x, 2, k, s)

    def stochastic_train():
        y, i = cp.stochastic_pool2d(relu_x, k, s, seed=1, return_indices=True)
        cp.stochastic_pool2d_backward(np.ones_like(y), relu_x, i, k, s)

    torch_cases = {}
    if torch is not None:
        tx = torch.from_numpy(x)
        txg = tx.clone().requires_grad_(True)
        tg = torch.from_numpy(g)
        tlp_g = torch.from_numpy(lp_g)

        def torch_train(pool, grad):
            def run():
                txg.grad = None
                pool(txg).backward(grad)
            return run

        torch_cases = {
            "max fwd": lambda: F.max_pool2d(tx, k, s, p),
            "max fwd+bwd": torch_train(lambda t: F.max_pool2d(t, k, s, p), tg),
            "avg fwd": lambda: F.avg_pool2d(tx, k, s, p),
            "avg fwd+bwd": torch_train(lambda t: F.avg_pool2d(t, k, s, p), tg),
            "lp2 fwd": lambda: F.lp_pool2d(tx, 2, k, s),
            "lp2 fwd+bwd": torch_train(lambda t: F.lp_pool2d(t, 2, k, s), tlp_g),
        }
    n_lp_out = lp_out.size * 4
    return [
        ("max fwd", lambda: cp.max_pool2d(x, k, s, p), n_in + n_out),
        ("max fwd+bwd", max_train, n_in + n_out + n_idx + (n_out + n_idx + n_in)),
        ("max fwd+bwd split", max_train_split, n_in + n_out + (n_out + n_in + n_in)),
        ("avg fwd", lambda: cp.avg_pool2d(x, k, s, p), n_in + n_out),
        ("avg fwd+bwd", avg_train, n_in + n_out + n_out + n_in),
        ("lp2 fwd", lambda: cp.lp_pool2d(x, 2, k, s), n_in + n_lp_out),
        ("lp2 fwd+bwd", lp_train, n_in + n_lp_out + (n_lp_out + 2 * n_in)),
        ("stochastic fwd+bwd", stochastic_train, n_in + n_out + n_idx + (n_out + n_idx + n_in)),
    ], torch_cases


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--filter", default="", help="only ops whose name contains this")
    args = parser.parse_args()

    cp.set_num_threads(args.threads)
    if torch is not None:
        torch.set_num_threads(args.threads)
    version = torch.__version__ if torch is not None else "not installed"
    print(f"threads={args.threads}, repeats={args.repeats} (medians), torch {version}\n")
    print("| op | shape | convpool ms | PyTorch ms | speed-up | convpool GB/s |")
    print("|---|---|---:|---:|---:|---:|")
    rng = np.random.default_rng(0)
    for label, shape, k, s, p in SHAPES:
        x = rng.standard_normal(shape, dtype=np.float32)
        ours, theirs = cases(x, k, s, p)
        for op, fn, nbytes in ours:
            if args.filter not in op:
                continue
            t_ours = median_seconds(fn, args.repeats)
            t_torch = median_seconds(theirs[op], args.repeats) if op in theirs else None
            ratio = f"{t_torch / t_ours:.1f}x" if t_torch else "-"
            torch_ms = f"{t_torch * 1e3:.3f}" if t_torch else "-"
            print(f"| {op} | {label} {shape} | {t_ours * 1e3:.3f} | {torch_ms} | {ratio} | {nbytes / t_ours / 1e9:.1f} |",
                  flush=True)


if __name__ == "__main__":
    main()
