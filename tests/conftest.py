"""Shared fixtures. The C++ core must be built (`make test` builds it first)."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from cladbench.core import core
from cladbench.data.fetch import DataError, mnist_t10k
from cladbench.engines.jax import jax_available
from cladbench.engines.pytorch_compile import compile_problem
from cladbench.paths import build_manifest

KERNEL_ENGINES = sorted({e["engine"] for e in core.engines()} - {"autograd"})
CLAD_BUILT = "clad" in KERNEL_ENGINES
# The variants every training test runs: the C++ builds, pytorch, and jax when installed (optional extra).
RUNNABLE_VARIANTS = [
    *build_manifest()["variants"],
    "cpu-pytorch-rowmajor-dynamic",
    *(["cpu-jax-rowmajor-dynamic"] if jax_available() else []),
]
# pytorch-compile compiles for seconds in every run: tests of its own (test_peers.py). The default
# and paper configs run it where Inductor has its C++ compiler.
COMPILE_VARIANTS = [] if compile_problem() else ["cpu-pytorch-compile-rowmajor-dynamic"]


def clad_skip_reason() -> str:
    return "Clad not found when the core was built: " + build_manifest()["clad_reason"].split(";")[0]


def engine_param(engine: str):
    """A parameter for an engine; clad's skips with one line when Clad is not built."""
    if engine == "clad" and not CLAD_BUILT:
        return pytest.param(engine, marks=pytest.mark.skip(reason=clad_skip_reason()), id=engine)
    return pytest.param(engine, id=engine)


def write_idx(path: Path, array: np.ndarray) -> None:
    """An IDX file (gzip) in the real format: zero bytes, type 0x08, rank, big-endian sizes, data."""
    header = bytes([0, 0, 8, array.ndim]) + struct.pack(">" + "i" * array.ndim, *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def synthetic_mnist(directory: Path, n: int = 10000, seed: int = 0) -> tuple[Path, Path]:
    """MNIST-shaped IDX files with a learnable task (noisy class prototypes), for machines without
    the data mirror."""
    rng = np.random.default_rng(seed)
    prototypes = rng.integers(0, 256, size=(10, 28, 28))
    labels = rng.integers(0, 10, size=n)
    images = np.clip(prototypes[labels] + rng.normal(0, 60, size=(n, 28, 28)), 0, 255)
    directory.mkdir(parents=True, exist_ok=True)
    write_idx(directory / "images.gz", images)
    write_idx(directory / "labels.gz", labels)
    return directory / "images.gz", directory / "labels.gz"


@pytest.fixture(scope="session")
def mnist(tmp_path_factory) -> tuple[Path, Path, str]:
    """(images, labels, what): the real MNIST t10k from the mirror, verified, else synthetic files."""
    try:
        images, labels = mnist_t10k(resources=tmp_path_factory.mktemp("resources"))
        return images, labels, "MNIST t10k"
    except DataError:
        images, labels = synthetic_mnist(tmp_path_factory.mktemp("synthetic"))
        return images, labels, "synthetic MNIST-format data (no data mirror on this machine)"
