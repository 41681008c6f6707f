"""
Tie-exact pooling inside a PyTorch model
========================================

``convpool.torch.convert`` swaps a model's pooling (and convolution, batch norm, ReLU) layers for
convpool's, keeping torch's parameters, optimizers and autograd. Max pooling then takes a tie rule.
Here the pooling reads a binary image, whose 3x3 windows hold several equal maxima: the forward
values are the same under every rule, and the gradient reaching the image differs by rule.
"""

import copy

import matplotlib.pyplot as plt
import torch

import convpool.torch as cpt

torch.manual_seed(0)
torch.set_num_threads(2)
model = torch.nn.Sequential(torch.nn.MaxPool2d(3, stride=1), torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(),
                            torch.nn.Flatten(), torch.nn.LazyLinear(10))
x = torch.rand(1, 1, 12, 12).round()  # binary images: many equal values
model(x)  # materialises the lazy layer

gradients = {}
for rule in ("first", "last", "split"):
    converted = cpt.convert(copy.deepcopy(model), tie_break=rule)
    image = x.clone().requires_grad_(True)
    converted(image).sum().backward()
    gradients[rule] = image.grad[0, 0]
    print(rule, [type(layer).__module__ + "." + type(layer).__name__ for layer in converted][:3],
          "output sum", float(converted(x).sum()))

figure, axes = plt.subplots(1, 4, figsize=(12, 3.4), layout="constrained")
axes[0].imshow(x[0, 0], cmap="gray")
axes[0].set_title("input (binary: ties)")
panels = [("input gradient\ntie_break='first'", gradients["first"]),
          ("'last' minus 'first'", gradients["last"] - gradients["first"]),
          ("'split' minus 'first'", gradients["split"] - gradients["first"])]
limit = max(float(panel.abs().max()) for _, panel in panels)
for axis, (title, panel) in zip(axes[1:], panels):
    shown = axis.imshow(panel, cmap="RdBu", vmin=-limit, vmax=limit)
    axis.set_title(title)
for axis in axes:
    axis.set_xticks([])
    axis.set_yticks([])
figure.colorbar(shown, ax=axes[1:].tolist(), shrink=0.85, label="d(sum of outputs) / d pixel")

# %%
# The forward values are the same under every rule; only where the gradient of a tied window goes
# differs, pixel by pixel, as the two difference panels show.
