"""The catalogue of bad inputs: one table, one row per thing a learner or a CI script can get wrong.

Each row says what is wrong, how to provoke it, the exact type of the error, and a pattern the
message must match, naming what was expected and what was given. Rows whose error is shown
rather than raised (the explorer panel) give ``error=None`` and return the text shown.

    pytest tests/test_catalogue.py -q -s   # prints the catalogue's size
"""
from __future__ import annotations

import contextlib
import io
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Optional

import pytest
import torch

from lenet_course import data, models, train, widgets
from lenet_course.__main__ import main as cli

with contextlib.suppress(ImportError):  # the 1998 network registers itself once it exists
    import lenet_course.classic  # noqa: F401

from conftest import synthetic_digits, write_idx

HAS_CUDA = torch.cuda.is_available()


@dataclass(frozen=True)
class Bad:
    what: str                                  # the mistake, in words (also the test id)
    call: Callable[[SimpleNamespace], Any]     # makes it; ``ctx`` has the splits, a temp folder, fixtures
    error: Optional[type[BaseException]]       # the exact type raised (None: shown, returned as text)
    message: str                               # regex the message must match (re.search, DOTALL)
    check: Optional[Callable[[SimpleNamespace], None]] = None  # what must also hold afterwards
    skip: Optional[str] = None                 # reason to skip here


def esc(value: Any) -> str:
    return re.escape(str(value))


# --- the models: wrong rank, channels, size, dtype, for every registered model ---------------

def _model_rows() -> list[Bad]:
    rows = []
    for name in models.names():
        c = getattr(models.create(name), "in_channels", 1)
        shape = rf"expected input of shape \(N, {c}, 32, 32\), got "

        def run(x, name=name):
            return lambda ctx: models.create(name)(x)

        rows += [
            Bad(f"{name}: one image without a batch dimension (rank 3)", run(torch.randn(c, 32, 32)),
                ValueError, shape + rf"\({c}, 32, 32\).*x\.unsqueeze\(0\)"),
            Bad(f"{name}: a flat batch (rank 2)", run(torch.randn(4, c * 32 * 32)),
                ValueError, shape + rf"\(4, {c * 1024}\)"),
            Bad(f"{name}: {c + 1} channels instead of {c}", run(torch.randn(2, c + 1, 32, 32)),
                ValueError, shape + rf"\(2, {c + 1}, 32, 32\)"),
            Bad(f"{name}: 28x28 images, not padded to 32x32", run(torch.randn(2, c, 28, 28)),
                ValueError, shape + rf"\(2, {c}, 28, 28\).*padded by 2 pixels"),
            Bad(f"{name}: 32x28 images", run(torch.randn(2, c, 32, 28)),
                ValueError, shape + rf"\(2, {c}, 32, 28\)"),
            Bad(f"{name}: uint8 images, not converted to float", run(torch.zeros(2, c, 32, 32, dtype=torch.uint8)),
                TypeError, r"expected a floating-point input \(float32\), got torch\.uint8"),
            Bad(f"{name}: float64 images for float32 weights", run(torch.randn(2, c, 32, 32, dtype=torch.float64)),
                TypeError, r"expected input of dtype torch\.float32 \(the model's weights\), got torch\.float64"),
        ]
    return rows


# --- training hyperparameters ------------------------------------------------------------------

def fit(**kw):
    def call(ctx):
        train.set_seed(0)
        return train.fit(models.create("sequential"), ctx.tr, ctx.te,
                         **{"epochs": 1, "batch_size": 64, "device": "cpu", "progress": False, **kw})
    return call


