#pragma once
// Docstrings of the kernels (PyTorch's layout: summary, Args, Shape, Example). One file for all of
// them, longer than the others on purpose: the API pages and the doctests read them, and one place
// keeps their wording alike.

namespace convpool::bindings::docs {

inline constexpr const char* max_pool2d = R"doc(2-D max pooling over (N, C, H, W) or (C, H, W) float32/float64 input.

Args:
    x: input array.
    kernel_size: int or (kH, kW).
    stride: int or (sH, sW); default kernel_size.
    padding: int or (pH, pW), implicit -inf padding (never selected); at most kernel_size // 2.
    dilation: int or (dH, dW); 1 is a dense window.
    ceil_mode: use ceil instead of floor for the output size (a window must start inside the
        input or the left padding).
    return_indices: also return int64 indices, flat within each H*W plane (-1 for a window
        with no tap inside the input, possible with dilation).
    tie_break: which tied maximum the index names and the gradient reaches: 'first' or 'last'
        in row-major window order, or 'split' (indices as 'first'; the gradient is divided
        equally among all tied maxima).
    nan: 'propagate' (PyTorch: a NaN wins, the last NaN in scan order gives the index) or
        'ignore' (NaN is treated as -inf).
    layout: 'nchw' (the default), or 'nhwc': x is (N, H, W, C) or (H, W, C), channels last,
        and out and indices are too; indices still count h * W + w within a channel's plane.
        The results are the NCHW ones transposed, bit for bit.

Shape:
    out: (N, C, H_out, W_out) ((N, H_out, W_out, C) with layout='nhwc') with
    H_out = floor((H + 2*pH - dH*(kH-1) - 1) / sH) + 1 (ceil in ceil_mode), likewise W_out.

Returns:
    out, or (out, indices) if return_indices.

Example:
    >>> x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    >>> cp.max_pool2d(x, 2)
    array([[[[ 5.,  7.],
             [13., 15.]]]], dtype=float32)
    >>> y, indices = cp.max_pool2d(x, 3, stride=1, padding=1, return_indices=True)
    >>> indices[0, 0]
    array([[ 5,  6,  7,  7],
           [ 9, 10, 11, 11],
           [13, 14, 15, 15],
           [13, 14, 15, 15]])
)doc";

inline constexpr const char* max_pool2d_backward = R"doc(Gradient of max_pool2d with respect to x.

Args:
    grad_output: gradient of the pooled output, same dtype as x.
    x: the forward input (its shape fixes the geometry; its values are read by 'split').
    indices: int64 indices from max_pool2d(..., return_indices=True) with the same tie_break;
        may be None for tie_break='split', which recomputes the ties from x.
    kernel_size, stride, padding, dilation, ceil_mode, tie_break, nan, layout: as in the
        forward call.

Returns:
    grad_input with the shape of x. Where windows overlap, an input's gradient is the sum over
    every window that selected it, added in row-major output order: bitwise identical for any
    number of threads, and in either layout.

Example:
    >>> x = np.array([[[[0.0, 5.0, 5.0, 0.0]]]])  # two windows of 2 at stride 1 tie on the fives
    >>> for rule in ("first", "last", "split"):
    ...     y, indices = cp.max_pool2d(x, (1, 2), stride=1, return_indices=True, tie_break=rule)
    ...     print(rule, cp.max_pool2d_backward(np.ones_like(y), x, indices, (1, 2), stride=1, tie_break=rule).ravel())
    ...
    first [0. 2. 1. 0.]
    last [0. 1. 2. 0.]
    split [0.  1.5 1.5 0. ]
)doc";

inline constexpr const char* avg_pool2d = R"doc(2-D average pooling over (N, C, H, W) or (C, H, W) input.

Args:
    x: input array (float32 or float64).
    kernel_size: int or (kH, kW).
    stride: int or (sH, sW); default kernel_size.
    padding: int or (pH, pW), implicit zero padding; at most kernel_size // 2.
    ceil_mode: use ceil instead of floor for the output size.
    count_include_pad: divide by the window clipped to the padded input (True) or by the number
        of taps inside the input (False).
    divisor_override: if given (non-zero), the divisor of every window.
    layout: 'nchw' (the default), or 'nhwc': x and out are (N, H, W, C) or (H, W, C), channels
        last, with the NCHW results transposed, bit for bit.

