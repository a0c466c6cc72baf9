"""Benchmark: the seed tutorials' input pipeline against ``fit``'s tensor-resident path.

In one process, on one machine, the same model (BatchNorm LeNet-5) and optimizer
(Adam) train for one epoch through

* ``tutorial``: torchvision dataset -> per-sample PIL ``Resize(32)`` + ``ToTensor`` +
  ``Normalize`` -> ``DataLoader(batch_size=64, shuffle=True)``, the loop of the
  popular LeNet tutorials;
* ``fit@64``: ``train.fit`` at the tutorials' batch size (the same optimizer steps);
* ``fit@default``: ``train.fit`` with its defaults for the device.

Each reports training images/s (the epoch's optimizer steps, evaluation excluded)
and test accuracy after the epoch; ratios are against the tutorial pipeline in the
same run. A separate process measures the peak resident memory of a ``fit`` run.

    python -m lenet_course bench [--dataset fashion-mnist] [--json out.json] [--small]
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Optional

import torch
from torch import nn

from . import data, models, train

__all__ = ["Row", "Report", "run", "tutorial_epoch", "peak_memory_mb", "format_report"]


@dataclass
class Row:
    pipeline: str
    batch_size: int
    images_per_s: float
    test_accuracy: float
    ratio: float = 1.0  # images/s relative to the tutorial pipeline


@dataclass
class Report:
    device: str
    device_name: str
    torch: str
    threads: int
    dataset: str
    train_images: int
    rows: list[Row] = field(default_factory=list)
    peak_rss_mb: Optional[float] = None
    accuracy_gap_points: float = 0.0  # largest |accuracy - tutorial accuracy|, in points

    def to_dict(self) -> dict:
        return asdict(self)


def _device_name(dev: torch.device) -> str:
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    return f"{platform.processor() or platform.machine()} ({os.cpu_count()} logical CPUs)"


def _model(seed: int, dev: torch.device, in_channels: int) -> nn.Module:
    train.set_seed(seed)
    return models.create("sequential", batchnorm=True, in_channels=in_channels).to(dev)


def tutorial_epoch(name: str, dev: torch.device, seed: int = 0, subset: Optional[int] = None,
                   stats=None, batch_size: int = 64, lr: float = 1e-3) -> tuple[float, float]:
    """One epoch the tutorials' way; returns (training images/s, test accuracy)."""
    if stats is None:
        split = data.load_split(name)
        stats = (split.mean, split.std)
    tf = data.tutorial_transform(*stats)
    train_ds = data.load(name, train=True, transform=tf)
    test_ds = data.load(name, train=False, transform=tf)
    if subset:
        train_ds = torch.utils.data.Subset(train_ds, range(subset))
    g = torch.Generator().manual_seed(seed)
    loader = torch.utils.data.DataLoader(train_ds, batch_size=batch_size, shuffle=True, generator=g)
    test_loader = torch.utils.data.DataLoader(test_ds, batch_size=1000)
    in_channels = train_ds[0][0].shape[0]
    model = _model(seed, dev, in_channels)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    seen = 0
    start = time.perf_counter()
    for x, y in loader:
        x, y = x.to(dev), y.to(dev)
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        seen += len(y)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    seconds = time.perf_counter() - start
    return seen / seconds, train.evaluate(model, test_loader, dev)["accuracy"]


def _fit_epoch(tr: data.Split, te: data.Split, dev: torch.device, seed: int,
               batch_size: Optional[int]) -> tuple[float, float]:
    model = _model(seed, dev, tr.in_channels)
    h = train.fit(model, tr, te, epochs=1, batch_size=batch_size, device=dev, seed=seed, progress=False)
    return h.images_per_s[0], h.test_accuracy[0]


_PEAK_SCRIPT = """
import resource, sys
from lenet_course import data, models, train
tr, te = data.load_splits(sys.argv[1])
if int(sys.argv[2]):
    tr = tr.subset(int(sys.argv[2]))
train.fit(models.create("sequential", batchnorm=True, in_channels=tr.in_channels), tr, te, epochs=1,
          device=sys.argv[3], progress=False)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def peak_memory_mb(name: str, device: str = "cpu", subset: Optional[int] = None) -> float:
    """Peak resident memory (MB) of a fresh process that loads ``name`` and fits one epoch."""
    out = subprocess.run([sys.executable, "-c", _PEAK_SCRIPT, name, str(subset or 0), device],
                         capture_output=True, text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1]) / 1024  # ru_maxrss is in KiB on Linux


def run(dataset: str = "fashion-mnist", device: str = "auto", seed: int = 0, small: bool = False,
        memory: bool = True) -> Report:
    """Run the benchmark. ``small`` uses 2,000 training images (a smoke test, not a measurement)."""
    dev = train.pick_device(device)
    subset = 2000 if small else None
    tr, te = data.load_splits(dataset)
    if subset:
        tr = tr.subset(subset, seed=seed)
    report = Report(str(dev), _device_name(dev), torch.__version__, torch.get_num_threads(), dataset, len(tr))
    tut_ips, tut_acc = tutorial_epoch(dataset, dev, seed, subset, (tr.mean, tr.std))
    report.rows.append(Row("tutorial DataLoader + PIL transforms", 64, tut_ips, tut_acc))
    default_batch = train.DEFAULT_BATCH_SIZE[dev.type]
    for label, bs in (("fit, tensor-resident", 64), ("fit, tensor-resident (default batch)", default_batch)):
        ips, acc = _fit_epoch(tr, te, dev, seed, bs)
        report.rows.append(Row(label, bs, ips, acc, ips / tut_ips))
    report.accuracy_gap_points = max(abs(r.test_accuracy - tut_acc) for r in report.rows) * 100
    if memory:
        report.peak_rss_mb = peak_memory_mb(dataset, str(dev), subset)
    return report


def format_report(report: Report) -> str:
    lines = [f"device: {report.device} ({report.device_name}); torch {report.torch}; {report.threads} threads",
             f"dataset: {report.dataset}, {report.train_images:,} training images, one epoch each",
             "",
             f"{'pipeline':40} {'batch':>5} {'images/s':>10} {'ratio':>6} {'test acc':>8}"]
    for r in report.rows:
        lines.append(f"{r.pipeline:40} {r.batch_size:>5} {r.images_per_s:>10,.0f} {r.ratio:>5.1f}x "
                     f"{100 * r.test_accuracy:>7.2f}%")
    lines.append(f"largest accuracy gap to the tutorial pipeline: {report.accuracy_gap_points:.2f} points")
    if report.peak_rss_mb is not None:
        lines.append(f"peak resident memory of a fit process: {report.peak_rss_mb:,.0f} MB")
    return "\n".join(lines)


def main(args) -> int:
    report = run(args.dataset, args.device, args.seed, args.small, memory=not args.no_memory)
    if args.json == "-":
        print(json.dumps(report.to_dict()))
        return 0
    print(format_report(report))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report.to_dict(), f, indent=2)
        print(f"figures written to {args.json}")
    return 0
