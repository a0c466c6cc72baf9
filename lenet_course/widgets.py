"""ipywidgets explorers. Their logic is plain functions, so tests run it headless.

* :func:`shape_calculator`: kernel, stride, padding, input size -> output size (chapter 1).
* :class:`Explorer`: train LeNet-5 with chosen hyperparameters and compare the runs
  side by side (chapter 11). Its logic is :class:`RunConfig`, :func:`run_experiment`,
  :func:`sweep`, :func:`results_table` and :func:`plot_runs`; the panel only reads
  widgets into a ``RunConfig`` and shows what those return.
"""
from __future__ import annotations

import base64
import html
import io
import math
import numbers
import time
from dataclasses import dataclass, fields, replace
from typing import Any, Iterable, Mapping, Optional, Sequence

import ipywidgets as w

from . import data as data_mod
from . import models, plots, train as train_mod
from .arch import conv_output_size

__all__ = ["shape_report", "shape_calculator", "RunConfig", "RunResult", "run_experiment", "sweep",
           "results_table", "run_labels", "plot_runs", "Explorer", "LR_RANGE", "BATCH_SIZES", "MAX_EPOCHS",
           "BLOWUP_FACTOR"]


def shape_report(size: int, kernel: int, stride: int = 1, padding: int = 0) -> str:
    """The output-size formula worked through for one setting, or why it has no output."""
    try:
        out = conv_output_size(size, kernel, stride, padding)
    except ValueError as exc:
        return f"no output: {exc}"
    exact = (size - kernel + 2 * padding) / stride + 1
    note = "" if exact == out else f" (floor of {exact:.2f}: the last {(size - kernel + 2 * padding) % stride} column(s) are skipped)"
    return f"(W - K + 2P) / S + 1 = ({size} - {kernel} + 2*{padding}) / {stride} + 1 = {out}{note}"


def shape_calculator(size: int = 32, kernel: int = 5, stride: int = 1, padding: int = 0) -> w.VBox:
    """Sliders for W, K, S, P and the resulting output width, updated as they move."""
    sliders = {
        "size": w.IntSlider(value=size, min=1, max=64, description="input W"),
        "kernel": w.IntSlider(value=kernel, min=1, max=11, description="kernel K"),
        "stride": w.IntSlider(value=stride, min=1, max=4, description="stride S"),
        "padding": w.IntSlider(value=padding, min=0, max=5, description="padding P"),
    }
    result = w.HTML()

    def refresh(_=None):
        result.value = f"<code>{shape_report(**{k: s.value for k, s in sliders.items()})}</code>"

    for s in sliders.values():
        s.observe(refresh, names="value")
    refresh()
    return w.VBox([*sliders.values(), result])


# ---------------------------------------------------------------------------
# Hyperparameter explorer: headless logic
# ---------------------------------------------------------------------------

LR_RANGE = (1e-5, 10.0)          # wide on purpose: the top end shows what divergence looks like
BATCH_SIZES = (16, 32, 64, 128, 256, 512)
MAX_EPOCHS = 50
MAX_BATCH_SIZE = 4096
# An epoch whose mean training loss is this many times that of a uniform guess (ln K for
# K classes) has blown up, even when no number overflowed to inf/nan: with ReLUs the
# weights often grow huge, every unit dies, and the loss settles at a large finite value.
BLOWUP_FACTOR = 10


def _integer(name: str, value: Any, low: int, high: Optional[int] = None) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    value = int(value)
    if value < low or (high is not None and value > high):
        expected = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ValueError(f"{name} must be {expected}, got {value}")
    return value


def _option(name: str, value: Any, valid: Iterable[str]) -> str:
    valid = list(valid)
    if value not in valid:
        raise ValueError(f"{name} must be one of {valid}, got {value!r}")
    return value