Shape:
    out: (N, C, H_out, W_out), H_out = floor((H + 2*pH - kH) / sH) + 1 (ceil in ceil_mode).

Example:
    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> cp.avg_pool2d(x, 2)
    array([[[[ 2.5,  4.5],
             [10.5, 12.5]]]])
    >>> cp.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
    array([[[[ 2.5,  4. ],
             [ 8.5, 10. ]]]])
)doc";

inline constexpr const char* avg_pool2d_backward = R"doc(Gradient of avg_pool2d with respect to its input.

Args:
    grad_output: gradient of the pooled output.
    input_shape: shape of the forward input, (N, C, H, W) or (C, H, W) ((N, H, W, C) or
        (H, W, C) with layout='nhwc').
    kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, layout: as in
        the forward call.

Returns:
    grad_input of shape input_shape and the dtype of grad_output.

Example:
    >>> cp.avg_pool2d_backward(np.ones((1, 1, 2, 2)), (1, 1, 4, 4), 2)
    array([[[[0.25, 0.25, 0.25, 0.25],
             [0.25, 0.25, 0.25, 0.25],
             [0.25, 0.25, 0.25, 0.25],
             [0.25, 0.25, 0.25, 0.25]]]])
)doc";

inline constexpr const char* lp_pool2d = R"doc(2-D power-average pooling: ``(sum over the window of |x|^p)^(1/p)``.

Matches torch.nn.functional.lp_pool2d except (1) it uses ``|x|``, so odd or fractional p is
defined for negative inputs, and (2) a ceil_mode window cut by the input edge gives the true
sum over its taps (PyTorch rescales it to the full kernel area).

Args:
    x: input array (float32 or float64), (N, C, H, W) or (C, H, W).
    norm_type: p, a positive finite number (2 is L2 pooling).
    kernel_size: int or (kH, kW).
    stride: int or (sH, sW); default kernel_size.
    ceil_mode: use ceil instead of floor for the output size.

Example:
    >>> x = np.array([[[[3.0, -4.0], [0.0, 0.0]]]])
    >>> cp.lp_pool2d(x, 2, 2)  # the window's Euclidean norm
    array([[[[5.]]]])
)doc";

inline constexpr const char* lp_pool2d_backward = R"doc(Gradient of lp_pool2d with respect to x.

The gradient ``sign(x) |x|^(p-1) / y^(p-1)`` is taken as 0 where x == 0 or the window's output
y == 0.

Args:
    grad_output: gradient of the pooled output, same dtype as x.
    x: the forward input.
    norm_type, kernel_size, stride, ceil_mode: as in the forward call.

Example:
    >>> x = np.array([[[[3.0, -4.0], [0.0, 0.0]]]])
    >>> cp.lp_pool2d_backward(np.ones((1, 1, 1, 1)), x, 2, 2)
    array([[[[ 0.6, -0.8],
             [ 0. ,  0. ]]]])
)doc";

inline constexpr const char* stochastic_pool2d =
    R"doc(2-D stochastic pooling (Zeiler & Fergus, 2013) of non-negative input.

In training, each window picks one element with probability proportional to its value and
outputs it (an all-zero window outputs 0 and picks its first element). In evaluation, each
window outputs the probability-weighted average sum(a^2) / sum(a) (0 if all zero).

Args:
    x: non-negative, finite float32/float64 array (N, C, H, W) or (C, H, W).
    kernel_size: int or (kH, kW).
    stride: int or (sH, sW); default kernel_size.
    training: sample (True) or take the weighted average (False).
    seed: int seed; the same seed gives the same samples for any number of threads.
        None draws a fresh random seed.
    return_indices: also return the int64 index (flat in the H*W plane) of each pick
        (training only).

Example:
    >>> x = np.array([[[[1.0, 3.0], [0.0, 0.0]]]])  # tap 1 is drawn 3 times out of 4
    >>> y, indices = cp.stochastic_pool2d(x, 2, seed=0, return_indices=True)
    >>> y.shape, int(indices.item()) in (0, 1)
    ((1, 1, 1, 1), True)
    >>> cp.stochastic_pool2d(x, 2, training=False)  # the probability-weighted average (1 + 9) / 4
    array([[[[2.5]]]])
)doc";

inline constexpr const char* stochastic_pool2d_backward = R"doc(Gradient of stochastic_pool2d with respect to x.

