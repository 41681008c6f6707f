"""What the custom operators share. Each operator calls a convpool kernel on the tensors' memory:
a contiguous CPU float32/float64 tensor reaches the kernel through Tensor.numpy() without a copy
(a torch.channels_last tensor does too where the kernel takes layout="nhwc": its (N, H, W, C)
permutation is contiguous; other layouts are copied to NCHW by the kernel's binding), and results
come back with torch.from_numpy, also without a copy. The kernels release the GIL."""


import torch



def _array(fn, name, tensor):
    if tensor.device.type != "cpu":
        raise TypeError(f"convpool.torch.{fn}: {name} is on {tensor.device}; convpool computes on the CPU "
                        f"(move it with .cpu())")
    if tensor.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"convpool.torch.{fn}: {name} has dtype {tensor.dtype}; convpool takes float32 or float64")
    return tensor.detach().numpy()


def _channels_last(tensor):
    """Whether a 4-D tensor is laid out channels last (and not also contiguous, as one with a
    single channel or a 1x1 plane is): then the NHWC kernels read it in place."""
    return (tensor.dim() == 4 and not tensor.is_contiguous()
            and tensor.is_contiguous(memory_format=torch.channels_last))


def _layout_of(x):
    """The kernels' layout for input x: 'nhwc' for a channels_last tensor, else 'nchw'."""
    return "nhwc" if _channels_last(x) else "nchw"


def _layout_array(fn, name, tensor, layout):
    """A tensor's memory as the kernel's array in `layout` ((N, H, W, C) for 'nhwc'), copied only
    where the tensor is not already laid out so."""
    if layout == "nhwc":
        return _array(fn, name, tensor.contiguous(memory_format=torch.channels_last).permute(0, 2, 3, 1))
    return _array(fn, name, tensor.contiguous())


def _layout_indices(indices, layout):
    """_layout_array for the int64 indices of a max pooling."""
    if layout == "nhwc":
        return indices.detach().contiguous(memory_format=torch.channels_last).permute(0, 2, 3, 1).numpy()
    return indices.detach().contiguous().numpy()


def _layout_tensor(array, layout):
    """A kernel's result in `layout` as the (N, C, H, W) tensor it is (channels_last for 'nhwc'),
    without a copy."""
    tensor = torch.from_numpy(array)
    return tensor.permute(0, 3, 1, 2) if layout == "nhwc" else tensor


def _backward_layout(input_shape, channels_last):
    """The layout of a backward operator that has the forward's input shape but not its input."""
    return "nhwc" if channels_last and len(input_shape) == 4 else "nchw"


def _shape_in(shape, layout):
    """An (N, C, H, W) shape as the kernel's array shape in `layout`."""
    return [shape[0], shape[2], shape[3], shape[1]] if layout == "nhwc" else list(shape)


def _empty_in_layout(like, shape, layout):
    """An empty (N, C, H, W) tensor like `like`, channels_last for 'nhwc'."""
    empty = like.new_empty(shape)
    return empty.contiguous(memory_format=torch.channels_last) if layout == "nhwc" else empty


def _empty_like_layout(x, shape, dtype=None):
    """An empty tensor of `shape` (and x's dtype, or `dtype`), laid out as x is (channels last or
    contiguous): the fake kernels' results."""
    empty = x.new_empty(shape, dtype=dtype)
    return empty.contiguous(memory_format=torch.channels_last) if _channels_last(x) else empty