@dataclass(frozen=True)
class RunConfig:
    """The settings of one training run of the modern LeNet-5 (``models.create("sequential")``).

    Checked on creation: a value out of range raises ``ValueError`` (wrong type:
    ``TypeError``) naming what was expected and what was given. Make variants with
    ``dataclasses.replace(config, lr=0.01)``, which checks again.
    """

    lr: float = 1e-3
    batch_size: int = 64
    optimizer: str = "adam"
    activation: str = "relu"
    pooling: str = "max"
    batchnorm: bool = False
    epochs: int = 2
    train_size: int = 2000
    seed: int = 0

    def __post_init__(self) -> None:
        lr = self.lr
        if isinstance(lr, bool) or not isinstance(lr, numbers.Real):
            raise TypeError(f"lr must be a number, got {lr!r} ({type(lr).__name__})")
        lo, hi = LR_RANGE
        if not lo <= float(lr) <= hi:  # also refuses nan
            raise ValueError(f"lr must be between {lo:g} and {hi:g}, got {float(lr):g}")
        checked = {
            "lr": float(lr),
            "batch_size": _integer("batch_size", self.batch_size, 1, MAX_BATCH_SIZE),
            "optimizer": _option("optimizer", self.optimizer, train_mod.OPTIMIZERS),
            "activation": _option("activation", self.activation, models.ACTIVATIONS),
            "pooling": _option("pooling", self.pooling, models.POOLINGS),
            "epochs": _integer("epochs", self.epochs, 1, MAX_EPOCHS),
            "train_size": _integer("train_size", self.train_size, 1),
            "seed": _integer("seed", self.seed, 0),
        }
        if not isinstance(self.batchnorm, bool):
            raise TypeError(f"batchnorm must be True or False, got {self.batchnorm!r}")
        for key, value in checked.items():  # store plain Python types (a NumPy int, say, becomes int)
            object.__setattr__(self, key, value)


@dataclass
class RunResult:
    """What one run produced: its settings, the per-epoch History and the final test
    figures, or ``error`` (a sentence; history ``None``) when it could not finish."""

    config: Optional[RunConfig]
    history: Optional[train_mod.History] = None
    test_accuracy: Optional[float] = None
    test_loss: Optional[float] = None
    error: Optional[str] = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None


def run_experiment(config: RunConfig | Mapping[str, Any], train_split: data_mod.Split,
                   test_split: data_mod.Split, device: str = "auto") -> RunResult:
    """Train a fresh ``sequential`` LeNet-5 with ``config`` on the first ``train_size``
    images of a seeded shuffle of ``train_split`` and score it on ``test_split``.

    Never raises for a bad run: a diverging loss (``FloatingPointError`` from ``fit``, or
    an epoch whose mean training loss exceeds ``BLOWUP_FACTOR`` times that of a uniform
    guess; that result keeps its history) and invalid settings (a mapping that is not a
    valid ``RunConfig``, a ``train_size`` larger than the split) come back as
    ``result.error``, so a sweep or the explorer carries on.
    """
    start = time.perf_counter()
    cfg = config if isinstance(config, RunConfig) else None
    try:
        if cfg is None:
            if not isinstance(config, Mapping):
                raise TypeError(f"config must be a RunConfig or a mapping of its fields, got {type(config).__name__}")
            unknown = sorted(set(config) - {f.name for f in fields(RunConfig)})
            if unknown:
                raise ValueError(f"unknown setting(s) {unknown}; expected some of {[f.name for f in fields(RunConfig)]}")
            cfg = RunConfig(**config)
        if cfg.train_size > len(train_split):
            raise ValueError(f"train_size must be at most {len(train_split)} (the size of the training split), "
                             f"got {cfg.train_size}")
        train_mod.set_seed(cfg.seed)
        model = models.create("sequential", batchnorm=cfg.batchnorm, activation=cfg.activation, pooling=cfg.pooling,
                              num_classes=len(train_split.classes), in_channels=train_split.in_channels)
        history = train_mod.fit(model, train_split.subset(cfg.train_size, seed=cfg.seed), test_split,
                                epochs=cfg.epochs, optimizer=cfg.optimizer, lr=cfg.lr, batch_size=cfg.batch_size,
                                device=device, seed=cfg.seed, progress=False)
    except FloatingPointError as exc:
        return RunResult(cfg, error=f"diverged: {exc}", seconds=time.perf_counter() - start)
    except (ValueError, TypeError) as exc:
        return RunResult(cfg, error=f"invalid settings: {exc}", seconds=time.perf_counter() - start)
    seconds = time.perf_counter() - start
    if len(history) == 0:  # Ctrl-C before the first epoch ended
        return RunResult(cfg, history, error="interrupted before the first epoch ended", seconds=seconds)
    uniform = math.log(len(train_split.classes))
    worst = max(range(len(history)), key=lambda i: history.train_loss[i])
    if history.train_loss[worst] > BLOWUP_FACTOR * uniform:
        return RunResult(cfg, history, error=(
            f"diverged: the mean training loss reached {history.train_loss[worst]:.3g} in epoch {worst + 1} "
            f"(a uniform guess scores {uniform:.2f}; learning rate {cfg.lr:g}); try a smaller learning rate"),
            seconds=seconds)
    last = (history.test_accuracy[-1], history.test_loss[-1]) if history.test_accuracy else (None, None)
    return RunResult(cfg, history, *last, seconds=seconds)


