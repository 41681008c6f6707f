"""convpool.nn and convpool.optim against torch.nn and torch.optim with the same weights
(skipped when torch is not installed)."""

import numpy as np
import pytest

import convpool as cp
from convpool import nn, optim

torch = pytest.importorskip("torch")


def copy_weights(ours, theirs):
    """Copies our parameters and buffers into the torch module of the same structure."""
    state = {name: torch.tensor(value) for name, value in ours.state_dict().items()}
    theirs.load_state_dict(state)


def compare_layer(ours, theirs, x, *, atol=1e-5):
    """Same forward output, input gradient and parameter gradients for a random grad_output."""
    copy_weights(ours, theirs)
    theirs.zero_grad()
    x_torch = torch.tensor(x, requires_grad=True)
    expected = theirs(x_torch)
    out = ours(x)
    np.testing.assert_allclose(out, expected.detach().numpy(), rtol=1e-5, atol=atol)
    grad_output = np.random.default_rng(8).standard_normal(out.shape).astype(out.dtype)
    expected.backward(torch.tensor(grad_output))
    ours.zero_grad()
    np.testing.assert_allclose(ours.backward(grad_output), x_torch.grad.numpy(), rtol=1e-4, atol=atol)
    torch_parameters = dict(theirs.named_parameters())
    for name, parameter in ours.named_parameters():
        np.testing.assert_allclose(parameter.grad, torch_parameters[name].grad.numpy(), rtol=1e-4, atol=atol,
                                   err_msg=name)
    for name, buffer in theirs.named_buffers():
        np.testing.assert_allclose(ours.state_dict()[name], buffer.numpy(), rtol=1e-5, atol=1e-6, err_msg=name)


def images(shape, seed=7):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def test_lenet_logits_loss_and_gradients_match_torch():
    cp.manual_seed(0)
    ours = cp.models.lenet5()
    tnn = torch.nn
    theirs = tnn.Sequential(
        tnn.Conv2d(1, 6, 5), tnn.ReLU(), tnn.MaxPool2d(2),
        tnn.Conv2d(6, 16, 5), tnn.ReLU(), tnn.MaxPool2d(2),
        tnn.Flatten(), tnn.Linear(256, 120), tnn.ReLU(), tnn.Linear(120, 84), tnn.ReLU(), tnn.Linear(84, 10))
    copy_weights(ours, theirs)
    x = images((16, 1, 28, 28))
    labels = np.random.default_rng(9).integers(0, 10, 16)
    logits = ours(x)
    loss_fn = nn.CrossEntropyLoss()
    loss = loss_fn(logits, labels)
    x_torch = torch.tensor(x, requires_grad=True)
    torch_logits = theirs(x_torch)
    torch_loss = torch.nn.functional.cross_entropy(torch_logits, torch.tensor(labels))
    torch_loss.backward()
    np.testing.assert_allclose(logits, torch_logits.detach().numpy(), rtol=1e-5, atol=1e-6)
    assert loss == pytest.approx(torch_loss.item(), rel=1e-5)
    ours.zero_grad()
    grad_input = ours.backward(loss_fn.backward())
    np.testing.assert_allclose(grad_input, x_torch.grad.numpy(), rtol=1e-4, atol=1e-7)
    torch_parameters = dict(theirs.named_parameters())
    for name, parameter in ours.named_parameters():
        np.testing.assert_allclose(parameter.grad, torch_parameters[name].grad.numpy(), rtol=1e-4, atol=1e-7,
                                   err_msg=name)


