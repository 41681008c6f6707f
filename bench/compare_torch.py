"""Times convpool against PyTorch in the same process with the same thread count.

    python bench/compare_torch.py [--threads 2] [--repeats 15] [--suite pool|conv|norm|train|inference|torch|all]

Prints Markdown tables: median time per call of each, the speed-up (PyTorch time / convpool
time) and convpool's rate. Pooling is rated in GB/s, counting the bytes a kernel must move at
least (inputs read once, outputs written once; indices are int64); convolution in GFLOP/s
(2 flops per multiply-add; the backward computes the input, weight and bias gradients, twice
the forward's flops, except for a network's first layer, which needs no input gradient); batch
normalization in GB/s against a copy of the same bytes (NumPy's copyto) and against PyTorch in
both its NCHW and its channels_last layout;
training in images/s (LeNet-5 on the bundled MNIST, batch 64, SGD with momentum: forward,
cross-entropy, backward and update, the whole step); inference (ResNet-18's convolutions at
batch 1 and 4, its whole forward at batch 1 and 8) against PyTorch in both layouts and ONNX
Runtime (bench/onnx_models.py; `pip install onnx onnxruntime`), in ms.
"""

import argparse
import copy
import statistics
import time

import numpy as np

import convpool as cp
from timing import interleaved_medians, median_seconds, peer_times, print_peer_row

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # the table then has convpool's columns only
    torch = None

# (label, shape, kernel, stride, padding) from real networks.
POOL_SHAPES = [
    ("ResNet/VGG k3 s2 p1", (32, 64, 112, 112), 3, 2, 1),
    ("VGG k2 s2", (32, 64, 112, 112), 2, 2, 0),
    ("LeNet k2 s2", (64, 6, 28, 28), 2, 2, 0),
    ("large window k7 s1 p3", (8, 16, 64, 64), 7, 1, 3),
]

# (label, x shape, weight shape, stride, padding, groups) from real networks. A network's first
# layer needs no input gradient: there "bwd" is the weight and bias gradients, in both libraries.
CONV_SHAPES = [
    ("ResNet 3x3", (16, 64, 56, 56), (64, 64, 3, 3), 1, 1, 1),
    ("CIFAR 3x3", (64, 32, 32, 32), (64, 32, 3, 3), 1, 1, 1),
    ("1x1", (16, 256, 28, 28), (64, 256, 1, 1), 1, 0, 1),
    ("LeNet conv1", (64, 1, 28, 28), (6, 1, 5, 5), 1, 0, 1),
    ("LeNet conv2", (64, 6, 12, 12), (16, 6, 5, 5), 1, 0, 1),
    ("CIFAR first layer", (64, 3, 32, 32), (32, 3, 3, 3), 1, 1, 1),
    ("depthwise 3x3", (16, 128, 28, 28), (128, 1, 3, 3), 1, 1, 128),
    ("depthwise 3x3 s2", (16, 128, 56, 56), (128, 1, 3, 3), 2, 1, 128),
    ("ResNet stem 7x7 s2", (8, 3, 224, 224), (64, 3, 7, 7), 2, 3, 1),
    ("ResNet 3x3 s2", (16, 64, 56, 56), (128, 64, 3, 3), 2, 1, 1),
]
FIRST_LAYERS = {"LeNet conv1", "CIFAR first layer", "ResNet stem 7x7 s2"}

# (label, x shape) of batch normalization layers.
NORM_SHAPES = [
    ("CIFAR VGG stage 1", (64, 64, 32, 32)),
    ("ResNet-20 stage 1", (128, 16, 32, 32)),
    ("ImageNet stage 4, batch 8", (8, 256, 14, 14)),
]


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

        t_out, t_idx = F.max_pool2d(tx, k, s, p, return_indices=True)
        t_leaf = t_out.clone().requires_grad_(True)

        def torch_unpool_train():
            t_leaf.grad = None
            F.max_unpool2d(t_leaf, t_idx, k, s, p, output_size=x.shape[-2:]).backward(tx)

        torch_cases = {
            "unpool fwd": lambda: F.max_unpool2d(t_out, t_idx, k, s, p, output_size=x.shape[-2:]),
            "unpool fwd+bwd": torch_unpool_train,
            "max fwd": lambda: F.max_pool2d(tx, k, s, p),
            "max fwd+bwd": torch_train(lambda t: F.max_pool2d(t, k, s, p), tg),
            "avg fwd": lambda: F.avg_pool2d(tx, k, s, p),
            "avg fwd+bwd": torch_train(lambda t: F.avg_pool2d(t, k, s, p), tg),
            "lp2 fwd": lambda: F.lp_pool2d(tx, 2, k, s),
            "lp2 fwd+bwd": torch_train(lambda t: F.lp_pool2d(t, 2, k, s), tlp_g),
        }
    n_lp_out = lp_out.size * 4
    def unpool_train():
        cp.max_unpool2d(out, idx, k, s, p, output_size=x.shape[-2:])
        cp.max_unpool2d_backward(x, idx, k, s, p, output_size=x.shape[-2:])

    return [
        ("unpool fwd", lambda: cp.max_unpool2d(out, idx, k, s, p, output_size=x.shape[-2:]), n_out + n_idx + n_in),
        ("unpool fwd+bwd", unpool_train, (n_out + n_idx + n_in) + (n_in + n_idx + n_out)),
        ("max fwd", lambda: cp.max_pool2d(x, k, s, p), n_in + n_out),
        ("max fwd+bwd", max_train, n_in + n_out + n_idx + (n_out + n_idx + n_in)),
        ("max fwd+bwd split", max_train_split, n_in + n_out + (n_out + n_in + n_in)),
        ("avg fwd", lambda: cp.avg_pool2d(x, k, s, p), n_in + n_out),
        ("avg fwd+bwd", avg_train, n_in + n_out + n_out + n_in),
        ("lp2 fwd", lambda: cp.lp_pool2d(x, 2, k, s), n_in + n_lp_out),
        ("lp2 fwd+bwd", lp_train, n_in + n_lp_out + (n_lp_out + 2 * n_in)),
        ("stochastic fwd+bwd", stochastic_train, n_in + n_out + n_idx + (n_out + n_idx + n_in)),
    ], torch_cases


