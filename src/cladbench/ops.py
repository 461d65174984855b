"""Fake (meta) kernels of the torch.ops.cladbench ops (cpp/torch/ops.cpp): their outputs' shapes and
dtypes, symbolic in the batch, so that torch.compile and torch.library.opcheck can trace code that
calls them. Imported by cladbench.core; the C++ library names this module (set_python_module).

    logits = torch.ops.cladbench.forward(params, x, "mlp", [784, 128, 10], "clad", "rowmajor")
    loss = torch.nn.functional.cross_entropy(logits, labels)  # any torch loss: backward is Clad's VJP
"""

from __future__ import annotations

import torch

from . import _core


def workspace_size(model: str, dims, batch):
    """The kernels' workspace for `batch` samples (an int or a SymInt): a fixed part (the CNN's conv
    scratch) plus one per sample, as the *_workspace_size functions of cpp/kernels compute it."""
    dims = list(dims)
    fixed = _core.workspace_size(model, dims, 0)
    return fixed + (_core.workspace_size(model, dims, 1) - fixed) * batch


def classes(model: str, dims) -> int:
    """The logits per sample: the last width of a built-in model, a user model's outputs."""
    return _core.classes(model, list(dims))


@torch.library.register_fake("cladbench::loss")
def _loss(params, x, labels, model, dims, engine, layout):
    return params.new_empty(())


@torch.library.register_fake("cladbench::loss_grad")
def _loss_grad(params, x, labels, model, dims, engine, layout, input_grad):
    d_x = torch.empty_like(x, memory_format=torch.contiguous_format) if input_grad else x.new_empty(0)
    return params.new_empty(()), torch.empty_like(params, memory_format=torch.contiguous_format), d_x


@torch.library.register_fake("cladbench::forward")
def _forward(params, x, model, dims, engine, layout):
    return params.new_empty(x.shape[0], classes(model, dims))


@torch.library.register_fake("cladbench::forward_ws")
def _forward_ws(params, x, model, dims, engine, layout):
    batch = x.shape[0]
    return params.new_empty(batch, classes(model, dims)), params.new_empty(workspace_size(model, dims, batch))


@torch.library.register_fake("cladbench::forward_vjp")
def _forward_vjp(params, x, ws, grad_logits, model, dims, engine, layout, input_grad):
    d_x = params.new_empty(x.shape) if input_grad else params.new_empty(0)
    return params.new_empty(params.shape), d_x
