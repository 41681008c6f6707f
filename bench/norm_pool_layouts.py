"""Times batch normalization and max pooling in both layouts against PyTorch (NCHW and
channels_last), in the same process with the same thread count:

    python bench/norm_pool_layouts.py [--threads 2] [--rounds 3] [--repeats 7]

For the batch norm and max pooling layers of ResNet-20 (batch 128), ResNet-18 (batch 16 and 32)
and VGG: the forward (training batch norm; max pooling with indices) and the backward (batch
norm's three gradients; max pooling's input gradient from the indices), convpool in NCHW and in
NHWC (layout="nhwc" on channels-last arrays), PyTorch on contiguous and on channels_last
tensors. Each time is the median over the rounds, in which the contenders take turns, of a
median of `repeats` blocks of calls; the speed-up is the faster PyTorch layout's time over
convpool's NHWC time, the rate convpool's NHWC GB/s (the arrays each pass reads and writes
once).
"""

import argparse

import numpy as np

import convpool as cp
from timing import interleaved_medians

try:
    import torch
except ImportError:  # the table then has convpool's columns only
    torch = None

# (label, x shape): batch norm layers.
BATCH_NORM_SHAPES = [
    ("ResNet-20 stage 1", (128, 16, 32, 32)),
    ("ResNet-20 stage 3", (128, 64, 8, 8)),
    ("ResNet-18 stem", (32, 64, 56, 56)),
    ("ResNet-18 stage 4", (16, 512, 7, 7)),
]
# (label, x shape, kernel, stride, padding): max pooling layers.
MAX_POOL_SHAPES = [
    ("ResNet-18 stem pool", (32, 64, 112, 112), 3, 2, 1),
    ("VGG-style 2x2, 16 channels", (128, 16, 32, 32), 2, 2, 0),
    ("VGG-style 2x2, 64 channels", (128, 64, 16, 16), 2, 2, 0),
    ("VGG-style 2x2, 512 channels", (16, 512, 14, 14), 2, 2, 0),
]


def nhwc(array):
    return np.ascontiguousarray(array.transpose(0, 2, 3, 1))


def batch_norm_contenders(shape, rng):
    """{pass: [convpool NCHW, convpool NHWC, torch NCHW, torch channels_last]} and {pass: bytes}."""
    x = rng.standard_normal(shape).astype(np.float32)
    grad = rng.standard_normal(shape).astype(np.float32)
    channels = shape[1]
    weight, bias = np.ones(channels, np.float32), np.zeros(channels, np.float32)
    _, mean, invstd = cp.batch_norm2d(x, weight, bias)
    x_l, grad_l = nhwc(x), nhwc(grad)
    forward = [lambda: cp.batch_norm2d(x, weight, bias), lambda: cp.batch_norm2d(x_l, weight, bias, layout="nhwc")]
    backward = [lambda: cp.batch_norm2d_backward(grad, x, weight, mean, invstd),
                lambda: cp.batch_norm2d_backward(grad_l, x_l, weight, mean, invstd, layout="nhwc")]
    if torch is not None:
        tw, tb, tm, ts = (torch.from_numpy(a) for a in (weight, bias, mean, invstd))
        for tx, tg in ((torch.from_numpy(x), torch.from_numpy(grad)),
                       (torch.from_numpy(x).contiguous(memory_format=torch.channels_last),
                        torch.from_numpy(grad).contiguous(memory_format=torch.channels_last))):
            forward.append(lambda tx=tx: torch.batch_norm(tx, tw, tb, None, None, True, 0.1, 1e-5, False))
            backward.append(lambda tx=tx, tg=tg: torch.ops.aten.native_batch_norm_backward(
                tg, tx, tw, None, None, tm, ts, True, 1e-5, [True, True, True]))
    size = x.nbytes
    # Training reads x twice and writes y; the backward reads grad and x twice and writes grad_input.
    return {"forward": forward, "backward": backward}, {"forward": 3 * size, "backward": 5 * size}


def max_pool_contenders(shape, kernel, stride, padding, rng):
    x = rng.standard_normal(shape).astype(np.float32)
    args = (kernel, stride, padding)
    out, indices = cp.max_pool2d(x, *args, return_indices=True)
    x_l = nhwc(x)
    _, indices_l = cp.max_pool2d(x_l, *args, return_indices=True, layout="nhwc")
    grad = rng.standard_normal(out.shape).astype(np.float32)
    grad_l = nhwc(grad)
    forward = [lambda: cp.max_pool2d(x, *args, return_indices=True),
               lambda: cp.max_pool2d(x_l, *args, return_indices=True, layout="nhwc")]
    backward = [lambda: cp.max_pool2d_backward(grad, x, indices, *args),
                lambda: cp.max_pool2d_backward(grad_l, x_l, indices_l, *args, layout="nhwc")]
    if torch is not None:
        for memory_format in (torch.contiguous_format, torch.channels_last):
            tx = torch.from_numpy(x).contiguous(memory_format=memory_format)
            tg = torch.from_numpy(grad).contiguous(memory_format=memory_format)
            _, ti = torch.nn.functional.max_pool2d(tx, *args, return_indices=True)
            forward.append(lambda tx=tx: torch.nn.functional.max_pool2d(tx, *args, return_indices=True))
            backward.append(lambda tx=tx, tg=tg, ti=ti: torch.ops.aten.max_pool2d_with_indices_backward(
                tg, tx, [kernel] * 2, [stride] * 2, [padding] * 2, [1, 1], False, ti))
    # The forward reads x and writes the values and their int64 indices; the backward reads the
    # gradient and the indices and writes grad_input.
    return ({"forward": forward, "backward": backward},
            {"forward": x.nbytes + 3 * out.nbytes, "backward": 3 * out.nbytes + x.nbytes})


def print_rows(label, contenders, sizes, args):
    for name, functions in contenders.items():
        times = interleaved_medians(functions, args.rounds, args.repeats)
        ours_nchw, ours = times[:2]
        peers = [t for t in times[2:] if t is not None]
        columns = " | ".join(f"{t * 1e3:.3f}" for t in times[2:]) or "- | -"
        ratio = f"{min(peers) / ours:.2f}x" if peers else "-"
        print(f"| {label} | {name} | {ours_nchw * 1e3:.3f} | {ours * 1e3:.3f} | {columns} | {ratio} | "
              f"{sizes[name] / ours / 1e9:.0f} |", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    cp.set_num_threads(args.threads)
    if torch is not None:
        torch.set_num_threads(args.threads)
    print(f"threads={args.threads}, rounds={args.rounds} x repeats={args.repeats} (medians), "
          f"convpool {cp.build_info()['isa']}")
    print("\n| layer | pass | convpool NCHW ms | convpool NHWC ms | PyTorch NCHW ms | PyTorch channels_last ms "
          "| NHWC speed-up vs the faster | NHWC GB/s |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    rng = np.random.default_rng(0)
    for label, shape in BATCH_NORM_SHAPES:
        print_rows(f"batch norm, {label} {shape}", *batch_norm_contenders(shape, rng), args)
    for label, shape, kernel, stride, padding in MAX_POOL_SHAPES:
        print_rows(f"max pool k{kernel} s{stride} p{padding}, {label} {shape}",
                   *max_pool_contenders(shape, kernel, stride, padding, rng), args)


if __name__ == "__main__":
    main()