def sweep(configs: Iterable[RunConfig | Mapping[str, Any]], train_split: data_mod.Split,
          test_split: data_mod.Split, device: str = "auto") -> list[RunResult]:
    """:func:`run_experiment` for each configuration, in order; failed runs are kept with their error."""
    return [run_experiment(c, train_split, test_split, device=device) for c in configs]


_COLUMNS = ("#", "optimizer", "lr", "batch", "activation", "pooling", "BN", "epochs", "train", "test acc",
            "test loss")


def _settings_cells(cfg: Optional[RunConfig]) -> list[str]:
    if cfg is None:
        return ["?"] * 8
    return [cfg.optimizer, f"{cfg.lr:g}", str(cfg.batch_size), cfg.activation, cfg.pooling,
            "yes" if cfg.batchnorm else "no", str(cfg.epochs), str(cfg.train_size)]


def results_table(results: Sequence[RunResult]) -> str:
    """An aligned text table, one row per run: its settings and final test accuracy and
    loss, or its error in place of the figures."""
    if not results:
        return "no runs yet"
    rows, errors = [], {}
    for i, r in enumerate(results, 1):
        cells = [str(i), *_settings_cells(r.config)]
        if r.ok:
            note = " *" if r.history is not None and r.history.interrupted else ""
            if r.test_accuracy is None:  # trained without a test split
                rows.append(cells + ["-", "-"])
            else:
                rows.append(cells + [f"{100 * r.test_accuracy:.1f} %{note}", f"{r.test_loss:.3f}"])
        else:
            rows.append(cells)
            errors[len(rows) - 1] = f"error: {r.error}"
    widths = [max([len(_COLUMNS[j]), *(len(row[j]) for row in rows if j < len(row))]) for j in range(len(_COLUMNS))]
    right = {0, 2, 3, 7, 8, 9, 10}  # numbers align right

    def line(cells: Sequence[str]) -> str:
        out = [c.rjust(widths[j]) if j in right else c.ljust(widths[j]) for j, c in enumerate(cells)]
        return "  ".join(out).rstrip()

    lines = [line(_COLUMNS), "  ".join("-" * n for n in widths)]
    for k, row in enumerate(rows):
        lines.append(line(row) + (("  " + errors[k]) if k in errors else ""))
    if any(r.ok and r.history is not None and r.history.interrupted for r in results):
        lines.append("* interrupted: the figures are those of the last complete epoch")
    return "\n".join(lines)


_LABEL_PARTS = {
    "lr": lambda c: f"lr={c.lr:g}",
    "batch_size": lambda c: f"batch={c.batch_size}",
    "optimizer": lambda c: c.optimizer,
    "activation": lambda c: c.activation,
    "pooling": lambda c: f"{c.pooling}pool",
    "batchnorm": lambda c: "BN" if c.batchnorm else "no BN",
    "epochs": lambda c: f"{c.epochs} ep",
    "train_size": lambda c: f"n={c.train_size}",
    "seed": lambda c: f"seed={c.seed}",
}


