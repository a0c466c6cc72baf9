"""Figures the chapters share: curves, image grids, confusion matrix, filters, feature maps.

Every function draws on a new figure (or the ``ax`` given) and returns the
figure; notebooks end the cell with ``plt.show()``.
"""
from __future__ import annotations

from typing import Optional, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

__all__ = ["connection_table", "curves", "image_grid", "confusion_matrix", "plot_confusion", "filters", "feature_maps",
           "LiveCurves", "style"]


def style() -> None:
    """The course's matplotlib defaults: readable sizes, no top/right spines."""
    plt.rcParams.update({"figure.figsize": (7, 4), "figure.dpi": 100, "axes.grid": True, "grid.alpha": 0.3,
                         "axes.spines.top": False, "axes.spines.right": False, "font.size": 10,
                         "image.cmap": "gray"})


def _history_dict(h) -> dict:
    return h.to_dict() if hasattr(h, "to_dict") else dict(h)


def curves(histories, labels: Optional[Sequence[str]] = None, axes=None, epochs: Optional[int] = None):
    """Loss and accuracy per epoch for one history or several (side by side in one figure)."""
    if not isinstance(histories, (list, tuple)):
        histories = [histories]
    labels = labels or [None] * len(histories)
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    else:
        fig = axes[0].figure
    for h, label in zip(histories, labels):
        d = _history_dict(h)
        ep = np.arange(1, len(d["train_loss"]) + 1)
        line, = axes[0].plot(ep, d["train_loss"], "-o", ms=3, label=f"{label} train" if label else "train")
        if d.get("test_loss"):
            axes[0].plot(ep[:len(d["test_loss"])], d["test_loss"], "--s", ms=3, color=line.get_color(),
                         label=f"{label} test" if label else "test")
        axes[1].plot(ep, 100 * np.asarray(d["train_accuracy"]), "-o", ms=3, color=line.get_color(),
                     label=f"{label} train" if label else "train")
        if d.get("test_accuracy"):
            axes[1].plot(ep[:len(d["test_accuracy"])], 100 * np.asarray(d["test_accuracy"]), "--s", ms=3,
                         color=line.get_color(), label=f"{label} test" if label else "test")
    axes[0].set(xlabel="epoch", ylabel="cross-entropy loss", title="loss")
    axes[1].set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    if epochs:
        for ax in axes:
            ax.set_xlim(0.5, epochs + 0.5)
    for ax in axes:
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


class LiveCurves:
    """Curves that redraw in place after each epoch in a notebook (no-op elsewhere)."""

    def __init__(self) -> None:
        self.handle = None
        self.fig = None
        try:
            from IPython import get_ipython
            self.active = get_ipython() is not None and "IPKernelApp" in get_ipython().config
        except ImportError:
            self.active = False

    def update(self, history, epochs: int) -> None:
        if not self.active:
            return
        from IPython.display import display
        if self.fig is None:
            self.fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
            plt.close(self.fig)  # shown through the display handle only
        for ax in self.fig.axes:
            ax.clear()
        curves(history, axes=self.fig.axes, epochs=epochs)
        if self.handle is None:
            self.handle = display(self.fig, display_id=True)
        else:
            self.handle.update(self.fig)

    def close(self) -> None:
        self.fig = None


def _to_display(img: torch.Tensor) -> np.ndarray:
    """C,H,W (uint8 or float) -> H,W or H,W,3 in 0-1 for imshow, min-max scaled if not uint8."""
    img = img.detach().cpu()
    if img.dtype == torch.uint8:
        arr = img.float().numpy() / 255
    else:
        arr = img.float().numpy()
        lo, hi = arr.min(), arr.max()
        arr = (arr - lo) / (hi - lo) if hi > lo else np.zeros_like(arr)
    return arr[0] if arr.shape[0] == 1 else arr.transpose(1, 2, 0)


def image_grid(images: torch.Tensor, labels: Optional[Sequence] = None, classes: Optional[Sequence[str]] = None,
               predictions: Optional[Sequence] = None, ncols: int = 8, title: Optional[str] = None,
               size: float = 1.3):
    """A grid of N,C,H,W images titled with their labels (and predictions: red when wrong)."""
    fig, axes = _tiles(len(images), ncols, size, size * 1.15)

    def name(k):
        return classes[int(k)] if classes is not None else str(int(k))

    for i, ax in enumerate(axes):
        ax.imshow(_to_display(images[i]), cmap="gray", vmin=0, vmax=1)
        if labels is not None and predictions is not None:
            ok = int(labels[i]) == int(predictions[i])
            ax.set_title(f"{name(predictions[i])}\n(true {name(labels[i])})" if not ok else name(labels[i]),
                         fontsize=8, color="black" if ok else "crimson")
        elif labels is not None:
            ax.set_title(name(labels[i]), fontsize=8)
    return _finish(fig, title)


