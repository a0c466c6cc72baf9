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
same round. The three run in turn for ``repeats`` rounds, so a slow spell of a shared
machine lands on all of them, and the medians are reported with each round's
figures. A separate process measures the peak resident memory of a ``fit`` run.

:func:`time_to_accuracy` trains with ``fit``'s defaults until a test accuracy is
reached (90 % on Fashion-MNIST by default) and reports the training time it took.

:func:`explore` times ``fit``'s training step against variants of it (another
optimizer implementation, memory format, precision, thread count, batch size,
``torch.compile``, and on a GPU CUDA graphs), interleaved in the same way, to show
what helps on a device.
:func:`breakdown` profiles the step and sums its time by kind of layer, to show where
the time goes.

    python -m lenet_course bench [--dataset fashion-mnist] [--json out.json] [--small] [--repeats 3] [--explore]
                                 [--breakdown] [--time-to 0.9]
"""
from __future__ import annotations

import json
import logging
import os
import platform
import subprocess
import sys
import statistics
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from typing import Optional

import torch
from torch import nn

from . import data, models, train

__all__ = ["Row", "Report", "run", "tutorial_epoch", "peak_memory_mb", "format_report",
           "Variant", "explore", "format_explore", "TimeToAccuracy", "time_to_accuracy",
           "format_time_to_accuracy", "Breakdown", "breakdown", "format_breakdown"]


@dataclass
class Row:
    pipeline: str
    batch_size: int
    images_per_s: float  # median over the rounds
    test_accuracy: float  # after the first round's epoch (every round starts from the same seed)
    ratio: float = 1.0  # median over the rounds of images/s relative to the tutorial pipeline in that round
    runs: list[float] = field(default_factory=list)  # images/s in each round
    ratios: list[float] = field(default_factory=list)  # the ratio in each round


@dataclass
class Report:
    device: str
    device_name: str
    torch: str
    threads: int
    dataset: str
    train_images: int
    repeats: int = 1
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
                   stats=None, batch_size: int = 64, lr: float = 1e-3,
                   evaluate: bool = True) -> tuple[float, Optional[float]]:
    """One epoch the tutorials' way; returns (training images/s, test accuracy or None if not ``evaluate``)."""
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
    return seen / seconds, train.evaluate(model, test_loader, dev)["accuracy"] if evaluate else None


def _fit_epoch(tr: data.Split, te: Optional[data.Split], dev: torch.device, seed: int,
               batch_size: Optional[int]) -> tuple[float, Optional[float]]:
    model = _model(seed, dev, tr.in_channels)
    h = train.fit(model, tr, te, epochs=1, batch_size=batch_size, device=dev, seed=seed, progress=False)
    return h.images_per_s[0], h.test_accuracy[0] if te is not None else None


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


