"""
What the tie rules do to the gradient
=====================================

With overlapping windows (stride smaller than the kernel), an input can be the maximum of several
windows, and a window can hold several equal maxima. Who receives the gradient is then a choice:
``tie_break="first"`` (PyTorch's rule: the first maximum in row-major window order), ``"last"``,
or ``"split"`` (the gradient divided equally among every tied maximum). Here a 3x3 window at
stride 1 slides over an image with plateaus of equal values, and each rule's input gradient (for
an output gradient of ones) is drawn.
"""

import matplotlib.pyplot as plt
import numpy as np

import convpool as cp

x = np.zeros((1, 1, 8, 8))
x[0, 0, 1:4, 1:4] = 2.0        # a 3x3 plateau: every window over it ties
x[0, 0, 5, 2:7] = 1.0          # a ridge
x[0, 0, 5, 4] = 1.5            # with one peak
ones = np.ones((1, 1, 6, 6))

figure, axes = plt.subplots(1, 4, figsize=(12, 3.4), layout="constrained")
axes[0].imshow(x[0, 0], cmap="gray")
axes[0].set_title("input")
for axis, rule in zip(axes[1:], ("first", "last", "split")):
    pooled, indices = cp.max_pool2d(x, 3, stride=1, return_indices=True, tie_break=rule)
    gradient = cp.max_pool2d_backward(ones, x, indices, 3, stride=1, tie_break=rule)[0, 0]
    shown = axis.imshow(gradient, cmap="viridis", vmin=0, vmax=9)
    axis.set_title(f"tie_break={rule!r}\ngradient sum {gradient.sum():g}")
    for (row, column), value in np.ndenumerate(gradient):
        if value:
            axis.text(column, row, f"{value:.3g}", ha="center", va="center", fontsize=7, color="w")
for axis in axes:
    axis.set_xticks([])
    axis.set_yticks([])
figure.colorbar(shown, ax=axes[1:].tolist(), shrink=0.85, label="gradient reaching the input")

# %%
# Every rule passes on the whole gradient (36 windows, 36 in total); "first" and "last" give each
# window's share to one input, "split" spreads it over every tied one. The zero background ties
# too: a window holding only zeros sends its gradient to its first, its last, or all of its zeros.
# The results are bitwise the same for any number of threads.