In training the gradient goes to the picked element (indices from return_indices=True),
summed where windows overlap; in evaluation it is that of sum(a^2)/sum(a).

Args:
    grad_output: gradient of the pooled output, same dtype as x.
    x: the forward input.
    indices: the picks (training), or None (evaluation).
    kernel_size, stride, training: as in the forward call.

Example:
    >>> x = np.array([[[[1.0, 3.0], [0.0, 0.0]]]])
    >>> y, indices = cp.stochastic_pool2d(x, 2, seed=0, return_indices=True)
    >>> cp.stochastic_pool2d_backward(np.ones_like(y), x, indices, 2).sum().item()  # one window, one tap
    1.0
)doc";

inline constexpr const char* max_unpool2d =
    R"doc(Max unpooling, as PyTorch's max_unpool2d: zeros, with each x value put at the position its
index names in its output plane (what max_pool2d's return_indices gives).

Args:
    x: (N, C, H, W) or (C, H, W) float32/float64.
    indices: int64, x's shape; flat positions in an output plane. -1 places nothing; any other
        value outside the plane raises ValueError. Where two values name one position, the later
        in row-major order is kept.
    kernel_size, stride (default kernel_size), padding: the pooling's.
    output_size: None for (H - 1)*stride - 2*padding + kernel_size, or (H_out, W_out) (or the
        whole output shape) within the stride of that.

Example:
    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> y, indices = cp.max_pool2d(x, 2, return_indices=True)
    >>> cp.max_unpool2d(y, indices, 2)
    array([[[[ 0.,  0.,  0.,  0.],
             [ 0.,  5.,  0.,  7.],
             [ 0.,  0.,  0.,  0.],
             [ 0., 13.,  0., 15.]]]])
)doc";

inline constexpr const char* max_unpool2d_backward = R"doc(Gradient of max_unpool2d with respect to x.

Args:
    grad_output: gradient of the unpooled output.
    indices, kernel_size, stride, padding, output_size: as in the forward call.

Returns:
    grad_output at each index's position, 0 where the index is -1.

Example:
    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> y, indices = cp.max_pool2d(x, 2, return_indices=True)
    >>> cp.max_unpool2d_backward(np.arange(16.0).reshape(1, 1, 4, 4), indices, 2)
    array([[[[ 5.,  7.],
             [13., 15.]]]])
)doc";

inline constexpr const char* adaptive_max_pool2d =
    R"doc(Adaptive max pooling over PyTorch's windows, with max_pool2d's tie and NaN rules.

Args:
    x: (N, C, H, W) or (C, H, W) float32/float64.
    output_size: an int or an (H_out, W_out) pair; None in a pair keeps that input size. Output i
        of a dimension covers inputs [floor(i*in/out), ceil((i+1)*in/out)), which overlap where
        out does not divide in.
    return_indices: also return the int64 flat index of each maximum within its H x W plane.
    tie_break: 'first', 'last' or 'split' (the backward divides a window's gradient equally
        among its tied maxima; the index names the first).
    nan: 'propagate' (any NaN wins; the last NaN gives the index) or 'ignore' (NaN is -inf).

Example:
    >>> x = np.arange(25.0).reshape(1, 1, 5, 5)
    >>> cp.adaptive_max_pool2d(x, 2)  # windows rows [0, 3) and [2, 5): they overlap on row 2
    array([[[[12., 14.],
             [22., 24.]]]])
)doc";

inline constexpr const char* adaptive_max_pool2d_backward = R"doc(Gradient of adaptive_max_pool2d.

Args:
    grad_output: gradient of the pooled output.
    x: the forward input.
    indices: the forward's indices (may be None for tie_break='split').
    output_size, tie_break, nan: as in the forward call.

Returns:
    The gradient with respect to x; an input in several windows sums their contributions.

Example:
    >>> x = np.arange(25.0).reshape(1, 1, 5, 5)
    >>> y, indices = cp.adaptive_max_pool2d(x, 1, return_indices=True)
    >>> cp.adaptive_max_pool2d_backward(np.ones_like(y), x, indices, 1)[0, 0, 4]
    array([0., 0., 0., 0., 1.])
)doc";

inline constexpr const char* fractional_max_pool2d =
    R"doc(Fractional max pooling (Graham 2014) with PyTorch's window rule, given the samples.

The package's convpool.fractional_max_pool2d draws the samples (seeded) and takes output_ratio.