def conv_cases(x, weight, stride, padding, groups, first_layer):
    """For one shape: (op, convpool callable, flops) and a dict op -> PyTorch callable."""
    bias = np.zeros(weight.shape[0], np.float32)
    args = dict(stride=stride, padding=padding, groups=groups)
    out = cp.conv2d(x, weight, bias, **args)
    forward_flops = 2 * out.size * weight[0].size
    backward_flops = (1 if first_layer else 2) * forward_flops
    needs = ("weight", "bias") if first_layer else ("input", "weight", "bias")
    g = np.ones_like(out)

    def train():
        cp.conv2d(x, weight, bias, **args)
        cp.conv2d_backward(g, x, weight, needs=needs, **args)

    ours = [
        ("conv fwd", lambda: cp.conv2d(x, weight, bias, **args), forward_flops),
        ("conv bwd", lambda: cp.conv2d_backward(g, x, weight, needs=needs, **args), backward_flops),
        ("conv fwd+bwd", train, forward_flops + backward_flops),
    ]
    theirs = {}
    if torch is not None:
        tx = torch.from_numpy(x).requires_grad_(not first_layer)
        tw, tb = (torch.from_numpy(a).requires_grad_(True) for a in (weight, bias))
        wrt = (tw, tb) if first_layer else (tx, tw, tb)
        tg = torch.from_numpy(g)
        t_out = F.conv2d(tx, tw, tb, **args)

        def torch_backward():
            torch.autograd.grad(t_out, wrt, tg, retain_graph=True)

        def torch_train():
            torch.autograd.grad(F.conv2d(tx, tw, tb, **args), wrt, tg)

        theirs = {
            "conv fwd": lambda: F.conv2d(tx.detach(), tw.detach(), tb.detach(), **args),
            "conv bwd": torch_backward,
            "conv fwd+bwd": torch_train,
        }
    return ours, theirs


def norm_cases(x):
    """For one shape: (op, convpool callable, bytes moved, {layout: PyTorch callable})."""
    channels = x.shape[1]
    weight, bias = np.ones(channels, np.float32), np.zeros(channels, np.float32)
    running_mean, running_var = np.zeros(channels, np.float32), np.ones(channels, np.float32)
    out, mean, invstd = cp.batch_norm2d(x, weight, bias, running_mean, running_var)
    relu_out = cp.relu(out)
    g = np.ones_like(x)

    def ours_train():
        out, mean, invstd = cp.batch_norm2d(x, weight, bias, running_mean, running_var, activation="relu")
        cp.batch_norm2d_backward(g, x, weight, mean, invstd, activation="relu", output=out)

    rows = [
        ("bn fwd", lambda: cp.batch_norm2d(x, weight, bias, running_mean, running_var), 2 * x.nbytes),
        ("bn+relu fwd", lambda: cp.batch_norm2d(x, weight, bias, running_mean, running_var, activation="relu"),
         2 * x.nbytes),
        ("bn bwd", lambda: cp.batch_norm2d_backward(g, x, weight, mean, invstd), 3 * x.nbytes),
        ("bn+relu bwd", lambda: cp.batch_norm2d_backward(g, x, weight, mean, invstd, activation="relu",
                                                         output=relu_out), 4 * x.nbytes),
        ("bn+relu fwd+bwd", ours_train, 6 * x.nbytes),
    ]
    theirs = {}
    if torch is not None:
        for layout in (torch.contiguous_format, torch.channels_last):
            tx = torch.from_numpy(x).to(memory_format=layout).requires_grad_(True)
            tw, tb = (torch.from_numpy(a.copy()).requires_grad_(True) for a in (weight, bias))
            trm, trv = torch.from_numpy(running_mean.copy()), torch.from_numpy(running_var.copy())
            tg = torch.from_numpy(g).to(memory_format=layout)
            t_out = F.batch_norm(tx, trm, trv, tw, tb, training=True)
            t_relu = F.relu(F.batch_norm(tx, trm, trv, tw, tb, training=True))

            def forward(tx=tx, tw=tw, tb=tb, trm=trm, trv=trv, relu=False):
                with torch.no_grad():
                    y = F.batch_norm(tx, trm, trv, tw, tb, training=True)
                    return F.relu(y) if relu else y

            def train(tx=tx, tw=tw, tb=tb, trm=trm, trv=trv, tg=tg):
                y = F.relu(F.batch_norm(tx, trm, trv, tw, tb, training=True))
                torch.autograd.grad(y, (tx, tw, tb), tg)

            theirs[layout] = {
                "bn fwd": forward,
                "bn+relu fwd": lambda forward=forward: forward(relu=True),
                "bn bwd": lambda t_out=t_out, tx=tx, tw=tw, tb=tb, tg=tg: torch.autograd.grad(
                    t_out, (tx, tw, tb), tg, retain_graph=True),
                "bn+relu bwd": lambda t_relu=t_relu, tx=tx, tw=tw, tb=tb, tg=tg: torch.autograd.grad(
                    t_relu, (tx, tw, tb), tg, retain_graph=True),
                "bn+relu fwd+bwd": train,
            }
    return [(op, fn, nbytes, {layout: calls[op] for layout, calls in theirs.items()}) for op, fn, nbytes in rows]