def _output_size(size, kernel, stride, padding, dilation, ceil_mode):
    """PyTorch's pooling output size, for the fake kernels."""
    span = dilation * (kernel - 1) + 1
    out = (size + 2 * padding - span + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out


def _fitting(fn, x, sizes):
    """The spatial output ``sizes`` a fake kernel computed for input ``x``, or the ValueError the
    real kernel raises for a window that does not fit: fake tensors must not have shapes where the
    call fails."""
    if any(size < 1 for size in sizes):
        raise ValueError(f"convpool.torch.{fn}: the window does not fit the input of shape {tuple(x.shape)} "
                         f"(the output would be {tuple(sizes)})")
    return list(sizes)


# torch.library.Library rather than torch.library.custom_op: the operators are the same (schema,
# fake kernels, autograd), but custom_op's extra Python layers around each kernel doubled the cost
# of a call.
_LIBRARY = torch.library.Library("convpool", "DEF")


def _operator(name):
    """Defines convpool::<name> with the decorated function as its kernel for every device (it
    refuses all but the CPU itself, by name), the schema read from the function's annotations;
    returns the operator."""

    def define(kernel):
        _LIBRARY.define(name + torch.library.infer_schema(kernel, mutates_args=()))
        _LIBRARY.impl(name, kernel, "CompositeExplicitAutograd")
        return getattr(torch.ops.convpool, name).default

    return define


# Second derivatives. The backward of each linear backward kernel is the forward it came from or
# a gather by the same indices, so create_graph=True can differentiate through it again; where the
# backward is not linear in its gradient (Lp pooling, batch norm, evaluation-mode stochastic
# pooling, split ties) differentiating it raises instead of giving torch's silent zero.

def _gather(values, indices):
    """values (..., H, W) read at each plane's flat indices (..., OH, OW); index -1 reads 0."""
    flat = indices.flatten(-2)
    gathered = values.flatten(-2).gather(-1, flat.clamp(min=0))
    return gathered.masked_fill(flat < 0, 0).view(indices.shape)


def _scatter_add(values, indices, size):
    """The adjoint of _gather: values (..., OH, OW) added at their planes' flat indices into zeros
    (..., *size); index -1 adds nothing."""
    flat = indices.flatten(-2)
    added = values.flatten(-2).masked_fill(flat < 0, 0)
    zeros = values.new_zeros(values.shape[:-2] + (size[0] * size[1],))
    return zeros.scatter_add(-1, flat.clamp(min=0), added).view(values.shape[:-2] + tuple(size))


def _second_derivative_refused(operator, why):
    """The autograd formula of a backward operator whose own derivative is not implemented."""
    alternative = getattr(torch.nn.functional, operator, None)
    instead = f"; use torch.nn.functional.{operator} where they are needed" if alternative else ""

    def refuse(ctx, *grads):
        raise NotImplementedError(f"convpool.torch.{operator}: second derivatives (differentiating its backward, "
                                  f"create_graph=True) are not implemented: {why}{instead}")

    return refuse


def _save_indices(ctx, inputs, output):
    """Setup of a backward operator (grad_output, x, indices, ...) that routes by indices."""
    ctx.arguments = inputs[3:]
    ctx.save_for_backward(inputs[2])


def _gathered_again(operator, refusal=None):
    """The autograd formula of a backward operator (grad_output, x, indices, *arguments) that adds
    each output's gradient at its index: linear in grad_output, whose derivative is the gather by
    the same indices, and constant in x almost everywhere. refusal(arguments) gives the reason
    the derivative is not implemented for those arguments, or None."""

    def gradient(ctx, grad_grad_input):
        why = refusal(ctx.arguments) if refusal else None
        if why:
            _second_derivative_refused(operator, why)(ctx)
        (indices,) = ctx.saved_tensors
        return (_gather(grad_grad_input, indices), None, None) + (None,) * len(ctx.arguments)

    return gradient


def _pooled_with_indices(x, size):
    """Fake results of a max pooling of x to the spatial `size`: values and int64 indices."""
    shape = list(x.shape[:-2]) + list(size)
    return x.new_empty(shape), x.new_empty(shape, dtype=torch.int64)


def _save_input_and_indices(ctx, inputs, output):
    x, *ctx.arguments = inputs
    ctx.save_for_backward(x, output[1])


def _gradient_through_indices(backward):
    """The autograd formula of a max pooling operator whose backward takes (grad_output, x,
    indices, the forward's other arguments)."""

    def gradient(ctx, grad_output, _grad_indices):
        x, indices = ctx.saved_tensors
        return (backward(grad_output, x, indices, *ctx.arguments),) + (None,) * len(ctx.arguments)

    return gradient


def _optional_array(fn, name, tensor):
    return None if tensor is None else _array(fn, name, tensor)