HYPERPARAMETERS = [
    Bad("learning rate 0", fit(lr=0), ValueError, r"learning rate must be a positive finite number, got 0$"),
    Bad("negative learning rate", fit(lr=-0.1), ValueError, r"positive finite number, got -0\.1$"),
    Bad("learning rate nan", fit(lr=float("nan")), ValueError, r"positive finite number, got nan$"),
    Bad("learning rate inf", fit(lr=float("inf")), ValueError, r"positive finite number, got inf$"),
    Bad("learning rate as text", fit(lr="0.01"), ValueError, r"positive finite number, got '0\.01'$"),
    Bad("batch size 0", fit(batch_size=0), ValueError, r"batch_size must be a positive integer, got 0$"),
    Bad("negative batch size", fit(batch_size=-1), ValueError, r"batch_size must be a positive integer, got -1$"),
    Bad("batch size larger than the dataset", fit(batch_size=10_000), ValueError,
        r"batch_size 10000 is larger than the dataset \(512 images\)"),
    Bad("0 epochs", fit(epochs=0), ValueError, r"epochs must be a positive integer, got 0$"),
    Bad("negative epochs", fit(epochs=-2), ValueError, r"epochs must be a positive integer, got -2$"),
    Bad("fractional epochs", fit(epochs=1.5), ValueError, r"epochs must be a positive integer, got 1\.5$"),
    Bad("unknown optimizer", fit(optimizer="lbfgs"), ValueError,
        r"unknown optimizer 'lbfgs'; expected one of \['adam', 'adamw', 'sgd', 'rmsprop'\]"),
    Bad("unknown device", fit(device="tpu"), ValueError,
        r"unknown device 'tpu'; expected one of \['auto', 'cpu', 'cuda', 'mps'\]"),
    Bad("a device that is not present (cuda)", fit(device="cuda"), RuntimeError,
        r"device 'cuda' was asked for but CUDA is not available here; use device='auto' or 'cpu'",
        skip="CUDA is present here" if HAS_CUDA else None),
    Bad("a device index that is not present (cuda:7)", lambda ctx: train.pick_device("cuda:7"), RuntimeError,
        r"device 'cuda:7' was asked for but (CUDA is not available|only \d+ CUDA device\(s\) exist)"),
    Bad("training data of the wrong type",
        lambda ctx: train.fit(models.create("sequential"), 3, epochs=1, progress=False, device="cpu"),
        TypeError, r"expected a lenet_course\.data\.Split or an iterable of \(images, labels\) batches, got int"),
    Bad("a non-integer seed", lambda ctx: train.set_seed("42"), TypeError, r"seed must be an integer, got '42'"),
    Bad("a learning rate so large the loss overflows", fit(optimizer="sgd", lr=1e6, batch_size=32, epochs=3),
        FloatingPointError, r"loss became (nan|inf) at epoch \d+, step \d+ \(learning rate 1e\+06\); "
                            r"try a smaller learning rate"),
]


# --- names ---------------------------------------------------------------------------------------

