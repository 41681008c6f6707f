"""Plain NumPy references for the pooling ops: one window at a time, written from the spec in
docs/semantics.md and kept deliberately naive (no shared code with the C++ kernels)."""

import math

import numpy as np


def assert_close(actual, expected, dtype, what=""):
    """Equal to a float64 reference within the dtype's rounding: the absolute error is scaled by the
    result's magnitude, since sums of many terms cancel."""
    scale = 1 + np.abs(expected).max(initial=0)
    rtol = 1e-4 if dtype == np.float32 else 1e-11
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale, err_msg=what)


def to_nhwc(a):
    """An (N, C, H, W) or (C, H, W) array channels last, C-contiguous."""
    return np.ascontiguousarray(np.moveaxis(a, -3, -1))


def to_nchw(a):
    """The inverse of to_nhwc."""
    return np.ascontiguousarray(np.moveaxis(a, -1, -3))


def pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def output_size(n, k, s, p, d, ceil_mode):
    span = d * (k - 1) + 1
    numerator = n + 2 * p - span + (s - 1 if ceil_mode else 0)
    out = numerator // s + 1
    if ceil_mode and (out - 1) * s >= n + p:
        out -= 1
    return out


def windows(shape, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """Yields (plane, oh, ow, taps) for every output, taps being the (ih, iw) inside the input
    in row-major window order; also returns the output shape first."""
    kh, kw = pair(kernel_size)
    sh, sw = pair(stride if stride is not None else kernel_size)
    ph, pw = pair(padding)
    dh, dw = pair(dilation)
    H, W = shape[-2:]
    OH = output_size(H, kh, sh, ph, dh, ceil_mode)
    OW = output_size(W, kw, sw, pw, dw, ceil_mode)
    planes = int(np.prod(shape[:-2]))
    out_shape = tuple(shape[:-2]) + (OH, OW)

    def generate():
        for plane in range(planes):
            for oh in range(OH):
                for ow in range(OW):
                    taps = []
                    for i in range(kh):
                        for j in range(kw):
                            ih, iw = oh * sh - ph + i * dh, ow * sw - pw + j * dw
                            if 0 <= ih < H and 0 <= iw < W:
                                taps.append((ih, iw))
                    yield plane, oh, ow, taps

    return out_shape, generate()


def _planes(x):
    return x.reshape((-1,) + x.shape[-2:])


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               tie_break="first", nan="propagate"):
    out_shape, wins = windows(x.shape, kernel_size, stride, padding, dilation, ceil_mode)
    planes = _planes(x)
    out = np.empty(out_shape, x.dtype).reshape((-1,) + out_shape[-2:])
    idx = np.empty(out.shape, np.int64)
    W = x.shape[-1]
    for plane, oh, ow, taps in wins:
        best, best_index = -math.inf, -1
        for ih, iw in taps:
            v = planes[plane, ih, iw]
            if nan == "ignore" and math.isnan(v):
                v = -math.inf
            wins_tie = v >= best if tie_break == "last" else v > best
            if best_index == -1 or wins_tie or (nan == "propagate" and math.isnan(v)):
                best, best_index = v, ih * W + iw
        out[plane, oh, ow] = best
        idx[plane, oh, ow] = best_index
    return out.reshape(out_shape), idx.reshape(out_shape)