LAYERS = {
    "Conv2d strided grouped": (lambda: nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2),
                               lambda: torch.nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2), (2, 4, 9, 8)),
    "BatchNorm2d train": (lambda: nn.BatchNorm2d(3), lambda: torch.nn.BatchNorm2d(3), (4, 3, 5, 5)),
    "BatchNorm2d cumulative": (lambda: nn.BatchNorm2d(3, momentum=None),
                               lambda: torch.nn.BatchNorm2d(3, momentum=None), (4, 3, 5, 5)),
    "BatchNorm2d no affine": (lambda: nn.BatchNorm2d(3, affine=False),
                              lambda: torch.nn.BatchNorm2d(3, affine=False), (4, 3, 2, 3)),
    "LeakyReLU": (lambda: nn.LeakyReLU(0.1), lambda: torch.nn.LeakyReLU(0.1), (3, 4, 5)),
    "AdaptiveAvgPool2d uneven": (lambda: nn.AdaptiveAvgPool2d((3, 4)), lambda: torch.nn.AdaptiveAvgPool2d((3, 4)),
                                 (2, 3, 7, 9)),
    "AdaptiveAvgPool2d global": (lambda: nn.AdaptiveAvgPool2d(1), lambda: torch.nn.AdaptiveAvgPool2d(1),
                                 (2, 3, 6, 6)),
    "AvgPool2d": (lambda: nn.AvgPool2d(3, 2, 1), lambda: torch.nn.AvgPool2d(3, 2, 1), (2, 3, 9, 9)),
    "LPPool2d": (lambda: nn.LPPool2d(2, 3, 2), lambda: torch.nn.LPPool2d(2, 3, 2), (2, 3, 9, 9)),
    "MaxPool2d overlapping": (lambda: nn.MaxPool2d(3, 2, 1), lambda: torch.nn.MaxPool2d(3, 2, 1), (2, 3, 9, 9)),
    "Linear": (lambda: nn.Linear(7, 5), lambda: torch.nn.Linear(7, 5), (3, 7)),
}


@pytest.mark.parametrize("case", LAYERS, ids=str)
def test_layer_matches_torch(case):
    make_ours, make_theirs, shape = LAYERS[case]
    cp.manual_seed(1)
    x = images(shape)
    if case.startswith("LPPool"):
        x = np.abs(x) + 0.1
    ours, theirs = make_ours(), make_theirs()
    compare_layer(ours, theirs, x)
    if "BatchNorm" in case:  # a second batch, then eval mode with the running statistics
        compare_layer(ours, theirs, images(shape, seed=11) * 2 + 1)
        compare_layer(ours.eval(), theirs.eval(), images(shape, seed=12))


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_losses_match_torch(reduction):
    logits = images((6, 4)) * 10
    labels = np.array([0, 3, 1, 1, 2, 3])
    for ours, theirs, target, torch_target in (
        (nn.CrossEntropyLoss(reduction), torch.nn.CrossEntropyLoss(reduction=reduction), labels,
         torch.tensor(labels)),
        (nn.MSELoss(reduction), torch.nn.MSELoss(reduction=reduction), images((6, 4), seed=3),
         torch.tensor(images((6, 4), seed=3))),
    ):
        logits_torch = torch.tensor(logits, requires_grad=True)
        expected = theirs(logits_torch, torch_target)
        expected.backward()
        assert ours(logits, target) == pytest.approx(expected.item(), rel=1e-5)
        np.testing.assert_allclose(ours.backward(), logits_torch.grad.numpy(), rtol=1e-5, atol=1e-6)


OPTIMIZERS = {
    "SGD": (lambda p: optim.SGD(p, lr=0.1), lambda p: torch.optim.SGD(p, lr=0.1)),
    "SGD momentum dampening decay": (
        lambda p: optim.SGD(p, lr=0.05, momentum=0.9, dampening=0.2, weight_decay=0.01),
        lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, dampening=0.2, weight_decay=0.01)),
    "SGD nesterov": (lambda p: optim.SGD(p, lr=0.05, momentum=0.8, nesterov=True),
                     lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.8, nesterov=True)),
    "Adam": (lambda p: optim.Adam(p, lr=0.01), lambda p: torch.optim.Adam(p, lr=0.01)),
    "Adam decay betas": (lambda p: optim.Adam(p, lr=0.003, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.1),
                         lambda p: torch.optim.Adam(p, lr=0.003, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.1)),
}


@pytest.mark.parametrize("case", OPTIMIZERS, ids=str)
def test_optimizer_steps_match_torch(case):
    make_ours, make_theirs = OPTIMIZERS[case]
    rng = np.random.default_rng(4)
    start = [rng.standard_normal((3, 4)), rng.standard_normal(5)]
    ours = [nn.Parameter(value.copy()) for value in start]
    theirs = [torch.tensor(value.copy(), requires_grad=True) for value in start]
    our_optimizer, their_optimizer = make_ours(ours), make_theirs(theirs)
    for _ in range(5):
        grads = [rng.standard_normal(value.shape) for value in start]
        for parameter, tensor, grad in zip(ours, theirs, grads):
            parameter.grad = grad
            tensor.grad = torch.tensor(grad)
        our_optimizer.step()
        their_optimizer.step()
        for parameter, tensor in zip(ours, theirs):
            np.testing.assert_allclose(parameter.data, tensor.detach().numpy(), rtol=1e-12, atol=1e-14)


