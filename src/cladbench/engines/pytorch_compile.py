"""The pytorch-compile engine: the pytorch engine's training step (torch.nn model, CrossEntropyLoss,
torch.optim; the same parameters, batches and updates) under torch.compile, Inductor on the CPU.
The peer a PyTorch user picks for speed. It runs in the Python engines' training loop
(pytorch_engine.py) and writes the same run record, plus `compile_time_s`.

How it is compiled. Of the forms PyTorch's docs give (torch.compile of the model or of the whole
train step, the torch.compile tutorial; the "compiled optimizer" recipe,
https://pytorch.org/tutorials/recipes/compiling_optimizer.html; compiled autograd), the fastest
measured here (MLP 784-128-10 at batch 32 and 256, GW CNN at batch 32, one thread):
- the batch loss, model forward and CrossEntropyLoss, as one graph (fullgraph=True: no graph
  break); AOTAutograd compiles its backward, which loss.backward() runs. The gradient check runs
  the same compiled forward and backward.
- torch.optim's step stays eager. Compiled (the recipe), it was no faster on the CPU (Dynamo's
  guards on the optimizer's state cost what fusing the update saves), and its Adam computes the
  bias corrections in float32 tensors instead of doubles: loss curves 1e-3 apart from eager
  Adam's after two MNIST epochs, 1e-8 with this.
- mode: the default. "reduce-overhead" is CUDA graphs, nothing on the CPU; "max-autotune-no-cudagraphs"
  compiled up to 2.7x longer for no faster step. The whole step under one torch.compile (the
  tutorial's training example, which breaks at backward()) was within 5% either way; compiled
  autograd (torch._dynamo.config.compiled_autograd) several times slower; cpp_wrapper=True no faster.
On the CPU the compiled step beat eager PyTorch on the GW CNN (10-20%) but not on the MLP, where
the compiled region's per-call runtime (guards, AOTAutograd's wrappers) costs 100-150 us a step
more than the eager ops it replaces (measured on a busy 2-core machine).

Compiling costs seconds per process. Inductor's caches (FX graphs, AOTAutograd) persist in
INDUCTOR_CACHE, in the repository (kept between runs, ignored by git), so a run whose shapes were
compiled before skips Inductor's C++ builds. Without a C++ compiler for Inductor this engine exits 2 with the reason and
the workflow lists it as not run. Run as `python -m cladbench.engines.pytorch_compile` or
`cladbench train --engine pytorch-compile`."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import sysconfig
from pathlib import Path

import torch

from ..paths import REPO
from . import pytorch as pytorch_engine

INDUCTOR_CACHE = REPO / ".cache" / "torchinductor"


def compile_problem() -> str | None:
    """Why torch.compile cannot build its CPU kernels here (one line), or None. Inductor compiles
    them as C++ against Python's headers, with the first compiler of its config.cpp.cxx found
    ($CXX, else g++). Checked without compiling anything."""
    from torch._inductor import config

    compilers = [c for c in config.cpp.cxx if c]
    if not any(shutil.which(c) for c in compilers):
        return f"torch.compile (Inductor) needs a C++ compiler: {' or '.join(compilers)} not found (set CXX)"
    header = Path(sysconfig.get_paths()["include"]) / "Python.h"
    if not header.exists():
        return f"torch.compile (Inductor) needs Python's C headers: {header} not found"
    return None


class CompiledTorchStepper(pytorch_engine.TorchStepper):
    """TorchStepper with its loss, forward and backward, compiled."""

    name = "pytorch-compile"
    generator = f"PyTorch {torch.__version__} torch.compile (Inductor) autograd"
    devices = ("cpu",)

    def __init__(self, model_kind: str, dims: list[int], layers: list[torch.Tensor], args: argparse.Namespace):
        super().__init__(model_kind, dims, layers, args)
        self.loss = torch.compile(self.loss, fullgraph=True)
        self.warmup, self.steps = args.warmup, 0

    def step(self, batch: tuple[torch.Tensor, torch.Tensor]) -> float:
        value = super().step(batch)
        self.steps += 1
        if self.steps == self.warmup:  # compiled in the warm-up; a recompile now would be timed: make it an error
            torch._dynamo.config.error_on_recompile = True
        return value


def main(argv: list[str] | None = None) -> int:
    # Set, not defaulted: any process that imports torch._inductor sets it to a temporary directory,
    # and its children (a workflow's jobs, a test's runs) inherit that. Before Inductor reads it.
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(INDUCTOR_CACHE)
    problem = compile_problem()
    if problem:
        print(f"cladbench pytorch-compile engine: {problem}", file=sys.stderr)
        return 2
    return pytorch_engine.main(argv, CompiledTorchStepper)


if __name__ == "__main__":
    sys.exit(main())
