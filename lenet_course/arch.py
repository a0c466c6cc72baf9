"""Layer arithmetic: output sizes, trainable parameters and connections.

Definitions follow LeCun et al. (1998), section II-B: a *connection* is one
input-to-unit link, the bias counted as one link, so a convolutional unit has
fan-in + 1 connections and a layer has (units x connections per unit). A
pooling unit has one connection per input it pools (plus one for a trainable
bias, where it has one). Element-wise functions (activations, dropout, flatten)
add no connections: they are part of the unit they follow.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

__all__ = ["C3_TABLE", "c3_matrix", "conv_output_size", "Layer", "layer_table", "format_table", "totals", "count_parameters"]


# LeCun et al. (1998), Table I: the S2 feature maps each C3 map takes as input.
# Maps 0-5 take three neighbouring maps, 6-11 four neighbouring, 12-14 four
# non-neighbouring, 15 all six. Breaking symmetry this way forces the maps to
# differ, and cuts C3 from 2,416 parameters (full) to 1,516.
C3_TABLE: tuple[tuple[int, ...], ...] = (
    (0, 1, 2), (1, 2, 3), (2, 3, 4), (3, 4, 5), (0, 4, 5), (0, 1, 5),
    (0, 1, 2, 3), (1, 2, 3, 4), (2, 3, 4, 5), (0, 3, 4, 5), (0, 1, 4, 5), (0, 1, 2, 5),
    (0, 1, 3, 4), (1, 2, 4, 5), (0, 2, 3, 5),
    (0, 1, 2, 3, 4, 5),
)


def c3_matrix() -> torch.Tensor:
    """Table I as a 6x16 boolean matrix: ``[i, j]`` is True when C3 map j reads S2 map i."""
    m = torch.zeros(6, 16, dtype=torch.bool)
    for j, inputs in enumerate(C3_TABLE):
        m[list(inputs), j] = True
    return m


def conv_output_size(size: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """Output width of a convolution or pooling: floor((W - K + 2P) / S) + 1 (with dilation).

    >>> conv_output_size(32, 5)      # C1
    28
    >>> conv_output_size(28, 2, 2)   # S2
    14
    """
    for name, value, low in (("size", size, 1), ("kernel", kernel, 1), ("stride", stride, 1),
                             ("padding", padding, 0), ("dilation", dilation, 1)):
        if not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    span = dilation * (kernel - 1) + 1
    if size + 2 * padding < span:
        raise ValueError(f"kernel {kernel} (dilation {dilation}) does not fit an input of {size} "
                         f"with padding {padding}: the output would be empty")
    return (size + 2 * padding - span) // stride + 1


@dataclass(frozen=True)
class Layer:
    name: str
    kind: str
    output_shape: tuple[int, ...]  # per sample, without the batch dimension
    parameters: int                 # trainable
    connections: int


def count_parameters(module: nn.Module, trainable: bool = True, recurse: bool = True) -> int:
    return sum(p.numel() for p in module.parameters(recurse=recurse) if p.requires_grad or not trainable)


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)


def _connections(module: nn.Module, inp: torch.Tensor, out: torch.Tensor) -> int:
    if hasattr(module, "connections"):  # layers with their own definition (sparse C3, RBF)
        return int(module.connections(tuple(inp.shape[1:]), tuple(out.shape[1:])))
    units = out[0].numel()
    if isinstance(module, nn.modules.conv._ConvNd):
        fan_in = module.in_channels // module.groups * math.prod(module.kernel_size)
        return units * (fan_in + (module.bias is not None))
    if isinstance(module, nn.Linear):
        return units * (module.in_features + (module.bias is not None))
    if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
        return units * math.prod(_pair(module.kernel_size))
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return units  # one input per unit; the affine scale and shift are its parameters
    return 0


def layer_table(model: nn.Module, input_size: Sequence[int] = (1, 32, 32)) -> list[Layer]:
    """One row per leaf module, in the order the forward pass runs them.

    Runs one forward pass of a zero batch of shape ``(1, *input_size)`` with hooks
    on every leaf module. Operations called as functions (``F.relu``) have no
    module and so no row; they carry no parameters or connections.
    """
    rows: list[Layer] = []
    names = {m: n for n, m in model.named_modules()}
    hooks = []

    def hook(module, inputs, output):
        rows.append(Layer(names[module], type(module).__name__, tuple(output.shape[1:]),
                          count_parameters(module, recurse=False), _connections(module, inputs[0], output)))

    own_rules: list[str] = []  # modules that count for themselves: their children get no rows
    for name, module in model.named_modules():
        if any(name.startswith(prefix + ".") for prefix in own_rules):
            continue
        if hasattr(module, "connections"):
            own_rules.append(name)
        elif list(module.children()):
            continue
        hooks.append(module.register_forward_hook(hook))
    was_training = model.training
    param = next(model.parameters())
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, *input_size, dtype=param.dtype, device=param.device))
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    return rows


def totals(rows: list[Layer]) -> tuple[int, int]:
    """(trainable parameters, connections) summed over a layer table."""
    return sum(r.parameters for r in rows), sum(r.connections for r in rows)


def format_table(rows: list[Layer]) -> str:
    """The layer table as aligned text, with a totals line."""
    header = ("layer", "kind", "output", "parameters", "connections")
    body = [(r.name, r.kind, "x".join(map(str, r.output_shape)), f"{r.parameters:,}", f"{r.connections:,}")
            for r in rows]
    params, conns = totals(rows)
    footer = ("total", "", "", f"{params:,}", f"{conns:,}")
    widths = [max(len(row[i]) for row in [header, *body, footer]) for i in range(5)]

    def line(row):
        return "  ".join(c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *map(line, body), rule, line(footer)])
