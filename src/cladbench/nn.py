"""Clad's gradients in ordinary torch.nn modules: `MLP` and `CNN`, whose forward is the composable
op torch.ops.cladbench.forward (cpp/torch/ops.cpp), so backward runs the vector-Jacobian product
Clad generated for the kernels. Use them like any module:

    model = cladbench.nn.MLP([784, 128, 10])               # engine="clad", layout="rowmajor", seed=1
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss = F.cross_entropy(model(x), y) + 1e-4 * sum(w.square().sum() for w in model.layers()[::2])
    optimizer.zero_grad()
    loss.backward()                                        # Clad's VJP, then torch's for the L2 term
    optimizer.step()

Each module holds one flat nn.Parameter, `params`: the kernel contract's vector (per layer W then
b, W in the module's layout; docs/architecture.md, "The kernel contract"), initialised as every
engine's run is (core.init_params, core.pack_params), which the kernels read without a copy.
`layers()` gives [W0, b0, W1, b1, ...] as views into it in torch's [out, in] convention, for
inspecting or regularising weights. `loss(x, labels)` is the fused training op
torch.ops.cladbench.loss (softmax cross-entropy and its gradient in one kernel pass), the fast
path when the loss is the plain mean cross-entropy.

Any torch.optim optimiser, state_dict save and load (the state also records the model, dims and
layout, and loading refuses another model's), `.to(torch.float64)` (the op then runs the double
kernels) and `torch.compile(module)` (the ops have fake kernels, cladbench/ops.py) work.
`.train()` and `.eval()` change nothing: these models have no dropout or batch norm. CPU only.
`Model` is the same for a model of your own (cladbench.compile_model, cladbench.user_model).
The C++ counterparts are cladbench::nn::MLP, CNN and Model (cpp/torch/nn.hpp).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .core import core
from .engines.models import parse_conv
from .matrix import LAYOUTS

__all__ = ["CNN", "MLP", "KernelModule", "Model"]


class KernelModule(nn.Module):
    """What MLP and CNN share: the model's name and dims for the ops, the engine, the layout and
    the one parameter. Construct an MLP or a CNN."""

    def __init__(self, model: str, dims: Sequence[int], engine: str, layout: str, seed: int):
        super().__init__()
        dims = [int(d) for d in dims]
        _check_dims(model, dims)
        if layout not in LAYOUTS:
            raise ValueError(f"unknown layout {layout!r}: one of {', '.join(LAYOUTS)}")
        built = sorted({e["engine"] for e in core.engines() if e["model"] == model and e["layout"] == layout})
        if engine not in built:
            raise ValueError(
                f"the {model} engine {engine!r} with {layout} weights is not built here; built: {', '.join(built)}"
            )
        self.model, self.dims, self.engine, self.layout = model, dims, engine, layout
        self.params = nn.Parameter(core.pack_params(core.init_params(model, dims, seed), layout))
        # Where each layer lies in params (the C++ unpack_params' views, one definition), so that
        # layers() is narrow and view, which autograd and torch.compile follow.
        self._layout_of_layers = [
            (v.storage_offset(), tuple(v.shape), v.dim() == 2 and v.stride()[0] == 1 and v.shape[1] > 1)
            for v in core.unpack_params(torch.empty(self.params.numel()), model, dims, layout)
        ]

    @property
    def name(self) -> str:
        """The model's name in run records, e.g. mlp-784-128-10."""
        return core.model_name(self.model, self.dims)

    def _check_input(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{type(self).__name__} takes a tensor, not {type(x).__name__}")
        if x.dtype != self.params.dtype:
            raise TypeError(
                f"{type(self).__name__} {self.name} has {self.params.dtype} parameters but x is {x.dtype}: "
                f"convert x, or the module with .to({x.dtype})"
            )
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The logits [batch, classes] of x [batch, features] (of the parameters' dtype)."""
        x = self._check_input(x)
        return torch.ops.cladbench.forward(self.params, x, self.model, self.dims, self.engine, self.layout)

    def loss(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The mean softmax cross-entropy of the logits and labels (any integer dtype, in [0,
        classes)), by the fused op: F.cross_entropy(self(x), labels) in one kernel pass."""
        x = self._check_input(x)
        labels = labels.to(torch.int32)
        return torch.ops.cladbench.loss(self.params, x, labels, self.model, self.dims, self.engine, self.layout)

    def layers(self) -> list[torch.Tensor]:
        """[W0, b0, W1, b1, ...] as views into `params` (gradients flow back into it), W [out, in]
        as torch.nn.Linear's weight; a conv block's W is [c_out, c_in * kernel] (Conv1d's weight
        flattened)."""
        views = []
        for offset, shape, transposed in self._layout_of_layers:
            flat = self.params.narrow(0, offset, _numel(shape))
            views.append(flat.view(shape[1], shape[0]).t() if transposed else flat.view(shape))
        return views

    def get_extra_state(self) -> dict:
        return {"model": self.model, "dims": list(self.dims), "layout": self.layout}

    def set_extra_state(self, state: dict) -> None:
        mine = self.get_extra_state()
        if state != mine:
            theirs = f"{core.model_name(state['model'], state['dims'])} with {state['layout']} weights"
            raise ValueError(f"the state_dict is of {theirs}, this module {self.name} with {self.layout} weights")

    def extra_repr(self) -> str:
        return f"{self.name}, engine={self.engine}, layout={self.layout}, {self.params.dtype}"


class MLP(KernelModule):
    """Linear layers with ReLU between them: widths = [in, hidden..., classes]; x [batch, in]."""

    def __init__(self, widths: Sequence[int], engine: str = "clad", layout: str = "rowmajor", seed: int = 1):
        super().__init__("mlp", widths, engine, layout, seed)


class CNN(KernelModule):
    """The GW 1D CNN (cpp/kernels/cnn.hpp): conv blocks "<c_out>k<kernel>p<pool>,..." (Conv1d,
    MaxPool1d, ReLU), then a hidden Linear layer with ReLU, then `classes`. x is [batch, channels *
    length] (channel-major, as the kernels read it) or [batch, channels, length] (Conv1d's)."""

    def __init__(
        self,
        channels: int,
        length: int,
        conv: str = "8k16p4,16k8p4,16k8p4",
        hidden: int = 32,
        classes: int = 2,
        engine: str = "clad",
        layout: str = "rowmajor",
        seed: int = 1,
    ):
        try:
            blocks = parse_conv(conv)
        except ValueError as error:
            raise ValueError(f"conv {conv!r} is not <c_out>k<kernel>p<pool>,..., e.g. 8k16p4,16k8p4") from error
        super().__init__("cnn", [channels, length, *blocks, hidden, classes], engine, layout, seed)

    def _check_input(self, x: torch.Tensor) -> torch.Tensor:
        x = super()._check_input(x)
        if x.dim() == 3 and tuple(x.shape[1:]) == tuple(self.dims[:2]):
            return x.flatten(1)
        return x


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def _check_dims(model: str, dims: list[int]) -> None:
    """What the ops would refuse later (and init_params could not draw), refused here."""
    if any(d < 1 for d in dims):
        raise ValueError(f"every size of a {model} must be positive, got {dims}")
    if model == "mlp" and len(dims) < 2:
        raise ValueError(f"an MLP needs widths [in, ..., classes], at least two, got {dims}")
    if model == "cnn":
        length = dims[1]
        for i in range((len(dims) - 4) // 3):
            kernel, pool = dims[3 + 3 * i], dims[4 + 3 * i]
            length = (length - kernel + 1) // pool
            if length < 1:
                raise ValueError(f"conv block {i} of {dims} leaves no output step of a window of {dims[1]}")


class Model(KernelModule):
    """A model of your own (cladbench.compile_model): forward is its output [batch, outputs] with
    Clad's VJP behind it, loss() the fused cross-entropy of that output read as logits. `params`:
    the initial flat parameter vector in the model's own order (copied); None draws every value
    from N(0, 0.05^2) with `seed`, since cladbench cannot know the model's layers. layers() is
    [params]."""

    def __init__(self, model, params: torch.Tensor | None = None, seed: int = 1):
        nn.Module.__init__(self)
        self.model, self.dims, self.engine, self.layout = model.name, [], "clad", "rowmajor"
        self.user_model = model
        if params is None:
            params = torch.randn(model.params, generator=torch.Generator().manual_seed(seed)) * 0.05
        if params.dim() != 1 or params.numel() != model.params:
            raise ValueError(
                f"{model.name} ({model.source}) has {model.params} parameters; "
                f"the initial ones are {tuple(params.shape)}"
            )
        self.params = nn.Parameter(params.detach().clone().contiguous())
        self._layout_of_layers = [(0, (model.params,), False)]

    def _check_input(self, x: torch.Tensor) -> torch.Tensor:
        x = super()._check_input(x)
        if x.dim() != 2 or x.shape[1] != self.user_model.inputs:
            raise ValueError(
                f"{self.model} ({self.user_model.source}) takes x [batch, {self.user_model.inputs}], "
                f"got {tuple(x.shape)}"
            )
        return x