Args:
    x: (N, C, H, W) or (C, H, W) float32/float64.
    kernel_size: an int or an (h, w) pair.
    output_size: an int or an (H_out, W_out) pair; H_out + kh - 1 <= H and W_out + kw - 1 <= W.
    _random_samples: (N, C, 2) of x's dtype in [0, 1) (N = 1 for CHW input): per plane the
        width's sample, then the height's. Window i of a dimension starts at
        int((i + u) * alpha) - int(u * alpha), alpha = (in - k) / (out - 1); the last at in - k.

Returns:
    (output, indices): the first greatest value of each window (a NaN wins; the last NaN gives
    the index) and its int64 flat index within its H x W plane.
)doc";

inline constexpr const char* fractional_max_pool2d_backward =
    R"doc(Gradient of fractional_max_pool2d.

Args:
    grad_output: gradient of the pooled output.
    x: the forward input (its shape and dtype).
    indices: the forward's indices.

Returns:
    The gradient with respect to x; an input in several windows sums their contributions.

Example:
    >>> x = np.arange(25.0).reshape(1, 1, 5, 5)
    >>> y, indices = cp.fractional_max_pool2d(x, 2, 3, return_indices=True, seed=0)
    >>> cp.fractional_max_pool2d_backward(np.ones_like(y), x, indices).sum().item()  # 9 windows
    9.0
)doc";

inline constexpr const char* conv2d =
    R"doc(2-D convolution (cross-correlation) over (N, C_in, H, W) or (C_in, H, W) float32/float64 input.

Args:
    x: input array.
    weight: (C_out, C_in / groups, kH, kW), same dtype as x, or a PackedConv2dWeight of it
        (packed once, for inference).
    bias: None or (C_out,), same dtype as x.
    stride: int or (sH, sW).
    padding: int or (pH, pW) zeros on both sides, 'valid' (no padding) or 'same' (output size
        equals input size; requires stride 1; an odd total padding dH*(kH-1) puts the extra row
        at the bottom and the extra column at the right, as PyTorch does).
    dilation: int or (dH, dW); 1 is a dense kernel.
    groups: C_in and C_out are split into this many groups, each convolved separately;
        groups == C_in is a depthwise convolution.
    activation: None, or 'relu' to return max(0, conv2d(x) + bias) (relu's rules), applied to
        each output tile while it is in the cache.
    winograd: True: a 3x3 convolution at stride 1 and dilation 1 with one group computes
        through Winograd's F(2x2, 3x3) where it saves work: 2.25 times fewer multiply-adds,
        rounded differently (docs/semantics.md, "Convolution"). None (the default): a PackedConv2dWeight's own flag,
        else False. With a packed weight, True or False must agree with its flag (ValueError).
        Channels-last calls compute the definition's sums whatever it says.
    layout: 'nchw' (the default), or 'nhwc': x is (N, H, W, C_in) or (H, W, C_in), channels last,
        and so is out; the weight keeps its shape. The results equal the NCHW ones transposed,
        within rounding (the sums run tap by tap over the channels); bitwise identical for any
        number of threads.

Shape:
    out: (N, C_out, H_out, W_out) with
    H_out = floor((H + pH_top + pH_bottom - dH*(kH-1) - 1) / sH) + 1, likewise W_out;
    (N, H_out, W_out, C_out) with layout='nhwc'.

Example:
    >>> x = np.ones((1, 1, 4, 4))
    >>> w = np.ones((2, 1, 3, 3))
    >>> cp.conv2d(x, w, bias=np.array([0.0, -10.0]), padding=1)[:, :, 0]  # a corner sees 4 taps
    array([[[ 4.,  6.,  6.,  4.],
            [-6., -4., -4., -6.]]])
    >>> cp.conv2d(x, w, padding="same", activation="relu")[0, 1, 1]
    array([6., 9., 9., 6.])
    >>> cp.conv2d(np.ones((1, 4, 4, 1)), w, padding=1, layout="nhwc")[0, 0]  # (N, H, W, C) in and out
    array([[4., 4.],
           [6., 6.],
           [6., 6.],
           [4., 4.]])
)doc";

inline constexpr const char* PackedConv2dWeight = R"doc(A conv2d weight packed once for the kernels.

