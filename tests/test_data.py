import os
import time

import numpy as np
import pytest
import torch

from lenet_course import data
from conftest import needs_fashion, synthetic_digits


def test_data_root_env_and_default(monkeypatch, tmp_path):
    monkeypatch.setenv("LENET_DATA", str(tmp_path / "here"))
    assert data.data_root() == tmp_path / "here"
    monkeypatch.delenv("LENET_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert data.data_root() == tmp_path / "cache" / "lenet_course"
    assert data.data_root(tmp_path / "x") == tmp_path / "x"


def test_embedded_sample_is_real_mnist_split_8000_2000():
    train, test = data.load("mnist-sample", train=True), data.load("mnist-sample", train=False)
    assert len(train) == 8000 and len(test) == 2000
    assert train.data.dtype == torch.uint8 and train.data.shape[1:] == (28, 28)
    counts = torch.bincount(train.targets, minlength=10)
    assert counts.min() > 600  # every digit present in bulk
    # real digits: dark background border, bright strokes in the middle
    assert float(train.data[:, :2, :].float().mean()) < 1 and float(train.data[:, 10:18, 10:18].float().mean()) > 60
    image, label = train[0]  # the torchvision interface: a PIL image and an int
    assert image.size == (28, 28) and isinstance(label, int)
    # deterministic split: the same first labels every time, and no image in both splits
    assert data.load("mnist-sample").targets[:10].tolist() == train.targets[:10].tolist()
    train_keys = {bytes(im.numpy()) for im in train.data}
    assert not any(bytes(im.numpy()) in train_keys for im in test.data)


def test_mnist_via_torchvision_from_data_root(mnist_root):
    ds = data.load("mnist", train=True, root=mnist_root, download=False)
    expected, labels = synthetic_digits(600, 0)
    assert len(ds) == 600 and torch.equal(ds.data, torch.from_numpy(expected))
    assert ds.targets.tolist() == labels.tolist()


def test_cifar10_via_torchvision_and_real_class_order(cifar_root):
    ds = data.load("cifar10", train=True, root=cifar_root, download=False)
    assert ds.classes == data.classes("cifar10")
    assert data.classes("cifar10")[:3] == ["airplane", "automobile", "bird"]
    split = data.load_split("cifar10", root=cifar_root, download=False)
    assert split.images.shape == (50, 3, 32, 32) and split.images.dtype == torch.uint8
    # NHWC -> NCHW: channel c of image 0 is the c-th 1024-byte block of the pickled row
    assert torch.equal(split.images[0, 1].flatten(), torch.from_numpy(ds.data[0, :, :, 1].reshape(-1)))


def test_unavailable_dataset_error_is_fast_clear_and_leaves_nothing(tmp_path):
    root = tmp_path / "root"
    start = time.perf_counter()
    with pytest.raises(data.DatasetUnavailable) as err:
        data.load("mnist", root=root)
    assert time.perf_counter() - start < 30
    message = str(err.value)
    assert "'mnist'" in message and str(root) in message and "mnist-sample" in message
    assert isinstance(err.value, RuntimeError)
    assert list(root.iterdir()) == []  # no partial download left behind
    with pytest.raises(data.DatasetUnavailable, match="cifar10.*download=False"):
        data.load("cifar10", root=root, download=False)
    with pytest.raises(ValueError, match=r"unknown dataset 'svhn'; expected one of \['cifar10', 'fashion-mnist'"):
        data.load("svhn")


def test_pad_and_resize_to_32():
    images = torch.from_numpy(synthetic_digits(5, 0)[0]).unsqueeze(1)
    padded = data.to_size(images, 32, "pad")
    assert padded.shape == (5, 1, 32, 32) and padded.dtype == torch.uint8
    assert torch.equal(padded[:, :, 2:30, 2:30], images) and padded[:, :, :2].sum() == 0
    resized = data.to_size(images, 32, "resize")
    assert resized.shape == (5, 1, 32, 32) and resized.dtype == torch.uint8
    assert abs(resized.float().mean() - images.float().mean()) < 5
    with pytest.raises(ValueError, match="unknown mode 'crop'"):
        data.to_size(images, 32, "crop")


def test_normalisation_uses_training_statistics_only():
    train, test = data.load_splits("mnist-sample")
    assert (test.mean, test.std) == (train.mean, train.std)
    x = train.images.double() / 255
    assert abs(train.mean[0] - x.mean().item()) < 1e-5 and abs(train.std[0] - x.std().item()) < 1e-5
    own_test = data.channel_stats(test.images)
    assert own_test != (train.mean, train.std)
    standardised, _ = train.tensors()
    assert abs(standardised.mean().item()) < 1e-3 and abs(standardised.std().item() - 1) < 1e-3


def test_tensor_loader_batches_shuffle_and_compactness():
    train, _ = data.load_splits("mnist-sample")
    loader = data.TensorLoader(train, batch_size=300, shuffle=True, seed=5)
    assert loader.images.dtype == torch.uint8  # kept compact; normalised per batch
    assert len(loader) == 27  # ceil(8000 / 300)
    batches = list(loader)
    assert sum(len(y) for _, y in batches) == 8000 and batches[-1][0].shape == (200, 1, 32, 32)
    x, y = batches[0]
    assert x.dtype == torch.float32
    ref = train.normalize(train.images)
    # every batch row is some normalised training image with its label
    first = batches[0][1][:3]
    assert not torch.equal(torch.cat([b[1] for b in batches]), train.labels)  # shuffled
    again = [y for _, y in data.TensorLoader(train, batch_size=300, shuffle=True, seed=5)]
    assert torch.equal(torch.cat(again), torch.cat([b[1] for b in batches]))  # seeded
    plain = data.TensorLoader(train, batch_size=1000)
    x0, y0 = next(iter(plain))
    assert torch.allclose(x0, ref[:1000], atol=1e-5) and torch.equal(y0, train.labels[:1000])
    assert len(data.TensorLoader(train, batch_size=300, drop_last=True)) == 26
    assert first.dtype == torch.int64


@pytest.mark.parametrize("bad", [0, -3, 2.5])
def test_tensor_loader_rejects_bad_batch_sizes(bad):
    train, _ = data.load_splits("mnist-sample")
    with pytest.raises(ValueError, match=f"batch_size must be a positive integer, got {bad}"):
        data.TensorLoader(train, batch_size=bad)


def test_tensor_loader_rejects_batch_larger_than_dataset():
    train, _ = data.load_splits("mnist-sample")
    with pytest.raises(ValueError, match="batch_size 9000 is larger than the dataset .8000 images."):
        data.TensorLoader(train, batch_size=9000)


def test_subset_and_channels():
    train, _ = data.load_splits("mnist-sample")
    small = train.subset(100, seed=1)
    assert len(small) == 100 and small.mean == train.mean
    rgb = small.with_channels(3)
    assert rgb.images.shape == (100, 3, 32, 32) and len(rgb.mean) == 3
    assert torch.equal(rgb.images[:, 2], small.images[:, 0])
    with pytest.raises(ValueError, match="between 1 and 8000"):
        train.subset(0)


def test_tutorial_transform_matches_fast_path_on_padded_input():
    ds = data.load("mnist-sample", train=False)
    split = data.load_split("mnist-sample", train=False, mode="resize")
    tf = data.tutorial_transform(split.mean, split.std)
    x = tf(ds[0][0])
    assert x.shape == (1, 32, 32)
    fast = split.normalize(split.images[:1])[0]
    assert (x - fast).abs().mean() < 0.15  # same resize up to PIL vs. torch interpolation


@needs_fashion
def test_fashion_mnist_from_debian_package_without_download(tmp_path):
    root = tmp_path / "fm"
    train = data.load("fashion-mnist", root=root, download=False)
    test = data.load("fashion-mnist", train=False, root=root, download=False)
    assert len(train) == 60_000 and len(test) == 10_000
    assert train.classes[0] == "T-shirt/top" and data.classes("fashion-mnist")[9] == "Ankle boot"
    assert sorted(p.name for p in (root / "FashionMNIST" / "raw").iterdir()) == [
        "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", "train-images-idx3-ubyte", "train-labels-idx1-ubyte"]
    assert torch.bincount(train.targets).tolist() == [6000] * 10


def test_unwritable_data_root_is_a_clear_error(tmp_path):
    if os.geteuid() == 0:
        target = tmp_path / "file-not-folder"
        target.write_text("x")  # root ignores permissions, so use a path whose parent is a file
        root = target / "sub"
    else:
        root = tmp_path / "ro"
        root.mkdir()
        root.chmod(0o500)
    with pytest.raises(data.DatasetUnavailable, match="not writable"):
        data.load("mnist", root=root)
