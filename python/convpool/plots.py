"""Figures of training curves and of what a network looks at (needs matplotlib).

Each function draws one figure: given a ``path`` it writes a PNG there, closes the figure and
returns the path (what the demo does); with ``path=None`` it returns the open
``matplotlib.figure.Figure``, to show or save as you like.
"""

import numpy as np

__all__ = ["plot_embedding", "plot_feature_maps", "plot_heatmaps", "plot_training_curves"]


def _pyplot():
    try:
        import matplotlib  # noqa: F401
    except ImportError as error:
        raise ImportError(
            "convpool's plots need matplotlib, which is not installed: pip install 'convpool[plot]'"
        ) from error
    import matplotlib.pyplot as pyplot  # matplotlib takes Agg by itself where there is no display

    return pyplot


def _finish(figure, path):
    if path is None:
        return figure
    figure.savefig(path, dpi=110, bbox_inches="tight")
    _pyplot().close(figure)
    return path


def plot_training_curves(history, path=None):
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
    return _finish(figure, path)


def plot_heatmaps(images, maps, path=None, titles=None, label="saliency", colormap="hot", scale="shared",
                  colorbar_label=None):
    """Each image (top row) above its map (bottom row): saliency or occlusion sensitivity.

    ``scale="shared"`` puts every map on one colour scale (one colour bar), so maps compare across
    images; ``"per image"`` gives each map its own scale and colour bar, so that a map whose values
    are all small next to another image's still shows its shape. ``colorbar_label`` names what the
    colours measure (default: ``label``).
    """
    if scale not in ("shared", "per image"):
        raise ValueError(f"plot_heatmaps: scale must be 'shared' or 'per image', got {scale!r}")
    pyplot = _pyplot()
    count = len(images)
    maps = np.asarray(maps)
    figure, axes = pyplot.subplots(2, count, figsize=(1.7 * count + 0.9, 3.8), squeeze=False, layout="constrained")
    for column in range(count):
        axes[0, column].imshow(np.asarray(images[column]).mean(axis=0), cmap="gray")
        low, high = (maps.min(), maps.max()) if scale == "shared" else (maps[column].min(), maps[column].max())
        shown = axes[1, column].imshow(maps[column], cmap=colormap, vmin=low, vmax=high)
        if titles is not None:
            axes[0, column].set_title(titles[column], fontsize=8)
        for row in (0, 1):
            axes[row, column].axis("off")
        if scale == "per image":
            bar = figure.colorbar(shown, ax=axes[1, column], shrink=0.8, location="bottom")
            bar.ax.tick_params(labelsize=6)
            bar.ax.locator_params(nbins=3)
    if scale == "shared":
        bar = figure.colorbar(shown, ax=axes[1, :].tolist(), shrink=0.9)
        bar.set_label(colorbar_label or label, fontsize=8)
    else:
        figure.supxlabel(f"{colorbar_label or label} (each map on its own scale)", fontsize=8)
    figure.suptitle(label)
    return _finish(figure, path)


def plot_feature_maps(maps, path=None, title="feature maps", colorbar_label="activation"):
    """The channels of one image's feature maps (C, H, W), one panel each, on one colour scale. A
    channel whose largest value is within 2% of 0 is titled so: after a ReLU, a unit whose input is
    negative (or nearly so) on the whole image passes nothing for it, a channel "off" for that
    image (always off, on every image, it is a dead unit)."""
    pyplot = _pyplot()
    maps = np.asarray(maps)
    channels = len(maps)
    columns = min(channels, 8)
    rows = -(-channels // columns)
    figure, axes = pyplot.subplots(rows, columns, figsize=(1.5 * columns + 0.9, 1.6 * rows + 0.5), squeeze=False,
                                   layout="constrained")
    for index, axis in enumerate(axes.flat):
        axis.axis("off")
        if index < channels:
            shown = axis.imshow(maps[index], cmap="viridis", vmin=maps.min(), vmax=maps.max())
            quiet = np.abs(maps[index]).max() <= 0.02 * np.abs(maps).max()
            axis.set_title(f"channel {index}" + ("\n(~0: off on this image)" if quiet else ""), fontsize=7)
    bar = figure.colorbar(shown, ax=axes.ravel().tolist(), shrink=0.9)
    bar.set_label(colorbar_label, fontsize=8)
    figure.suptitle(title)
    return _finish(figure, path)


def plot_embedding(points, labels, path=None, title="features in 2-D", axis_names=("component 1", "component 2")):
    """A 2-D embedding (inspection.embedding), one colour per class, with a legend."""
    pyplot = _pyplot()
    points, labels = np.asarray(points), np.asarray(labels)
    figure, axes = pyplot.subplots(figsize=(6, 5), layout="constrained")
    colours = pyplot.get_cmap("tab10")
    for index, label in enumerate(np.unique(labels)):
        chosen = labels == label
        axes.scatter(points[chosen, 0], points[chosen, 1], s=8, color=colours(index % 10), label=str(label))
    axes.legend(title="class", markerscale=2, fontsize=8, loc="best")
    axes.set(title=title, xlabel=axis_names[0], ylabel=axis_names[1])
    return _finish(figure, path)
