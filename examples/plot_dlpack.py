"""
Arrays of other libraries through DLPack
========================================

Every function of the package reads any CPU array that speaks DLPack in place: a PyTorch tensor
(here), a JAX array when JAX is installed. The results are NumPy arrays, and ``out=`` may be a
tensor, which then receives them in its own memory.
"""

import numpy as np
import torch

import convpool as cp

x = torch.randn(2, 3, 8, 8)
pooled = cp.max_pool2d(x, 2)                       # read in place, no copy
print(type(pooled).__name__, pooled.shape)
print("equal to NumPy's input:", np.array_equal(pooled, cp.max_pool2d(x.numpy(), 2)))

target = torch.empty(2, 3, 4, 4)
cp.avg_pool2d(x, 2, out=target)                   # written into the tensor's own memory
print("written into the tensor:", torch.allclose(target, torch.nn.functional.avg_pool2d(x, 2)))

try:
    cp.relu(torch.tensor([[-1.0, 2.0]])._neg_view())  # memory that holds other values than it shows
except TypeError as error:
    print("refused:", error)

try:
    import jax.numpy as jnp
except ImportError:
    print("JAX is not installed here: its arrays come in the same way (cp.relu(jnp.ones(3)))")
else:
    print("JAX:", cp.relu(jnp.asarray([-1.0, 2.0])))
