"""Training and the demo given arguments that make no sense.

Each case that could crash, hang or exhaust the process runs in a subprocess (child_process.py),
so that a crash fails its test instead of killing pytest; each asserts the exception type and
bounded peak memory and time."""

import subprocess
import sys
import time

import numpy as np
import pytest

from convpool import nn, optim
from convpool.models import lenet5
from convpool.training import evaluate, fit, predict

# --- training on nonsense --------------------------------------------------------------------

def test_training_arguments_that_make_no_sense_are_refused():
    model = lenet5()
    for lr in (float("nan"), float("inf"), -1.0):
        with pytest.raises(ValueError, match=r"lr=.* must be finite and non-negative"):
            optim.SGD(model.parameters(), lr=lr)
        with pytest.raises(ValueError, match=r"lr=.* must be finite"):
            optim.Adam(model.parameters(), lr=lr)
    optimizer = optim.SGD(model.parameters(), lr=0.1)
    empty = (np.zeros((0, 1, 28, 28), np.float32), np.zeros(0, np.int64))
    with pytest.raises(ValueError, match="train_data is empty"):
        fit(model, nn.CrossEntropyLoss(), optimizer, empty, progress=False)
    with pytest.raises(ValueError, match="data is empty"):
        evaluate(model, nn.CrossEntropyLoss(), empty)
    assert predict(model, empty[0]).shape == (0, 10)
    for make, message in [
        (lambda: nn.Conv2d(0, 1, 3), r"Conv2d: in_channels=0 must be positive"),
        (lambda: nn.Conv2d(1, 0, 3), r"out_channels=0 must be positive"),
        (lambda: nn.Conv2d(1, 1, 0), r"kernel_size=\(0, 0\) must be positive"),
        (lambda: nn.Conv2d(1, 1, 3, stride=0), r"stride=\(0, 0\) must be positive"),
        (lambda: nn.Conv2d(1, 1, 3, padding=-1), r"padding=\(-1, -1\) must be non-negative"),
        (lambda: nn.Conv2d(1, 1, 3, padding="full"), r"padding must be an int, a pair, 'valid' or 'same'"),
        (lambda: nn.Linear(0, 3), r"Linear: in_features=0 must be positive"),
        (lambda: nn.Linear(3, 0), r"out_features=0 must be positive"),
        (lambda: nn.BatchNorm2d(0), r"num_features=0 must be positive"),
    ]:
        with pytest.raises(ValueError, match=message):
            make()
    with pytest.raises(TypeError, match="in_channels must be an int, got 2.5"):
        nn.Conv2d(2.5, 1, 3)


@pytest.mark.parametrize("options, message", [
    (["--train-images", "-5"], "argument --train-images: -5 must be at least 1"),
    (["--epochs", "-1"], "argument --epochs: -1 must be at least 1"),
    (["--batch-size", "0"], "argument --batch-size: 0 must be at least 1"),
    (["--lr", "-1"], "argument --lr: -1 must be a positive finite number"),
    (["--lr", "nan"], "argument --lr: nan must be a positive finite number"),
    (["--threads", "0"], "argument --threads: 0 must be at least 1"),
    (["--epochs", "two"], "argument --epochs: invalid int value: 'two'"),
    (["--threads", "100000"], "--threads: set_num_threads: n=100000 must be between 1 and"),
    (["--seed", "-1"], "argument --seed: -1 must be at least 0"),
    (["--out", ""], "--out: must not be empty"),
    (["--out", "/dev/null"], "--out: cannot write files in '/dev/null'"),
])
def test_demo_options_are_checked_before_training(options, message, tmp_path):
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "convpool", "demo", "--no-progress", *options],
                            capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr and "usage: convpool demo" in result.stderr  # the demo's usage
    assert "training" not in result.stdout and time.perf_counter() - started < 20


def test_demo_out_pointing_at_a_file_fails_before_training(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    result = subprocess.run([sys.executable, "-m", "convpool", "demo", "--no-progress", "--out", str(tmp_path / "file")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "--out: cannot write files in" in result.stderr
    assert "MNIST" not in result.stdout