def run_labels(results: Sequence[RunResult], numbers: Optional[Sequence[int]] = None) -> list[str]:
    """Short legend labels: the run number (``numbers``, else 1, 2, ...) and only the
    settings that differ between these runs."""
    numbers = list(numbers) if numbers is not None else list(range(1, len(results) + 1))
    configs = [r.config for r in results if r.config is not None]
    varying = [k for k in _LABEL_PARTS if len({getattr(c, k) for c in configs}) > 1]
    labels = []
    for number, r in zip(numbers, results):
        parts = [_LABEL_PARTS[k](r.config) for k in varying] if r.config is not None else []
        labels.append(" ".join([f"#{number}", *parts]))
    return labels


def plot_runs(results: Sequence[RunResult]):
    """Loss and accuracy curves of every run that finished, side by side in one figure
    (``plots.curves``), with one legend entry per run; ``None`` when no run finished.
    Failed runs are left out: a blown-up loss would flatten every other curve."""
    drawn = [(i, r) for i, r in enumerate(results, 1) if r.ok and r.history is not None and len(r.history)]
    if not drawn:
        return None
    numbers, finished = zip(*drawn)
    names = run_labels(finished, numbers)
    fig = plots.curves([r.history for r in finished], names)
    for ax in fig.axes:
        ax.get_legend().remove()
    handles = [line for line in fig.axes[1].get_lines() if line.get_label().endswith(" train")]
    fig.legend(handles, names, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8,
               title="solid: train\ndashed: test", title_fontsize=8, frameon=False)
    return fig


# ---------------------------------------------------------------------------
# Hyperparameter explorer: the ipywidgets panel
# ---------------------------------------------------------------------------

def _figure_output(fig) -> dict:
    """A figure as a display_data output for an Output widget (built directly, so it
    also works headless, without a kernel to capture ``display``)."""
    import matplotlib.pyplot as plt
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    plt.close(fig)
    return {"output_type": "display_data", "metadata": {},
            "data": {"image/png": base64.b64encode(buf.getvalue()).decode("ascii"),
                     "text/plain": "<Figure: loss and accuracy of the runs so far>"}}


