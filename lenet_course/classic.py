"""The 1998 LeNet-5, as LeCun, Bottou, Bengio and Haffner describe it.

"Gradient-Based Learning Applied to Document Recognition", Proc. IEEE 86(11),
1998: section II-B (the network), Appendix A (squashing function, weight
initialisation), Appendix C (stochastic diagonal Levenberg-Marquardt).

What makes it the paper's network and not the usual ReLU/max-pool "LeNet-5":

* scaled tanh, f(a) = 1.7159 tanh(2a/3), after every layer up to F6;
* S2 and S4 *sum* each 2x2 block, multiply by one trainable coefficient per map
  and add one trainable bias per map, then squash;
* C3 connects each of its 16 maps to a subset of the six S2 maps (Table I);
  only those kernels exist, so C3 has 1,516 parameters, not 2,416;
* OUTPUT is ten Euclidean RBF units, y_i = sum_j (x_j - w_ij)^2, whose centres
  are fixed +1/-1 pictures of the digits (7x12 bitmaps, ``rbf_digits.txt``);
* weights start uniform in (-2.4/F_i, 2.4/F_i), F_i the unit's fan-in;
* the loss is the MAP criterion :class:`MAPLoss`, the optimiser :class:`SDLM`.

``forward`` returns the *negative* penalties, -y_i (shape N x 10): the best class
is the one with the smallest distance, so ``argmax`` works as for any classifier
and ``lenet_course.train.fit``/``evaluate`` need nothing special. (``evaluate``'s
cross-entropy of -y is the MAP loss with j -> infinity.)

    >>> from lenet_course import classic, models
    >>> net = models.create("classic")
    >>> sum(p.numel() for p in net.parameters() if p.requires_grad)
    60000
"""
from __future__ import annotations

import json
import math
import time
from importlib import resources
from pathlib import Path
from typing import Callable, Iterable, Optional

import torch
import torch.nn.functional as F
from torch import nn

from . import data as data_mod
from . import models
from . import train as train_mod

__all__ = ["ClassicLeNet5", "Subsampling", "SparseConv2d", "RBFOutput", "MAPLoss", "SDLM", "squash",
           "squash_derivative", "rbf_prototypes", "gauss_newton_diagonal", "paper_lr", "PAPER_SCHEDULE",
           "train_paper", "DEFAULT_J", "MU", "INITS"]

A, S = 1.7159, 2.0 / 3.0   # f(a) = A tanh(S a): f(1) = 1, f(-1) = -1, and f'' is largest at a = +-1
MU = 0.02                  # the paper's safety term in eta / (mu + h_kk)
DEFAULT_J = 10.0           # our choice for the MAP loss's constant j (the paper gives none); see MAPLoss
# (learning rate, passes): 0.0005 for 2 passes, 0.0002 for 3, 0.0001 for 3, 0.00005 for 4, then 0.00001
PAPER_SCHEDULE: tuple[tuple[float, int], ...] = ((5e-4, 2), (2e-4, 3), (1e-4, 3), (5e-5, 4))
PAPER_FINAL_LR = 1e-5


def squash(a: torch.Tensor) -> torch.Tensor:
    """The paper's squashing function 1.7159 tanh(2a/3) (Appendix A)."""
    return A * torch.tanh(S * a)


def squash_derivative(a: torch.Tensor) -> torch.Tensor:
    return A * S * (1 - torch.tanh(S * a) ** 2)


def paper_lr(pass_index: int) -> float:
    """The global learning rate eta for pass ``pass_index`` (0-based) of the paper's schedule."""
    for lr, n in PAPER_SCHEDULE:
        if pass_index < n:
            return lr
        pass_index -= n
    return PAPER_FINAL_LR


INITS = ("paper", "lecun")


def _uniform_(t: torch.Tensor, fan_in: int, init: str = "paper") -> None:
    """Uniform in (-2.4/F, 2.4/F) (``"paper"``) or with standard deviation F^(-1/2) (``"lecun"``)."""
    bound = 2.4 / fan_in if init == "paper" else math.sqrt(3.0 / fan_in)
    nn.init.uniform_(t, -bound, bound)