def confusion_matrix(predictions: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Counts[i, j] = images of true class i predicted as j."""
    idx = labels.long() * num_classes + predictions.long()
    return torch.bincount(idx, minlength=num_classes ** 2).reshape(num_classes, num_classes)


def plot_confusion(matrix: torch.Tensor, classes: Sequence[str], normalize: bool = False, ax=None):
    """Draw a confusion matrix with counts (or row fractions) in the cells."""
    m = matrix.double()
    if normalize:
        m = m / m.sum(1, keepdim=True).clamp_min(1)
    if ax is None:
        fig, ax = plt.subplots(figsize=(6.5, 5.5))
    else:
        fig = ax.figure
    im = ax.imshow(m.numpy(), cmap="Blues")
    ax.grid(False)
    k = len(classes)
    ax.set_xticks(range(k), classes, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(k), classes, fontsize=8)
    ax.set(xlabel="predicted", ylabel="true")
    top = m.max().item() or 1
    for i in range(k):
        for j in range(k):
            v = m[i, j].item()
            ax.text(j, i, f"{v:.2f}" if normalize else f"{int(v)}", ha="center", va="center", fontsize=7,
                    color="white" if v > top / 2 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    return fig


def _tiles(n: int, ncols: int, width: float, height: float):
    """A figure of ``n`` axis-less tiles, ``ncols`` a row; returns (figure, the first n axes)."""
    ncols = min(ncols, n)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    return fig, list(axes.flat)[:n]


def _finish(fig, title: Optional[str]):
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def filters(weight: torch.Tensor, title: Optional[str] = None, ncols: int = 8):
    """Kernels of a conv layer (out, in, k, k): one tile per (output, input) pair, zero grey-centred."""
    w = weight.detach().cpu().float()
    tiles = w.reshape(-1, w.shape[-2], w.shape[-1])
    lim = tiles.abs().max().item() or 1
    fig, axes = _tiles(len(tiles), ncols, 1.2, 1.2)
    for tile, ax in zip(tiles, axes):
        ax.imshow(tile.numpy(), cmap="RdBu_r", vmin=-lim, vmax=lim)
    return _finish(fig, title)


def feature_maps(maps: torch.Tensor, title: Optional[str] = None, ncols: int = 8):
    """Activations of one image, (C, H, W): one tile per channel."""
    maps = maps.detach().cpu().float()
    fig, axes = _tiles(maps.shape[0], ncols, 1.4, 1.4)
    for i, ax in enumerate(axes):
        ax.imshow(maps[i].numpy(), cmap="viridis")
        ax.set_title(str(i), fontsize=7)
    return _finish(fig, title)


def connection_table(matrix: torch.Tensor, ax=None, rows: str = "S2 map", cols: str = "C3 map"):
    """A boolean connection matrix drawn as a grid of X marks, like the paper's Table I."""
    m = torch.as_tensor(matrix).bool()
    if ax is None:
        fig, ax = plt.subplots(figsize=(0.45 * m.shape[1] + 1.2, 0.45 * m.shape[0] + 1))
    else:
        fig = ax.figure
    ax.imshow(m.numpy(), cmap="Greys", vmin=0, vmax=2.5)
    for i, j in m.nonzero().tolist():
        ax.text(j, i, "X", ha="center", va="center", fontsize=9, fontweight="bold")
    ax.set_xticks(range(m.shape[1]))
    ax.set_yticks(range(m.shape[0]))
    ax.set_xticks(np.arange(-0.5, m.shape[1]), minor=True)
    ax.set_yticks(np.arange(-0.5, m.shape[0]), minor=True)
    ax.grid(False)
    ax.grid(which="minor", color="0.6", linewidth=0.5)
    ax.tick_params(which="minor", length=0)
    ax.set(xlabel=cols, ylabel=rows)
    ax.xaxis.set_label_position("top")
    ax.xaxis.tick_top()
    fig.tight_layout()
    return fig
