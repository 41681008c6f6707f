"""ONNX Runtime as a third peer for bench/compare_torch.py's inference suite: a convpool network
(Sequential, Residual, Conv2d, BatchNorm2d in eval mode, ReLU, MaxPool2d, AdaptiveAvgPool2d(1),
Flatten, Linear) or a single convolution written as an ONNX graph with the same weights, and run
in an onnxruntime session with all graph optimizations (its own Conv+ReLU and Conv+Add fusions)
and the given number of threads."""

import numpy as np

import convpool as cp

try:
    import onnx
    import onnxruntime
    from onnx import helper, numpy_helper
except ImportError:  # the tables then have no ONNX Runtime column
    onnx = onnxruntime = None


class _Graph:
    """Nodes and initializers appended while walking a model, with fresh value names."""

    def __init__(self):
        self.nodes, self.initializers, self.count = [], [], 0

    def name(self, prefix):
        self.count += 1
        return f"{prefix}{self.count}"

    def constant(self, array):
        name = self.name("w")
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array, np.float32), name))
        return name

    def node(self, op, inputs, **attributes):
        out = self.name(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], **attributes))
        return out


def _conv_node(graph, x, weight, bias, stride, padding, dilation, groups):
    inputs = [x, graph.constant(weight)] + ([graph.constant(bias)] if bias is not None else [])
    return graph.node("Conv", inputs, strides=list(stride), pads=[padding[0], padding[1]] * 2,
                      dilations=list(dilation), group=groups)


def _emit(module, graph, x):
    nn = cp.nn
    if isinstance(module, nn.Sequential):
        for child in module:
            x = _emit(child, graph, x)
        return x
    if isinstance(module, nn.Residual):
        skip = x if module.shortcut is None else _emit(module.shortcut, graph, x)
        return graph.node("Add", [_emit(module.body, graph, x), skip])
    if isinstance(module, nn.Conv2d):
        if isinstance(module.padding, str):
            raise TypeError("onnx_models: padding strings are not written out")
        bias = None if module.bias is None else module.bias.data
        return _conv_node(graph, x, module.weight.data, bias, module.stride, module.padding, module.dilation,
                          module.groups)
    if isinstance(module, nn.BatchNorm2d):
        channels = module.num_features
        weight = module.weight.data if module.affine else np.ones(channels, np.float32)
        bias = module.bias.data if module.affine else np.zeros(channels, np.float32)
        return graph.node("BatchNormalization",
                          [x, graph.constant(weight), graph.constant(bias), graph.constant(module.running_mean),
                           graph.constant(module.running_var)], epsilon=module.eps)
    if isinstance(module, nn.ReLU):
        return graph.node("Relu", [x])
    if isinstance(module, nn.MaxPool2d):
        return graph.node("MaxPool", [x], kernel_shape=list(module.kernel_size), strides=list(module.stride),
                          pads=[module.padding[0], module.padding[1]] * 2, ceil_mode=int(module.ceil_mode))
    if isinstance(module, nn.AdaptiveAvgPool2d) and module.output_size in (1, (1, 1)):
        return graph.node("GlobalAveragePool", [x])
    if isinstance(module, nn.Flatten):
        return graph.node("Flatten", [x], axis=1)
    if isinstance(module, nn.Linear):
        inputs = [x, graph.constant(module.weight.data)] + ([graph.constant(module.bias.data)]
                                                            if module.bias is not None else [])
        return graph.node("Gemm", inputs, transB=1)
    raise TypeError(f"onnx_models: no ONNX node for {type(module).__name__}")


def _session(graph, x_name, out_name, input_shape, output_shape, threads):
    value = lambda name, shape: helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, list(shape))
    model = helper.make_model(
        helper.make_graph(graph.nodes, "convpool", [value(x_name, input_shape)], [value(out_name, output_shape)],
                          initializer=graph.initializers),
        opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Its idle threads would otherwise spin on the cores after each run and slow whatever the
    # benchmark times next (a convpool call measured up to 2x slower right after it).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def network_runner(model, x, threads):
    """A callable running `model` (eval mode) on x in ONNX Runtime, or None without it."""
    if onnxruntime is None:
        return None
    graph = _Graph()
    out = _emit(model, graph, "x")
    session = _session(graph, "x", out, x.shape, model(x).shape, threads)
    return lambda: session.run([out], {"x": x})


def conv_runner(x, weight, stride, padding, threads):
    """A callable running one convolution (no bias) on x in ONNX Runtime, or None without it."""
    if onnxruntime is None:
        return None
    graph = _Graph()
    out = _conv_node(graph, "x", weight, None, (stride, stride), (padding, padding), (1, 1), 1)
    session = _session(graph, "x", out, x.shape, cp.conv2d(x, weight, stride=stride, padding=padding).shape, threads)
    return lambda: session.run([out], {"x": x})
