"""Companion package of the course "LeNet-5 in PyTorch".

Modules: ``models`` (every variant, ``create``/``names``), ``classic`` (the
faithful 1998 LeNet-5, its MAP loss and SDLM optimizer), ``arch`` (sizes,
parameters, connections), ``data`` (datasets and the tensor-resident loader),
``train`` (``fit``, ``evaluate``, checkpoints), ``plots``, ``notebook`` (the
chapters' one-line set-up) and a CLI, ``python -m lenet_course``.
"""
from . import arch, data, models, plots, train
from . import classic  # noqa: F401  registers models.create("classic"), the 1998 network
from .data import DatasetUnavailable, load, load_split, load_splits
from .models import create, names
from .train import evaluate, fit, load_checkpoint, pick_device, save_checkpoint, set_seed

__version__ = "0.1.0"
__all__ = ["arch", "data", "models", "plots", "train", "create", "names", "fit", "evaluate", "load",
           "load_split", "load_splits", "DatasetUnavailable", "pick_device", "set_seed",
           "save_checkpoint", "load_checkpoint"]
