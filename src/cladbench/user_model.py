"""Your own model with Clad's gradients: a forward function on the kernel contract in one C++ file
(cpp/model/cladbench_model.hpp says how to write it; examples/resmlp/resmlp.cpp is one), compiled
with clang and Clad by the project's one compile path (cladbench.clad_compile, cached by content
hash) and registered with the torch ops, so it is used like the built-in models:

    resmlp = cladbench.compile_model("examples/resmlp/resmlp.cpp")
    net = resmlp.module()                          # cladbench.nn.Model: one flat parameter
    loss = F.cross_entropy(net(x), y)              # backward: Clad's vector-Jacobian product
    logits = torch.ops.cladbench.forward(params, x, resmlp.name, [], "clad", "rowmajor")

Mistakes come back as errors naming the file and line: a forward off the contract or sizes that
do not fit (the CLADBENCH_MODEL line's static_asserts), what Clad cannot differentiate (its
diagnostic; a missing custom derivative with -fclad-porting-hints' suggested signature), and
parameters or inputs of the wrong size (the ops' checks name the model's source).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import torch

from .clad_compile import CladUnavailableError, ModelCompileError, build_library
from .core import core
from .paths import build_dir

__all__ = ["CladUnavailableError", "ModelCompileError", "UserModel", "compile_model", "load_model"]

_MODEL_LINE = re.compile(r"^\s*CLADBENCH_MODEL\(\s*(\w+)\s*,", re.MULTILINE)


@dataclass(frozen=True)
class UserModel:
    """A loaded user model: its name (as the ops take it), where it is defined, its library, and
    its sizes (values of params, per-sample inputs and outputs)."""

    name: str
    source: str
    library: Path
    params: int
    inputs: int
    outputs: int

    def forward(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The output [batch, outputs] of x [batch, inputs] (torch.ops.cladbench.forward)."""
        return torch.ops.cladbench.forward(params, x, self.name, [], "clad", "rowmajor")

    def loss(self, params: torch.Tensor, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The fused mean cross-entropy of the output, read as logits (torch.ops.cladbench.loss)."""
        return torch.ops.cladbench.loss(params, x, labels.to(torch.int32), self.name, [], "clad", "rowmajor")

    def module(self, params: torch.Tensor | None = None, seed: int = 1):
        """A cladbench.nn.Model of this model (initial parameters `params`, else drawn from N(0,
        0.05^2) with `seed`)."""
        from .nn import Model

        return Model(self, params, seed)


def load_model(library: str | Path) -> UserModel:
    """Registers a model library built elsewhere (cladbench_add_model in CMake) with the ops."""
    info = core.load_model(str(library))
    return UserModel(
        info["name"], info["source"], Path(info["library"]), info["params"], info["inputs"], info["outputs"]
    )


def compile_model(source: str | Path, root: str | Path | None = None, quiet: bool = False) -> UserModel:
    """Compiles (or reuses) the model of one C++ file and loads it: build/models/<hash>/lib<name>.so.
    Raises ModelCompileError with the compiler's and Clad's diagnostics, CladUnavailableError
    without Clad, FileNotFoundError for a missing file."""
    source = Path(source).resolve()
    if not source.is_file():
        raise FileNotFoundError(f"no model source {source}")
    names = _MODEL_LINE.findall(source.read_text())
    if len(names) != 1:
        raise ModelCompileError(
            f"{source}: needs exactly one CLADBENCH_MODEL(name, forward, sizes) line (cladbench_model.hpp), "
            f"found {len(names)}"
        )
    root = Path(root) if root else build_dir() / "models"
    return load_model(build_library(names[0], root, source=source, quiet=quiet))