conv2d packs its weight into the register tiles' layout on every call; for a layer of many
channels on a small plane that costs as much as the arithmetic. Pass this object as conv2d's (or
conv2d_backward's) weight instead, for weights that no longer change: inference. It holds a copy
of the weight, read-only as .weight; packing happens on the first call that needs each layout.

Args:
    weight: (C_out, C_in / groups, kH, kW), float32 or float64; x must have the same dtype.
    winograd: 3x3 convolutions at stride 1 and dilation 1 with one group compute through
        Winograd's F(2x2, 3x3) where it saves work (planes of about 10x10 outputs or more):
        2.25 times fewer multiply-adds, rounded differently from the direct sums (docs/guide/numpy.md,
        "Packed weights for inference"); still the same results for any number of threads.

Example:
    >>> w = np.random.default_rng(0).standard_normal((8, 4, 3, 3)).astype(np.float32)
    >>> packed = cp.PackedConv2dWeight(w)
    >>> x = np.ones((1, 4, 6, 6), np.float32)
    >>> np.array_equal(cp.conv2d(x, packed, padding=1), cp.conv2d(x, w, padding=1))
    True
    >>> packed
    PackedConv2dWeight(shape=(8, 4, 3, 3), dtype=float32)
)doc";

inline constexpr const char* conv2d_backward = R"doc(Gradients of conv2d.

Args:
    grad_output: gradient of the convolution's output, same dtype as x.
    x: the forward input.
    weight: the forward weight (an array or a PackedConv2dWeight).
    stride, padding, dilation, groups: as in the forward call.
    needs: which gradients to compute, any of 'input', 'weight', 'bias'.
    winograd: True: the input gradient of a 3x3 stride-1 convolution (one group, dilation 1,
        padding at most 2) computes through Winograd's F(2x2, 3x3) where it saves work; the
        weight and bias gradients keep the direct sums. None (the default): a
        PackedConv2dWeight's own flag, else False; with a packed weight, True or False must
        agree with its flag (ValueError).
    layout: 'nchw' (the default) or 'nhwc', as in the forward call: grad_output, x and
        grad_input channels last.

Returns:
    (grad_input, grad_weight, grad_bias), with None in place of each gradient not asked for.
    The gradients are bitwise identical for any number of threads.

Example:
    >>> x, w = np.ones((1, 1, 4, 4)), np.ones((2, 1, 3, 3))
    >>> grad_input, grad_weight, grad_bias = cp.conv2d_backward(np.ones((1, 2, 2, 2)), x, w)
    >>> grad_input[0, 0]
    array([[2., 4., 4., 2.],
           [4., 8., 8., 4.],
           [4., 8., 8., 4.],
           [2., 4., 4., 2.]])
    >>> grad_bias
    array([4., 4.])
    >>> grads = cp.conv2d_backward(np.ones((1, 2, 2, 2)), x, w, needs=("input",))
    >>> grads[1] is None and grads[2] is None
    True
)doc";

inline constexpr const char* conv_transpose2d =
    R"doc(2-D transposed convolution over (N, C_in, H, W) or (C_in, H, W) float32/float64 input: the
gradient of conv2d with respect to its input, as PyTorch's conv_transpose2d.

Args:
    x: input array.
    weight: (C_in, C_out / groups, kH, kW), same dtype as x.
    bias: None or (C_out,), same dtype as x.
    stride: int or (sH, sW).
    padding: int or (pH, pW): dH*(kH-1) - pH rows of zeros around the input (implicitly).
    output_padding: int or (opH, opW) rows and columns added at the bottom and right of the
        output; each smaller than the stride or the dilation in its dimension.
    groups: C_in and C_out are split into this many groups, each transposed separately.
    dilation: int or (dH, dW).

Shape:
    out: (N, C_out, H_out, W_out) with
    H_out = (H - 1)*sH - 2*pH + dH*(kH-1) + opH + 1, likewise W_out.

Example:
    >>> x = np.ones((1, 1, 2, 2))
    >>> w = np.ones((1, 1, 3, 3))  # (C_in, C_out / groups, kH, kW)
    >>> cp.conv_transpose2d(x, w, stride=2)[0, 0]
    array([[1., 1., 2., 1., 1.],
           [1., 1., 2., 1., 1.],
           [2., 2., 4., 2., 2.],
           [1., 1., 2., 1., 1.],
           [1., 1., 2., 1., 1.]])
)doc";

