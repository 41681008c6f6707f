"""
Train LeNet-5 on MNIST
======================

The demo's network, trained on the 12,000 MNIST digits bundled with the package: ``fit`` shuffles,
batches and validates; the curves come from the ``History`` it returns.
"""

import convpool as cp
from convpool import models, nn, optim, plots
from convpool.datasets import load_mnist
from convpool.training import evaluate, fit

(train_images, train_labels), (test_images, test_labels) = load_mnist()
train = (train_images[:10000], train_labels[:10000])
validation = (train_images[10000:], train_labels[10000:])

cp.manual_seed(0)
model = models.lenet5()
optimizer = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
history = fit(model, nn.CrossEntropyLoss(), optimizer, train, epochs=4, batch_size=64, val_data=validation,
              scheduler=optim.CosineAnnealingLR(optimizer, T_max=4), progress=False)
result = evaluate(model, nn.CrossEntropyLoss(), (test_images, test_labels))
print(f"test accuracy {result['accuracy']:.2%} on {len(test_images)} images, "
      f"{history.images_per_second[-1]:,.0f} images/s while training")

# %%
# The batch losses (grey), each epoch's mean and the validation loss, and the accuracies:
plots.plot_training_curves(history)
