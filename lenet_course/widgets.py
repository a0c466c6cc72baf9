"""ipywidgets explorers. Their logic is plain functions, so tests run it headless.

* :func:`shape_calculator`: kernel, stride, padding, input size -> output size (chapter 1).
"""
from __future__ import annotations

import ipywidgets as w

from .arch import conv_output_size

__all__ = ["shape_report", "shape_calculator"]


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
