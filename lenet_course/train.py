"""Training and evaluation: ``fit``, ``evaluate``, seeding, devices, checkpoints.

``fit`` feeds the network from a :class:`~lenet_course.data.TensorLoader` (data
resident on the training device) by default; any iterable of ``(images,
labels)`` batches, such as a torchvision ``DataLoader``, works too.
"""
from __future__ import annotations

import math
import os
import pickle
import random
import signal
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

from . import data as data_mod
from . import models

__all__ = ["fit", "evaluate", "predict", "History", "set_seed", "pick_device", "make_optimizer",
           "OPTIMIZERS", "default_lr", "save_checkpoint", "load_checkpoint", "CheckpointError", "DEFAULT_BATCH_SIZE",
           "DEFAULT_LR"]

OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
DEVICES = ("auto", "cpu", "cuda", "mps")
DEFAULT_BATCH_SIZE = {"cpu": 256, "cuda": 512, "mps": 256}
# learning rates that suit batch 64; default_lr scales them to other batch sizes
DEFAULT_LR = {"adam": 1e-3, "adamw": 1e-3, "rmsprop": 1e-3, "sgd": 0.05}
CHECKPOINT_FORMAT = "lenet_course/1"


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an integer, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def pick_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` picks cuda, then mps, then cpu; asking for a device that is absent is an error."""
    if isinstance(device, torch.device):
        device = str(device)
    if not isinstance(device, str) or device.split(":")[0] not in DEVICES:
        raise ValueError(f"unknown device {device!r}; expected one of {list(DEVICES)} (cuda may take an index, cuda:1)")
    cuda, mps = torch.cuda.is_available(), torch.backends.mps.is_available()
    if device == "auto":
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    kind = device.split(":")[0]
    if kind == "cuda" and not cuda:
        raise RuntimeError(f"device {device!r} was asked for but CUDA is not available here; "
                           "use device='auto' or 'cpu'")
    if kind == "cuda" and ":" in device and int(device.split(":")[1]) >= torch.cuda.device_count():
        raise RuntimeError(f"device {device!r} was asked for but only {torch.cuda.device_count()} CUDA device(s) exist")
    if kind == "mps" and not mps:
        raise RuntimeError(f"device {device!r} was asked for but MPS (Apple GPU) is not available here; "
                           "use device='auto' or 'cpu'")
    return torch.device(device)


def default_lr(optimizer: str, batch_size: int) -> float:
    """The optimizer's batch-64 rate scaled to ``batch_size``: linearly up to batch 128,
    then with the square root (Fashion-MNIST, 5 epochs of Adam: batch 128 at 2e-3 and
    batch 256 at 2.8e-3 both reach about 90 %)."""
    ratio = batch_size / 64
    return DEFAULT_LR[optimizer] * (ratio if ratio <= 2 else 2 * math.sqrt(ratio / 2))


def _check_lr(lr: float) -> float:
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0:
        raise ValueError(f"learning rate must be a positive finite number, got {lr!r}")
    return float(lr)


def _fusable(params: list) -> bool:
    """Whether torch's fused (one kernel for all parameters) update applies: floating tensors on one CPU or CUDA device."""
    tensors = [t for p in params for t in (p["params"] if isinstance(p, dict) else [p])]
    return (bool(tensors) and len({t.device for t in tensors}) == 1 and tensors[0].device.type in ("cpu", "cuda")
            and all(t.is_floating_point() for t in tensors))


def make_optimizer(name: str, params, lr: float, weight_decay: float = 0.0) -> torch.optim.Optimizer:
    """``adam``, ``adamw``, ``sgd`` (momentum 0.9) or ``rmsprop``.

    Adam, AdamW and SGD use torch's fused implementation (``fused=True``) when the
    parameters are on one CPU or CUDA device: the same update rule, one kernel for all
    parameters instead of several small ones each. For LeNet's ten parameter tensors
    that makes the optimizer's own step several times as fast on a CPU, which is a few
    percent of a training step at most (the performance appendix measures it).
    """
    lr = _check_lr(lr)
    params = list(params)
    fused = {"fused": True} if name in ("adam", "adamw", "sgd") and _fusable(params) else {}
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, **fused)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, **fused)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=weight_decay, **fused)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}; expected one of {list(OPTIMIZERS)}")


@dataclass
class History:
    """Per-epoch figures of a ``fit`` run; ``interrupted`` is set when Ctrl-C ended it early."""

    train_loss: list[float] = field(default_factory=list)
    train_accuracy: list[float] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)
    test_accuracy: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    images_per_s: list[float] = field(default_factory=list)
    interrupted: bool = False

    def __len__(self) -> int:
        return len(self.train_loss)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "History":
        return cls(**d)

    def rows(self) -> list[dict[str, float]]:
        """One dict per epoch (handy for a table)."""
        keys = [k for k in self.to_dict() if k != "interrupted"]
        return [{"epoch": i + 1, **{k: getattr(self, k)[i] for k in keys if i < len(getattr(self, k))}}
                for i in range(len(self))]


def _batches(data, batch_size: int, shuffle: bool, device: torch.device, seed: int):
    if isinstance(data, data_mod.Split):
        return data_mod.TensorLoader(data, batch_size, shuffle=shuffle, device=device, seed=seed)
    if isinstance(data, Iterable):
        return data
    raise TypeError(f"expected a lenet_course.data.Split or an iterable of (images, labels) batches, "
                    f"got {type(data).__name__}")


@torch.no_grad()
def predict(model: nn.Module, data, device: str | torch.device = "auto",
            batch_size: int = 1000) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits, labels) for a whole split or loader, on the CPU."""
    dev = pick_device(device) if not isinstance(device, torch.device) else device
    model.to(dev)
    was_training = model.training
    model.eval()
    outs, labels = [], []
    try:
        for x, y in _batches(data, min(batch_size, len(data)) if isinstance(data, data_mod.Split) else batch_size,
                             False, dev, 0):
            outs.append(model(x.to(dev, non_blocking=True)).float().cpu())
            labels.append(y.cpu())
    finally:
        model.train(was_training)
    return torch.cat(outs), torch.cat(labels)


def evaluate(model: nn.Module, data, device: str | torch.device = "auto",
             batch_size: int = 1000) -> dict[str, float]:
    """Mean cross-entropy loss and accuracy (0-1) of ``model`` on ``data``."""
    logits, labels = predict(model, data, device, batch_size)
    return {"loss": F.cross_entropy(logits, labels).item(),
            "accuracy": (logits.argmax(1) == labels).float().mean().item()}


def fit(model: nn.Module, train, test=None, epochs: int = 5, optimizer: str = "adam",
        lr: Optional[float] = None, batch_size: Optional[int] = None, device: str | torch.device = "auto",
        seed: int = 0, progress: bool = True, live: bool = False, checkpoint: str | os.PathLike | None = None,
        weight_decay: float = 0.0, amp: Optional[bool] = None, loss_fn=None,
        resume: str | os.PathLike | None = None, stop_at: Optional[float] = None) -> History:
    """Train ``model`` for ``epochs`` passes over ``train``; evaluate on ``test`` after each.

    ``train``/``test`` are :class:`~lenet_course.data.Split` objects (fast path:
    data resident on the device) or iterables of ``(images, labels)`` batches.
    ``lr`` defaults to a per-optimizer value scaled with sqrt(batch / 64);
    ``batch_size`` to a per-device default. ``amp`` (bfloat16 autocast) defaults
    to on for CUDA. ``live`` redraws loss/accuracy curves after each epoch in a
    notebook; ``checkpoint`` saves a checkpoint after each epoch, with what
    resuming needs (optimizer state, random-number states, history).
    ``resume=path`` continues from such a checkpoint up to ``epochs`` in all, to the
    same result as a run that was never stopped (same settings, same device).
    ``stop_at`` (a test accuracy, 0-1) ends training after the first epoch that reaches
    it, so ``epochs`` becomes an upper bound: ``sum(history.seconds)`` is then the
    training time to that accuracy.

    Ctrl-C stops at the end of the current step (an interrupt during the optimizer
    step is held back until the step is complete, so no weight is half updated): the
    model keeps the last completed step's weights and the history of the completed
    epochs is returned, marked ``interrupted``; the checkpoint holds the last
    completed epoch. A non-finite loss raises ``FloatingPointError`` naming the
    epoch, step and lr.
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; expected one of {list(OPTIMIZERS)}")
    if stop_at is not None:
        if isinstance(stop_at, bool) or not isinstance(stop_at, (int, float)) or not 0 < stop_at <= 1:
            raise ValueError(f"stop_at must be a test accuracy between 0 and 1, got {stop_at!r}")
        if test is None:
            raise ValueError("stop_at needs test data to measure the accuracy on")
    dev = pick_device(device)
    if batch_size is None:
        batch_size = DEFAULT_BATCH_SIZE[dev.type]
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if lr is None:
        lr = default_lr(optimizer, batch_size)
    lr = _check_lr(lr)
    amp = dev.type == "cuda" if amp is None else amp
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    set_seed(seed)
    model.to(dev)
    opt = make_optimizer(optimizer, model.parameters(), lr, weight_decay)
    loader = _batches(train, batch_size, True, dev, seed)
    settings = {"optimizer": optimizer, "lr": lr, "batch_size": batch_size, "seed": seed,
                "weight_decay": float(weight_decay), "amp": bool(amp),
                "train_size": len(train) if hasattr(train, "__len__") else None}
    history = History()
    if resume is not None:
        history = _resume(resume, model, opt, loader, settings, dev)
    done = len(history)
    if done >= epochs:
        model.eval()
        return history
    curves = None
    if live:
        from .plots import LiveCurves
        curves = LiveCurves()
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=(epochs - done) * len(loader) if hasattr(loader, "__len__") else None,
                   desc="training", unit="step", leave=True)
    # On the CPU a check per step is free; on a GPU it would make the host wait for the
    # device every step, so the step losses stay on the device and are checked once an epoch.
    n_steps = len(loader) if hasattr(loader, "__len__") else None
    check_every = 1 if dev.type == "cpu" else (n_steps or 100)
    guard = _InterruptGuard()
    try:
        guard.install()
        for epoch in range(done + 1, epochs + 1):
            model.train()
            start = time.perf_counter()
            step_losses = []
            total_loss = torch.zeros((), device=dev)
            correct = torch.zeros((), device=dev, dtype=torch.int64)
            seen = 0
            for step, (x, y) in enumerate(loader, 1):
                x, y = x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
                with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
                    out = model(x)
                    loss = loss_fn(out, y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                loss = loss.detach()
                step_losses.append(loss)
                if step % check_every == 0:
                    _check_finite(step_losses, epoch, step, lr)
                guard.holding = True  # Ctrl-C waits until the weights are wholly updated
                opt.step()
                total_loss += loss.float() * len(y)
                correct += (out.detach().argmax(1) == y).sum()
                seen += len(y)
                guard.release()
                if bar is not None:
                    bar.update(1)
            if step_losses:  # the steps since the last check
                _check_finite(step_losses, epoch, step, lr)
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            seconds = time.perf_counter() - start
            scores = evaluate(model, test, dev) if test is not None else None
            row = (total_loss.item() / seen, correct.item() / seen)
            # append only once the epoch is complete, so an interrupted epoch leaves no half row;
            # the row and its checkpoint are written with Ctrl-C held back, so they always agree
            guard.holding = True
            history.train_loss.append(row[0])
            history.train_accuracy.append(row[1])
            history.seconds.append(seconds)
            history.images_per_s.append(seen / seconds)
            if scores is not None:
                history.test_loss.append(scores["loss"])
                history.test_accuracy.append(scores["accuracy"])
            if checkpoint is not None:
                save_checkpoint(checkpoint, model, history=history, data=train, optimizer=opt,
                                state=_training_state(settings, loader, dev))
            guard.release()
            if bar is not None:
                bar.set_postfix(epoch=epoch, loss=f"{history.train_loss[-1]:.3f}",
                                test_acc=f"{history.test_accuracy[-1]:.3f}" if test is not None else "-")
            if curves is not None:
                curves.update(history, epochs)
            if stop_at is not None and history.test_accuracy[-1] >= stop_at:
                break
    except KeyboardInterrupt:
        history.interrupted = True
        import warnings
        saved = (f"; {checkpoint} holds them: fit(..., resume={str(checkpoint)!r}) continues"
                 if checkpoint is not None and len(history) and Path(checkpoint).is_file() else "")
        warnings.warn(f"training interrupted after {len(history)} complete epoch(s); the model keeps the weights "
                      f"of its last completed step; returning the history so far{saved}", stacklevel=2)
    finally:
        guard.uninstall()
        if bar is not None:
            bar.close()
        if curves is not None:
            curves.close()
    model.eval()
    return history


class _InterruptGuard:
    """Holds back Ctrl-C (SIGINT) while ``holding`` is set, then delivers it.

    Installed for the length of ``fit`` in the main thread only (signal handlers can
    be set nowhere else; other threads never receive KeyboardInterrupt from Ctrl-C).
    Outside the held regions the previous handler runs at once, as if not installed.
    """

    def __init__(self) -> None:
        self.holding = False
        self.pending: Optional[tuple[int, Any]] = None
        self.previous: Any = None
        self.installed = False

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        previous = signal.getsignal(signal.SIGINT)
        if previous is None:  # set outside Python: it could not be put back, so leave it alone
            return
        try:
            signal.signal(signal.SIGINT, self._handle)
        except (ValueError, OSError):  # e.g. an embedded interpreter that forbids it
            return
        self.previous, self.installed = previous, True

    def uninstall(self) -> None:
        if self.installed:
            signal.signal(signal.SIGINT, self.previous)
            self.installed = False
        self.holding = False

    def _handle(self, signum: int, frame: Any) -> None:
        if self.holding:
            self.pending = (signum, frame)
        else:
            self._deliver(signum, frame)

    def _deliver(self, signum: int, frame: Any) -> None:
        previous = self.previous
        if previous is signal.SIG_IGN:
            return
        if callable(previous):
            previous(signum, frame)  # default_int_handler raises KeyboardInterrupt
        else:  # SIG_DFL would end the process; stopping training cleanly is kinder
            raise KeyboardInterrupt

    def release(self) -> None:
        self.holding = False
        if self.pending is not None:
            signum, frame = self.pending
            self.pending = None
            self._deliver(signum, frame)


def _training_state(settings: dict[str, Any], loader: Any, dev: torch.device) -> dict[str, Any]:
    """What ``fit(resume=...)`` needs beyond the weights, optimizer state and history."""
    state: dict[str, Any] = {"settings": dict(settings), "torch_rng": torch.get_rng_state()}
    if dev.type == "cuda":
        state["cuda_rng"] = torch.cuda.get_rng_state(dev)
    generator = getattr(loader, "generator", None)
    if isinstance(generator, torch.Generator):
        state["loader_rng"] = generator.get_state()
    return state


def _resume(path: str | os.PathLike, model: nn.Module, opt: torch.optim.Optimizer, loader: Any,
            settings: dict[str, Any], dev: torch.device) -> History:
    """Load a checkpoint written by ``fit(checkpoint=...)`` into ``model``, ``opt`` and the RNGs."""
    _, payload = load_checkpoint(path, model, device=dev)
    state = payload.get("fit")
    if not isinstance(state, dict) or payload.get("history") is None or "optimizer" not in payload:
        raise CheckpointError(f"{path} cannot be resumed from: it holds weights but no training state "
                              "(expected a checkpoint written by fit(..., checkpoint=path))")
    saved = state.get("settings", {})
    differ = {k: (saved.get(k), v) for k, v in settings.items() if saved.get(k) != v}
    if differ:
        listing = ", ".join(f"{k}={old!r} (this call: {new!r})" for k, (old, new) in differ.items())
        raise ValueError(f"cannot resume from {path}: it was trained with {listing}; "
                         "pass the same settings to continue, or start a new run without resume")
    opt.load_state_dict(payload["optimizer"])
    torch.set_rng_state(state["torch_rng"])
    if dev.type == "cuda" and "cuda_rng" in state:
        torch.cuda.set_rng_state(state["cuda_rng"], dev)
    generator = getattr(loader, "generator", None)
    if isinstance(generator, torch.Generator) and "loader_rng" in state:
        generator.set_state(state["loader_rng"])
    return History.from_dict(payload["history"])


def _check_finite(step_losses: list[torch.Tensor], epoch: int, step: int, lr: float) -> None:
    """Raise at the first non-finite loss among the steps since the last check."""
    window = torch.stack(step_losses)
    if bool(torch.isfinite(window).all()):
        step_losses.clear()
        return
    first = step - len(step_losses) + 1 + int((~torch.isfinite(window)).nonzero()[0])
    raise FloatingPointError(f"loss became {window[first - (step - len(step_losses) + 1)].item()} at epoch {epoch}, "
                             f"step {first} (learning rate {lr:g}); try a smaller learning rate")


class CheckpointError(ValueError):
    """A file that is not a usable checkpoint for the model asked for."""


def _atomic_save(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_checkpoint(path: str | os.PathLike, model: nn.Module, history: Optional[History] = None,
                    data: Any = None, optimizer: Optional[torch.optim.Optimizer] = None,
                    state: Optional[dict[str, Any]] = None) -> Path:
    """Save the state_dict with what is needed to rebuild and use it: model name and
    arguments, dataset name, normalisation, class names, history; ``fit`` adds the
    optimizer and ``state`` (settings, random-number states) so it can resume. Written
    to a temporary file and renamed, so a crash never leaves a corrupt checkpoint."""
    config = getattr(model, "config", None)
    if not config:
        raise ValueError("this model has no .config; build it with lenet_course.models.create(name, ...) "
                         "so the checkpoint can say how to rebuild it")
    payload: dict[str, Any] = {
        "format": CHECKPOINT_FORMAT,
        "model": dict(config),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "history": history.to_dict() if history is not None else None,
        "torch": str(torch.__version__),
    }
    if isinstance(data, data_mod.Split):
        payload.update(dataset=data.name, mean=list(data.mean), std=list(data.std), classes=list(data.classes))
    if optimizer is not None:
        payload["optimizer"] = optimizer.state_dict()
    if state is not None:
        payload["fit"] = state
    path = Path(path)
    _atomic_save(payload, path)
    return path


def load_checkpoint(path: str | os.PathLike, model: Optional[nn.Module] = None,
                    device: str | torch.device = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Load a checkpoint with ``torch.load(weights_only=True)``: tensors and plain data
    only, so a file carrying pickled code is refused, never run. Rebuilds the model
    from the checkpoint, or loads into ``model`` after checking it is the same
    architecture. Returns ``(model, info)``; ``info`` holds the rest (history, dataset...)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load raises many types for a damaged or foreign file
        text = str(exc)
        if isinstance(exc, pickle.UnpicklingError) and ("Unsupported global" in text or "GLOBAL" in text):
            # torch words it "Unsupported global: GLOBAL m.f was not an allowed global" or "Trying to
            # load unsupported GLOBAL m.f whose module m is blocked", depending on the object
            line = next(ln for ln in text.splitlines() if "GLOBAL" in ln or "Unsupported global" in ln)
            culprit = line.split(" was not")[0].split(" whose ")[0].replace("WeightsUnpickler error:", "").strip()
            raise CheckpointError(f"{path} was refused: it holds a pickled Python object ({culprit}), and loading "
                                  "it could run code; weights_only loading accepts tensors and plain data only") from None
        raise CheckpointError(f"{path} is not a readable checkpoint (truncated, damaged or not a torch file: "
                              f"{type(exc).__name__}: {text.splitlines()[-1][:200] if text else ''})") from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is a torch file but not a lenet_course checkpoint "
                              f"(expected format {CHECKPOINT_FORMAT!r}); save with lenet_course.train.save_checkpoint")
    if model is None:
        config = dict(payload["model"])
        model = models.create(config.pop("name"), **config)
    else:
        mine = getattr(model, "config", None)
        if mine is not None and mine != payload["model"]:
            raise CheckpointError(f"{path} holds a {_describe(payload['model'])} model, "
                                  f"not the {_describe(mine)} model given")
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        raise CheckpointError(f"{path} does not fit {type(model).__name__}: {str(exc).splitlines()[0]}") from None
    return model.to(device), payload


def _describe(config: dict) -> str:
    rest = ", ".join(f"{k}={v!r}" for k, v in config.items() if k != "name")
    return f"{config.get('name')!r}" + (f" ({rest})" if rest else "")
