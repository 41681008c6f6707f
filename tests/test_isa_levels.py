"""The kernel suite at every instruction-set level this CPU supports (CONVPOOL_ISA lowers it):
each level against the plain NumPy references (so that a host with one level still checks it),
and the levels against each other: bit-for-bit equal where the arithmetic does not depend on the
level (pooling, relu), within float32 rounding for the convolutions, whose vector kernels fuse
multiply-adds in another order."""

import os
import subprocess
import sys

import numpy as np

import convpool as cp
import reference

CONVOLUTIONS = {  # name: (weight shape, arguments), one per convolution path
    "gemm": ((16, 8, 3, 3), dict(padding=1)),
    "direct": ((6, 8, 5, 5), dict(padding=2)),
    "strided": ((12, 8, 3, 3), dict(stride=2)),
    "depthwise": ((16, 1, 3, 3), dict(padding=1, groups=8)),
}

SCRIPT = f"CONVOLUTIONS = {CONVOLUTIONS!r}\n" + r"""
import sys
import numpy as np
import convpool as cp

rng = np.random.default_rng(5)
ties = rng.integers(0, 3, (2, 4, 13, 11)).astype(np.float32)
x = rng.standard_normal((2, 8, 13, 11)).astype(np.float32)
results = {"isa": np.array(cp.build_info()["isa"]), "input_ties": ties, "input_x": x}
y, idx = cp.max_pool2d(ties, 3, 2, 1, return_indices=True)
results["max"], results["max_idx"] = y, idx
results["max_split"] = cp.max_pool2d_backward(np.ones_like(y), ties, None, 3, 2, 1, tie_break="split")
results["avg"] = cp.avg_pool2d(x, 3, 1, 1)
results["lp"] = cp.lp_pool2d(np.abs(x), 2, 2)
results["relu"] = cp.relu(x)
for name, (shape, args) in CONVOLUTIONS.items():
    weight = rng.standard_normal(shape).astype(np.float32)
    results[f"input_weight_{name}"] = weight
    out = cp.conv2d(x, weight, **args)
    grads = cp.conv2d_backward(np.cos(out), x, weight, **args)
    results[f"conv_{name}"] = out
    for part, grad in zip(("input", "weight", "bias"), grads):
        results[f"conv_{name}_{part}"] = grad
from calls import CALLS, arrays_of  # every exported function, once

for name, call in CALLS.items():
    for index, array in enumerate(arrays_of(call(None))):
        results[f"call {name} {index}"] = array
np.savez(sys.argv[1], **results)
"""


def run_at(level, folder):
    path = os.path.join(folder, f"{level}.npz")
    # The script imports calls.py from this folder, ahead of any path the caller set.
    tests = os.path.dirname(os.path.abspath(__file__))
    environment = dict(os.environ, CONVPOOL_ISA=level,
                       PYTHONPATH=os.pathsep.join(filter(None, (tests, os.environ.get("PYTHONPATH")))))
    subprocess.run([sys.executable, "-c", SCRIPT, path], check=True, env=environment, timeout=120)
    with np.load(path) as archive:
        return {name: archive[name] for name in archive.files}


def references(inputs):
    """What each result of SCRIPT must be, from tests/reference.py's NumPy loops."""
    ties, x = inputs["input_ties"], inputs["input_x"]
    y, indices = reference.max_pool2d(ties, 3, 2, 1)
    expected = {"max": y, "max_idx": indices, "avg": reference.avg_pool2d(x, 3, 1, 1),
                "max_split": reference.max_pool2d_backward(np.ones_like(y), ties, 3, 2, 1, tie_break="split"),
                "lp": reference.lp_pool2d(np.abs(x), 2, 2), "relu": np.maximum(x, 0)}
    for name, (_, args) in CONVOLUTIONS.items():
        weight = inputs[f"input_weight_{name}"]
        out = reference.conv2d(x, weight, **args)
        expected[f"conv_{name}"] = out
        grads = reference.conv2d_backward(np.cos(out.astype(np.float32)), x, weight, **args)
        for part, grad in zip(("input", "weight", "bias"), grads):
            expected[f"conv_{name}_{part}"] = grad
    return expected


def test_every_supported_level_agrees(tmp_path):
    levels = cp.build_info()["isas"]
    best = levels[-1]
    results = {level: run_at(level, str(tmp_path)) for level in levels}
    for level in levels:
        expected = references(results[level])
        computed = {name: value for name, value in results[level].items()
                    if not name.startswith(("input_", "call "))}
        assert computed.keys() - {"isa"} == expected.keys()
        for name, value in expected.items():
            if name in ("max", "max_idx"):
                np.testing.assert_array_equal(computed[name], value, err_msg=f"{name} at {level}")
            else:
                reference.assert_close(computed[name], value, np.float32, f"{name} at {level}")
    reference_level = results[best]
    for level in levels:
        assert str(results[level]["isa"]) == level  # the forced level is the one in use
        for name, value in results[level].items():
            if name == "isa":
                continue
            if name.startswith(("conv_", "call conv", "call PackedConv2dWeight")):
                scale = 1 + np.abs(reference_level[name]).max()
                np.testing.assert_allclose(value, reference_level[name], rtol=1e-5, atol=1e-5 * scale,
                                           err_msg=f"{name} at {level}")
            else:
                np.testing.assert_array_equal(value, reference_level[name], err_msg=f"{name} at {level}")


def detected_level(**variables):
    environment = {name: value for name, value in os.environ.items() if name != "CONVPOOL_ISA"}
    environment.update(variables)
    result = subprocess.run([sys.executable, "-c", "import convpool; print(convpool.build_info()['isa'])"],
                            env=environment, capture_output=True, text=True, timeout=60, check=True)
    return result.stdout.strip()


def test_an_unknown_level_keeps_the_detected_one():
    assert detected_level(CONVPOOL_ISA="not-an-isa") == detected_level()