def _check_count(name: str, value, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        kind = "a positive integer" if minimum == 1 else f"an integer of at least {minimum}"
        raise ValueError(f"{name} must be {kind}, got {value!r}")


def run(dataset: str = "fashion-mnist", device: str = "auto", seed: int = 0, small: bool = False,
        memory: bool = True, repeats: int = 3) -> Report:
    """Run the benchmark. ``small`` uses 2,000 training images (a smoke test, not a measurement);
    ``repeats`` rounds of the three pipelines, in turn."""
    _check_count("repeats", repeats)
    dev = train.pick_device(device)
    subset = 2000 if small else None
    tr, te = data.load_splits(dataset)
    if subset:
        tr = tr.subset(subset, seed=seed)
    report = Report(str(dev), _device_name(dev), torch.__version__, torch.get_num_threads(), dataset, len(tr),
                    repeats)
    default_batch = train.DEFAULT_BATCH_SIZE[dev.type]
    # every round starts from the same seed, so the test accuracy is measured in the first round only
    pipelines = [("tutorial DataLoader + PIL transforms", 64, lambda first: tutorial_epoch(
                     dataset, dev, seed, subset, (tr.mean, tr.std), evaluate=first)),
                 *[(label, bs, lambda first, bs=bs: _fit_epoch(tr, te if first else None, dev, seed, bs))
                   for label, bs in (("fit, tensor-resident", 64),
                                     ("fit, tensor-resident (default batch)", default_batch))]]
    runs: list[list[tuple[float, Optional[float]]]] = [[] for _ in pipelines]
    for round_ in range(repeats):
        for i, (_, _, epoch) in enumerate(pipelines):
            runs[i].append(epoch(round_ == 0))
    tutorial = [ips for ips, _ in runs[0]]
    for (label, bs, _), figures in zip(pipelines, runs):
        ips = [f[0] for f in figures]
        ratios = [a / b for a, b in zip(ips, tutorial)]
        report.rows.append(Row(label, bs, statistics.median(ips), figures[0][1], statistics.median(ratios),
                               ips, ratios))
    tut_acc = report.rows[0].test_accuracy
    report.accuracy_gap_points = max(abs(r.test_accuracy - tut_acc) for r in report.rows) * 100
    if memory:
        report.peak_rss_mb = peak_memory_mb(dataset, str(dev), subset)
    return report


def format_report(report: Report) -> str:
    rounds = f"median of {report.repeats} rounds" if report.repeats > 1 else "one round"
    lines = [f"device: {report.device} ({report.device_name}); torch {report.torch}; {report.threads} threads",
             f"dataset: {report.dataset}, {report.train_images:,} training images, one epoch each, {rounds}",
             "",
             f"{'pipeline':40} {'batch':>5} {'images/s':>10} {'ratio':>6} {'test acc':>8}"
             + ("  ratio in each round" if report.repeats > 1 else "")]
    for r in report.rows:
        each = "  " + " ".join(f"{x:.2f}x" for x in r.ratios) if report.repeats > 1 else ""
        lines.append(f"{r.pipeline:40} {r.batch_size:>5} {r.images_per_s:>10,.0f} {r.ratio:>5.1f}x "
                     f"{100 * r.test_accuracy:>7.2f}%{each}")
    lines.append(f"largest accuracy gap to the tutorial pipeline: {report.accuracy_gap_points:.2f} points")
    if report.peak_rss_mb is not None:
        lines.append(f"peak resident memory of a fit process: {report.peak_rss_mb:,.0f} MB")
    return "\n".join(lines)


@dataclass
class TimeToAccuracy:
    device: str
    device_name: str
    dataset: str
    target: float
    reached: bool
    epochs: int  # epochs trained: the first to reach the target, or all of max_epochs
    train_seconds: float  # the epochs' training time, evaluation excluded
    wall_seconds: float  # everything: training, the evaluation after each epoch, moving data to the device
    test_accuracy: list[float] = field(default_factory=list)  # after each epoch
    batch_size: int = 0


def time_to_accuracy(dataset: str = "fashion-mnist", device: str = "auto", target: float = 0.90,
                     max_epochs: int = 20, seed: int = 0, batch_size: Optional[int] = None,
                     progress: bool = False) -> TimeToAccuracy:
    """Train the BatchNorm LeNet-5 with ``fit``'s defaults until its test accuracy reaches ``target``."""
    dev = train.pick_device(device)
    tr, te = data.load_splits(dataset)
    model = _model(seed, dev, tr.in_channels)
    start = time.perf_counter()
    h = train.fit(model, tr, te, epochs=max_epochs, batch_size=batch_size, device=dev, seed=seed,
                  progress=progress, stop_at=target)
    wall = time.perf_counter() - start
    return TimeToAccuracy(str(dev), _device_name(dev), dataset, target, h.test_accuracy[-1] >= target, len(h),
                          sum(h.seconds), wall, list(h.test_accuracy),
                          batch_size or train.DEFAULT_BATCH_SIZE[dev.type])


def format_time_to_accuracy(t: TimeToAccuracy) -> str:
    if not t.reached:
        return (f"{100 * t.target:.0f} % test accuracy on {t.dataset} not reached in {t.epochs} epochs "
                f"(best {100 * max(t.test_accuracy):.2f} %; {t.train_seconds:.1f} s of training)")
    return (f"{100 * t.target:.0f} % test accuracy on {t.dataset}: {t.train_seconds:.1f} s of training "
            f"({t.epochs} epochs at batch {t.batch_size}, {100 * t.test_accuracy[-1]:.2f} %); "
            f"{t.wall_seconds:.1f} s with the evaluations")


@dataclass
class Variant:
    """One variant of ``fit``'s training step, timed against the step itself in the same rounds."""

    name: str
    batch_size: int
    images_per_s: Optional[float] = None  # median over the rounds; None when it could not run here
    ratio: Optional[float] = None  # median over the rounds of images/s relative to fit's step in that round
    runs: list[float] = field(default_factory=list)
    warmup_seconds: float = 0.0  # the untimed first steps: for torch.compile, mostly compiling
    note: str = ""


@dataclass
class _Spec:
    name: str
    batch_size: int
    fused: bool = True
    channels_last: bool = False
    amp: bool = False
    threads: Optional[int] = None
    item_every_step: bool = False
    compile: Optional[str] = None  # torch.compile's mode ("default", "reduce-overhead"); None: eager


def _specs(dev: torch.device, compile: bool) -> list[_Spec]:
    bs, amp = train.DEFAULT_BATCH_SIZE[dev.type], dev.type == "cuda"
    base = f"fit's step: fused Adam, batch {bs}, " + ("bfloat16 autocast" if amp else "float32")
    specs = [_Spec(base, bs, amp=amp),
             _Spec("Adam, torch's default (unfused) implementation", bs, fused=False, amp=amp),
             _Spec("channels_last memory format", bs, channels_last=True, amp=amp),
             _Spec("float32, no autocast" if amp else "bfloat16 autocast", bs, amp=not amp),
             _Spec("loss.item() every step (the host waits for the device)", bs, amp=amp, item_every_step=True),
             _Spec("batch 64", 64, amp=amp),
             _Spec("batch 1024", 1024, amp=amp)]
    if dev.type == "cuda":  # a GPU's steps are short enough that launching kernels can be what limits them
        specs.append(_Spec("batch 4096", 4096, amp=amp))
    if dev.type == "cpu" and torch.get_num_threads() > 1:
        specs.append(_Spec("one thread instead of " + str(torch.get_num_threads()), bs, threads=1))
    if compile:
        specs.append(_Spec("torch.compile", bs, amp=amp, compile="default"))
        if dev.type == "cuda":
            specs.append(_Spec("torch.compile, mode=\"reduce-overhead\" (CUDA graphs)", bs, amp=amp,
                               compile="reduce-overhead"))
    return specs


@contextmanager
def _threads(n: Optional[int]):
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextmanager
def _quiet_cpp_extension():
    """torch.compile imports torch.utils.cpp_extension, which warns on a CUDA build of torch without a
    GPU that "No CUDA runtime is found": true, and beside the point for compiling CPU code."""
    logger = logging.getLogger("torch.utils.cpp_extension")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


@contextmanager
def _quiet_native_stderr():
    """The profiler's C++ side writes its own log to file descriptor 2 as it starts and stops
    ("profiler_start", and on a CUDA build of torch without a GPU "gpuGetDeviceCount failed"):
    nothing a reader needs, and in a notebook it would land in the cell's output."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _endless(loader):
    while True:
        yield from loader


def _stepper(spec: _Spec, tr: data.Split, dev: torch.device, seed: int):
    """A function that takes one training step as ``fit`` does (without its bookkeeping)."""
    model = _model(seed, dev, tr.in_channels)
    fmt = torch.channels_last if spec.channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    lr = train.default_lr("adam", spec.batch_size)
    opt = (train.make_optimizer("adam", model.parameters(), lr) if spec.fused
           else torch.optim.Adam(model.parameters(), lr=lr))
    forward = torch.compile(model, mode=spec.compile) if spec.compile else model
    batches = _endless(data.TensorLoader(tr, spec.batch_size, shuffle=True, device=dev, seed=seed, drop_last=True,
                                         memory_format=fmt))
    loss_fn = nn.CrossEntropyLoss()

    def step() -> None:
        x, y = next(batches)
        if spec.compile == "reduce-overhead":
            torch.compiler.cudagraph_mark_step_begin()  # a new step: the last step's graph outputs may be overwritten
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=spec.amp):
            loss = loss_fn(forward(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if spec.item_every_step:
            loss.item()
    return step


def _timed(step, n: int, dev: torch.device) -> float:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    start = time.perf_counter()
    for _ in range(n):
        step()
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    return time.perf_counter() - start


def explore(dataset: str = "fashion-mnist", device: str = "auto", steps: int = 5, rounds: int = 12,
            compile: bool = True, seed: int = 0, warmup: int = 3, progress: bool = True) -> list[Variant]:
    """Time ``fit``'s training step against variants of it on one device.

    Every variant trains its own copy of the BatchNorm LeNet-5 from the same seed, on
    batches from a :class:`~lenet_course.data.TensorLoader`. After ``warmup`` untimed
    steps each, the variants take ``steps`` steps in turn, for ``rounds`` rounds; the
    first row is the step ``fit`` takes by default, and each variant's ratio is the
    median over the rounds of its images/s against that row's in the same round.
    Short turns and many rounds keep each comparison close in time: on a shared
    machine whose speed drifts, 5 steps x 12 rounds gave ratios that agreed better
    from run to run than 20 steps x 3 rounds, in the same time. A
    variant that cannot run here (``torch.compile`` needs a C++ compiler on a CPU) is
    reported with a note instead of figures.
    """
    _check_count("steps", steps)
    _check_count("rounds", rounds)
    _check_count("warmup", warmup, minimum=0)
    dev = train.pick_device(device)
    tr, _ = data.load_splits(dataset)
    specs = _specs(dev, compile)
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(specs) * (rounds + 1), desc="exploring", unit="run", leave=False)
    variants, steppers = [], []
    for spec in specs:
        variant = Variant(spec.name, spec.batch_size)
        with _threads(spec.threads), _quiet_cpp_extension():
            try:
                step = _stepper(spec, tr, dev, seed)
                variant.warmup_seconds = _timed(step, max(warmup, 1), dev)
            except Exception as exc:  # noqa: BLE001 - e.g. torch.compile without a C++ compiler
                step = None
                variant.note = f"could not run here: {type(exc).__name__}: {str(exc).strip().splitlines()[0][:160]}"
        variants.append(variant)
        steppers.append(step)
        if bar is not None:
            bar.update(1)
    for _ in range(rounds):
        for spec, variant, step in zip(specs, variants, steppers):
            if step is not None:
                with _threads(spec.threads):
                    variant.runs.append(steps * spec.batch_size / _timed(step, steps, dev))
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    base = variants[0].runs
    for variant in variants:
        if variant.runs:
            variant.images_per_s = statistics.median(variant.runs)
            variant.ratio = statistics.median(a / b for a, b in zip(variant.runs, base))
    return variants


def format_explore(variants: list[Variant]) -> str:
    lines = [f"{'variant of fit’s training step':56} {'batch':>5} {'images/s':>10} {'ratio':>6}"]
    for v in variants:
        if v.images_per_s is None:
            lines.append(f"{v.name:56} {v.batch_size:>5} {v.note}")
            continue
        extra = f"  (first steps took {v.warmup_seconds:.1f} s)" if "compile" in v.name else ""
        lines.append(f"{v.name:56} {v.batch_size:>5} {v.images_per_s:>10,.0f} {v.ratio:>5.2f}x{extra}")
    return "\n".join(lines)


# kinds of work in a training step, matched against the profiler's operator names in lower case without
# "_": forward operators (aten::...) and the autograd nodes that run their backward (...Backward0). A mark
# with "::" is a whole name; any other may stand anywhere in the name.
_KINDS = (
    ("convolutions", ("conv",)),
    ("batch norm", ("batchnorm",)),
    ("max-pooling", ("maxpool",)),
    ("ReLU", ("relu", "threshold", "clampmin")),
    ("linear layers", ("addmm", "aten::mm", "aten::t", "tbackward", "aten::linear", "aten::sum")),
    ("loss", ("logsoftmax", "nllloss", "crossentropy")),
    ("optimizer", ("optimizer", "adam", "zerograd", "foreach")),
    ("taking the batch", ("aten::index", "addcmul", "randperm")),
)


def _kind(op: str) -> str:
    name = op.lower().replace("_", "")
    for kind, marks in _KINDS:
        if any(name == m if "::" in m else m in name for m in marks):
            return kind
    return "other"


@dataclass
class Breakdown:
    """Where ``fit``'s training step spends its time, by kind of work (from ``torch.profiler``)."""

    device: str
    device_name: str
    batch_size: int
    steps: int
    step_ms: float  # wall time of a step while profiled
    parts: dict[str, float] = field(default_factory=dict)  # ms per step, largest first; "other" last
    measures: str = "host"  # "host": operators' own CPU time; "device": their kernels' GPU time

    def share(self, kind: str) -> float:
        """The fraction of the profiled time that ``kind`` took."""
        return self.parts.get(kind, 0.0) / sum(self.parts.values())


def breakdown(dataset: str = "fashion-mnist", device: str = "auto", steps: int = 20, warmup: int = 3,
              seed: int = 0, batch_size: Optional[int] = None) -> Breakdown:
    """Profile ``steps`` of ``fit``'s training steps and sum the time of each kind of work.

    Each operator's own time (its children excluded) goes to the layer kind it
    belongs to, forward and backward together: convolutions, batch norm,
    max-pooling, ReLU, the linear layers, the loss, the optimizer step, and taking
    the batch from the tensor-resident data; the rest (autograd's bookkeeping,
    allocating, views) is "other". On a CPU that is host time and adds up to the
    step; on a GPU it is the kernels' time on the device, and the step's wall time
    shows how much of it the GPU was busy. The profiler slows each operator a
    little, so the parts are shares of a step rather than its exact cost.
    """
    from torch.profiler import ProfilerActivity, profile

    _check_count("steps", steps)
    _check_count("warmup", warmup, minimum=0)
    dev = train.pick_device(device)
    bs = train.DEFAULT_BATCH_SIZE[dev.type] if batch_size is None else batch_size
    _check_count("batch_size", bs)
    tr, _ = data.load_splits(dataset)
    step = _stepper(replace(_specs(dev, compile=False)[0], batch_size=bs), tr, dev, seed)
    _timed(step, warmup, dev)
    on_gpu = dev.type == "cuda"
    prof = profile(activities=[ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if on_gpu else []))
    with _quiet_native_stderr():
        prof.start()
    try:
        seconds = _timed(step, steps, dev)
    finally:
        with _quiet_native_stderr():
            prof.stop()
            rows = prof.key_averages()
    parts: dict[str, float] = {}
    for row in rows:
        if on_gpu and row.device_type != torch.autograd.DeviceType.CPU:
            continue  # the kernels' time is counted on the operators that launched them
        us = row.self_device_time_total if on_gpu else row.self_cpu_time_total
        if us > 0:
            kind = _kind(row.key)
            parts[kind] = parts.get(kind, 0.0) + us / 1000 / steps
    ordered = dict(sorted(((k, v) for k, v in parts.items() if k != "other"), key=lambda kv: -kv[1]))
    ordered["other"] = parts.get("other", 0.0)
    return Breakdown(str(dev), _device_name(dev), bs, steps, 1000 * seconds / steps, ordered,
                     "device" if on_gpu else "host")


def format_breakdown(b: Breakdown) -> str:
    what = "GPU time of its kernels" if b.measures == "device" else "time on the host"
    lines = [f"fit's training step at batch {b.batch_size} on {b.device} ({b.device_name}): "
             f"{b.step_ms:.1f} ms while profiled, mean of {b.steps} steps; {what}:"]
    for kind, ms in b.parts.items():
        lines.append(f"  {kind:18} {ms:7.2f} ms  {100 * b.share(kind):5.1f} %")
    return "\n".join(lines)


def main(args) -> int:
    report = run(args.dataset, args.device, args.seed, args.small, memory=not args.no_memory, repeats=args.repeats)
    figures = report.to_dict()
    variants = None
    if args.explore:
        variants = explore(args.dataset, args.device, seed=args.seed, compile=not args.no_compile,
                           progress=args.json != "-")
        figures["explore"] = [asdict(v) for v in variants]
    profiled = None
    if args.breakdown:
        profiled = breakdown(args.dataset, args.device, seed=args.seed)
        figures["breakdown"] = asdict(profiled)
    reached = None
    if args.time_to is not None:
        reached = time_to_accuracy(args.dataset, args.device, args.time_to, seed=args.seed,
                                   progress=args.json != "-")
        figures["time_to_accuracy"] = asdict(reached)
    if args.json == "-":
        print(json.dumps(figures))
        return 0
    print(format_report(report))
    if variants is not None:
        print()
        print(format_explore(variants))
    if profiled is not None:
        print()
        print(format_breakdown(profiled))
    if reached is not None:
        print()
        print(format_time_to_accuracy(reached))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=2)
        print(f"figures written to {args.json}")
    return 0
