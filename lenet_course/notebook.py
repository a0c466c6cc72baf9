"""The chapters' set-up: one call seeds, picks the device, styles plots and loads data.

    from lenet_course.notebook import setup
    course = setup("mnist")          # course.train, course.test, course.device ...

Library functions never swap datasets; this helper may, because a chapter must
run anywhere. When the dataset asked for cannot be had it prints one line saying
so and uses the next best: full MNIST -> the embedded MNIST sample; CIFAR-10 ->
Fashion-MNIST as 3 channels -> the MNIST sample as 3 channels.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from . import data, plots, train

__all__ = ["setup", "Course", "FALLBACKS"]

FALLBACKS = {
    "mnist": ["mnist", "mnist-sample"],
    "mnist-sample": ["mnist-sample"],
    "fashion-mnist": ["fashion-mnist", "mnist-sample"],
    "cifar10": ["cifar10", "fashion-mnist", "mnist-sample"],
}


@dataclass
class Course:
    """What a chapter works with."""

    requested: str
    dataset: str              # the dataset actually loaded
    train: data.Split
    test: data.Split
    device: torch.device
    seed: int

    @property
    def classes(self) -> list[str]:
        return self.train.classes

    @property
    def substituted(self) -> bool:
        return self.dataset != self.requested


def setup(dataset: Optional[str] = "mnist", seed: int = 0, device: str = "auto", channels: Optional[int] = None,
          root=None, quiet: bool = False) -> Course | None:
    """Seed everything, choose the device, set plot defaults, and load ``dataset``'s splits.

    ``channels`` repeats grey images (e.g. 3 for a model built for CIFAR-10).
    ``dataset=None`` does everything but load data (returns ``None``).
    """
    train.set_seed(seed)
    # tanh and sigmoid networks drift into subnormal floats, which the CPU handles 5-8x
    # slower; flushing them to zero changes no visible digit (chapter 11 measured it)
    torch.set_flush_denormal(True)
    plots.style()
    dev = train.pick_device(device)
    if dataset is None:
        return None
    if dataset not in FALLBACKS:
        raise ValueError(f"unknown dataset {dataset!r}; expected one of {sorted(FALLBACKS)}")
    reasons = []
    for name in FALLBACKS[dataset]:
        try:
            tr, te = data.load_splits(name, root=root)
            break
        except data.DatasetUnavailable as exc:
            reasons.append(f"{name}: {str(exc).split(';')[0]}")
    else:  # the embedded sample is always there, so this means a broken install
        raise data.DatasetUnavailable("no dataset could be loaded: " + " | ".join(reasons))
    if channels:
        tr, te = tr.with_channels(channels), te.with_channels(channels)
    if not quiet:
        if name != dataset:
            # the full reason (folder, remedies) is in DatasetUnavailable's message; one short line here
            print(f"NOTE: {dataset} is not available here (not in the data root, and it could not be "
                  f"downloaded); using {name} instead ({len(tr):,} train / {len(te):,} test images).")
        else:
            print(f"dataset {name}: {len(tr):,} train / {len(te):,} test images; device {dev}; seed {seed}")
    return Course(dataset, name, tr, te, dev, seed)
