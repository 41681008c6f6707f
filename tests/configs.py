"""Randomized pooling configurations shared by the tests."""

import numpy as np

from reference import conv_padding, output_size


def random_pool_configs(seed, count, padding=True, dilation=True, ceil_mode=True, max_kernel=7):
    """Valid (shape, kernel, stride, padding, dilation, ceil_mode) tuples: kernels 1-7,
    strides 1-3, odd sizes, 3-D and 4-D inputs, N*C often smaller than the thread count."""
    rng = np.random.default_rng(seed)
    configs = []
    while len(configs) < count:
        k = tuple(int(v) for v in rng.integers(1, max_kernel + 1, 2))
        s = tuple(int(v) for v in rng.integers(1, 4, 2))
        p = tuple(int(rng.integers(0, kk // 2 + 1)) if padding else 0 for kk in k)
        d = tuple(int(v) for v in rng.integers(1, 3, 2)) if dilation else (1, 1)
        ceil = bool(rng.integers(0, 2)) and ceil_mode
        hw = tuple(int(v) for v in rng.integers(1, 14, 2))
        if any(output_size(n, kk, ss, pp, dd, ceil) < 1 for n, kk, ss, pp, dd in zip(hw, k, s, p, d)):
            continue
        lead = [(1, 1), (2, 3), (1,), (3,), (2, 1)][int(rng.integers(0, 5))]
        configs.append((lead + hw, k, s, p, d, ceil))
    return configs


def channels_last_pool_configs(seed, count, **options):
    """random_pool_configs with channel counts below, at and past a block of 64 channels: the
    channels-last kernels' blocks."""
    channels = [3, 16, 64, 70]
    return [(shape[:-3] + (channels[i % 4],) + shape[-2:],) + tuple(config)
            for i, (shape, *config) in enumerate(random_pool_configs(seed, count, **options))]


def config_id(config):
    shape, k, s, p, d, ceil_mode = config
    return f"x{shape}-k{k}-s{s}-p{p}-d{d}-{'ceil' if ceil_mode else 'floor'}".replace(" ", "")


def random_conv_configs(seed, count):
    """Valid conv2d configurations as dicts: grouped, depthwise (with channel multipliers), 1x1,
    strided, dilated, 'same'/'valid' padding, 3-D input, odd sizes."""
    rng = np.random.default_rng(seed)
    configs = []
    while len(configs) < count:
        kind = int(rng.integers(0, 4))
        groups = int(rng.integers(1, 4))
        cin = groups if kind == 1 else groups * int(rng.integers(1, 5))
        cout = groups * int(rng.integers(1, 3 if kind == 1 else 9))
        k = (1, 1) if kind == 2 else tuple(int(v) for v in rng.integers(1, 6, 2))
        s = tuple(int(v) for v in rng.integers(1, 4, 2))
        d = tuple(int(v) for v in rng.integers(1, 3, 2))
        padding = [0, 1, (2, 0), "valid", "same"][int(rng.integers(0, 5))]
        if padding == "same":
            s = (1, 1)
        hw = tuple(int(v) for v in rng.integers(1, 16, 2))
        shape = ((int(rng.integers(1, 4)),) if rng.integers(0, 4) else ()) + (cin,) + hw
        top, bottom, left, right = conv_padding(padding, k, d)
        if hw[0] + top + bottom < d[0] * (k[0] - 1) + 1 or hw[1] + left + right < d[1] * (k[1] - 1) + 1:
            continue
        configs.append(dict(shape=shape, weight=(cout, cin // groups) + k, stride=s, padding=padding, dilation=d,
                            groups=groups))
    return configs


def conv_inputs(config, dtype, seed):
    """x, weight and bias of a conv2d configuration, normally distributed."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(config["shape"]).astype(dtype)
    weight = rng.standard_normal(config["weight"]).astype(dtype)
    bias = rng.standard_normal(config["weight"][0]).astype(dtype)
    return x, weight, bias


def conv_config_id(c):
    return (f"x{c['shape']}-w{c['weight']}-s{c['stride']}-p{c['padding']}-d{c['dilation']}-g{c['groups']}"
            .replace(" ", "").replace("'", ""))


def conv_args(c):
    return dict(stride=c["stride"], padding=c["padding"], dilation=c["dilation"], groups=c["groups"])


def random_conv_transpose_configs(seed, count):
    """Valid conv_transpose2d configurations as dicts: grouped, strided with output padding,
    dilated, 1x1, 3-D input, an empty batch."""
    rng = np.random.default_rng(seed)
    configs = []
    while len(configs) < count:
        groups = int(rng.integers(1, 4))
        cin, cout = groups * int(rng.integers(1, 5)), groups * int(rng.integers(1, 6))
        k = tuple(int(v) for v in rng.integers(1, 5, 2))
        s = tuple(int(v) for v in rng.integers(1, 4, 2))
        d = tuple(int(v) for v in rng.integers(1, 3, 2))
        p = tuple(int(v) for v in rng.integers(0, 3, 2))
        op = tuple(int(rng.integers(0, max(si, di))) for si, di in zip(s, d))
        hw = tuple(int(v) for v in rng.integers(1, 10, 2))
        out = [(i - 1) * si - 2 * pi + di * (ki - 1) + opi + 1 for i, si, pi, di, ki, opi in zip(hw, s, p, d, k, op)]
        if min(out) < 1:
            continue
        shape = ((int(rng.integers(0, 4)),) if rng.integers(0, 4) else ()) + (cin,) + hw
        configs.append(dict(shape=shape, weight=(cin, cout // groups) + k, stride=s, padding=p, output_padding=op,
                            groups=groups, dilation=d))
    return configs


def conv_transpose_config_id(c):
    return (f"x{c['shape']}-w{c['weight']}-s{c['stride']}-p{c['padding']}-op{c['output_padding']}"
            f"-g{c['groups']}-d{c['dilation']}").replace(" ", "")
