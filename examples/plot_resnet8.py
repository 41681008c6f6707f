"""
A ResNet-8 with batch normalization
===================================

Residual blocks (two 3x3 convolutions, each followed by batch normalization, added to a shortcut)
on MNIST. After training, ``nn.freeze`` folds each batch normalization into the convolution before
it and packs the weights once, for inference: the same predictions, faster.
"""

import time

import numpy as np

import convpool as cp
from convpool import models, nn, optim, plots
from convpool.datasets import load_mnist
from convpool.training import evaluate, fit, predict

(train_images, train_labels), (test_images, test_labels) = load_mnist()
cp.manual_seed(0)
model = models.resnet8(in_channels=1)
optimizer = optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
history = fit(model, nn.CrossEntropyLoss(), optimizer, (train_images[:6000], train_labels[:6000]), epochs=2,
              batch_size=64, val_data=(train_images[10000:11000], train_labels[10000:11000]), progress=False)
print(f"test accuracy {evaluate(model, nn.CrossEntropyLoss(), (test_images, test_labels))['accuracy']:.2%}")
plots.plot_training_curves(history)

# %%
# Frozen for inference: batch normalization folded, weights packed.
frozen = nn.freeze(model)
batch = test_images[:1000]
for name, network in (("trained", model), ("frozen", frozen)):
    started = time.perf_counter()
    outputs = predict(network, batch)
    print(f"{name}: {1000 / (time.perf_counter() - started):,.0f} images/s")
print("largest difference of the outputs:", float(np.abs(predict(model, batch) - predict(frozen, batch)).max()))
