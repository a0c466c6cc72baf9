"""Every LeNet variant of the course, and a registry to create them by name.

The modern LeNet-5 (ReLU, max-pooling, 61,706 parameters) is written four ways,
one per teaching style; all four compute the same function, and :func:`transfer`
moves weights between them. The 1998 network of LeCun et al. ("Gradient-Based
Learning Applied to Document Recognition", Proc. IEEE 86(11), 1998) lives in
:mod:`lenet_course.classic` once it exists.

    >>> from lenet_course import models
    >>> net = models.create("sequential", batchnorm=True)
    >>> models.names()
    ['blocks', 'cifar', 'functional', 'named', 'sequential', 'tanh-avgpool']
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["create", "names", "transfer", "LeNet5", "LeNet5Functional", "LeNet5Named",
           "LeNet5Blocks", "CifarLeNet", "ACTIVATIONS", "POOLINGS", "INITS", "check_input"]

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}
POOLINGS: dict[str, type[nn.Module]] = {"max": nn.MaxPool2d, "avg": nn.AvgPool2d}
INITS = ("default", "xavier", "kaiming")


def _choice(kind: str, value: str, valid) -> str:
    if value not in valid:
        raise ValueError(f"unknown {kind} {value!r}; expected one of {sorted(valid)}")
    return value


def check_input(x: torch.Tensor, in_channels: int, size: int = 32) -> None:
    """Raise a clear error unless ``x`` is a floating (N, in_channels, size, size) batch."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"expected a torch.Tensor of shape (N, {in_channels}, {size}, {size}), "
                        f"got {type(x).__name__}")
    if x.dim() != 4 or x.shape[1] != in_channels or x.shape[2] != size or x.shape[3] != size:
        hint = ""
        if x.dim() == 3 and x.shape[0] == in_channels:
            hint = "; a single image needs a batch dimension: x.unsqueeze(0)"
        elif x.dim() >= 2 and tuple(x.shape[-2:]) == (28, 28):
            hint = "; 28x28 images must be padded by 2 pixels on each side (F.pad(x, (2, 2, 2, 2)))"
        raise ValueError(f"expected input of shape (N, {in_channels}, {size}, {size}), "
                         f"got {tuple(x.shape)}{hint}")
    if not x.is_floating_point():
        raise TypeError(f"expected a floating-point input (float32), got {x.dtype}; "
                        "convert images with x.float() / 255 and normalise them")


class _LeNet(nn.Module):
    """Shared input check; subclasses define the layers."""

    in_channels: int

    def _check(self, x: torch.Tensor) -> None:
        check_input(x, self.in_channels)
        weight_dtype = self._first_weight.dtype
        if x.dtype != weight_dtype and not torch.is_autocast_enabled(x.device.type):
            raise TypeError(f"expected input of dtype {weight_dtype} (the model's weights), got {x.dtype}; "
                            f"use x.to({weight_dtype}) or model.to({x.dtype})")

    @property
    def _first_weight(self) -> torch.Tensor:
        return next(self.parameters())


def _check_common(num_classes: int, in_channels: int) -> None:
    if not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes must be an integer of at least 2, got {num_classes!r}")
    if not isinstance(in_channels, int) or in_channels < 1:
        raise ValueError(f"in_channels must be a positive integer, got {in_channels!r}")