NAMES = [
    Bad("unknown model", lambda ctx: models.create("lenet9"), ValueError,
        r"unknown model 'lenet9'; expected one of " + esc(models.names())),
    Bad("unknown model argument", lambda ctx: models.create("named", batchnorm=True), TypeError,
        r"model 'named' takes \['num_classes', 'in_channels'\], got \['batchnorm'\]"),
    Bad("unknown dataset", lambda ctx: data.load("svhn"), ValueError,
        r"unknown dataset 'svhn'; expected one of " + esc(sorted(data.DATASETS))),
    Bad("unknown dataset (classes)", lambda ctx: data.classes("imagenet"), ValueError,
        r"unknown dataset 'imagenet'; expected one of " + esc(sorted(data.DATASETS))),
    Bad("unknown activation", lambda ctx: models.create("sequential", activation="gelu"), ValueError,
        r"unknown activation 'gelu'; expected one of \['relu', 'sigmoid', 'tanh'\]"),
    Bad("unknown pooling", lambda ctx: models.create("sequential", pooling="min"), ValueError,
        r"unknown pooling 'min'; expected one of \['avg', 'max'\]"),
    Bad("unknown initialisation (classic)", lambda ctx: models.create("classic", init="xavier"), ValueError,
        r"unknown init 'xavier'; expected one of \['lecun', 'paper'\]"),
    Bad("num_classes 1", lambda ctx: models.create("sequential", num_classes=1), ValueError,
        r"num_classes must be an integer of at least 2, got 1$"),
    Bad("num_classes 0 (cifar)", lambda ctx: models.create("cifar", num_classes=0), ValueError,
        r"num_classes must be an integer of at least 2, got 0$"),
    Bad("in_channels 0", lambda ctx: models.create("functional", in_channels=0), ValueError,
        r"in_channels must be a positive integer, got 0$"),
    Bad("dropout 1", lambda ctx: models.create("cifar", dropout=1.0), ValueError,
        r"dropout must be a probability in \[0, 1\), got 1\.0"),
    Bad("unknown resize mode", lambda ctx: data.to_size(torch.zeros(1, 1, 28, 28, dtype=torch.uint8), 32, "crop"),
        ValueError, r"unknown mode 'crop'; expected 'pad' or 'resize'"),
    Bad("subset larger than the split", lambda ctx: ctx.tr.subset(10_000), ValueError,
        r"subset size must be between 1 and 512, got 10000"),
    Bad("loader batch size 0", lambda ctx: data.TensorLoader(ctx.tr, batch_size=0), ValueError,
        r"batch_size must be a positive integer, got 0"),
]


# --- checkpoints ----------------------------------------------------------------------------------

def good_checkpoint(ctx, name="named", **kw) -> Path:
    train.set_seed(0)
    return train.save_checkpoint(ctx.tmp / f"{name}.pt", models.create(name, **kw))


def truncated(ctx):
    good = good_checkpoint(ctx)
    cut = ctx.tmp / "cut.pt"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    return train.load_checkpoint(cut)


def text_file(ctx):
    (ctx.tmp / "notes.pt").write_text("my notes, not a checkpoint")
    return train.load_checkpoint(ctx.tmp / "notes.pt")


def plain_state_dict(ctx):
    torch.save(models.create("sequential").state_dict(), ctx.tmp / "plain.pt")
    return train.load_checkpoint(ctx.tmp / "plain.pt")


