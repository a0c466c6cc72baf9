"""Command line: ``python -m lenet_course summary|train|evaluate|bench``.

    python -m lenet_course summary --model named
    python -m lenet_course train --model sequential --dataset fashion-mnist --epochs 5 --out ckpt.pt
    python -m lenet_course evaluate --checkpoint ckpt.pt
    python -m lenet_course bench --json bench.json
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Sequence

from . import arch, data, models, train
from . import classic  # noqa: F401  registers the "classic" model (and --schedule paper)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _accuracy(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"expected a test accuracy between 0 and 1, e.g. 0.9, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got {text}")
    return value


def _model_input(model) -> tuple[int, int, int]:
    return (getattr(model, "in_channels", 1), 32, 32)


_INIT_CHOICES = sorted(set(classic.INITS) | set(models.INITS))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m lenet_course", description="LeNet-5 course companion")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("summary", help="layer table: output shapes, parameters, connections")
    p.add_argument("--model", choices=models.names(), default="sequential")
    p.add_argument("--num-classes", type=_positive_int, default=10)

    p = sub.add_parser("train", help="train a model and report test accuracy")
    p.add_argument("--model", choices=models.names(), default="sequential")
    p.add_argument("--dataset", choices=sorted(data.DATASETS), default="mnist-sample")
    p.add_argument("--epochs", type=_positive_int, default=5)
    p.add_argument("--lr", type=_positive_float, default=None, help="default: per optimizer, scaled with batch size")
    p.add_argument("--batch-size", type=_positive_int, default=None, help="default: per device")
    p.add_argument("--optimizer", choices=train.OPTIMIZERS, default="adam")
    p.add_argument("--schedule", choices=("default", "paper"), default="default",
                   help="paper: --model classic with the 1998 MAP loss, stochastic diagonal Levenberg-Marquardt "
                        "and learning-rate schedule; --epochs counts passes (the paper: 20), --batch-size "
                        "defaults to 1 as in the paper")
    p.add_argument("--lr-scale", type=_positive_float, default=1.0,
                   help="with --schedule paper: multiply the paper's global learning rates by this")
    p.add_argument("--batchnorm", action="store_true", help="sequential model with BatchNorm")
    p.add_argument("--init", default=None, choices=_INIT_CHOICES,
                   help="initial weights: classic: paper (+-2.4/fan-in, the default) or lecun (std fan-in^-1/2, "
                        "Efficient BackProp); cifar: default, xavier or kaiming")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--data-root", default=None, help="default: $LENET_DATA or the per-user cache")
    p.add_argument("--out", default=None, help="write a checkpoint here after each epoch")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.add_argument("--no-progress", action="store_true")

    p = sub.add_parser("evaluate", help="test accuracy of a checkpoint")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--dataset", choices=sorted(data.DATASETS), default=None,
                   help="default: the dataset the checkpoint was trained on")
    p.add_argument("--device", default="auto")
    p.add_argument("--data-root", default=None)
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("bench", help="tutorial DataLoader pipeline vs. fit's tensor-resident path")
    p.add_argument("--dataset", choices=sorted(data.DATASETS), default="fashion-mnist")
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--small", action="store_true", help="2,000 training images: a smoke test")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory measurement")
    p.add_argument("--repeats", type=_positive_int, default=3, help="rounds of the three pipelines, in turn (default 3)")
    p.add_argument("--explore", action="store_true",
                   help="also time variants of fit's training step (memory format, precision, threads, ...)")
    p.add_argument("--no-compile", action="store_true", help="with --explore: leave torch.compile out")
    p.add_argument("--breakdown", action="store_true",
                   help="also profile fit's training step: time by kind of layer (convolutions, batch norm, ...)")
    p.add_argument("--time-to", type=_accuracy, default=None, metavar="ACCURACY",
                   help="also train with fit's defaults until this test accuracy (e.g. 0.9) and time it")
    p.add_argument("--json", nargs="?", const="-", default=None, metavar="PATH",
                   help="write the figures as JSON to PATH (or print them, with no PATH)")
    return parser


def _summary(args) -> int:
    model = models.create(args.model, num_classes=args.num_classes)
    print(f"{args.model}: {type(model).__name__}")
    print(arch.format_table(arch.layer_table(model, _model_input(model))))
    return 0


def _splits_for(name: str, model, root):
    tr, te = data.load_splits(name, root=root)
    channels = _model_input(model)[0]
    return tr.with_channels(channels), te.with_channels(channels)


def _train(args) -> int:
    kwargs = {"num_classes": len(data.classes(args.dataset))}
    if args.batchnorm:
        if args.model != "sequential":
            raise ValueError("--batchnorm applies to --model sequential only")
        kwargs["batchnorm"] = True
    if args.model == "cifar":
        kwargs["in_channels"] = 3
    if args.init is not None:
        valid = {"classic": classic.INITS, "cifar": models.INITS}.get(args.model)
        if valid is None:
            raise ValueError("--init applies to --model classic or cifar only")
        if args.init not in valid:
            raise ValueError(f"--init {args.init} is not an initialisation of --model {args.model}; "
                             f"expected one of {sorted(valid)}")
        kwargs["init"] = args.init
    train.set_seed(args.seed)
    model = models.create(args.model, **kwargs)
    tr, te = _splits_for(args.dataset, model, args.data_root)
    if args.model == "classic":  # the paper's input levels: background -0.1, ink 1.175
        tr, te = data.paper_scaling(tr), data.paper_scaling(te)
    if args.schedule == "paper":
        return _train_paper(args, model, tr, te)
    if args.lr_scale != 1.0:
        raise ValueError("--lr-scale applies to --schedule paper only")
    history = train.fit(model, tr, te, epochs=args.epochs, optimizer=args.optimizer, lr=args.lr,
                        batch_size=args.batch_size, device=args.device, seed=args.seed,
                        progress=not (args.no_progress or args.json), checkpoint=args.out)
    result = {"model": model.config, "dataset": args.dataset, "device": str(train.pick_device(args.device)),
              "history": history.to_dict(), "test_accuracy": history.test_accuracy[-1] if history else None,
              "images_per_s": sum(history.images_per_s) / max(len(history), 1),
              "checkpoint": args.out}
    if args.json:
        print(json.dumps(result))
    else:
        for row in history.rows():
            print(f"epoch {row['epoch']}: train loss {row['train_loss']:.4f} acc {100 * row['train_accuracy']:.2f}% | "
                  f"test loss {row['test_loss']:.4f} acc {100 * row['test_accuracy']:.2f}% | "
                  f"{row['seconds']:.1f} s, {row['images_per_s']:,.0f} images/s")
        if args.out:
            print(f"checkpoint: {args.out}")
    return 0


def _train_paper(args, model, tr, te) -> int:
    from . import classic
    if args.model != "classic":
        raise ValueError("--schedule paper trains the 1998 network: use it with --model classic")
    if args.lr is not None:
        raise ValueError("--schedule paper sets its own learning rates (0.0005 down to 0.00001); use --lr-scale")
    batch_size = args.batch_size or 1
    history = classic.train_paper(model, tr, te, passes=args.epochs, batch_size=batch_size, device=args.device,
                                  seed=args.seed, progress=not (args.no_progress or args.json),
                                  lr_scale=args.lr_scale)
    if args.out:
        train.save_checkpoint(args.out, model, history=history, data=tr)
    result = {"model": model.config, "dataset": args.dataset, "device": str(train.pick_device(args.device)),
              "schedule": "paper", "batch_size": batch_size, "lr_scale": args.lr_scale, "seed": args.seed,
              "history": history.to_dict(), "test_accuracy": history.test_accuracy[-1] if history else None,
              "images_per_s": sum(history.images_per_s) / max(len(history), 1), "checkpoint": args.out}
    if args.json:
        print(json.dumps(result))
    else:
        for row in history.rows():
            print(f"pass {row['epoch']}: train MAP loss {row['train_loss']:.4f} acc {100 * row['train_accuracy']:.2f}% | "
                  f"test acc {100 * row['test_accuracy']:.2f}% | {row['seconds']:.1f} s")
        if args.out:
            print(f"checkpoint: {args.out}")
    return 0


def _evaluate(args) -> int:
    model, info = train.load_checkpoint(args.checkpoint)
    name = args.dataset or info.get("dataset")
    if name is None:
        raise ValueError(f"{args.checkpoint} does not say which dataset it was trained on; pass --dataset")
    tr, te = _splits_for(name, model, args.data_root)
    if info.get("mean") and name == info.get("dataset"):
        te.mean, te.std = tuple(info["mean"]), tuple(info["std"])  # the statistics the model was trained with
    scores = train.evaluate(model, te, device=args.device)
    if args.json:
        print(json.dumps({"checkpoint": args.checkpoint, "dataset": name, **scores}))
    else:
        print(f"{args.checkpoint} on {name} test split ({len(te)} images): "
              f"accuracy {100 * scores['accuracy']:.2f}%, loss {scores['loss']:.4f}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "bench":
            from . import bench
            return bench.main(args)
        return {"summary": _summary, "train": _train, "evaluate": _evaluate}[args.command](args)
    except (data.DatasetUnavailable, train.CheckpointError, FileNotFoundError, ValueError, RuntimeError,
            FloatingPointError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