inline constexpr const char* conv_transpose2d_backward = R"doc(Gradients of conv_transpose2d.

Args:
    grad_output: gradient of the transposed convolution's output, same dtype as x.
    x: the forward input.
    weight: the forward weight.
    stride, padding, output_padding, groups, dilation: as in the forward call.
    needs: which gradients to compute, any of 'input', 'weight', 'bias'.

Returns:
    (grad_input, grad_weight, grad_bias), with None in place of each gradient not asked for.
    The gradients are bitwise identical for any number of threads.

Example:
    >>> x, w = np.ones((1, 1, 2, 2)), np.ones((1, 1, 3, 3))
    >>> grad_input, grad_weight, grad_bias = cp.conv_transpose2d_backward(np.ones((1, 1, 5, 5)), x, w, stride=2)
    >>> grad_input[0, 0], grad_bias
    (array([[9., 9.],
           [9., 9.]]), array([25.]))
)doc";

inline constexpr const char* relu = R"doc(max(x, 0) elementwise, for float32/float64 arrays of any shape.

NaN stays NaN, as in PyTorch. Threaded; releases the GIL. Layout-free: any memory order of an
image batch (NCHW or channels last) gives the same values in the same places.

Args:
    x: input array.
    residual: None, or an array of x's shape and dtype: then relu(x + residual) in one pass, a
        residual block's sum and the ReLU after it (relu_backward of the result is the gradient
        of both x and residual).

Example:
    >>> cp.relu(np.array([-1.0, -0.0, 2.0, np.nan]))
    array([ 0., -0.,  2., nan])
    >>> cp.relu(np.array([1.0, 2.0]), residual=np.array([-3.0, 1.0]))
    array([0., 3.])
)doc";

inline constexpr const char* relu_backward = R"doc(Gradient of relu: grad_output where y > 0 (or y is NaN), else 0.

Args:
    grad_output: gradient of relu's output, same shape and dtype as y.
    y: relu's output.

Example:
    >>> y = cp.relu(np.array([-1.0, 0.0, 2.0]))
    >>> cp.relu_backward(np.array([5.0, 5.0, 5.0]), y)
    array([0., 0., 5.])
)doc";

inline constexpr const char* batch_norm2d =
    R"doc(2-D batch normalization over (N, C, H, W) or (N, H, W, C) float32/float64 input, as PyTorch's batch_norm.

Args:
    x: input array.
    weight, bias: None (1 and 0) or (C,) arrays of x's dtype.
    running_mean, running_var: None (no running statistics) or writable contiguous (C,) arrays
        of x's dtype, updated in place in training: (1 - momentum) * running + momentum *
        batch statistic, the variance unbiased. Required when training is False.
    training: normalize with the batch's mean and biased variance per channel (more than one
        value per channel needed); else with the running statistics.
    momentum: the running statistics' update factor (nn.BatchNorm2d passes 1 / the number of
        batches seen for momentum=None, a cumulative average, as PyTorch's layer does).
    eps: added to the variance before its square root.
    activation: None, or 'relu' to return max(0, batch_norm(x)) in the same pass.
    layout: 'nchw' (the default), or 'nhwc': x (and out) is (N, H, W, C), channels last.

Returns:
    (out, saved_mean, saved_invstd): out has x's shape; saved_mean and saved_invstd (C,) are the
    statistics the normalization used (the batch's in training, the running ones otherwise),
    which batch_norm2d_backward takes. Sums run in x's dtype over blocks of 2,048 elements and
    in float64 across blocks, in an order fixed by the shapes: bitwise identical for any number
    of threads, and in either layout (the 'nhwc' results are the 'nchw' ones transposed, bit
    for bit).

Example:
    >>> x = np.arange(8.0).reshape(2, 1, 2, 2)
    >>> running_mean, running_var = np.zeros(1), np.ones(1)
    >>> out, mean, invstd = cp.batch_norm2d(x, running_mean=running_mean, running_var=running_var)
    >>> mean, running_mean  # the running mean moved by momentum 0.1 towards 3.5
    (array([3.5]), array([0.35]))
    >>> print(abs(float(out.mean())) < 1e-12, round(float(out.std()), 4))  # normalized
    True 1.0
)doc";

inline constexpr const char* batch_norm2d_backward = R"doc(Gradients of batch_norm2d.