def max_pool2d_backward(grad_output, x, kernel_size, stride=None, padding=0, dilation=1,
                        ceil_mode=False, tie_break="first", nan="propagate"):
    out, idx = max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode,
                          "first" if tie_break == "split" else tie_break, nan)
    _, wins = windows(x.shape, kernel_size, stride, padding, dilation, ceil_mode)
    planes = _planes(x)
    g = _planes(grad_output)
    gi = np.zeros_like(planes)
    for plane, oh, ow, taps in wins:
        if not taps:
            continue
        if tie_break != "split":
            i = idx.reshape(g.shape)[plane, oh, ow]
            gi[plane, i // x.shape[-1], i % x.shape[-1]] += g[plane, oh, ow]
            continue
        best = out.reshape(g.shape)[plane, oh, ow]

        def value(ih, iw):
            v = planes[plane, ih, iw]
            return -math.inf if nan == "ignore" and math.isnan(v) else v

        tied = [(ih, iw) for ih, iw in taps
                if (math.isnan(best) and math.isnan(value(ih, iw))) or value(ih, iw) == best]
        share = g[plane, oh, ow] / x.dtype.type(len(tied))
        for ih, iw in tied:
            gi[plane, ih, iw] += share
    return gi.reshape(x.shape)


def avg_divisor(shape, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
    """Divisors per (oh, ow) following PyTorch's CPU kernel."""
    kh, kw = pair(kernel_size)
    sh, sw = pair(stride if stride is not None else kernel_size)
    ph, pw = pair(padding)
    H, W = shape[-2:]
    OH = output_size(H, kh, sh, ph, 1, ceil_mode)
    OW = output_size(W, kw, sw, pw, 1, ceil_mode)
    div = np.zeros((OH, OW), np.int64)
    for oh in range(OH):
        for ow in range(OW):
            h0, w0 = oh * sh - ph, ow * sw - pw
            h1, w1 = min(h0 + kh, H + ph), min(w0 + kw, W + pw)
            pool_size = (h1 - h0) * (w1 - w0)
            inside = (min(h1, H) - max(h0, 0)) * (min(w1, W) - max(w0, 0))
            if divisor_override:
                div[oh, ow] = divisor_override
            else:
                div[oh, ow] = pool_size if count_include_pad else inside
    return div


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    out_shape, wins = windows(x.shape, kernel_size, stride, padding, 1, ceil_mode)
    div = avg_divisor(x.shape, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)
    planes = _planes(x)
    out = np.zeros(out_shape, x.dtype).reshape((-1,) + out_shape[-2:])
    for plane, oh, ow, taps in wins:
        total = sum((planes[plane, ih, iw] for ih, iw in taps), x.dtype.type(0))
        out[plane, oh, ow] = total / x.dtype.type(div[oh, ow]) if taps else 0
    return out.reshape(out_shape)


def avg_pool2d_backward(grad_output, input_shape, kernel_size, stride=None, padding=0, ceil_mode=False,
                        count_include_pad=True, divisor_override=None):
    _, wins = windows(input_shape, kernel_size, stride, padding, 1, ceil_mode)
    div = avg_divisor(input_shape, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)
    g = _planes(grad_output)
    gi = np.zeros((g.shape[0],) + tuple(input_shape[-2:]), grad_output.dtype)
    for plane, oh, ow, taps in wins:
        for ih, iw in taps:
            gi[plane, ih, iw] += g[plane, oh, ow] / grad_output.dtype.type(div[oh, ow])
    return gi.reshape(input_shape)


def lp_pool2d(x, norm_type, kernel_size, stride=None, ceil_mode=False):
    out_shape, wins = windows(x.shape, kernel_size, stride, 0, 1, ceil_mode)
    planes = _planes(x).astype(np.float64)
    out = np.zeros(out_shape, np.float64).reshape((-1,) + out_shape[-2:])
    for plane, oh, ow, taps in wins:
        total = sum(abs(planes[plane, ih, iw]) ** norm_type for ih, iw in taps)
        out[plane, oh, ow] = total ** (1.0 / norm_type)
    return out.reshape(out_shape).astype(x.dtype)


def lp_pool2d_backward(grad_output, x, norm_type, kernel_size, stride=None, ceil_mode=False):
    out_shape, wins = windows(x.shape, kernel_size, stride, 0, 1, ceil_mode)
    y = _planes(lp_pool2d(x.astype(np.float64), norm_type, kernel_size, stride, ceil_mode))
    planes = _planes(x).astype(np.float64)
    g = _planes(grad_output).astype(np.float64)
    gi = np.zeros(planes.shape)
    for plane, oh, ow, taps in wins:
        yo = y[plane, oh, ow]
        if yo == 0:
            continue
        for ih, iw in taps:
            v = planes[plane, ih, iw]
            if v != 0:
                gi[plane, ih, iw] += g[plane, oh, ow] * np.sign(v) * abs(v) ** (norm_type - 1) / yo ** (norm_type - 1)
    return gi.reshape(x.shape).astype(x.dtype)


def stochastic_pool2d_eval(x, kernel_size, stride=None):
    out_shape, wins = windows(x.shape, kernel_size, stride)
    planes = _planes(x).astype(np.float64)
    out = np.zeros(out_shape, np.float64).reshape((-1,) + out_shape[-2:])
    for plane, oh, ow, taps in wins:
        a = np.array([planes[plane, ih, iw] for ih, iw in taps])
        out[plane, oh, ow] = (a * a).sum() / a.sum() if a.sum() > 0 else 0.0
    return out.reshape(out_shape).astype(x.dtype)


def stochastic_pool2d_eval_backward(grad_output, x, kernel_size, stride=None):
    _, wins = windows(x.shape, kernel_size, stride)
    planes = _planes(x).astype(np.float64)
    g = _planes(grad_output).astype(np.float64)
    gi = np.zeros(planes.shape)
    for plane, oh, ow, taps in wins:
        a = np.array([planes[plane, ih, iw] for ih, iw in taps])
        s1 = a.sum()
        if s1 <= 0:
            continue
        y = (a * a).sum() / s1
        for ih, iw in taps:
            gi[plane, ih, iw] += g[plane, oh, ow] * (2 * planes[plane, ih, iw] - y) / s1
    return gi.reshape(x.shape).astype(x.dtype)


def window_values(x, kernel_size, stride=None):
    """For stochastic pooling: per output, the list of (flat index, value) of its taps."""
    out_shape, wins = windows(x.shape, kernel_size, stride)
    planes = _planes(x)
    W = x.shape[-1]
    return out_shape, [[(ih * W + iw, planes[p, ih, iw]) for ih, iw in taps] for p, _, _, taps in wins]


# --- convolution -----------------------------------------------------------------------------


def conv_padding(padding, kernel, dilation):
    """(top, bottom, left, right) for an int, a pair, 'valid' or 'same' (PyTorch's rule)."""
    if padding == "valid":
        return (0, 0, 0, 0)
    if padding == "same":
        sides = []
        for k, d in zip(kernel, dilation):
            total = d * (k - 1)
            sides += [total // 2, total - total // 2]
        return tuple(sides)
    ph, pw = pair(padding)
    return (ph, ph, pw, pw)


def _conv_taps(x, weight, stride, padding, dilation):
    """The padded input and, for every tap (kh, kw), the slices of it that tap reads."""
    sh, sw = pair(stride)
    dh, dw = pair(dilation)
    kh_, kw_ = weight.shape[2:]
    top, bottom, left, right = conv_padding(padding, (kh_, kw_), (dh, dw))
    xp = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    oh = (xp.shape[2] - dh * (kh_ - 1) - 1) // sh + 1
    ow = (xp.shape[3] - dw * (kw_ - 1) - 1) // sw + 1
    taps = [(kh, kw, (slice(kh * dh, kh * dh + sh * (oh - 1) + 1, sh), slice(kw * dw, kw * dw + sw * (ow - 1) + 1, sw)))
            for kh in range(kh_) for kw in range(kw_)]
    return xp, (top, left), taps


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """Cross-correlation in float64, one tap at a time."""
    squeeze = x.ndim == 3
    x = np.asarray(x, np.float64)[None] if squeeze else np.asarray(x, np.float64)
    weight = np.asarray(weight, np.float64)
    xp, _, taps = _conv_taps(x, weight, stride, padding, dilation)
    cin_g, cout_g = x.shape[1] // groups, weight.shape[0] // groups
    out = None
    for kh, kw, (rows, cols) in taps:
        for g in range(groups):
            patch = xp[:, g * cin_g:(g + 1) * cin_g, rows, cols]
            w = weight[g * cout_g:(g + 1) * cout_g, :, kh, kw]
            if out is None:
                out = np.zeros((x.shape[0], weight.shape[0]) + patch.shape[2:])
            out[:, g * cout_g:(g + 1) * cout_g] += np.einsum("nchw,oc->nohw", patch, w)
    if bias is not None:
        out += np.asarray(bias, np.float64)[None, :, None, None]
    return out[0] if squeeze else out


def conv2d_backward(grad_output, x, weight, stride=1, padding=0, dilation=1, groups=1):
    """(grad_input, grad_weight, grad_bias) in float64."""
    squeeze = x.ndim == 3
    x = np.asarray(x, np.float64)[None] if squeeze else np.asarray(x, np.float64)
    gy = np.asarray(grad_output, np.float64)
    gy = gy[None] if squeeze else gy
    weight = np.asarray(weight, np.float64)
    xp, (top, left), taps = _conv_taps(x, weight, stride, padding, dilation)
    cin_g, cout_g = x.shape[1] // groups, weight.shape[0] // groups
    gxp, gw = np.zeros_like(xp), np.zeros_like(weight)
    for kh, kw, (rows, cols) in taps:
        for g in range(groups):
            ci, co = slice(g * cin_g, (g + 1) * cin_g), slice(g * cout_g, (g + 1) * cout_g)
            gw[co, :, kh, kw] += np.einsum("nchw,nohw->oc", xp[:, ci, rows, cols], gy[:, co])
            gxp[:, ci, rows, cols] += np.einsum("nohw,oc->nchw", gy[:, co], weight[co, :, kh, kw])
    gx = gxp[:, :, top:top + x.shape[2], left:left + x.shape[3]]
    return (gx[0] if squeeze else gx), gw, gy.sum(axis=(0, 2, 3))


def _transposed_geometry(x, weight, stride, padding, output_padding, dilation):
    """The output size, and for each tap the slices of the uncropped output it scatters into."""
    (sh, sw), (ph, pw), (oph, opw), (dh, dw) = (pair(v) for v in (stride, padding, output_padding, dilation))
    h, w = x.shape[2:]
    kh_n, kw_n = weight.shape[2:]
    out = ((h - 1) * sh - 2 * ph + dh * (kh_n - 1) + oph + 1, (w - 1) * sw - 2 * pw + dw * (kw_n - 1) + opw + 1)
    full = (max((h - 1) * sh + dh * (kh_n - 1) + 1, ph + out[0]), max((w - 1) * sw + dw * (kw_n - 1) + 1, pw + out[1]))
    taps = [(kh, kw, (slice(kh * dh, kh * dh + (h - 1) * sh + 1, sh), slice(kw * dw, kw * dw + (w - 1) * sw + 1, sw)))
            for kh in range(kh_n) for kw in range(kw_n)]
    return out, full, (ph, pw), taps


def conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Transposed convolution in float64 from its definition: every input element scattered
    through the kernel into an uncropped output, then the padding cropped off."""
    squeeze = x.ndim == 3
    x = np.asarray(x, np.float64)[None] if squeeze else np.asarray(x, np.float64)
    weight = np.asarray(weight, np.float64)
    out, full, (top, left), taps = _transposed_geometry(x, weight, stride, padding, output_padding, dilation)
    cin_g, cout_g = x.shape[1] // groups, weight.shape[1]
    y = np.zeros((x.shape[0], cout_g * groups) + full)
    for kh, kw, (rows, cols) in taps:
        for g in range(groups):
            y[:, g * cout_g:(g + 1) * cout_g, rows, cols] += np.einsum(
                "nchw,co->nohw", x[:, g * cin_g:(g + 1) * cin_g], weight[g * cin_g:(g + 1) * cin_g, :, kh, kw])
    y = y[:, :, top:top + out[0], left:left + out[1]]
    if bias is not None:
        y = y + np.asarray(bias, np.float64)[None, :, None, None]
    return y[0] if squeeze else y


def conv_transpose2d_backward(grad_output, x, weight, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """(grad_input, grad_weight, grad_bias) in float64: the scatter's adjoint, a gather."""
    squeeze = x.ndim == 3
    x = np.asarray(x, np.float64)[None] if squeeze else np.asarray(x, np.float64)
    gy = np.asarray(grad_output, np.float64)
    gy = gy[None] if squeeze else gy
    weight = np.asarray(weight, np.float64)
    out, full, (top, left), taps = _transposed_geometry(x, weight, stride, padding, output_padding, dilation)
    cin_g, cout_g = x.shape[1] // groups, weight.shape[1]
    gy_full = np.zeros(gy.shape[:2] + full)
    gy_full[:, :, top:top + out[0], left:left + out[1]] = gy
    gx, gw = np.zeros_like(x), np.zeros_like(weight)
    for kh, kw, (rows, cols) in taps:
        for g in range(groups):
            ci, co = slice(g * cin_g, (g + 1) * cin_g), slice(g * cout_g, (g + 1) * cout_g)
            gx[:, ci] += np.einsum("nohw,co->nchw", gy_full[:, co, rows, cols], weight[ci, :, kh, kw])
            gw[ci, :, kh, kw] += np.einsum("nchw,nohw->co", x[:, ci], gy_full[:, co, rows, cols])
    return (gx[0] if squeeze else gx), gw, gy.sum(axis=(0, 2, 3))


def batch_norm2d(x, weight, bias, running_mean, running_var, training, momentum, eps, relu=False):
    """Returns (out, mean, invstd, new_running_mean, new_running_var), in float64, one channel at
    a time from the definition (biased variance to normalise, unbiased for the running one)."""
    x64 = x.astype(np.float64)
    channels = x.shape[1]
    out = np.empty_like(x64)
    mean = np.empty(channels)
    invstd = np.empty(channels)
    new_mean = None if running_mean is None else running_mean.astype(np.float64).copy()
    new_var = None if running_var is None else running_var.astype(np.float64).copy()
    for c in range(channels):
        values = x64[:, c]
        if training:
            m = values.mean()
            v = ((values - m) ** 2).mean()
            if new_mean is not None:
                count = values.size
                new_mean[c] = (1 - momentum) * new_mean[c] + momentum * m
                new_var[c] = (1 - momentum) * new_var[c] + momentum * v * count / (count - 1)
        else:
            m, v = float(running_mean[c]), float(running_var[c])
        mean[c], invstd[c] = m, 1 / math.sqrt(v + eps)
        w = 1.0 if weight is None else float(weight[c])
        b = 0.0 if bias is None else float(bias[c])
        out[:, c] = (values - m) * invstd[c] * w + b
    if relu:
        out = np.maximum(out, 0)
    return out, mean, invstd, new_mean, new_var


def batch_norm2d_backward(grad_output, x, weight, mean, invstd, training, relu_output=None):
    """(grad_input, grad_weight, grad_bias) in float64 from the textbook formulas."""
    g = grad_output.astype(np.float64)
    if relu_output is not None:
        g = np.where(relu_output > 0, g, 0.0)
    x64 = x.astype(np.float64)
    grad_input = np.empty_like(x64)
    channels = x.shape[1]
    grad_weight, grad_bias = np.empty(channels), np.empty(channels)
    for c in range(channels):
        gc, xhat = g[:, c], (x64[:, c] - mean[c]) * invstd[c]
        w = 1.0 if weight is None else float(weight[c])
        grad_bias[c] = gc.sum()
        grad_weight[c] = (gc * xhat).sum()
        if training:
            grad_input[:, c] = w * invstd[c] * (gc - gc.mean() - xhat * (gc * xhat).mean())
        else:
            grad_input[:, c] = w * invstd[c] * gc
    return grad_input, grad_weight, grad_bias


def adaptive_windows(in_size, out_size):
    """PyTorch's adaptive windows: output i covers [floor(i*in/out), ceil((i+1)*in/out))."""
    return [((i * in_size) // out_size, -((-(i + 1) * in_size) // out_size)) for i in range(out_size)]


def adaptive_avg_pool2d(x, out_h, out_w):
    """PyTorch's adaptive windows, one output at a time, in float64."""
    H, W = x.shape[-2:]
    out = np.empty(x.shape[:-2] + (out_h, out_w))
    for oh, (h0, h1) in enumerate(adaptive_windows(H, out_h)):
        for ow, (w0, w1) in enumerate(adaptive_windows(W, out_w)):
            out[..., oh, ow] = x[..., h0:h1, w0:w1].astype(np.float64).mean(axis=(-2, -1))
    return out


def adaptive_max_pool2d(x, out_h, out_w, tie_break="first", nan="propagate"):
    """(values, indices) over PyTorch's adaptive windows with max_pool2d's tie and NaN rules, one
    window at a time: taps in row-major order, NaN winning (the last one) or read as -inf."""
    H, W = x.shape[-2:]
    planes = x.reshape(-1, H, W)
    out = np.empty((planes.shape[0], out_h, out_w), x.dtype)
    idx = np.empty(out.shape, np.int64)
    for plane in range(planes.shape[0]):
        for oh, (h0, h1) in enumerate(adaptive_windows(H, out_h)):
            for ow, (w0, w1) in enumerate(adaptive_windows(W, out_w)):
                best, best_index = None, -1
                for ih in range(h0, h1):
                    for iw in range(w0, w1):
                        v = planes[plane, ih, iw]
                        if nan == "ignore" and math.isnan(v):
                            v = -math.inf
                        takes = (best_index == -1 or (nan == "propagate" and math.isnan(v))
                                 or (v >= best if tie_break == "last" else v > best))
                        if takes:
                            best, best_index = v, ih * W + iw
                out[plane, oh, ow], idx[plane, oh, ow] = best, best_index
    return out.reshape(x.shape[:-2] + (out_h, out_w)), idx.reshape(x.shape[:-2] + (out_h, out_w))


def adaptive_max_pool2d_backward(grad_output, x, tie_break="first", nan="propagate"):
    """The gradient: each window's to its chosen tap, or ("split") shared equally by its tied taps;
    an input in several windows sums them in output order."""
    H, W = x.shape[-2:]
    out_h, out_w = grad_output.shape[-2:]
    out, idx = adaptive_max_pool2d(x, out_h, out_w, "first" if tie_break == "split" else tie_break, nan)
    planes, g = x.reshape(-1, H, W), grad_output.reshape(-1, out_h, out_w)
    out, idx = out.reshape(g.shape), idx.reshape(g.shape)
    gi = np.zeros_like(planes)
    for plane in range(planes.shape[0]):
        for oh, (h0, h1) in enumerate(adaptive_windows(H, out_h)):
            for ow, (w0, w1) in enumerate(adaptive_windows(W, out_w)):
                if tie_break != "split":
                    i = idx[plane, oh, ow]
                    gi[plane, i // W, i % W] += g[plane, oh, ow]
                    continue
                best = out[plane, oh, ow]
                values = planes[plane, h0:h1, w0:w1]
                if nan == "ignore":
                    values = np.where(np.isnan(values), -np.inf, values)
                tied = np.isnan(values) if math.isnan(best) else values == best
                share = g[plane, oh, ow] / x.dtype.type(tied.sum())
                for ih, iw in zip(*np.nonzero(tied)):
                    gi[plane, h0 + ih, w0 + iw] += share
    return gi.reshape(x.shape)


def fractional_starts(u, in_size, out_size, kernel, dtype):
    """Graham's pseudo-random window starts as PyTorch computes them, in x's dtype: window i <
    out - 1 at int((i + u) * alpha) - int(u * alpha), alpha = (in - k) / (out - 1); the last at
    in - k."""
    t = np.dtype(dtype).type
    starts = []
    if out_size > 1:
        alpha = t(in_size - kernel) / t(out_size - 1)
        starts = [int(t((t(i) + t(u)) * alpha)) - int(t(t(u) * alpha)) for i in range(out_size - 1)]
    return starts + [in_size - kernel] if out_size > 0 else []


def fractional_max_pool2d(x, kernel, out, samples):
    """(values, indices): each window's first strictly greatest value, a NaN winning over any
    number (the last NaN gives the index)."""
    (kh, kw), (out_h, out_w) = pair(kernel), pair(out)
    H, W = x.shape[-2:]
    planes, u = x.reshape(-1, H, W), samples.reshape(-1, 2)
    values = np.empty((planes.shape[0], out_h, out_w), x.dtype)
    indices = np.empty(values.shape, np.int64)
    for plane in range(planes.shape[0]):
        rows = fractional_starts(u[plane, 1], H, out_h, kh, x.dtype)
        columns = fractional_starts(u[plane, 0], W, out_w, kw, x.dtype)
        for oh, h0 in enumerate(rows):
            for ow, w0 in enumerate(columns):
                best, best_index = -math.inf, h0 * W + w0
                for ih in range(h0, h0 + kh):
                    for iw in range(w0, w0 + kw):
                        v = planes[plane, ih, iw]
                        if v > best or math.isnan(v):
                            best, best_index = v, ih * W + iw
                values[plane, oh, ow], indices[plane, oh, ow] = best, best_index
    shape = x.shape[:-2] + (out_h, out_w)
    return values.reshape(shape), indices.reshape(shape)