def print_norm_table(rng, repeats, name_filter):
    print("\n| op | shape | convpool ms | PyTorch NCHW ms | PyTorch channels_last ms | speed-up vs the faster "
          "| convpool GB/s | copy GB/s |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for label, shape in NORM_SHAPES:
        x = rng.standard_normal(shape, dtype=np.float32) * 2 + 0.5
        copy_source, copy_target = x.copy(), np.empty_like(x)
        t_copy = median_seconds(lambda: np.copyto(copy_target, copy_source), repeats)
        for op, fn, nbytes, theirs in norm_cases(x):
            if name_filter not in f"{op} {label}":
                continue
            t_ours = median_seconds(fn, repeats)
            t_theirs = [median_seconds(call, repeats) for call in theirs.values()]
            columns = [f"{t * 1e3:.3f}" for t in t_theirs] or ["-", "-"]
            ratio = f"{min(t_theirs) / t_ours:.1f}x" if t_theirs else "-"
            print(f"| {op} | {label} {shape} | {t_ours * 1e3:.3f} | {' | '.join(columns)} | {ratio} | "
                  f"{nbytes / t_ours / 1e9:.1f} | {2 * x.nbytes / t_copy / 1e9:.1f} |", flush=True)


TRAIN_BATCH = 64
# (label, convpool pooling, tie_break, PyTorch pooling layer or None where PyTorch has no such rule)
TRAIN_NETWORKS = [
    ("LeNet-5, max pooling", "max", "first", "max"),
    ("LeNet-5, average pooling", "avg", "first", "avg"),
    ("LeNet-5, max pooling, split ties", "max", "split", None),
    ("LeNet-5, stochastic pooling", "stochastic", "first", None),
]


def training_steps(images, labels):
    """(convpool step, PyTorch step factory) for each of TRAIN_NETWORKS; each call trains one batch."""
    batches = len(images) // TRAIN_BATCH

    def batch(counter):
        start = (counter % batches) * TRAIN_BATCH
        return images[start:start + TRAIN_BATCH], labels[start:start + TRAIN_BATCH]

    for label, pool, tie_break, torch_pool in TRAIN_NETWORKS:
        cp.manual_seed(0)
        model = cp.models.lenet5(pool=pool, tie_break=tie_break)
        loss_fn = cp.nn.CrossEntropyLoss()
        optimizer = cp.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        counter = [0]

        def ours(model=model, loss_fn=loss_fn, optimizer=optimizer, counter=counter):
            x, y = batch(counter[0])
            counter[0] += 1
            loss_fn(model(x), y)
            model.zero_grad()
            model.backward(loss_fn.backward(), need_input_grad=False)
            optimizer.step()

        theirs = None
        if torch is not None and torch_pool is not None:
            tnn = torch.nn
            make_pool = (lambda: tnn.MaxPool2d(2)) if torch_pool == "max" else (lambda: tnn.AvgPool2d(2))
            network = tnn.Sequential(
                tnn.Conv2d(1, 6, 5), tnn.ReLU(), make_pool(), tnn.Conv2d(6, 16, 5), tnn.ReLU(), make_pool(),
                tnn.Flatten(), tnn.Linear(256, 120), tnn.ReLU(), tnn.Linear(120, 84), tnn.ReLU(),
                tnn.Linear(84, 10))
            torch_optimizer = torch.optim.SGD(network.parameters(), lr=0.01, momentum=0.9)
            torch_counter = [0]

            def theirs(network=network, torch_optimizer=torch_optimizer, torch_counter=torch_counter):
                x, y = batch(torch_counter[0])
                torch_counter[0] += 1
                loss = F.cross_entropy(network(torch.from_numpy(x)), torch.from_numpy(y))
                torch_optimizer.zero_grad()
                loss.backward()
                torch_optimizer.step()
        yield label, ours, theirs


def print_training_table(repeats):
    (images, labels), _ = cp.datasets.load_mnist()
    print("\n| network (batch 64, SGD momentum) | convpool images/s | PyTorch images/s | speed-up |")
    print("|---|---:|---:|---:|")
    for label, ours, theirs in training_steps(images, labels):
        t_ours = median_seconds(ours, repeats, min_block_seconds=0.2)
        t_theirs = median_seconds(theirs, repeats, min_block_seconds=0.2) if theirs else None
        torch_rate = f"{TRAIN_BATCH / t_theirs:,.0f}" if t_theirs else "-"
        ratio = f"{t_theirs / t_ours:.2f}x" if t_theirs else "-"
        print(f"| {label} | {TRAIN_BATCH / t_ours:,.0f} | {torch_rate} | {ratio} |", flush=True)


RESNET_BATCH = 128
VGG_BATCH = 64


def vgg_bn():
    """The VGG-style CIFAR network with batch normalization of the issue that asked for it:
    conv 3x3 - BN - ReLU five times (32, 32, 64, 64, 128 channels), three 2x2 max pools, a linear
    classifier."""
    nn = cp.nn

    def block(cin, cout):
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]

    return nn.Sequential(*block(3, 32), *block(32, 32), nn.MaxPool2d(2), *block(32, 64), *block(64, 64),
                         nn.MaxPool2d(2), *block(64, 128), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(128 * 4 * 4, 10))


def channels_last_copy(model):
    """A copy of ``model`` running channels last (the same parameters), and its input converter."""
    return copy.deepcopy(model).to_layout("nhwc"), lambda x: np.ascontiguousarray(x.transpose(0, 2, 3, 1))


