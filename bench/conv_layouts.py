"""Times conv2d in both layouts against PyTorch (NCHW and channels_last) and ONNX Runtime, in the
same process with the same thread count:

    python bench/conv_layouts.py [--threads 2] [--rounds 3] [--repeats 7] [--filter TEXT]

For each layer of bench/compare_torch.py's convolution table and of ResNet-20 and ResNet-18: the
forward (with bias) and the backward (input, weight and bias gradients; weight and bias only for a
network's first layer), convpool in NCHW and in NHWC (layout="nhwc" on channels-last arrays),
PyTorch on contiguous and on channels_last tensors, ONNX Runtime (forward, one group, no bias;
`pip install onnx onnxruntime`). Each time is the median over the rounds, in which the contenders
take turns, of a median of `repeats` blocks of calls; the speed-up is the best peer's time over
convpool's NHWC time, the rate convpool's NHWC GFLOP/s (2 flops per multiply-add).
"""

import argparse

import numpy as np

import convpool as cp
import onnx_models
from compare_torch import CONV_SHAPES, FIRST_LAYERS
from timing import interleaved_medians

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # the table then has convpool's columns only
    torch = None

# (label, x shape, weight shape, stride, padding, groups): ResNet-20's layers at batch 128 and
# ResNet-18's at batch 16 (its stem is in CONV_SHAPES).
NETWORK_SHAPES = [
    ("ResNet-20 first layer", (128, 3, 32, 32), (16, 3, 3, 3), 1, 1, 1),
    ("ResNet-20 stage 1", (128, 16, 32, 32), (16, 16, 3, 3), 1, 1, 1),
    ("ResNet-20 stage 2 down", (128, 16, 32, 32), (32, 16, 3, 3), 2, 1, 1),
    ("ResNet-20 stage 2", (128, 32, 16, 16), (32, 32, 3, 3), 1, 1, 1),
    ("ResNet-20 stage 3", (128, 64, 8, 8), (64, 64, 3, 3), 1, 1, 1),
    ("ResNet-18 stage 2", (16, 128, 28, 28), (128, 128, 3, 3), 1, 1, 1),
    ("ResNet-18 stage 3 1x1 s2", (16, 128, 28, 28), (256, 128, 1, 1), 2, 0, 1),
    ("ResNet-18 stage 4", (16, 512, 7, 7), (512, 512, 3, 3), 1, 1, 1),
]
NETWORK_FIRST_LAYERS = {"ResNet-20 first layer"}


def contenders(x, weight, stride, padding, groups, first_layer, threads):
    """{pass: [convpool NCHW, convpool NHWC, torch NCHW, torch channels_last, ONNX Runtime]}
    callables (None where absent) and {pass: flops}."""
    bias = np.zeros(weight.shape[0], np.float32)
    args = dict(stride=stride, padding=padding, groups=groups)
    x_nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    out = cp.conv2d(x, weight, bias, **args)
    grad, grad_nhwc = np.ones_like(out), np.ones((out.shape[0],) + out.shape[2:] + out.shape[1:2], np.float32)
    needs = ("weight", "bias") if first_layer else ("input", "weight", "bias")
    forward_flops = 2 * out.size * weight[0].size
    calls = {
        "fwd": [lambda: cp.conv2d(x, weight, bias, **args),
                lambda: cp.conv2d(x_nhwc, weight, bias, layout="nhwc", **args)],
        "bwd": [lambda: cp.conv2d_backward(grad, x, weight, needs=needs, **args),
                lambda: cp.conv2d_backward(grad_nhwc, x_nhwc, weight, needs=needs, layout="nhwc", **args)],
    }
    for layout in (torch.contiguous_format, torch.channels_last) if torch is not None else ():
        tx = torch.from_numpy(x).contiguous(memory_format=layout).requires_grad_(not first_layer)
        tw = torch.from_numpy(weight).contiguous(memory_format=layout).requires_grad_(True)
        tb = torch.from_numpy(bias).requires_grad_(True)
        t_out = F.conv2d(tx, tw, tb, **args)
        t_grad = torch.ones_like(t_out)
        wrt = (tw, tb) if first_layer else (tx, tw, tb)
        calls["fwd"].append(lambda tx=tx, tw=tw, tb=tb: F.conv2d(tx.detach(), tw.detach(), tb.detach(), **args))
        calls["bwd"].append(lambda t_out=t_out, wrt=wrt, t_grad=t_grad: torch.autograd.grad(
            t_out, wrt, t_grad, retain_graph=True))
    if torch is None:
        calls["fwd"] += [None, None]
        calls["bwd"] += [None, None]
    ort = onnx_models.conv_runner(x, weight, stride, padding, threads) if groups == 1 else None
    calls["fwd"].append(ort)
    calls["bwd"].append(None)
    return calls, {"fwd": forward_flops, "bwd": (1 if first_layer else 2) * forward_flops}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--filter", default="", help="only layers whose label contains this")
    args = parser.parse_args()
    cp.set_num_threads(args.threads)
    if torch is not None:
        torch.set_num_threads(args.threads)
    info = cp.build_info()
    print(f"threads={args.threads}, rounds={args.rounds} x repeats={args.repeats} (medians), "
          f"torch {torch.__version__ if torch is not None else 'not installed'}, convpool ISA {info['isa']}")
    print("\n| layer | pass | convpool NCHW ms | convpool NHWC ms | PyTorch NCHW ms | PyTorch channels_last ms "
          "| ONNX Runtime ms | NHWC speed-up vs the best peer | NHWC GFLOP/s |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    rng = np.random.default_rng(0)
    for label, shape, weight_shape, stride, padding, groups in CONV_SHAPES + NETWORK_SHAPES:
        if args.filter not in label:
            continue
        x = rng.standard_normal(shape, dtype=np.float32)
        weight = rng.standard_normal(weight_shape, dtype=np.float32)
        first_layer = label in FIRST_LAYERS | NETWORK_FIRST_LAYERS
        calls, flops = contenders(x, weight, stride, padding, groups, first_layer, args.threads)
        for name, functions in calls.items():
            ours_nchw, ours, *peers = interleaved_medians(functions, args.rounds, args.repeats)
            present = [t for t in peers if t is not None]
            ratio = f"{min(present) / ours:.2f}x" if present else "-"
            columns = " | ".join(f"{t * 1e3:.3f}" if t is not None else "-" for t in peers)
            print(f"| {label} {shape}->{weight_shape[0]} | {name} | {ours_nchw * 1e3:.3f} | {ours * 1e3:.3f} | "
                  f"{columns} | {ratio} | {flops[name] / ours / 1e9:.0f} |", flush=True)


if __name__ == "__main__":
    main()
