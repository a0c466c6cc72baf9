"""Shared fixtures: tiny datasets written in the real on-disk formats, so torchvision's own
readers run in the tests, and an isolated data root for every test."""
from __future__ import annotations

import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision

from lenet_course import data

FASHION_AVAILABLE = (data.DEBIAN_FASHION_MNIST / "train-images-idx3-ubyte.gz").is_file()
needs_fashion = pytest.mark.skipif(not FASHION_AVAILABLE, reason="Debian's dataset-fashion-mnist is not installed")


@pytest.fixture(autouse=True)
def _isolated_data_root(tmp_path_factory, monkeypatch):
    """Each test sees its own empty LENET_DATA: nothing cached by another test or the user."""
    monkeypatch.setenv("LENET_DATA", str(tmp_path_factory.mktemp("lenet_data")))


@pytest.fixture(autouse=True)
def _no_network_downloads(monkeypatch):
    """Point torchvision's download addresses at a closed local port: tests never reach out,
    and the 'not downloadable' path is the same on a laptop with a network and in CI."""
    monkeypatch.setattr(torchvision.datasets.MNIST, "mirrors", ["http://127.0.0.1:9/"])
    monkeypatch.setattr(torchvision.datasets.CIFAR10, "url", "http://127.0.0.1:9/cifar-10-python.tar.gz")


def write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def synthetic_digits(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """28x28 uint8 images whose class is a bright bar at a class-specific row: learnable."""
    rng = np.random.RandomState(seed)
    labels = rng.randint(0, 10, n).astype(np.uint8)
    images = rng.randint(0, 40, (n, 28, 28)).astype(np.uint8)
    for i, y in enumerate(labels):
        images[i, 3 + 2 * y: 5 + 2 * y, 4:24] = 255
    return images, labels


@pytest.fixture
def mnist_root(tmp_path) -> Path:
    """A data root holding a small MNIST in torchvision's layout (uncompressed IDX in MNIST/raw)."""
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for prefix, n, seed in (("train", 600, 0), ("t10k", 200, 1)):
        images, labels = synthetic_digits(n, seed)
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
    return tmp_path


@pytest.fixture
def cifar_root(tmp_path, monkeypatch) -> Path:
    """A data root holding a small CIFAR-10 as python pickle batches, checksums relaxed to fit."""
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.RandomState(0)
    names = ["data_batch_1", "test_batch"]
    for name in names:
        batch = {"data": rng.randint(0, 256, (50, 3072)).astype(np.uint8),
                 "labels": [int(v) for v in rng.randint(0, 10, 50)]}
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": data.CIFAR10_CLASSES}, f)
    cls = torchvision.datasets.CIFAR10
    monkeypatch.setattr(cls, "train_list", [["data_batch_1", None]])
    monkeypatch.setattr(cls, "test_list", [["test_batch", None]])
    monkeypatch.setattr(cls, "meta", {"filename": "batches.meta", "key": "label_names", "md5": None})
    return tmp_path


@pytest.fixture(scope="session")
def sample_splits():
    return data.load_splits("mnist-sample")


@pytest.fixture
def tiny_splits(sample_splits):
    tr, te = sample_splits
    return tr.subset(512), te.subset(256)


def random_batch(channels: int = 1, n: int = 4, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, channels, 32, 32, generator=torch.Generator().manual_seed(seed))