def sgd_steps(label, model, x, y):
    """(label, [convpool NCHW step, convpool NHWC step], {layout: PyTorch step}): one SGD step
    (momentum 0.9, weight decay 5e-4) on (x, y), convpool in both layouts (the NHWC model a copy of
    ``model`` with the same parameters) and PyTorch running the same network through nn.to_torch."""
    loss_fn = cp.nn.CrossEntropyLoss()
    nhwc_model, to_nhwc = channels_last_copy(model)

    def step_of(network, inputs):
        optimizer = cp.optim.SGD(network.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)

        def train():
            network.train()
            loss_fn(network(inputs), y)
            network.zero_grad()
            network.backward(loss_fn.backward(), need_input_grad=False)
            optimizer.step()

        return train

    theirs = {}
    if torch is not None:
        for layout in (torch.contiguous_format, torch.channels_last):
            network = cp.nn.to_torch(model).to(memory_format=layout)
            torch_optimizer = torch.optim.SGD(network.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
            tx, ty = torch.from_numpy(x).to(memory_format=layout), torch.from_numpy(y)

            def torch_train(network=network, torch_optimizer=torch_optimizer, tx=tx, ty=ty):
                network.train()
                loss = F.cross_entropy(network(tx), ty)
                torch_optimizer.zero_grad()
                loss.backward()
                torch_optimizer.step()

            theirs[layout] = torch_train
    return label, [step_of(model, x), step_of(nhwc_model, to_nhwc(x))], theirs


def resnet_steps(rng):
    """(label, [convpool NCHW step, convpool NHWC step], {layout: PyTorch step}, images per step):
    training steps of ResNet-20 (batch 128) and of the VGG-style network (batch 64) on synthetic
    CIFAR-shaped data, an evaluation forward of ResNet-20, and one with batch normalization folded
    into the convolutions (nn.fuse_conv_bn; PyTorch runs the same folded network through
    nn.to_torch)."""
    x = rng.standard_normal((RESNET_BATCH, 3, 32, 32), dtype=np.float32)
    y = rng.integers(0, 10, RESNET_BATCH)
    cp.manual_seed(0)
    model = cp.models.resnet20()
    steps = [sgd_steps("ResNet-20 training step", model, x, y) + (RESNET_BATCH,)]
    cp.manual_seed(0)
    steps.append(sgd_steps(f"VGG-style BN network training step (batch {VGG_BATCH})", vgg_bn(), x[:VGG_BATCH],
                           y[:VGG_BATCH]) + (VGG_BATCH,))
    folded = cp.nn.fuse_conv_bn(model)
    ours = {}
    for key, network in (("eval", model), ("folded", folded)):
        nhwc_network, to_nhwc = channels_last_copy(network)
        x_nhwc = to_nhwc(x)
        ours[key] = [lambda network=network: network.eval()(x),
                     lambda network=nhwc_network: network.eval()(x_nhwc)]

    theirs = {"eval": {}, "folded": {}}
    if torch is not None:
        for layout in (torch.contiguous_format, torch.channels_last):
            tx = torch.from_numpy(x).to(memory_format=layout)
            for key, network in (("eval", cp.nn.to_torch(model)), ("folded", cp.nn.to_torch(folded))):
                network = network.to(memory_format=layout).eval()

                def torch_evaluate(network=network, tx=tx):
                    with torch.no_grad():
                        network(tx)

                theirs[key][layout] = torch_evaluate
    steps.append(("ResNet-20 eval forward", ours["eval"], theirs["eval"], RESNET_BATCH))
    steps.append(("ResNet-20 eval forward, BN folded (both)", ours["folded"], theirs["folded"], RESNET_BATCH))
    return steps


def print_resnet_table(rng, repeats):
    """Images per second of each step, convpool in NCHW and NHWC and PyTorch in both layouts taking
    turns (three interleaved rounds, medians); the speed-up is convpool NHWC over the faster
    PyTorch layout."""
    print(f"\n| CIFAR-shaped networks (ResNet-20 batch {RESNET_BATCH}) | convpool NCHW images/s "
          "| convpool NHWC images/s | PyTorch NCHW images/s | PyTorch channels_last images/s "
          "| NHWC speed-up vs the faster |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, ours, theirs, batch in resnet_steps(rng):
        times = interleaved_medians(ours + list(theirs.values()), 3, repeats, min_block_seconds=0.5)
        rates = [f"{batch / t:,.0f}" for t in times] + ["-"] * (4 - len(times))
        ratio = f"{min(times[2:]) / times[1]:.2f}x" if len(times) > 2 else "-"
        print(f"| {label} | {' | '.join(rates)} | {ratio} |", flush=True)


# (label, x shape, weight shape (C_in, C_out, k, k), stride, padding) of upsampling layers.
TRANSPOSE_SHAPES = [
    ("DCGAN 4x4 s2", (16, 128, 16, 16), (128, 64, 4, 4), 2, 1),
    ("DCGAN 4x4 s2, wider", (16, 256, 8, 8), (256, 128, 4, 4), 2, 1),
    ("U-Net 2x2 s2", (8, 256, 28, 28), (256, 128, 2, 2), 2, 0),
    ("3x3 s1", (16, 64, 32, 32), (64, 64, 3, 3), 1, 1),
    ("U-Net 2x2 s2, N=1", (1, 512, 14, 14), (512, 256, 2, 2), 2, 0),
]


def print_transpose_table(rng, repeats, name_filter):
    """conv_transpose2d forward and backward (input, weight and bias gradients) against PyTorch in
    both layouts, in ms, and convpool's GFLOP/s (a forward's multiply-adds: every input element
    times every weight of its group; the backward twice that)."""
    print("\n| op | transposed convolution | convpool ms | PyTorch NCHW ms | PyTorch channels_last ms "
          "| speed-up vs the faster | convpool GFLOP/s |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for label, shape, weight_shape, stride, padding in TRANSPOSE_SHAPES:
        x = rng.standard_normal(shape, dtype=np.float32)
        weight = rng.standard_normal(weight_shape, dtype=np.float32)
        bias = np.zeros(weight_shape[1], np.float32)
        args = dict(stride=stride, padding=padding)
        out = cp.conv_transpose2d(x, weight, bias, **args)
        g = np.ones_like(out)
        flops = 2 * x.size * weight[0].size
        ours = {"tconv fwd": (lambda: cp.conv_transpose2d(x, weight, bias, **args), flops),
                "tconv bwd": (lambda: cp.conv_transpose2d_backward(g, x, weight, **args), 2 * flops)}
        theirs = {op: [] for op in ours}
        if torch is not None:
            for layout in (torch.contiguous_format, torch.channels_last):
                tx, tw, tg = (torch.from_numpy(a).contiguous(memory_format=layout) for a in (x, weight, g))
                tx.requires_grad_(True)
                tw.requires_grad_(True)
                tb = torch.from_numpy(bias).requires_grad_(True)
                t_out = F.conv_transpose2d(tx, tw, tb, **args)
                theirs["tconv fwd"].append(lambda tx=tx, tw=tw, tb=tb: F.conv_transpose2d(
                    tx.detach(), tw.detach(), tb.detach(), **args))
                theirs["tconv bwd"].append(lambda t_out=t_out, tx=tx, tw=tw, tb=tb, tg=tg: torch.autograd.grad(
                    t_out, (tx, tw, tb), tg, retain_graph=True))
        for op, (fn, amount) in ours.items():
            row = f"{label} {shape}->{weight_shape[1]}"
            if name_filter in f"{op} {row}":
                print_layouts_row(op, row, fn, theirs[op], amount, repeats, digits=0)


def print_layouts_row(op, row, ours, theirs, amount, repeats, digits):
    """One row against PyTorch in both layouts: the ms of each, the speed-up over the faster and
    convpool's rate (amount per call / 1e9 per second)."""
    t_ours = median_seconds(ours, repeats)
    t_theirs = [median_seconds(fn, repeats) for fn in theirs] or [None, None]
    print_peer_row(f"{op} | {row}", t_ours, t_theirs, f"{amount / t_ours / 1e9:.{digits}f}")


def torch_layouts(x, g):
    """(x, a copy of x that requires grad, g) as tensors in each of PyTorch's layouts, NCHW first."""
    for layout in (torch.contiguous_format, torch.channels_last):
        tx = torch.from_numpy(x).contiguous(memory_format=layout)
        yield tx, tx.clone().requires_grad_(True), torch.from_numpy(g).contiguous(memory_format=layout)


def print_indexed_pool_rows(kind, row, x, forward, backward, torch_forward, repeats, name_filter):
    """The forward (with indices) and forward+backward rows of a max pooling against PyTorch in
    both layouts, in ms and GB/s (input read once, output and int64 indices written once):
    forward() -> (values, indices), backward(grad, indices), torch_forward(tensor, **kwargs)."""
    out, _ = forward()
    g = np.ones_like(out)

    def train():
        _, indices = forward()
        backward(g, indices)

    moved = x.size * 4 + out.size * 12
    ours = {"fwd": (forward, moved), "fwd+bwd": (train, 2 * moved + x.size * 4)}
    theirs = {op: [] for op in ours}
    if torch is not None:
        for tx, txg, tg in torch_layouts(x, g):

            def torch_train(txg=txg, tg=tg):
                txg.grad = None
                torch_forward(txg).backward(tg)

            theirs["fwd"].append(lambda tx=tx: torch_forward(tx, return_indices=True))
            theirs["fwd+bwd"].append(torch_train)
    for op, (fn, nbytes) in ours.items():
        if name_filter in f"{kind} {op} {row}":
            print_layouts_row(f"{kind} max {op}", row, fn, theirs[op], nbytes, repeats, digits=1)


def print_adaptive_table(rng, repeats, name_filter):
    """Adaptive max pooling (forward with indices; forward and backward) against PyTorch in both
    layouts."""
    print("\n| op | adaptive max pooling | convpool ms | PyTorch NCHW ms | PyTorch channels_last ms "
          "| speed-up vs the faster | convpool GB/s |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for shape, size in (((32, 512, 7, 7), 1), ((32, 64, 56, 56), 7), ((32, 64, 112, 112), 13)):
        x = rng.standard_normal(shape, dtype=np.float32)
        print_indexed_pool_rows(
            "adaptive", f"{shape} -> {size}", x, lambda: cp.adaptive_max_pool2d(x, size, return_indices=True),
            lambda g, indices: cp.adaptive_max_pool2d_backward(g, x, indices, size),
            lambda t, **kwargs: F.adaptive_max_pool2d(t, size, **kwargs), repeats, name_filter)


def print_fractional_table(rng, repeats, name_filter):
    """Fractional max pooling (forward with indices; forward and backward) against PyTorch in both
    layouts, both given the same samples."""
    print("\n| op | fractional max pooling | convpool ms | PyTorch NCHW ms | PyTorch channels_last ms "
          "| speed-up vs the faster | convpool GB/s |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for shape, kernel, size in (((32, 64, 112, 112), 3, 56), ((32, 64, 56, 56), 2, 28)):
        x = rng.standard_normal(shape, dtype=np.float32)
        samples = rng.random(shape[:2] + (2,), dtype=np.float32)
        ts = torch.from_numpy(samples) if torch is not None else None
        print_indexed_pool_rows(
            "fractional", f"{shape} k{kernel} -> {size}", x,
            lambda: cp.fractional_max_pool2d(x, kernel, size, return_indices=True, _random_samples=samples),
            lambda g, indices: cp.fractional_max_pool2d_backward(g, x, indices),
            lambda t, **kwargs: F.fractional_max_pool2d(t, kernel, size, _random_samples=ts, **kwargs),
            repeats, name_filter)


def print_torch_table(rng, repeats, name_filter):
    """convpool.torch's operators inside PyTorch's autograd (forward, then backward of the sum)
    against torch's own on the same tensors, in both layouts (convpool copies a channels_last
    tensor to NCHW first)."""
    import convpool.torch as cpt

    x_pool = torch.from_numpy(rng.standard_normal((32, 64, 112, 112), dtype=np.float32))
    x_conv = torch.from_numpy(rng.standard_normal((16, 64, 56, 56), dtype=np.float32))
    weight = torch.from_numpy(rng.standard_normal((64, 64, 3, 3), dtype=np.float32))
    cases = [("max_pool2d k3 s2 p1 (32, 64, 112, 112)", x_pool, lambda f, t: f.max_pool2d(t, 3, 2, 1)),
             ("avg_pool2d k3 s2 p1 (32, 64, 112, 112)", x_pool, lambda f, t: f.avg_pool2d(t, 3, 2, 1)),
             ("conv2d 3x3 (16, 64, 56, 56)->64", x_conv, lambda f, t: f.conv2d(t, weight, padding=1))]
    print("\n| fwd+bwd through autograd | convpool.torch NCHW ms | torch NCHW ms | torch channels_last ms "
          "| speed-up vs the faster |")
    print("|---|---:|---:|---:|---:|")
    for label, x, op in cases:
        if name_filter not in label:
            continue

        def step(functions, tensor):
            tensor = tensor.detach().requires_grad_(True)

            def run():
                tensor.grad = None
                op(functions, tensor).sum().backward()
            return run

        t_ours = median_seconds(step(cpt, x), repeats)
        t_theirs = [median_seconds(step(F, x.contiguous(memory_format=layout)), repeats)
                    for layout in (torch.contiguous_format, torch.channels_last)]
        print(f"| {label} | {t_ours * 1e3:.3f} | {t_theirs[0] * 1e3:.3f} | {t_theirs[1] * 1e3:.3f} | "
              f"{min(t_theirs) / t_ours:.2f}x |", flush=True)


def print_torch_overhead(repeats):
    """What torch.ops.convpool adds to a call: the same tiny max pooling through the custom
    operator on a tensor (dispatcher, tensor <-> array, no autograd) and as the NumPy function."""
    import convpool.torch as cpt

    x = np.random.default_rng(0).standard_normal((1, 1, 4, 4), dtype=np.float32)
    tensor = torch.from_numpy(x)
    operator = torch.ops.convpool.max_pool2d.default
    t_numpy = median_seconds(lambda: cp.max_pool2d(x, 2), repeats)
    t_op = median_seconds(lambda: operator(tensor, [2, 2], [2, 2], [0, 0], [1, 1], False, "first", "propagate"),
                          repeats)
    t_function = median_seconds(lambda: cpt.max_pool2d(tensor, 2), repeats)
    print(f"\nper-call overhead, max_pool2d of (1, 1, 4, 4): NumPy function {t_numpy * 1e6:.1f} us, "
          f"torch.ops.convpool.max_pool2d {t_op * 1e6:.1f} us (added {(t_op - t_numpy) * 1e6:.1f} us), "
          f"convpool.torch.max_pool2d {t_function * 1e6:.1f} us")


def print_converted_resnet18(repeats):
    """A training step (SGD momentum, cross-entropy) of a torchvision-layout ResNet-18 on batch 16
    of 3x112x112: converted to convpool (NCHW) against the pure-torch model in both layouts."""
    import copy

    import convpool.torch as cpt
    from convpool import models
    from convpool.nn import to_torch

    torch.manual_seed(0)
    network = to_torch(models.resnet18(num_classes=1000))
    x, labels = torch.randn(16, 3, 112, 112), torch.randint(0, 1000, (16,))

    def step(model, tensor):
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

        def run():
            optimizer.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(model(tensor), labels).backward()
            optimizer.step()
        return run

    channels_last = copy.deepcopy(network).to(memory_format=torch.channels_last)
    converted = cpt.convert(copy.deepcopy(network))
    runs = {"convpool.torch": step(converted, x), "torch NCHW": step(network, x),
            "torch channels_last": step(channels_last, x.contiguous(memory_format=torch.channels_last))}
    samples = {name: [] for name in runs}
    for run in runs.values():
        run()  # warm-up: momentum buffers, allocator
    for _ in range(repeats):  # interleaved, so that a busy neighbour slows all three alike
        for name, run in runs.items():
            started = time.perf_counter()
            run()
            samples[name].append(time.perf_counter() - started)
    ms = {name: statistics.median(values) * 1e3 for name, values in samples.items()}
    print("\n| ResNet-18 training step, batch 16, 3x112x112 | convpool.torch ms | torch NCHW ms | "
          "torch channels_last ms | speed-up vs the faster |")
    print("|---|---:|---:|---:|---:|")
    print(f"| converted with convpool.torch.convert | {ms['convpool.torch']:.1f} | {ms['torch NCHW']:.1f} | "
          f"{ms['torch channels_last']:.1f} | "
          f"{min(ms['torch NCHW'], ms['torch channels_last']) / ms['convpool.torch']:.2f}x |", flush=True)


def print_one_d_table(rng, repeats, name_filter):
    """The 1-D functions (2-D kernels on height-1 views) against PyTorch's, forward and backward,
    in ms; PyTorch's 1-D functions have a single layout."""
    x = rng.standard_normal((32, 64, 4096), dtype=np.float32)
    weight = rng.standard_normal((64, 64, 3), dtype=np.float32)
    y, indices = cp.max_pool1d(x, 3, 2, 1, return_indices=True)
    g_pool = np.ones_like(y)
    g_conv = np.ones_like(cp.conv1d(x, weight, padding=1))
    ours = {"max_pool1d k3 s2 p1 fwd": lambda: cp.max_pool1d(x, 3, 2, 1, return_indices=True),
            "max_pool1d k3 s2 p1 bwd": lambda: cp.max_pool1d_backward(g_pool, x, indices, 3, 2, 1),
            "avg_pool1d k3 s2 p1 fwd": lambda: cp.avg_pool1d(x, 3, 2, 1),
            "conv1d k3 64->64 fwd": lambda: cp.conv1d(x, weight, padding=1),
            "conv1d k3 64->64 bwd": lambda: cp.conv1d_backward(g_conv, x, weight, padding=1)}
    theirs = {}
    if torch is not None:
        tx, tw = torch.from_numpy(x).requires_grad_(True), torch.from_numpy(weight).requires_grad_(True)
        t_pool = F.max_pool1d(tx, 3, 2, 1)
        t_conv = F.conv1d(tx, tw, padding=1)
        tg_pool, tg_conv = torch.from_numpy(g_pool), torch.from_numpy(g_conv)
        theirs = {"max_pool1d k3 s2 p1 fwd": lambda: F.max_pool1d(tx.detach(), 3, 2, 1, return_indices=True),
                  "max_pool1d k3 s2 p1 bwd": lambda: torch.autograd.grad(t_pool, tx, tg_pool, retain_graph=True),
                  "avg_pool1d k3 s2 p1 fwd": lambda: F.avg_pool1d(tx.detach(), 3, 2, 1),
                  "conv1d k3 64->64 fwd": lambda: F.conv1d(tx.detach(), tw.detach(), padding=1),
                  "conv1d k3 64->64 bwd": lambda: torch.autograd.grad(t_conv, (tx, tw), tg_conv, retain_graph=True)}
    print(f"\n| 1-D op on {x.shape} | convpool ms | PyTorch ms | speed-up |")
    print("|---|---:|---:|---:|")
    for op, fn in ours.items():
        if name_filter not in op:
            continue
        t_ours = median_seconds(fn, repeats)
        t_torch = median_seconds(theirs[op], repeats) if op in theirs else None
        ratio = f"{t_torch / t_ours:.2f}x" if t_torch else "-"
        torch_ms = f"{t_torch * 1e3:.3f}" if t_torch else "-"
        print(f"| {op} | {t_ours * 1e3:.3f} | {torch_ms} | {ratio} |", flush=True)


# (label, input channels, plane, output channels, kernel, stride): every convolution of ResNet-18
# (torchvision's layout, 224x224 input), each once.
RESNET18_CONVS = [
    ("stem 7x7 s2", 3, 224, 64, 7, 2),
    ("3x3 64", 64, 56, 64, 3, 1),
    ("3x3 s2 64->128", 64, 56, 128, 3, 2),
    ("1x1 s2 64->128", 64, 56, 128, 1, 2),
    ("3x3 128", 128, 28, 128, 3, 1),
    ("3x3 s2 128->256", 128, 28, 256, 3, 2),
    ("1x1 s2 128->256", 128, 28, 256, 1, 2),
    ("3x3 256", 256, 14, 256, 3, 1),
    ("3x3 s2 256->512", 256, 14, 512, 3, 2),
    ("1x1 s2 256->512", 256, 14, 512, 1, 2),
    ("3x3 512", 512, 7, 512, 3, 1),
]
INFERENCE_BATCHES = (1, 4)
RESNET18_BATCHES = (1, 8)


def print_inference_tables(rng, repeats, threads, name_filter):
    """Forward convolutions at N = 1 and 4 (no bias) on a weight packed once with winograd=True
    (PackedConv2dWeight; ONNX Runtime likewise packs its weights when the session is built), and
    ResNet-18 in eval mode frozen by nn.freeze(winograd=True) (batch normalization folded into the
    convolutions, weights packed, ReLU fused; PyTorch runs the same folded network; ONNX Runtime
    the unfolded one, which it folds itself). The last two columns are convpool with the
    definition's sums (winograd=False), and with every call packing its weights (plain arrays,
    nn.fuse_conv_bn)."""
    import onnx_models

    print("\n| ResNet-18 convolution | convpool ms | PyTorch NCHW ms | PyTorch channels_last ms | ONNX Runtime ms "
          "| speed-up vs the best | convpool GFLOP/s (direct count) | convpool, winograd=False, ms "
          "| convpool, packing per call, ms |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for batch in INFERENCE_BATCHES:
        for label, cin, plane, cout, k, s in RESNET18_CONVS:
            row = f"{label}, {plane}x{plane}, N={batch}"
            if name_filter not in row:
                continue
            x = rng.standard_normal((batch, cin, plane, plane), dtype=np.float32)
            weight = rng.standard_normal((cout, cin, k, k), dtype=np.float32)
            args = dict(stride=s, padding=k // 2)
            flops = 2 * cp.conv2d(x, weight, **args).size * weight[0].size
            theirs = []
            if torch is not None:
                for layout in (torch.contiguous_format, torch.channels_last):
                    tx, tw = (torch.from_numpy(a).contiguous(memory_format=layout) for a in (x, weight))
                    theirs.append(lambda tx=tx, tw=tw: F.conv2d(tx, tw, **args))
            winograd, direct = cp.PackedConv2dWeight(weight, winograd=True), cp.PackedConv2dWeight(weight)
            t_ours = median_seconds(lambda: cp.conv2d(x, winograd, **args), repeats)
            t_direct = median_seconds(lambda: cp.conv2d(x, direct, **args), repeats)
            t_unpacked = median_seconds(lambda: cp.conv2d(x, weight, **args), repeats)
            peers = peer_times(theirs, onnx_models.conv_runner(x, weight, s, k // 2, threads), repeats)
            print_peer_row(row, t_ours, peers, f"{flops / t_ours / 1e9:.0f}", (t_direct, t_unpacked))

    print("\n| ResNet-18 forward, 224x224, eval | convpool ms | PyTorch NCHW ms | PyTorch channels_last ms "
          "| ONNX Runtime ms | speed-up vs the best | convpool images/s | convpool, winograd=False, ms "
          "| convpool, packing per call, ms |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    cp.manual_seed(0)
    model = cp.models.resnet18().eval()
    folded = cp.nn.fuse_conv_bn(model)
    frozen, direct = cp.nn.freeze(model, winograd=True), cp.nn.freeze(model)
    for batch in RESNET18_BATCHES:
        x = rng.standard_normal((batch, 3, 224, 224), dtype=np.float32)
        theirs = []
        if torch is not None:
            for layout in (torch.contiguous_format, torch.channels_last):
                network = cp.nn.to_torch(folded).to(memory_format=layout).eval()
                tx = torch.from_numpy(x).contiguous(memory_format=layout)

                def torch_forward(network=network, tx=tx):
                    with torch.no_grad():
                        network(tx)

                theirs.append(torch_forward)
        t_ours = median_seconds(lambda: frozen(x), repeats, min_block_seconds=0.3)
        t_direct = median_seconds(lambda: direct(x), repeats, min_block_seconds=0.3)
        t_unpacked = median_seconds(lambda: folded(x), repeats, min_block_seconds=0.3)
        peers = peer_times(theirs, onnx_models.network_runner(model, x, threads), repeats, min_block_seconds=0.3)
        print_peer_row(f"batch {batch}", t_ours, peers, f"{batch / t_ours:,.0f}", (t_direct, t_unpacked))


def print_table(title, unit, rows, repeats, name_filter):
    """rows: (op, shape label, convpool callable, PyTorch callable or None, amount per call in unit * 1e9)."""
    print(f"\n| op | {title} | convpool ms | PyTorch ms | speed-up | convpool {unit} |")
    print("|---|---|---:|---:|---:|---:|")
    for op, label, fn, torch_fn, amount in rows:
        if name_filter not in f"{op} {label}":
            continue
        t_ours = median_seconds(fn, repeats)
        t_torch = median_seconds(torch_fn, repeats) if torch_fn else None
        ratio = f"{t_torch / t_ours:.1f}x" if t_torch else "-"
        torch_ms = f"{t_torch * 1e3:.3f}" if t_torch else "-"
        print(f"| {op} | {label} | {t_ours * 1e3:.3f} | {torch_ms} | {ratio} | {amount / t_ours / 1e9:.1f} |", flush=True)


def pool_rows(rng):
    for label, shape, k, s, p in POOL_SHAPES:
        x = rng.standard_normal(shape, dtype=np.float32)
        ours, theirs = cases(x, k, s, p)
        for op, fn, nbytes in ours:
            yield op, f"{label} {shape}", fn, theirs.get(op), nbytes


def conv_rows(rng):
    for label, shape, weight_shape, stride, padding, groups in CONV_SHAPES:
        x = rng.standard_normal(shape, dtype=np.float32)
        weight = rng.standard_normal(weight_shape, dtype=np.float32)
        ours, theirs = conv_cases(x, weight, stride, padding, groups, label in FIRST_LAYERS)
        for op, fn, flops in ours:
            yield op, f"{label} {shape}->{weight_shape[0]}", fn, theirs.get(op), flops


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--filter", default="", help="only rows whose op or shape contains this")
    parser.add_argument("--suite", choices=("pool", "conv", "norm", "train", "inference", "torch", "all"),
                        default="all")
    args = parser.parse_args()

    cp.set_num_threads(args.threads)
    if torch is not None:
        torch.set_num_threads(args.threads)
    version = torch.__version__ if torch is not None else "not installed"
    print(f"threads={args.threads}, repeats={args.repeats} (medians), torch {version}, "
          f"convpool ISA {cp.build_info()['isa']}")
    rng = np.random.default_rng(0)
    if args.suite in ("pool", "all"):
        print_table("pooling shape", "GB/s", pool_rows(rng), args.repeats, args.filter)
        print_adaptive_table(rng, args.repeats, args.filter)
        print_fractional_table(rng, args.repeats, args.filter)
    if args.suite in ("conv", "all"):
        print_table("convolution", "GFLOP/s", conv_rows(rng), args.repeats, args.filter)
        print_transpose_table(rng, args.repeats, args.filter)
        print_one_d_table(rng, args.repeats, args.filter)
    if args.suite in ("norm", "all"):
        print_norm_table(rng, args.repeats, args.filter)
    if args.suite in ("train", "all"):
        print_training_table(args.repeats)
        print_resnet_table(rng, args.repeats)
    if args.suite in ("torch", "all") and torch is not None:
        print_torch_table(rng, args.repeats, args.filter)
        print_torch_overhead(args.repeats)
        print_converted_resnet18(args.repeats)
    if args.suite in ("inference", "all"):
        print_inference_tables(rng, args.repeats, args.threads, args.filter)

if __name__ == "__main__":
    main()
