"""
Saliency, guided backpropagation and occlusion
==============================================

Three ways of asking a trained network which pixels mattered for its answer: the gradient of the
class score with respect to the input (saliency), the same gradient with only positive values
passed back through the ReLUs (guided backpropagation), and the drop in the class probability
when a patch of the image is hidden (occlusion).
"""

import convpool as cp
from convpool import models, nn, optim, plots
from convpool.datasets import load_mnist
from convpool.inspection import occlusion_map, saliency_map
from convpool.training import fit, predict

(train_images, train_labels), (test_images, test_labels) = load_mnist()
cp.manual_seed(0)
model = models.lenet5()
fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.05, momentum=0.9),
    (train_images, train_labels), epochs=2, progress=False)

images, labels = test_images[:6], test_labels[:6]
titles = [f"true {label}\npredicted {guess}" for label, guess in zip(labels, predict(model, images).argmax(1))]

# %%
# The plain gradient, on one colour scale for all images:
plots.plot_heatmaps(images, saliency_map(model, images), titles=titles, label="saliency",
                    colorbar_label="|d class score / d pixel|")

# %%
# Guided backpropagation keeps the strokes that raise the score:
plots.plot_heatmaps(images, saliency_map(model, images, method="guided"), titles=titles,
                    label="guided backpropagation", colorbar_label="guided gradient")

# %%
# Occlusion: each map on its own scale, since some digits barely care about any one patch:
plots.plot_heatmaps(images, occlusion_map(model, images, patch=6, stride=2), titles=titles,
                    label="occlusion by a 6x6 patch", scale="per image",
                    colorbar_label="drop in class probability")