class Explorer:
    """A panel to train LeNet-5 with chosen hyperparameters and compare the runs.

    ``Explorer(train, test)`` shows sliders and buttons; "Train" runs
    :func:`run_experiment` with the current settings, then redraws the curves of all
    runs so far and the results table. A run that fails (a learning rate so large
    the loss overflows) adds an error line and the panel stays usable. The handlers
    are plain methods (:meth:`train_clicked`, :meth:`clear_clicked`), so the panel
    can be driven from code and tested without a browser. ``config`` sets the
    starting values; ``results`` starts the panel with runs made elsewhere (a sweep).
    Evaluating after each epoch costs time: pass a test subset for a fast panel.
    """

    def __init__(self, train: data_mod.Split, test: data_mod.Split, config: Optional[RunConfig] = None,
                 results: Optional[Sequence[RunResult]] = None, device: str = "auto") -> None:
        self.train, self.test, self.device = train, test, device
        self.results: list[RunResult] = list(results or [])
        config = config or RunConfig(train_size=min(RunConfig.train_size, len(train)))
        sizes = sorted({n for n in (500, 1000, 2000, 5000, 10000, 20000) if n < len(train)}
                       | {len(train), config.train_size})
        batch_sizes = sorted(set(BATCH_SIZES) | {config.batch_size})
        style = {"description_width": "90px"}
        self.lr = w.FloatLogSlider(value=config.lr, base=10, min=-5, max=1, step=0.25, description="learning rate",
                                   readout_format=".1e", style=style)
        self.batch_size = w.Dropdown(options=batch_sizes, value=config.batch_size, description="batch size",
                                     style=style)
        self.optimizer = w.ToggleButtons(options=list(train_mod.OPTIMIZERS), value=config.optimizer,
                                         description="optimizer", style=style)
        self.activation = w.ToggleButtons(options=list(models.ACTIVATIONS), value=config.activation,
                                          description="activation", style=style)
        self.pooling = w.ToggleButtons(options=list(models.POOLINGS), value=config.pooling, description="pooling",
                                       style=style)
        self.batchnorm = w.Checkbox(value=config.batchnorm, description="BatchNorm after each convolution")
        self.epochs = w.IntSlider(value=config.epochs, min=1, max=20, description="epochs", style=style)
        self.train_size = w.Dropdown(options=sizes, value=config.train_size, description="train images",
                                     style=style)
        self.seed = w.BoundedIntText(value=config.seed, min=0, max=2**31 - 1, description="seed", style=style,
                                     layout=w.Layout(width="200px"))
        self.hint = w.HTML()
        self.train_button = w.Button(description="Train", button_style="primary", icon="play")
        self.clear_button = w.Button(description="Clear", icon="trash")
        self.status = w.HTML()
        self.output = w.Output()
        self.train_button.on_click(lambda _: self.train_clicked())
        self.clear_button.on_click(lambda _: self.clear_clicked())
        for widget in (self.optimizer, self.batch_size):
            widget.observe(self._update_hint, names="value")
        self._update_hint()
        self.panel = w.VBox([
            w.HBox([self.lr, self.hint]), self.optimizer, self.batch_size, self.activation, self.pooling,
            self.batchnorm, self.epochs, w.HBox([self.train_size, self.seed]),
            w.HBox([self.train_button, self.clear_button]), self.status, self.output,
        ])
        self.refresh()

    def _update_hint(self, _=None) -> None:
        lr = train_mod.default_lr(self.optimizer.value, self.batch_size.value)
        self.hint.value = f"<small>usual for {self.optimizer.value} at batch {self.batch_size.value}: {lr:.1e}</small>"

    def config(self) -> RunConfig:
        """The settings the widgets show now, checked (``ValueError`` if out of range)."""
        return RunConfig(lr=float(self.lr.value), batch_size=self.batch_size.value, optimizer=self.optimizer.value,
                         activation=self.activation.value, pooling=self.pooling.value,
                         batchnorm=bool(self.batchnorm.value), epochs=self.epochs.value,
                         train_size=self.train_size.value, seed=self.seed.value)

    def train_clicked(self) -> RunResult:
        """The "Train" handler: one run with the current settings, then redraw."""
        number = len(self.results) + 1
        self.train_button.disabled = True
        self.status.value = f"training run #{number} ..."
        try:
            try:
                config = self.config()
            except (ValueError, TypeError) as exc:
                result = RunResult(None, error=f"invalid settings: {exc}")
            else:
                try:
                    result = run_experiment(config, self.train, self.test, device=self.device)
                except Exception as exc:  # noqa: BLE001 -- e.g. out of GPU memory: show it, keep the panel alive
                    result = RunResult(config, error=f"{type(exc).__name__}: {exc}")
            self.results.append(result)
            if result.ok:
                self.status.value = (f"run #{number}: test accuracy {100 * result.test_accuracy:.1f} % "
                                     f"({result.seconds:.1f} s)")
            else:
                self.status.value = (f"<span style='color:crimson'>run #{number} failed: "
                                     f"{html.escape(result.error)}</span>")
            self.refresh()
        finally:
            self.train_button.disabled = False
        return result

    def clear_clicked(self) -> None:
        """The "Clear" handler: forget all runs."""
        self.results.clear()
        self.status.value = ""
        self.refresh()

    def table(self) -> str:
        return results_table(self.results)

    def refresh(self) -> None:
        """Redraw the Output area: curves of all runs so far, then the table."""
        outputs = []
        fig = plot_runs(self.results)
        if fig is not None:
            outputs.append(_figure_output(fig))
        outputs.append({"output_type": "stream", "name": "stdout", "text": self.table() + "\n"})
        self.output.outputs = tuple(outputs)

    def _repr_mimebundle_(self, **kwargs):
        return self.panel._repr_mimebundle_(**kwargs)