def test_schedules_match_torch():
    for make_ours, make_theirs in (
        (lambda o: optim.StepLR(o, 3, gamma=0.3), lambda o: torch.optim.lr_scheduler.StepLR(o, 3, gamma=0.3)),
        (lambda o: optim.CosineAnnealingLR(o, 7, eta_min=0.01),
         lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, 7, eta_min=0.01)),
    ):
        our_optimizer = optim.SGD([nn.Parameter(np.zeros(1))], lr=0.5)
        their_optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.5)
        ours, theirs = make_ours(our_optimizer), make_theirs(their_optimizer)
        for _ in range(10):
            their_optimizer.step()
            ours.step()
            theirs.step()
            assert our_optimizer.lr == pytest.approx(theirs.get_last_lr()[0], rel=1e-12)


@pytest.mark.parametrize("depth", [8, 20])
def test_resnet_logits_and_gradients_match_torch(depth):
    # In float64, where both are exact to rounding: in float32 PyTorch's input gradient of
    # ResNet-20 at batch 4 is off from its own float64 result by ~1e-3 (its batch-norm backward),
    # ours by ~3e-7 (test_resnet_float32_follows_float64).
    cp.manual_seed(depth)
    ours = cp.models.resnet_cifar(depth).double()
    theirs = nn.to_torch(ours)
    assert next(theirs.parameters()).dtype == torch.float64
    x = images((4, 3, 32, 32)).astype(np.float64)
    compare_layer(ours, theirs, x, atol=1e-10)  # training mode: batch statistics, running ones updated
    compare_layer(ours.eval(), theirs.eval(), images((4, 3, 32, 32), seed=13).astype(np.float64), atol=1e-10)


def test_resnet18_logits_and_gradients_match_torch():
    cp.manual_seed(18)
    ours = cp.models.resnet18(num_classes=7).double()
    assert sum(p.data.size for p in cp.models.resnet18().parameters()) == 11_689_512  # torchvision's count
    theirs = nn.to_torch(ours)
    compare_layer(ours.eval(), theirs.eval(), images((2, 3, 40, 40), seed=18).astype(np.float64), atol=1e-10)


def test_resnet_float32_follows_float64():
    cp.manual_seed(20)
    single = cp.models.resnet20()
    double = cp.models.resnet20().double()
    double.load_state_dict(single.state_dict())
    x = images((4, 3, 32, 32))
    g = images((4, 10), seed=8)
    out32, out64 = single(x), double(x.astype(np.float64))
    np.testing.assert_allclose(out32, out64, rtol=0, atol=1e-5)
    np.testing.assert_allclose(single.backward(g), double.backward(g.astype(np.float64)), rtol=0, atol=1e-5)


def test_residual_with_identity_and_projection_shortcuts_matches_torch():
    cp.manual_seed(3)
    body = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1))
    for ours in (nn.Residual(body), nn.Residual(nn.Conv2d(4, 6, 3, stride=2, padding=1),
                                                nn.Conv2d(4, 6, 1, stride=2))):
        compare_layer(ours, nn.to_torch(ours), images((2, 4, 7, 7)))


def test_to_torch_refuses_layers_it_cannot_mirror():
    with pytest.raises(TypeError, match="to_torch: no torch.nn equivalent for AvgPool2d"):
        nn.to_torch(nn.Sequential(nn.Conv2d(1, 2, 3), nn.AvgPool2d(2)))
    with pytest.raises(TypeError, match="no tie_break='split'"):
        nn.to_torch(nn.MaxPool2d(2, tie_break="split"))


def test_lenet_to_torch_gives_the_same_logits():
    cp.manual_seed(5)
    ours = cp.models.lenet5()
    x = images((3, 1, 28, 28))
    np.testing.assert_allclose(nn.to_torch(ours)(torch.tensor(x)).detach().numpy(), ours(x), rtol=1e-5, atol=1e-6)
