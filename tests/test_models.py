import pytest
import torch
from torch import nn

from lenet_course import models
from conftest import random_batch

MODERN = ["sequential", "functional", "named", "blocks"]


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters() if p.requires_grad)


def test_registry_names_and_unknown():
    assert set(MODERN + ["tanh-avgpool", "cifar"]) <= set(models.names())
    with pytest.raises(ValueError, match=r"unknown model 'lenet7'.*sequential"):
        models.create("lenet7")


@pytest.mark.parametrize("name", MODERN + ["tanh-avgpool"])
def test_modern_lenet_has_61706_parameters_and_maps_to_logits(name):
    model = models.create(name)
    assert n_params(model) == 61_706
    assert model(random_batch()).shape == (4, 10)
    assert model.config == {"name": name}


def test_batchnorm_adds_two_per_channel():
    assert n_params(models.create("sequential", batchnorm=True)) == 61_706 + 2 * (6 + 16)
    kinds = [type(m) for m in models.create("sequential", batchnorm=True).features]
    assert kinds.index(nn.BatchNorm2d) == kinds.index(nn.Conv2d) + 1


def test_tanh_avgpool_uses_tanh_and_average_pooling():
    kinds = {type(m) for m in models.create("tanh-avgpool").modules()}
    assert nn.Tanh in kinds and nn.AvgPool2d in kinds and nn.ReLU not in kinds and nn.MaxPool2d not in kinds


def test_num_classes_and_in_channels():
    model = models.create("sequential", num_classes=3, in_channels=3)
    assert model(random_batch(3)).shape == (4, 3)
    with pytest.raises(ValueError, match="num_classes must be an integer of at least 2, got 1"):
        models.create("functional", num_classes=1)


def test_cifar_variant_shapes_init_and_dropout():
    model = models.create("cifar")
    assert model(random_batch(3)).shape == (4, 10)
    assert model.classifier[2].in_features == 800
    assert n_params(model) == (3 * 25 * 16 + 16) + (16 * 25 * 32 + 32) + (800 * 120 + 120) + (120 * 84 + 84) + 850
    xavier = models.create("cifar", init="xavier")
    assert all(float(m.bias.detach().abs().max()) == 0 for m in xavier.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))
    fan_in, fan_out = 3 * 25, 16 * 25
    bound = (6 / (fan_in + fan_out)) ** 0.5
    assert float(xavier.features[0].weight.detach().abs().max()) <= bound
    kaiming = models.create("cifar", init="kaiming")
    assert abs(float(kaiming.classifier[2].weight.detach().std()) - (2 / 800) ** 0.5) < 0.01
    dropped = models.create("cifar", dropout=0.5)
    assert [m.p for m in dropped.modules() if isinstance(m, nn.Dropout)] == [0.5, 0.5]
    with pytest.raises(ValueError, match="unknown init 'glorot'"):
        models.create("cifar", init="glorot")
    with pytest.raises(ValueError, match=r"dropout must be a probability in \[0, 1\), got 1.5"):
        models.create("cifar", dropout=1.5)


@pytest.mark.parametrize("name", MODERN + ["cifar"])
def test_bad_shapes_name_expected_and_given(name):
    model = models.create(name)
    c = model.in_channels
    with pytest.raises(ValueError, match=rf"expected input of shape \(N, {c}, 32, 32\), got \(2, {c}, 28, 28\).*pad"):
        model(torch.zeros(2, c, 28, 28))
    with pytest.raises(ValueError, match=r"got \(%d, 32, 32\).*unsqueeze" % c):
        model(torch.zeros(c, 32, 32))
    with pytest.raises(ValueError, match=rf"\(N, {c}, 32, 32\), got \(2, 5, 32, 32\)"):
        model(torch.zeros(2, 5, 32, 32))
    with pytest.raises(TypeError, match="floating-point input.*uint8"):
        model(torch.zeros(2, c, 32, 32, dtype=torch.uint8))
    with pytest.raises(TypeError, match="dtype torch.float32.*got torch.float64"):
        model(torch.zeros(2, c, 32, 32, dtype=torch.float64))


def test_unknown_activation_and_pooling():
    with pytest.raises(ValueError, match=r"unknown activation 'gelu'; expected one of \['relu', 'sigmoid', 'tanh'\]"):
        models.create("sequential", activation="gelu")
    with pytest.raises(ValueError, match="unknown pooling 'min'"):
        models.create("sequential", pooling="min")
    with pytest.raises(TypeError, match="model 'functional' takes"):
        models.create("functional", batchnorm=True)


@pytest.mark.parametrize("src_name", MODERN)
@pytest.mark.parametrize("dst_name", MODERN)
def test_transfer_gives_identical_outputs(src_name, dst_name):
    torch.manual_seed(1)
    src = models.create(src_name).eval()
    torch.manual_seed(2)
    dst = models.create(dst_name).eval()
    x = random_batch(n=16, seed=3)
    if src_name != dst_name:
        assert (src(x) - dst(x)).abs().max() > 1e-3  # different weights before
    models.transfer(src, dst)
    assert (src(x) - dst(x)).abs().max() < 1e-6


def test_transfer_refuses_batchnorm_and_other_models():
    with pytest.raises(ValueError, match="batchnorm"):
        models.transfer(models.create("sequential", batchnorm=True), models.create("named"))
    with pytest.raises(TypeError, match="four spellings"):
        models.transfer(models.create("cifar"), models.create("named"))