class RunsCode:
    """Unpickling this would create a folder: what a malicious checkpoint would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def pickled_code(ctx):
    torch.save({"format": train.CHECKPOINT_FORMAT, "model": {"name": "sequential"},
                "state_dict": RunsCode(ctx.tmp / "code-ran")}, ctx.tmp / "evil.pt")
    return train.load_checkpoint(ctx.tmp / "evil.pt")


def code_did_not_run(ctx):
    assert not (ctx.tmp / "code-ran").exists(), "loading the checkpoint ran the pickled code"


def resume_without_state(ctx):
    return fit(resume=good_checkpoint(ctx, "sequential"))(ctx)


CHECKPOINTS = [
    Bad("checkpoint truncated", truncated, train.CheckpointError,
        r"cut\.pt is not a readable checkpoint \(truncated, damaged or not a torch file: \w+"),
    Bad("checkpoint is a text file", text_file, train.CheckpointError,
        r"notes\.pt is not a readable checkpoint \(truncated, damaged or not a torch file"),
    Bad("checkpoint is a bare state_dict", plain_state_dict, train.CheckpointError,
        r"plain\.pt is a torch file but not a lenet_course checkpoint \(expected format 'lenet_course/1'\)"),
    Bad("checkpoint missing", lambda ctx: train.load_checkpoint(ctx.tmp / "nothing.pt"), FileNotFoundError,
        r"no checkpoint at .*nothing\.pt"),
    Bad("checkpoint for another architecture", lambda ctx: train.load_checkpoint(
        good_checkpoint(ctx, "named"), models.create("sequential")), train.CheckpointError,
        r"holds a 'named' model, not the 'sequential' model given"),
    Bad("checkpoint for another num_classes", lambda ctx: train.load_checkpoint(
        good_checkpoint(ctx, "named"), models.create("named", num_classes=5)), train.CheckpointError,
        r"holds a 'named' model, not the 'named' \(num_classes=5\) model given"),
    Bad("checkpoint containing pickled code", pickled_code, train.CheckpointError,
        r"evil\.pt was refused: it holds a pickled Python object \([^)]*GLOBAL (posix|os)\.mkdir\)"
        r".*weights_only loading accepts tensors and plain data only", check=code_did_not_run),
    Bad("resume from a checkpoint with no training state", resume_without_state, train.CheckpointError,
        r"cannot be resumed from: it holds weights but no training state \(expected a checkpoint written by "
        r"fit\(\.\.\., checkpoint=path\)\)"),
]


# --- dataset files and the data root ---------------------------------------------------------

def damaged_mnist(kind: str, damage: Callable[[bytes], bytes], download: bool = False):
    def call(ctx):
        root = ctx.fixture("mnist_root")
        path = root / "MNIST" / "raw" / f"train-{kind}"
        path.write_bytes(damage(path.read_bytes()))
        return data.load("mnist", root=root, download=download)
    return call


def corrupt_cifar(ctx):
    root = ctx.fixture("cifar_root")
    (root / "cifar-10-batches-py" / "data_batch_1").write_bytes(b"\x80\x04garbage")
    return data.load("cifar10", root=root, download=False)


def under_a_file(ctx):
    (ctx.tmp / "a-file").write_text("not a folder")
    return data.load("mnist", root=ctx.tmp / "a-file" / "data", download=True)


IMAGES_SIZE = 16 + 600 * 28 * 28
DATASETS = [
    Bad("dataset image file truncated", damaged_mnist("images-idx3-ubyte", lambda b: b[:1000]), data.DatasetCorrupted,
        r"dataset 'mnist': .*MNIST/raw/train-images-idx3-ubyte is damaged \(truncated: expected "
        + f"{IMAGES_SIZE:,}" + r" bytes for shape \(600, 28, 28\), got 1,000 bytes\); delete .*"
        r"train-images-idx3-ubyte and download it again"),
    Bad("dataset image file truncated (download=True does not hide it)",
        damaged_mnist("images-idx3-ubyte", lambda b: b[:5000], download=True), data.DatasetCorrupted,
        r"train-images-idx3-ubyte is damaged \(truncated: expected .* got 5,000 bytes\); delete .* download it again"),
    Bad("dataset file replaced by an HTML error page", damaged_mnist("images-idx3-ubyte", lambda b: b"<html>404</html>"),
        data.DatasetCorrupted, r"train-images-idx3-ubyte is damaged \(expected a uint8 IDX file \(starting with "
                               r"bytes 00 00 08 01-03\), got 4 bytes starting 3c 68 74 6d\); delete"),
    Bad("dataset label file with extra bytes", damaged_mnist("labels-idx1-ubyte", lambda b: b + b"\x00" * 7),
        data.DatasetCorrupted, r"train-labels-idx1-ubyte is damaged \(too long: expected 608 bytes for shape "
                               r"\(600,\), got 615 bytes\); delete .* download it again"),
    Bad("dataset file emptied", damaged_mnist("labels-idx1-ubyte", lambda b: b""), data.DatasetCorrupted,
        r"train-labels-idx1-ubyte is damaged \(expected a uint8 IDX file .*got 0 bytes starting \(empty\)\)"),
    Bad("CIFAR-10 batch corrupted", corrupt_cifar, data.DatasetCorrupted,
        r"dataset 'cifar10': .*cifar-10-batches-py/data_batch_1 is damaged \(expected a pickled CIFAR batch, "
        r"got \w+.*\); delete .*data_batch_1 and download it again"),
    Bad("dataset not there and download=False", lambda ctx: data.load("cifar10", root=ctx.tmp, download=False),
        data.DatasetUnavailable, r"dataset 'cifar10' is not in .* and download=False; run once where a network"),
    Bad("data root that is not writable", under_a_file, data.DatasetUnavailable,
        r"cannot download dataset 'mnist': the data root .*a-file/data is not writable \(.*\); "
        r"set LENET_DATA to a writable folder"),
]


# --- the explorer: a diverging run is shown in the panel, which stays usable --------------------

def explorer_diverges(ctx):
    tr, te = ctx.fixture("sample_splits")
    ex = widgets.Explorer(tr, te.subset(300))
    ex.optimizer.value, ex.lr.value, ex.batchnorm.value, ex.train_size.value = "sgd", 10.0, True, 2000
    ex.epochs.value, ex.batch_size.value = 1, 64
    failed = ex.train_clicked()
    ctx.explorer = ex
    assert not failed.ok and not ex.train_button.disabled
    return ex.status.value


def explorer_stays_usable(ctx):
    ex = ctx.explorer
    ex.optimizer.value, ex.lr.value, ex.batchnorm.value, ex.train_size.value = "adam", 3e-3, False, 500
    ex.batch_size.value = 32
    good = ex.train_clicked()
    assert good.ok and len(ex.results) == 2 and "run #2: test accuracy" in ex.status.value
    table = [o["text"] for o in ex.output.outputs if o["output_type"] == "stream"][0]
    assert "error: diverged" in table and "\n2  adam" in table


EXPLORER = [
    Bad("explorer given values that diverge", explorer_diverges, None,
        r"run #1 failed: diverged: loss became (nan|inf) at epoch 1, step \d+ \(learning rate 10\)",
        check=explorer_stays_usable),
]


# --- the command line -------------------------------------------------------------------------

def run_cli(*args):
    """The CLI in this process; its exit status comes out as SystemExit (argparse's way, and ours)."""
    return lambda ctx: sys.exit(cli([str(a).format(tmp=ctx.tmp) for a in args]))


USAGE = r"^exit 2\nusage: python -m lenet_course.*error: "
CLI = [
    Bad("CLI: unknown command", run_cli("fly"), SystemExit, USAGE + r"argument command: invalid choice: 'fly'"),
    Bad("CLI: unknown model", run_cli("train", "--model", "lenet9"), SystemExit,
        USAGE + r"argument --model: invalid choice: 'lenet9' \(choose from .*'sequential'"),
    Bad("CLI: unknown dataset", run_cli("train", "--dataset", "imagenet"), SystemExit,
        USAGE + r"argument --dataset: invalid choice: 'imagenet' \(choose from .*'mnist-sample'"),
    Bad("CLI: unknown optimizer", run_cli("train", "--optimizer", "lbfgs"), SystemExit,
        USAGE + r"argument --optimizer: invalid choice: 'lbfgs' \(choose from .*'adam'"),
    Bad("CLI: 0 epochs", run_cli("train", "--epochs", "0"), SystemExit,
        USAGE + r"argument --epochs: expected a positive integer, got 0"),
    Bad("CLI: negative learning rate", run_cli("train", "--lr", "-1"), SystemExit,
        USAGE + r"argument --lr: expected a positive finite number, got -1"),
    Bad("CLI: learning rate nan", run_cli("train", "--lr", "nan"), SystemExit,
        USAGE + r"argument --lr: expected a positive finite number, got nan"),
    Bad("CLI: batch size as a word", run_cli("train", "--batch-size", "zero"), SystemExit,
        USAGE + r"argument --batch-size: expected a positive integer, got 'zero'"),
    Bad("CLI: bench with 0 rounds", run_cli("bench", "--repeats", "0"), SystemExit,
        USAGE + r"argument --repeats: expected a positive integer, got 0"),
    Bad("CLI: bench --time-to as a percentage", run_cli("bench", "--time-to", "90"), SystemExit,
        USAGE + r"argument --time-to: expected a test accuracy between 0 and 1, e.g. 0.9, got '90'"),
    Bad("CLI: evaluate without a checkpoint", run_cli("evaluate"), SystemExit,
        USAGE + r"the following arguments are required: --checkpoint"),
    Bad("CLI: unknown initialisation", run_cli("train", "--model", "classic", "--init", "glorot"), SystemExit,
        USAGE + r"argument --init: invalid choice: 'glorot' \(choose from .*'lecun'"),
    Bad("CLI: --init on a model without one (exit 1, one line)", run_cli("train", "--model", "sequential", "--init",
        "paper"), SystemExit, r"^exit 1\nerror: --init applies to --model classic or cifar only\n$"),
    Bad("CLI: the other model's initialisation (exit 1, one line)", run_cli("train", "--model", "classic", "--init",
        "xavier"), SystemExit, r"^exit 1\nerror: --init xavier is not an initialisation of --model classic; "
        r"expected one of \['lecun', 'paper'\]\n$"),
    Bad("CLI: num_classes 1 (exit 1, one line)", run_cli("summary", "--num-classes", "1"), SystemExit,
        r"^exit 1\nerror: num_classes must be an integer of at least 2, got 1\n$"),
    Bad("CLI: evaluate a file that is not a checkpoint (exit 1, one line)", lambda ctx: (
        (ctx.tmp / "bad.pt").write_text("x"), run_cli("evaluate", "--checkpoint", "{tmp}/bad.pt")(ctx)),
        SystemExit, r"^exit 1\nerror: .*bad\.pt is not a readable checkpoint \([^\n]*\)\n$"),
]

CATALOGUE: list[Bad] = _model_rows() + HYPERPARAMETERS + NAMES + CHECKPOINTS + DATASETS + EXPLORER + CLI

# rows this catalogue found failing in code owned elsewhere: reported, expected to fail until fixed there
KNOWN_GAPS: dict[str, str] = {}


# --- the tests ----------------------------------------------------------------------------------

@pytest.fixture
def ctx(tiny_splits, tmp_path, request):
    tr, te = tiny_splits
    return SimpleNamespace(tr=tr, te=te, tmp=tmp_path, fixture=request.getfixturevalue)


def test_catalogue_size_and_coverage():
    print(f"\ncatalogue: {len(CATALOGUE)} bad inputs")
    assert len(CATALOGUE) >= 30
    assert len({b.what for b in CATALOGUE}) == len(CATALOGUE)  # each mistake once
    for name in models.names():  # every model: rank, channels, size, dtype
        rows = [b.what for b in CATALOGUE if b.what.startswith(f"{name}: ")]
        assert any("rank 3" in r for r in rows) and any("channels" in r for r in rows)
        assert any("28x28" in r for r in rows) and any("uint8" in r for r in rows) and any("float64" in r for r in rows)


@pytest.mark.parametrize("bad", CATALOGUE, ids=[b.what for b in CATALOGUE])
def test_bad_input(bad: Bad, ctx, capsys, request):
    if bad.skip:
        pytest.skip(bad.skip)
    if bad.what in KNOWN_GAPS:
        request.applymarker(pytest.mark.xfail(reason=KNOWN_GAPS[bad.what], strict=False))
    if bad.error is None:
        text = bad.call(ctx)
    else:
        with pytest.raises(BaseException) as info:
            bad.call(ctx)
        assert type(info.value) is bad.error, f"{bad.what}: {type(info.value).__name__}: {info.value}"
        if isinstance(info.value, SystemExit):
            text = f"exit {info.value.code}\n{capsys.readouterr().err}"
            assert "Traceback" not in text
        else:
            text = str(info.value)
    assert re.search(bad.message, text, re.DOTALL | re.MULTILINE), f"{bad.what}: message was\n{text}"
    if bad.check is not None:
        bad.check(ctx)
