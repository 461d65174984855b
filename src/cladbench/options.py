"""The training options, defined once for `cladbench train`, the pytorch engine and the C++
trainers (which parse the same flags)."""

from __future__ import annotations

import argparse
from pathlib import Path

# A run whose first-step gradient differs from LibTorch autograd's (in double) by more than this,
# relative to the gradient's largest element, fails (exit 3). Every trainer checks it (the C++
# one as kGradientTolerance); the report keeps such runs out of its timing tables.
GRADIENT_TOLERANCE = 1e-4


# Batches are gathered (and put in the engine's form) ahead of their steps, before any is timed, as
# a data loader has them ready: as many as fit in about 1 MiB, at most 16. (jax, MLP batch 32: a
# gather before every step made its step 25-45% slower, 16 ahead was the fastest; at batch 256, 16
# ahead are 13 MB, which outgrow the caches and made every engine's first GEMM read its batch from
# memory: clad's MLP step 1.10x -> 1.18x its floor.) The C++ trainer uses the same rule (trainer.cpp).
PREFETCH_BYTES, PREFETCH_MAX = 1 << 20, 16


def prefetch_steps(batch_bytes: int) -> int:
    """How many batches of `batch_bytes` are gathered ahead of their steps."""
    return max(1, min(PREFETCH_MAX, PREFETCH_BYTES // max(1, batch_bytes)))


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", default="mnist", choices=("mnist", "gw-sim"))
    parser.add_argument("--images", default="", help="MNIST IDX images (.gz or plain)")
    parser.add_argument("--labels", default="", help="MNIST IDX labels (.gz or plain)")
    parser.add_argument("--test-images", default="", help="MNIST: test on this file (e.g. t10k) instead of a slice")
    parser.add_argument("--test-labels", default="")
    parser.add_argument("--data", default="", help="gw-sim: simulated GW windows (HDF5 from cladbench.data.gw)")
    parser.add_argument("--real", default="", help="gw-sim: real GW150914 windows to locate the event in")
    parser.add_argument("--model", default="mlp", choices=("mlp", "cnn"))
    parser.add_argument(
        "--conv", default="8k16p4,16k8p4,16k8p4", help="cnn: conv blocks CkKpP (channels, kernel, pool)"
    )
    parser.add_argument("--out", default="", help="where to write the JSON run record (stdout if empty)")
    parser.add_argument(
        "--params-out",
        default="",
        help="where to write the trained parameters (.npy: the flat float32 vector in the run's layout; "
        "its directory is created); the record then names the file and the model",
    )
    parser.add_argument("--train-range", default="0:8000", help="training rows BEGIN:END")
    parser.add_argument("--test-range", default="8000:10000", help="held-out rows BEGIN:END")
    parser.add_argument("--hidden", default="128", help="hidden widths, comma-separated")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=10, help="steps left out of the timing")
    parser.add_argument("--repetition", type=int, default=0)
    parser.add_argument(
        "--purpose",
        choices=("train", "bench"),
        default="train",
        help="train (learning curves) or bench (timing runs); the report keeps them apart",
    )


def train_defaults() -> dict:
    """Every training flag's default by its argparse name, e.g. {"batch": 32, "train_range": "0:8000", ...}."""
    parser = argparse.ArgumentParser(add_help=False)
    add_train_arguments(parser)
    return vars(parser.parse_args([]))


def train_default(name: str):
    """A training flag's default, e.g. train_default("batch") -> 32."""
    return train_defaults()[name.replace("-", "_")]


def cpp_header() -> str:
    """The C++ trainers' copy of the defaults and the constants above, written at build time into
    build/generated/train_defaults.hpp (cpp/CMakeLists.txt), so that they are defined only here.
    The C++ parse_args reads the defaults as if they were given first on its command line."""
    pairs = ", ".join(f'{{"{name.replace("_", "-")}", "{value}"}}' for name, value in train_defaults().items())
    return "\n".join(
        [
            "// Generated from src/cladbench/options.py (cpp_header) by the build: do not edit.",
            "#pragma once",
            "namespace cladbench::generated {",
            f"inline constexpr const char* kDefaultFlags[][2] = {{{pairs}}};",
            f"inline constexpr double kGradientTolerance = {GRADIENT_TOLERANCE!r};",
            f"inline constexpr long kPrefetchBytes = {PREFETCH_BYTES}, kPrefetchMax = {PREFETCH_MAX};",
            "}  // namespace cladbench::generated",
            "",
        ]
    )


# The flags of the model, optimizer and run (no data, no output): what a fed run (the ROOT
# trainer, cladbench.root) takes besides its trees.
RUN_FLAGS = [
    "hidden",
    "batch",
    "epochs",
    "lr",
    "optimizer",
    "seed",
    "threads",
    "warmup",
    "train_range",
    "test_range",
    "repetition",
    "purpose",
]


def train_argv(args: argparse.Namespace, names: list[str] | None = None) -> list[str]:
    """The same options as command-line flags, for a C++ trainer or the pytorch engine (`names`:
    only these; empty data and output paths are left out)."""
    if names is None:
        names = [
            "dataset",
            "images",
            "labels",
            "test_images",
            "test_labels",
            "data",
            "real",
            "model",
            "conv",
            "out",
            "params_out",
            *RUN_FLAGS,
        ]
    argv = []
    for name in names:
        value = getattr(args, name)
        paths = ("images", "labels", "test_images", "test_labels", "data", "real", "out", "params_out")
        if name in paths and not value:
            continue
        argv += ["--" + name.replace("_", "-"), str(value)]
    return argv


def parse_range(text: str) -> tuple[int, int]:
    begin, _, end = text.partition(":")
    return int(begin), int(end)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        prog="python -m cladbench.options", description="Write the C++ trainers' defaults."
    )
    parser.add_argument("--cpp-header", type=Path, required=True, help="the header to write")
    path = parser.parse_args().cpp_header
    if not path.exists() or path.read_text() != cpp_header():  # unchanged: keep its time, no rebuild
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(cpp_header())