Args:
    grad_output: gradient of batch_norm2d's output, same shape and dtype as x.
    x: the forward input.
    weight: the forward weight (None: 1).
    saved_mean, saved_invstd: the statistics batch_norm2d returned.
    training: as in the forward call (in training the batch statistics depend on x).
    needs: which gradients to compute, any of 'input', 'weight', 'bias'.
    activation: as in the forward call; with 'relu', output (the forward's output) is
        required, and no gradient passes where it is <= 0.
    layout: as in the forward call: grad_output, x, output and grad_input are (N, H, W, C) with
        'nhwc'.

Returns:
    (grad_input, grad_weight, grad_bias), with None in place of each gradient not asked for;
    bitwise equal across layouts, as the forward's.

Example:
    >>> x = np.arange(8.0).reshape(2, 1, 2, 2)
    >>> out, mean, invstd = cp.batch_norm2d(x)
    >>> grads = cp.batch_norm2d_backward(np.ones_like(x), x, None, mean, invstd, needs=("input", "bias"))
    >>> float(abs(grads[0]).max()) < 1e-12, grads[2]  # a shift of all outputs is not x's doing
    (True, array([8.]))
)doc";

inline constexpr const char* adaptive_avg_pool2d =
    R"doc(2-D adaptive average pooling of (N, C, H, W) or (C, H, W) float32/float64 input to a fixed size.

Args:
    x: input array.
    output_size: int or (H_out, W_out); an entry None keeps that size of x. Output i of a
        dimension averages the inputs [floor(i * in / out), ceil((i + 1) * in / out)), as in
        PyTorch; 1 is global average pooling.
    layout: 'nchw' (the default), or 'nhwc': x and out are (N, H, W, C) or (H, W, C), channels
        last, with the NCHW results transposed, bit for bit.

Shape:
    out: (N, C, H_out, W_out).

Example:
    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> cp.adaptive_avg_pool2d(x, 1)  # global average pooling
    array([[[[7.5]]]])
    >>> cp.adaptive_avg_pool2d(x, (2, None)).shape
    (1, 1, 2, 4)
)doc";

inline constexpr const char* adaptive_avg_pool2d_backward = R"doc(Gradient of adaptive_avg_pool2d.

Args:
    grad_output: gradient of the pooled output; its spatial sizes are the output size.
    input_shape: the shape of the forward input.
    layout: as in the forward call ('nhwc': grad_output and input_shape are (N, H, W, C) or
        (H, W, C)).

Returns:
    grad_input of shape input_shape: each output's gradient divided equally among its window,
    summed where windows overlap. Bitwise identical for any number of threads.

Example:
    >>> cp.adaptive_avg_pool2d_backward(np.ones((1, 1, 1, 1)), (1, 1, 2, 2))
    array([[[[0.25, 0.25],
             [0.25, 0.25]]]])
)doc";

inline constexpr const char* set_num_threads = R"doc(Sets the number of threads every convpool kernel uses.

Args:
    n: an int from 1 to 4 times the cores OpenMP sees. The setting applies to kernels started
        from any Python thread; results are bitwise the same for any count.

Example:
    >>> previous = cp.get_num_threads()
    >>> cp.set_num_threads(1)
    >>> cp.get_num_threads()
    1
    >>> cp.set_num_threads(previous)
)doc";

inline constexpr const char* get_num_threads = R"doc(The number of threads convpool's kernels use.

Returns:
    the last set_num_threads value, else OpenMP's default (one per core); 1 in a process forked
    after kernels ran on several threads.

Example:
    >>> cp.get_num_threads() >= 1
    True
)doc";

inline constexpr const char* build_info =
    R"doc(How the module was built, and which instruction set its kernels use on this CPU.

Returns:
    a dict: "compiler" (GCC's version string), "openmp" (the OpenMP version, yyyymm), "isas" (the
    instruction sets this CPU runs, the baseline first and the best last: on x86-64 of
    "baseline", "avx2" and "avx512", on 64-bit ARM "baseline" and "asimd") and "isa" (the one the
    kernels use: the best, or the one the environment variable CONVPOOL_ISA names among "isas").

Example:
    >>> sorted(cp.build_info())
    ['compiler', 'isa', 'isas', 'openmp']
    >>> cp.build_info()["isas"][0], cp.build_info()["isa"] in cp.build_info()["isas"]
    ('baseline', True)
)doc";

}  // namespace convpool::bindings::docs
