"""The ONNX round trip: a torch model -> torch.onnx.export -> emitted C++ (cladbench.onnx.emit)
-> Clad gradients, checked against torch autograd; and fine-tuning the imported model with them."""

from __future__ import annotations

import copy
import io
import warnings

import numpy as np
import onnx
import torch
from torch import nn

from .compile import CompiledModel


def export(model: nn.Module, example: torch.Tensor, dynamo: bool = False) -> onnx.ModelProto:
    """torch.onnx.export with a dynamic batch axis. dynamo=False is the TorchScript-based exporter
    (needs only onnx); dynamo=True the torch.export-based one (needs onnxscript)."""
    buffer = io.BytesIO()
    model = model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation notice
        if dynamo:
            batch = torch.export.Dim("batch", min=1)
            program = torch.onnx.export(
                model,
                (example,),
                dynamo=True,
                input_names=["x"],
                output_names=["y"],
                dynamic_shapes=({0: batch},),
                verbose=False,
            )
            return program.model_proto
        torch.onnx.export(
            model,
            (example,),
            buffer,
            dynamo=False,
            input_names=["x"],
            output_names=["y"],
            dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}},
        )
    return onnx.load_from_string(buffer.getvalue())


def max_rel_err(value: np.ndarray, reference: np.ndarray) -> float:
    """max |value - reference| / max |reference| (as cladbench's core.max_rel_err)."""
    scale = np.abs(reference).max()
    diff = np.abs(np.asarray(value, dtype=np.float64) - reference).max()
    return float(diff / scale if scale > 0 else diff)


def torch_params(model: nn.Module, compiled: CompiledModel) -> list[torch.Tensor]:
    """The torch parameters in the emitted model's params order (matched by ONNX initializer name)."""
    named = dict(model.named_parameters())
    missing = [t["name"] for t in compiled.model.params_layout if t["name"] not in named]
    if missing:
        raise KeyError(f"ONNX initializers {missing} match no parameter of the torch model ({', '.join(named)})")
    return [named[t["name"]] for t in compiled.model.params_layout]


def params_from_torch(model: nn.Module, compiled: CompiledModel) -> np.ndarray:
    return np.concatenate([p.detach().double().numpy().ravel() for p in torch_params(model, compiled)])


def gradient_check(model: nn.Module, compiled: CompiledModel, x: np.ndarray, seed: int = 0) -> dict:
    """Max relative errors of the emitted model's forward and Clad gradients (vector-Jacobian
    product with a random cotangent: weights and input; input only; and the cross-entropy's
    weight gradient) against torch autograd on the same model in the same precision."""
    dtype = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}[compiled.dtype]
    model = copy.deepcopy(model).to(dtype)  # the caller's model keeps its precision
    compiled.params = params_from_torch(model, compiled).astype(compiled.dtype)
    rng = np.random.default_rng(seed)
    xt = torch.tensor(x, dtype=dtype, requires_grad=True)
    y = model(xt)
    cot = rng.normal(size=tuple(y.shape))
    params = torch_params(model, compiled)
    ref = torch.autograd.grad((y * torch.tensor(cot, dtype=dtype)).sum(), [xt, *params])
    ref_dx, ref_dp = ref[0].double().numpy(), np.concatenate([g.double().numpy().ravel() for g in ref[1:]])
    _, d_params, d_x = compiled.vjp(x, cot)
    _, _, d_x_only = compiled.vjp(x, cot, inputs_only=True)
    errors = {
        "forward": max_rel_err(compiled.forward(x), y.detach().double().numpy()),
        "d_x": max_rel_err(d_x, ref_dx),
        "d_params": max_rel_err(d_params, ref_dp),
        "d_x_inputs_only": max_rel_err(d_x_only, ref_dx),
    }
    if y.ndim == 2 and y.shape[1] > 1:  # a classifier: the fine-tuning loss too
        labels = rng.integers(0, y.shape[1], size=y.shape[0])
        out = model(torch.tensor(x, dtype=dtype))
        if compiled.model.output_is_probability:
            loss = nn.functional.nll_loss(torch.log(out), torch.tensor(labels))
        else:
            loss = nn.functional.cross_entropy(out, torch.tensor(labels))
        ref_ce = torch.autograd.grad(loss, params)
        value, d_params_ce, _ = compiled.cross_entropy_grad(x, labels)
        errors["cross_entropy"] = float(abs(value - loss.item()) / abs(loss.item()))
        errors["d_params_cross_entropy"] = max_rel_err(
            d_params_ce, np.concatenate([g.double().numpy().ravel() for g in ref_ce])
        )
    return errors


def fine_tune(
    compiled: CompiledModel, x: np.ndarray, labels: np.ndarray, epochs: int, batch: int, lr: float, seed: int = 0
) -> list[float]:
    """SGD on the mean cross-entropy with the Clad gradients of the emitted model; updates
    compiled.params in place. Returns the loss over all of x before fine-tuning, then after each epoch."""
    rng = np.random.default_rng(seed)
    losses = [compiled.cross_entropy(x, labels)]
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for start in range(0, len(x) - batch + 1, batch):
            rows = order[start : start + batch]
            loss, d_params, _ = compiled.cross_entropy_grad(x[rows], labels[rows])
            if not np.isfinite(loss):
                raise FloatingPointError(f"non-finite loss {loss} while fine-tuning")
            compiled.params -= compiled.dtype.type(lr) * d_params
        losses.append(compiled.cross_entropy(x, labels))
    return losses


def train_torch_classifier(
    model: nn.Module, x: np.ndarray, labels: np.ndarray, epochs: int, batch: int, lr: float, seed: int = 0
) -> list[float]:
    """The model as a PyTorch user trains it (SGD, cross-entropy on logits); mean loss per epoch."""
    torch.manual_seed(seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    xt, yt = torch.tensor(x, dtype=torch.float32), torch.tensor(labels, dtype=torch.long)
    losses = []
    for _ in range(epochs):
        order = torch.randperm(len(xt))
        total = 0.0
        for start in range(0, len(xt) - batch + 1, batch):
            rows = order[start : start + batch]
            loss = nn.functional.cross_entropy(model(xt[rows]), yt[rows])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(rows)
        losses.append(total / (len(xt) // batch * batch))
    return losses