class Subsampling(nn.Module):
    """S2/S4: each unit adds its 2x2 inputs, times a trainable coefficient, plus a trainable bias.

    One (coefficient, bias) pair per map; the squashing follows in the network's forward.
    """

    def __init__(self, maps: int, init: str = "paper") -> None:
        super().__init__()
        self.maps = maps
        self.coefficient = nn.Parameter(torch.empty(maps))
        self.bias = nn.Parameter(torch.empty(maps))
        self.reset_parameters(init)

    def reset_parameters(self, init: str = "paper") -> None:
        _uniform_(self.coefficient, 4, init)
        _uniform_(self.bias, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = F.avg_pool2d(x, 2) * 4  # the sum of each 2x2 block
        return pooled * self.coefficient.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)

    def connections(self, in_shape, out_shape) -> int:
        return math.prod(out_shape) * (4 + 1)  # four inputs and the bias per unit

    def extra_repr(self) -> str:
        return f"maps={self.maps}, window=2x2 sum x coefficient + bias"


class SparseConv2d(nn.Module):
    """A convolution where output map j sees only the input maps ``table[j]`` (C3, Table I).

    Only the connected kernels exist as parameters, grouped by how many maps they
    read: for Table I six maps of 3 inputs, nine of 4 and one of 6, i.e.
    ``weight3`` (6x3x5x5), ``weight4`` (9x4x5x5) and ``weight6`` (1x6x5x5), 1,500
    weights and 16 biases. ``forward`` scatters them into the full (16, 6, 5, 5)
    kernel, whose other entries are constant zeros (no parameter, no gradient, no
    update), and runs one ordinary convolution: on a CPU that is 3 to 7 times as
    fast as one grouped convolution per input count.
    """

    def __init__(self, table: Iterable[Iterable[int]], kernel_size: int = 5, init: str = "paper") -> None:
        super().__init__()
        self.table = tuple(tuple(int(i) for i in inputs) for inputs in table)
        self.in_channels = max(max(t) for t in self.table) + 1
        self.out_channels = len(self.table)
        self.kernel_size = kernel_size
        self.sizes = sorted({len(t) for t in self.table})
        slots = []  # for each connected (map, input) kernel, in parameter order: its row in the full kernel
        for k in self.sizes:
            maps = [j for j, t in enumerate(self.table) if len(t) == k]
            slots += [j * self.in_channels + i for j in maps for i in self.table[j]]
            self.register_parameter(f"weight{k}", nn.Parameter(torch.empty(len(maps), k, kernel_size, kernel_size)))
        self.bias = nn.Parameter(torch.empty(self.out_channels))
        self.register_buffer("slots", torch.tensor(slots), persistent=False)
        self.reset_parameters(init)

    def reset_parameters(self, init: str = "paper") -> None:
        for k in self.sizes:
            _uniform_(getattr(self, f"weight{k}"), k * self.kernel_size ** 2, init)
        for j, t in enumerate(self.table):
            _uniform_(self.bias.data[j:j + 1], len(t) * self.kernel_size ** 2)

    def dense_weight(self) -> torch.Tensor:
        """The equivalent full (out, in, k, k) kernel, zero where Table I has no connection (differentiable)."""
        ks = self.kernel_size
        connected = torch.cat([getattr(self, f"weight{k}").reshape(-1, ks, ks) for k in self.sizes])
        full = connected.new_zeros(self.out_channels * self.in_channels, ks, ks).index_copy(0, self.slots, connected)
        return full.view(self.out_channels, self.in_channels, ks, ks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.dense_weight(), self.bias)

    def connections(self, in_shape, out_shape) -> int:
        units = out_shape[1] * out_shape[2]
        return sum(units * (len(t) * self.kernel_size ** 2 + 1) for t in self.table)

    def extra_repr(self) -> str:
        return (f"{self.in_channels} -> {self.out_channels} maps, kernel {self.kernel_size}x{self.kernel_size}, "
                f"sparse ({sum(map(len, self.table))} of {self.in_channels * self.out_channels} map pairs)")


def rbf_prototypes() -> torch.Tensor:
    """The ten fixed RBF centres, a (10, 84) tensor of +1/-1 read from ``rbf_digits.txt``."""
    text = resources.files("lenet_course").joinpath("rbf_digits.txt").read_text()
    digits: dict[int, list[str]] = {}
    current = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") and not set(line) <= {"#", "."}:
            continue
        if line.startswith("digit "):
            current = int(line.split()[1])
            digits[current] = []
            continue
        if current is None or not set(line) <= {"#", "."} or len(line) != 7:
            raise ValueError(f"rbf_digits.txt: bad bitmap row {line!r}")
        digits[current].append(line)
    if sorted(digits) != list(range(10)) or any(len(rows) != 12 for rows in digits.values()):
        raise ValueError("rbf_digits.txt must hold ten 7x12 bitmaps, digits 0-9")
    return torch.tensor([[1.0 if c == "#" else -1.0 for row in digits[d] for c in row] for d in range(10)])


