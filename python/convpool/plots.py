"""PNG figures of training curves and of what a network looks at (needs matplotlib)."""

import numpy as np


def _pyplot():
    try:
        import matplotlib
    except ImportError as error:
        raise ImportError(
            "convpool's plots need matplotlib, which is not installed: pip install 'convpool[plot]'"
        ) from error
    matplotlib.use("Agg")  # files only: works without a display
    import matplotlib.pyplot as pyplot

    return pyplot


def _save(figure, path):
    figure.savefig(path, dpi=110, bbox_inches="tight")
    _pyplot().close(figure)
    return path


def plot_training_curves(history, path):
    """Batch losses, and per-epoch loss and accuracy (train and validation), from ``fit``'s History."""
    pyplot = _pyplot()
    figure, (loss_axes, accuracy_axes) = pyplot.subplots(1, 2, figsize=(10, 4), layout="constrained")
    batches = np.arange(1, len(history.batch_loss) + 1)
    loss_axes.plot(batches, history.batch_loss, color="0.75", linewidth=0.8, label="batch")
    epochs = len(history.train_loss)
    if epochs:
        batches_per_epoch = len(history.batch_loss) / epochs
        epoch_ends = batches_per_epoch * np.arange(1, epochs + 1)
        loss_axes.plot(epoch_ends, history.train_loss, "o-", label="train (epoch mean)")
        if history.val_loss:
            loss_axes.plot(epoch_ends, history.val_loss, "s-", label="validation")
    loss_axes.set(xlabel="batch", ylabel="loss", yscale="log", title="loss")
    loss_axes.legend()
    epoch_numbers = np.arange(1, epochs + 1)
    if epochs and history.train_accuracy[0] is not None:
        accuracy_axes.plot(epoch_numbers, np.array(history.train_accuracy) * 100, "o-", label="train")
    if history.val_accuracy and history.val_accuracy[0] is not None:
        accuracy_axes.plot(epoch_numbers, np.array(history.val_accuracy) * 100, "s-", label="validation")
    accuracy_axes.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    accuracy_axes.set_xticks(epoch_numbers)
    if accuracy_axes.lines:
        accuracy_axes.legend()
    return _save(figure, path)


def plot_heatmaps(images, maps, path, titles=None, label="saliency", colormap="hot"):
    """Each image (top row) above its map (bottom row): saliency or occlusion sensitivity, on one
    colour scale for all the maps, shown by the colour bar."""
    pyplot = _pyplot()
    count = len(images)
    maps = np.asarray(maps)
    figure, axes = pyplot.subplots(2, count, figsize=(1.6 * count + 0.8, 3.6), squeeze=False, layout="constrained")
    for column in range(count):
        axes[0, column].imshow(np.asarray(images[column]).mean(axis=0), cmap="gray")
        shown = axes[1, column].imshow(maps[column], cmap=colormap, vmin=maps.min(), vmax=maps.max())
        if titles is not None:
            axes[0, column].set_title(titles[column], fontsize=8)
        for row in (0, 1):
            axes[row, column].axis("off")
    figure.colorbar(shown, ax=axes[1, :].tolist(), shrink=0.9)
    figure.suptitle(label)
    return _save(figure, path)


def plot_feature_maps(maps, path, title="feature maps"):
    """The channels of one image's feature maps (C, H, W), one panel each, on one colour scale."""
    pyplot = _pyplot()
    maps = np.asarray(maps)
    channels = len(maps)
    columns = min(channels, 8)
    rows = -(-channels // columns)
    figure, axes = pyplot.subplots(rows, columns, figsize=(1.5 * columns + 0.8, 1.5 * rows + 0.4), squeeze=False,
                                   layout="constrained")
    for index, axis in enumerate(axes.flat):
        axis.axis("off")
        if index < channels:
            shown = axis.imshow(maps[index], cmap="viridis", vmin=maps.min(), vmax=maps.max())
            axis.set_title(f"channel {index}", fontsize=7)
    figure.colorbar(shown, ax=axes.ravel().tolist(), shrink=0.9)
    figure.suptitle(title)
    return _save(figure, path)


def plot_embedding(points, labels, path, title="features in 2-D"):
    """A 2-D embedding (inspection.embedding), one colour per class, with a legend."""
    pyplot = _pyplot()
    points, labels = np.asarray(points), np.asarray(labels)
    figure, axes = pyplot.subplots(figsize=(6, 5), layout="constrained")
    colours = pyplot.get_cmap("tab10")
    for index, label in enumerate(np.unique(labels)):
        chosen = labels == label
        axes.scatter(points[chosen, 0], points[chosen, 1], s=8, color=colours(index % 10), label=str(label))
    axes.legend(title="class", markerscale=2, fontsize=8, loc="best")
    axes.set(title=title, xticks=[], yticks=[])
    return _save(figure, path)