class LeNet5(_LeNet):
    """Modern LeNet-5 as two ``nn.Sequential`` blocks: ``features`` and ``classifier``.

    Style taught: ``nn.Sequential`` (chapter 3), the torchvision way. 1x32x32 ->
    conv 6@5x5 -> pool -> conv 16@5x5 -> pool -> 400 -> 120 -> 84 -> classes:
    61,706 parameters for 10 classes. ``batchnorm=True`` adds ``BatchNorm2d``
    after each convolution; ``activation`` and ``pooling`` let the explorer
    compare the 1990s choices (tanh, average pooling) with the modern ones.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, batchnorm: bool = False,
                 activation: str = "relu", pooling: str = "max") -> None:
        super().__init__()
        _check_common(num_classes, in_channels)
        act = ACTIVATIONS[_choice("activation", activation, ACTIVATIONS)]
        pool = POOLINGS[_choice("pooling", pooling, POOLINGS)]
        self.in_channels = in_channels

        def conv_block(cin: int, cout: int) -> list[nn.Module]:
            norm = [nn.BatchNorm2d(cout)] if batchnorm else []
            return [nn.Conv2d(cin, cout, kernel_size=5), *norm, act(), pool(kernel_size=2, stride=2)]

        self.features = nn.Sequential(*conv_block(in_channels, 6), *conv_block(6, 16))
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(16 * 5 * 5, 120), act(),
            nn.Linear(120, 84), act(),
            nn.Linear(84, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        return self.classifier(self.features(x))


class LeNet5Functional(_LeNet):
    """Modern LeNet-5 with stateless ops from ``torch.nn.functional`` in ``forward``.

    Style taught: functional (chapter 4). Only layers with weights are modules;
    activations and pooling are function calls, so they do not appear in
    ``print(model)``.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1) -> None:
        super().__init__()
        _check_common(num_classes, in_channels)
        self.in_channels = in_channels
        self.conv1 = nn.Conv2d(in_channels, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


class LeNet5Named(_LeNet):
    """Modern LeNet-5 with the paper's layer names ``C1, S2, C3, S4, C5, F6, OUTPUT``.

    Style taught: named layers (chapter 4). C5 is written as the paper has it, a
    5x5 convolution over the 16 maps of S4 whose output is 1x1: exactly a fully
    connected layer on the 16 x 5 x 5 = 400 inputs.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1) -> None:
        super().__init__()
        _check_common(num_classes, in_channels)
        self.in_channels = in_channels
        self.C1 = nn.Conv2d(in_channels, 6, kernel_size=5)
        self.S2 = nn.MaxPool2d(2)
        self.C3 = nn.Conv2d(6, 16, kernel_size=5)
        self.S4 = nn.MaxPool2d(2)
        self.C5 = nn.Conv2d(16, 120, kernel_size=5)
        self.F6 = nn.Linear(120, 84)
        self.OUTPUT = nn.Linear(84, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        x = self.S2(torch.relu(self.C1(x)))
        x = self.S4(torch.relu(self.C3(x)))
        x = torch.relu(self.C5(x)).flatten(1)
        x = torch.relu(self.F6(x))
        return self.OUTPUT(x)


class LeNet5Blocks(_LeNet):
    """Modern LeNet-5 from named blocks: ``nn.Sequential(OrderedDict(...))``.

    Style taught: OrderedDict blocks (chapter 5). Each block is reachable by name
    (``model.block1.conv``) and the names become the ``state_dict`` keys
    (``block1.conv.weight``).
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1) -> None:
        super().__init__()
        _check_common(num_classes, in_channels)
        self.in_channels = in_channels

        def conv_block(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(OrderedDict([
                ("conv", nn.Conv2d(cin, cout, 5)), ("relu", nn.ReLU()), ("pool", nn.MaxPool2d(2))]))

        self.block1 = conv_block(in_channels, 6)
        self.block2 = conv_block(6, 16)
        self.head = nn.Sequential(OrderedDict([
            ("flatten", nn.Flatten()),
            ("fc1", nn.Linear(400, 120)), ("relu1", nn.ReLU()),
            ("fc2", nn.Linear(120, 84)), ("relu2", nn.ReLU()),
            ("fc3", nn.Linear(84, num_classes)),
        ]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        return self.head(self.block2(self.block1(x)))


class CifarLeNet(_LeNet):
    """LeNet for 3x32x32 colour images (CIFAR-10): 16 and 32 conv channels, 800-120-84-classes.

    Style taught: weight initialisation and dropout (chapter 9). ``init`` is
    ``"default"`` (PyTorch's Kaiming-uniform with a=sqrt(5)), ``"xavier"``
    (Glorot uniform, zero biases; Glorot & Bengio 2010) or ``"kaiming"`` (He
    normal for ReLU, zero biases; He et al. 2015). ``dropout`` is the drop
    probability before each hidden fully connected layer.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 3, init: str = "default",
                 dropout: float = 0.0) -> None:
        super().__init__()
        _check_common(num_classes, in_channels)
        _choice("init", init, INITS)
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout must be a probability in [0, 1), got {dropout!r}")
        self.in_channels = in_channels
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 5), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(dropout), nn.Linear(32 * 5 * 5, 120), nn.ReLU(),
            nn.Dropout(dropout), nn.Linear(120, 84), nn.ReLU(),
            nn.Linear(84, num_classes),
        )
        if init != "default":
            for m in self.modules():
                if isinstance(m, (nn.Conv2d, nn.Linear)):
                    if init == "xavier":
                        nn.init.xavier_uniform_(m.weight)
                    else:
                        nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                    nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        return self.classifier(self.features(x))


def tanh_avgpool(num_classes: int = 10, in_channels: int = 1, batchnorm: bool = False) -> LeNet5:
    """The tanh + average-pooling network many tutorials call "LeNet-5".

    Style taught: what the popular tutorials build. It keeps the 1998 layer sizes
    but neither the paper's scaled tanh, its trainable subsampling, its sparse C3
    nor its RBF output (see the ``classic`` model for those).
    """
    return LeNet5(num_classes, in_channels, batchnorm=batchnorm, activation="tanh", pooling="avg")


_REGISTRY: dict[str, Callable[..., nn.Module]] = {
    "sequential": LeNet5,
    "functional": LeNet5Functional,
    "named": LeNet5Named,
    "blocks": LeNet5Blocks,
    "tanh-avgpool": tanh_avgpool,
    "cifar": CifarLeNet,
}


def register(name: str, factory: Callable[..., nn.Module]) -> None:
    """Add a model factory to the registry (used by modules that define more variants)."""
    _REGISTRY[name] = factory


def names() -> list[str]:
    """Names accepted by :func:`create`, sorted."""
    return sorted(_REGISTRY)


def create(name: str, **kwargs: Any) -> nn.Module:
    """Build the model registered as ``name``; ``kwargs`` go to its constructor.

    The result carries ``model.config == {"name": name, **kwargs}`` so that a
    checkpoint can rebuild it.
    """
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; expected one of {names()}")
    try:
        model = _REGISTRY[name](**kwargs)
    except TypeError as exc:  # unexpected keyword: say which model and what it takes
        import inspect
        params = [p for p in inspect.signature(_REGISTRY[name]).parameters]
        raise TypeError(f"model {name!r} takes {params}, got {sorted(kwargs)}: {exc}") from None
    model.config = {"name": name, **kwargs}
    return model


_TRANSFERABLE = (LeNet5, LeNet5Functional, LeNet5Named, LeNet5Blocks)


def transfer(src: nn.Module, dst: nn.Module) -> nn.Module:
    """Copy the weights of one spelling of the modern LeNet-5 into another.

    The four spellings hold the same tensors in the same order (conv1, conv2,
    fc1, fc2, fc3); only the names differ, and the named style's C5 stores its
    400 inputs as a 16x5x5 kernel, which is the same numbers reshaped. Returns
    ``dst``.
    """
    for m in (src, dst):
        if not isinstance(m, _TRANSFERABLE):
            raise TypeError(f"transfer works between the four spellings of the modern LeNet-5 "
                            f"(sequential, functional, named, blocks), got {type(m).__name__}")
    src_items = list(src.state_dict().items())
    dst_items = list(dst.state_dict().items())
    if len(src_items) != len(dst_items):
        raise ValueError(f"cannot transfer {type(src).__name__} ({len(src_items)} tensors) to "
                         f"{type(dst).__name__} ({len(dst_items)} tensors); "
                         "is one of them built with batchnorm=True?")
    new_state = OrderedDict()
    for (skey, sval), (dkey, dval) in zip(src_items, dst_items):
        if sval.numel() != dval.numel():
            raise ValueError(f"cannot transfer {skey} {tuple(sval.shape)} to {dkey} {tuple(dval.shape)}")
        new_state[dkey] = sval.detach().reshape(dval.shape).clone()
    dst.load_state_dict(new_state)
    return dst