class RBFOutput(nn.Module):
    """Ten Euclidean RBF units with fixed centres: y_i = sum_j (x_j - w_ij)^2.

    The centres are a buffer (saved in the state_dict, never trained). ``forward``
    returns -y, so the most likely class is the ``argmax``.
    """

    def __init__(self, prototypes: Optional[torch.Tensor] = None) -> None:
        super().__init__()
        self.register_buffer("prototypes", rbf_prototypes() if prototypes is None else prototypes.float())

    def penalties(self, x: torch.Tensor) -> torch.Tensor:
        return ((x.unsqueeze(1) - self.prototypes) ** 2).sum(-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return -self.penalties(x)

    def connections(self, in_shape, out_shape) -> int:
        return self.prototypes.numel()  # 84 inputs per unit, no bias

    def extra_repr(self) -> str:
        return f"{self.prototypes.shape[1]} -> {self.prototypes.shape[0]}, fixed +1/-1 centres"


class ClassicLeNet5(models._LeNet):
    """LeNet-5 as in LeCun et al. (1998): 60,000 trainable parameters, 340,908 connections.

    Layers ``C1, S2, C3, S4, C5, F6, OUTPUT``; each of C1-F6 is followed by
    :func:`squash` (called as a function, so it adds no rows to a layer table).
    Feed it 32x32 images scaled as in the paper (:func:`lenet_course.data.paper_scaling`).
    Returns the negative RBF penalties (N, 10).

    ``init`` chooses the starting weights (biases are always the paper's):

    * ``"paper"`` (default): uniform in (-2.4/F_i, 2.4/F_i), F_i the unit's
      fan-in, as Appendix A says. For C5 (F = 400) that is +-0.006: each
      convolution or full layer passes on about 1.6/sqrt(F_i) of the spread of
      its input (a third in C1, a twelfth in C5), so F6 starts near 0.
    * ``"lecun"``: uniform with standard deviation F_i^(-1/2), the rule of LeCun,
      Bottou, Orr and Mueller, "Efficient BackProp" (1998, section 4.6), written
      for this same squashing function. With it the paper's own learning-rate
      schedule trains; with ``"paper"`` it does not (see :func:`train_paper`).
    """

    in_channels = 1

    def __init__(self, num_classes: int = 10, init: str = "paper") -> None:
        super().__init__()
        if num_classes != 10:
            raise ValueError(f"the classic LeNet-5 has ten fixed RBF outputs (one per digit bitmap), "
                             f"got num_classes={num_classes!r}")
        models._choice("init", init, INITS)
        from .arch import C3_TABLE
        self.C1 = nn.Conv2d(1, 6, 5)
        self.S2 = Subsampling(6, init)
        self.C3 = SparseConv2d(C3_TABLE, 5, init)
        self.S4 = Subsampling(16, init)
        self.C5 = nn.Conv2d(16, 120, 5)
        self.F6 = nn.Linear(120, 84)
        self.OUTPUT = RBFOutput()
        for layer, fan_in in ((self.C1, 25), (self.C5, 400), (self.F6, 120)):
            _uniform_(layer.weight.data, fan_in, init)
            _uniform_(layer.bias.data, fan_in)

    def stages(self) -> list[nn.Module]:
        """The squashed layers, in order (the OUTPUT layer is not squashed)."""
        return [self.C1, self.S2, self.C3, self.S4, self.C5, self.F6]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The 84 F6 outputs."""
        self._check(x)  # shape, floating dtype matching the weights: the course's usual errors
        for layer in self.stages():
            if layer is self.F6:
                x = x.flatten(1)
            x = squash(layer(x))
        return x

    def penalties(self, x: torch.Tensor) -> torch.Tensor:
        """The RBF penalties y_i (N, 10): squared distance of F6 to each digit's bitmap."""
        return self.OUTPUT.penalties(self.features(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.OUTPUT(self.features(x))


class MAPLoss(nn.Module):
    """The paper's MAP criterion (section II-B, eq. 9), on the network's output -y:

        E = y_D + log(exp(-j) + sum_i exp(-y_i)),

    y_D the correct class's penalty. The first term pulls F6 towards the right
    bitmap; the second pushes the wrong classes' penalties up, but stops pushing
    once they exceed about j (they already lose). The paper gives no value of j;
    we use ``j = 10`` (:data:`DEFAULT_J`): a wrong class then stops being pushed
    once its penalty passes about 10, which is 2.5 pixels of the 84 flipped.
    ``reduction`` is ``"mean"`` (default), ``"sum"`` or ``"none"``.
    """

    def __init__(self, j: float = DEFAULT_J, reduction: str = "mean") -> None:
        super().__init__()
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
        self.j, self.reduction = float(j), reduction

    def forward(self, scores: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        y_correct = -scores.gather(1, target.view(-1, 1)).squeeze(1)
        floor = scores.new_full((scores.shape[0], 1), -self.j)
        loss = y_correct + torch.logsumexp(torch.cat([scores, floor], 1), 1)
        if self.reduction == "mean":
            return loss.mean()
        return loss.sum() if self.reduction == "sum" else loss

    def extra_repr(self) -> str:
        return f"j={self.j:g}, reduction={self.reduction!r}"


def gauss_newton_diagonal(model: ClassicLeNet5, x: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-parameter diagonal Gauss-Newton estimate h_kk, averaged over the samples ``x``.

    The paper's recipe (Appendix C): second derivatives are propagated backwards
    like gradients but with squared weights and squared derivatives, dropping the
    off-diagonal and f'' terms, so h stays positive:

        d2E/da_i^2 = f'(a_i)^2 d2E/dx_i^2,  d2E/dx_j^2 = sum_i w_ij^2 d2E/da_i^2,
        h_kk = sum over the connections sharing weight k of x_j^2 d2E/da_i^2.

    At the top we use the correct class's penalty y_D = sum_j (x_j - w_Dj)^2, whose
    second derivative with respect to each F6 output is exactly 2 (the competitive
    term of the MAP loss is left out: its curvature is not positive). Autograd
    does the propagation: each layer runs once more on the *squared* inputs with
    squared weights, through a straight-through sum so that the values are x^2
    while the gradients follow the squared-weight linear map.
    """
    del target  # the curvature of y_D does not depend on which bitmap is the target
    names = {p: n for n, p in model.named_parameters()}
    leaves: dict[str, torch.Tensor] = {}
    with torch.enable_grad():
        xin = x.detach()
        s = xin ** 2
        for layer in model.stages():
            if layer is model.F6:
                xin, s = xin.flatten(1), s.flatten(1)
            squared = {}
            for n, p in layer.named_parameters():
                leaf = (p.detach() ** 2).requires_grad_(True)
                squared[n] = leaf
                leaves[names[p]] = leaf
            with torch.no_grad():
                a = layer(xin)
                xin = squash(a)
                d2 = squash_derivative(a) ** 2
            q = torch.func.functional_call(layer, squared, (s,)) * d2
            s = q - q.detach() + (xin ** 2)  # value x^2, gradient through the squared-weight map
        # d2(y_D)/dx_j^2 = 2 for every F6 output of every sample
        (2 * s).sum().backward()
    n = x.shape[0]
    return {name: leaf.grad / n for name, leaf in leaves.items()}


class SDLM(torch.optim.Optimizer):
    """Stochastic diagonal Levenberg-Marquardt (LeCun et al. 1998, Appendix C).

    Each parameter w_k moves by ``-lr / (mu + h_kk) * grad_k``: a global rate
    ``lr`` (eta) divided per parameter by the curvature estimate h_kk plus a
    safety term ``mu`` (0.02 in the paper) that caps the step where the curvature
    is tiny. ``h_kk`` is set with :meth:`set_curvature` (the paper re-estimates it
    on 500 samples before each pass, see :func:`gauss_newton_diagonal`); until then
    it is 0.
    """

    def __init__(self, params, lr: float = 5e-4, mu: float = MU) -> None:
        if not lr > 0 or not mu > 0:
            raise ValueError(f"lr and mu must be positive, got lr={lr!r}, mu={mu!r}")
        super().__init__(params, dict(lr=lr, mu=mu))

    @torch.no_grad()
    def set_curvature(self, curvature: dict[torch.Tensor, torch.Tensor] | Callable[[torch.Tensor], torch.Tensor]) -> None:
        """Store h_kk for each parameter: a dict parameter -> tensor of its shape."""
        for group in self.param_groups:
            for p in group["params"]:
                h = curvature[p] if not callable(curvature) else curvature(p)
                if h.shape != p.shape:
                    raise ValueError(f"curvature of shape {tuple(h.shape)} for a parameter of shape {tuple(p.shape)}")
                self.state[p]["h"] = h.detach().to(p.device, p.dtype).clone()
                self.state[p].pop("denom", None)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params, grads, denoms = [], [], []
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if "denom" not in state or state["denom_mu"] != group["mu"]:  # mu + h_kk, kept for the pass
                    h = state.get("h")
                    state["denom"] = torch.full_like(p, group["mu"]) if h is None else h + group["mu"]
                    state["denom_mu"] = group["mu"]
                params.append(p)
                grads.append(p.grad)
                denoms.append(state["denom"])
            if params:  # one fused update for all parameters: batch-1 steps are dominated by overhead
                torch._foreach_addcdiv_(params, grads, denoms, value=-group["lr"])
        return loss


def estimate_curvature(model: ClassicLeNet5, opt: SDLM, split: data_mod.Split, samples: int = 500,
                       generator: Optional[torch.Generator] = None, device="cpu", batch_size: int = 1) -> None:
    """h_kk on ``samples`` random training images, stored in the optimizer.

    The estimate is per image; a step on the *summed* loss of ``batch_size``
    images has ``batch_size`` times that curvature, so it is scaled accordingly.
    """
    idx = torch.randperm(len(split), generator=generator)[:samples]
    x = split.normalize(split.images[idx].to(device))
    h = gauss_newton_diagonal(model, x, split.labels[idx].to(device))
    params = dict(model.named_parameters())
    opt.set_curvature({params[n]: batch_size * v for n, v in h.items()})


def train_paper(model: ClassicLeNet5, train: data_mod.Split, test: Optional[data_mod.Split] = None,
                passes: int = 20, batch_size: int = 1, mu: float = MU, curvature_samples: int = 500,
                j: float = DEFAULT_J, device="cpu", seed: int = 0, progress: bool = False,
                lr_scale: float = 1.0) -> train_mod.History:
    """Train as in the paper: MAP loss, SDLM, the global schedule of :func:`paper_lr`.

    Before each pass h_kk is re-estimated on ``curvature_samples`` training images.
    ``batch_size=1`` is the paper's setting (one update per image). With larger
    mini-batches the loss is *summed* over the batch and h_kk scaled by the batch
    size (the curvature of that sum), so where the curvature dominates mu a
    step is the average of the single-image steps, and where mu dominates it is
    their sum: the paper's rates keep their meaning, but the paper's setting,
    batch 1, trains best. ``lr_scale`` multiplies every rate of the schedule.

    With the paper's initial weights (``init="paper"``, +-2.4/F_i) every h_kk
    starts far below mu, so every step is capped only by mu at eta / mu = 0.025
    times its gradient: C5's weights (+-0.006) move by about half their size in
    the first step, the curvature estimated before the pass is soon stale by
    orders of magnitude, and within ten steps S2, C3 and C5 saturate and the
    network stays at chance. Re-estimating h_kk every step does not prevent it;
    starting from ``init="lecun"`` (standard deviation F_i^(-1/2)) does, and the
    paper's schedule then trains unchanged. ``lr_scale=0.02`` makes the paper's
    initial weights train instead (chapter 10 shows both).
    Returns a :class:`~lenet_course.train.History`; its test loss is ``evaluate``'s cross-entropy of -y (the MAP loss with j -> infinity).
    """
    if isinstance(passes, bool) or not isinstance(passes, int) or passes < 1:
        raise ValueError(f"passes must be a positive integer, got {passes!r}")
    dev = train_mod.pick_device(device)
    train_mod.set_seed(seed)
    model.to(dev)
    loss_fn = MAPLoss(j, reduction="sum")
    opt = SDLM(model.parameters(), lr=paper_lr(0), mu=mu)
    loader = data_mod.TensorLoader(train, batch_size, shuffle=True, device=dev, seed=seed)
    gen = torch.Generator().manual_seed(seed + 1)
    history = train_mod.History()
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=passes, desc="passes", unit="pass")
    try:
        for p in range(passes):
            start = time.perf_counter()
            model.train()
            for group in opt.param_groups:
                group["lr"] = lr_scale * paper_lr(p)
            estimate_curvature(model, opt, train, curvature_samples, gen, dev, batch_size)
            total = torch.zeros((), device=dev)
            correct = torch.zeros((), device=dev, dtype=torch.int64)
            seen = 0
            for x, y in loader:
                out = model(x)
                loss = loss_fn(out, y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += loss.detach()
                correct += (out.detach().argmax(1) == y).sum()
                seen += len(y)
            if not torch.isfinite(total):
                raise FloatingPointError(f"the MAP loss became {total.item()} in pass {p + 1} (lr {paper_lr(p):g})")
            seconds = time.perf_counter() - start
            history.train_loss.append(total.item() / seen)
            history.train_accuracy.append(correct.item() / seen)
            history.seconds.append(seconds)
            history.images_per_s.append(seen / seconds)
            if test is not None:
                scores = train_mod.evaluate(model, test, dev)
                history.test_loss.append(scores["loss"])
                history.test_accuracy.append(scores["accuracy"])
            if bar is not None:
                bar.update(1)
                bar.set_postfix(train_acc=f"{history.train_accuracy[-1]:.3f}",
                                test_acc=f"{history.test_accuracy[-1]:.3f}" if test is not None else "-")
    except KeyboardInterrupt:
        history.interrupted = True
    finally:
        if bar is not None:
            bar.close()
    model.eval()
    return history


models.register("classic", ClassicLeNet5)


# The full 20-pass runs behind chapter 10 and the performance appendix: (file under book/results,
# what was run, the command that wrote the file). The runs take minutes to an hour each, so the book
# reads their JSON output instead of running them.
RECORDED_RUNS: tuple[tuple[str, str, str], ...] = tuple(
    (f"{stem}_{dataset}.json", what,
     f"OMP_NUM_THREADS=1 python -m lenet_course train {model} --dataset {dataset} --epochs 20 {rest} --device cpu --json")
    for dataset in ("mnist-sample", "fashion-mnist")
    for stem, what, model, rest in (
        ("classic_paper_lecun-init", "1998 net, paper's schedule, Efficient-BackProp init, batch 1",
         "--model classic --init lecun --schedule paper", "--batch-size 1"),
        ("classic_paper_unscaled", "1998 net, paper's schedule and init, batch 1",
         "--model classic --schedule paper", "--batch-size 1"),
        ("classic_paper", "1998 net, paper's init, schedule x 0.02, batch 16",
         "--model classic --schedule paper", "--batch-size 16 --lr-scale 0.02"),
        ("modern_adam", "modern LeNet-5 (Adam, cross-entropy), batch 16",
         "--model sequential", "--batch-size 16"),
    ))


def recorded_runs(results_dir) -> list[dict]:
    """The recorded runs of :data:`RECORDED_RUNS` found in ``results_dir``, one dict each.

    Keys: ``file``, ``what``, ``command``, ``dataset``, ``passes``, ``test_error`` (%, after the last
    pass), ``seconds_per_pass`` and ``device``. Runs not recorded are left out.
    """
    rows = []
    for name, what, command in RECORDED_RUNS:
        path = Path(results_dir) / name
        if not path.is_file():
            continue
        r = json.loads(path.read_text())
        h = r["history"]
        _check_recorded(path, r, command)
        rows.append({"file": name, "what": what, "command": command, "dataset": r["dataset"],
                     "passes": len(h["test_accuracy"]), "test_error": 100 * (1 - h["test_accuracy"][-1]),
                     "seconds_per_pass": sum(h["seconds"]) / len(h["seconds"]), "device": r["device"]})
    return rows


def _check_recorded(path, r: dict, command: str) -> None:
    """Refuse a results file whose settings are not those of the command said to produce it."""
    from .__main__ import build_parser
    args = build_parser().parse_args(command.split()[4:])  # after "OMP_NUM_THREADS=1 python -m lenet_course"
    expected = {"model": args.model, "init": args.init, "dataset": args.dataset, "passes": args.epochs}
    found = {"model": r["model"]["name"], "init": r["model"].get("init"), "dataset": r["dataset"],
             "passes": len(r["history"]["test_accuracy"])}
    if args.schedule == "paper":
        expected.update(batch_size=args.batch_size, lr_scale=args.lr_scale)
        found.update(batch_size=r.get("batch_size"), lr_scale=r.get("lr_scale"))
    if found != expected:
        raise ValueError(f"{path} does not match the command said to produce it ({command}): "
                         f"found {found}, expected {expected}")


def recorded_table(rows: list[dict]) -> str:
    """:func:`recorded_runs` as a Markdown table."""
    lines = ["| dataset | run | passes | test error (%) | seconds per pass |", "| --- | --- | --- | --- | --- |"]
    lines += [f"| {r['dataset']} | {r['what']} | {r['passes']} | {r['test_error']:.2f} "
              f"| {r['seconds_per_pass']:.0f} ({r['device']}) |" for r in rows]
    return "\n".join(lines)
