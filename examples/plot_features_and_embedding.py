"""
Feature maps and the embedding
==============================

What a trained LeNet-5 computes inside: the first convolution's channels after the ReLU for one
digit, and the classifier's input features of 1,000 test images projected on their two principal
components, one colour per digit.
"""

import convpool as cp
from convpool import models, nn, optim, plots
from convpool.datasets import load_mnist
from convpool.inspection import embedding, feature_maps
from convpool.training import fit

(train_images, train_labels), (test_images, test_labels) = load_mnist()
cp.manual_seed(0)
model = models.lenet5()
fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.05, momentum=0.9),
    (train_images, train_labels), epochs=2, progress=False)
print(model)

# %%
# Layer 1 is the first ReLU: six channels, each a detector of one kind of stroke.
plots.plot_feature_maps(feature_maps(model, test_images[:1], 1)[0],
                        title=f"first convolution after its ReLU, a test image of a {test_labels[0]}")

# %%
# The input of the last layer (index -2) of 1,000 test images, by PCA:
plots.plot_embedding(embedding(model, test_images[:1000], -2), test_labels[:1000],
                     title="the classifier's input features, PCA",
                     axis_names=("principal component 1", "principal component 2"))
