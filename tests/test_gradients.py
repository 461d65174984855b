"""Every kernel engine's gradients, for the MNIST MLP and the GW CNN, against LibTorch autograd
(float64, max rel err < 1e-10) and central finite differences; forward agreement across engines,
float32 agreement, and the registered torch op through autograd.gradcheck."""

from __future__ import annotations

import pytest
import torch
from conftest import engine_param
from torch import nn

from cladbench.core import core
from cladbench.engines.models import torch_nn_model

SHAPES = [
    ("mlp", [37, 19, 7]),
    ("mlp", [784, 128, 10]),
    ("mlp", [20, 16, 12, 8, 5]),  # odd, MNIST's, 3 hidden
    ("cnn", [2, 61, 3, 5, 2, 4, 3, 3, 6, 2]),  # two conv blocks, odd lengths, two detectors
    ("cnn", [2, 256, 8, 16, 4, 16, 8, 4, 32, 2]),
]  # the GW CNN's shape on 1/8 s of strain
SMALL = [SHAPES[0], SHAPES[2], SHAPES[3]]
BATCHES = [1, 5, 64]


def shape_id(shape):
    return shape[0] + "-" + "-".join(map(str, shape[1]))


ENGINES = [engine_param("clad"), engine_param("manual")]
LAYOUTS = ["rowmajor", "colmajor"]


def problem(shape, batch, layout, dtype=torch.float64, seed=0):
    model, dims = shape
    torch.manual_seed(seed)
    params = core.pack_params(core.init_params(model, dims, seed + 1), layout).to(dtype)
    x = torch.randn(batch, dims[0] * dims[1] if model == "cnn" else dims[0], dtype=dtype)
    labels = torch.randint(dims[-1], (batch,), dtype=torch.int32)
    return params, x, labels


def autograd_reference(params, x, labels, shape, layout):
    p = params.clone().requires_grad_()
    xr = x.clone().requires_grad_()
    loss = core.reference_loss(shape[0], p, xr, labels, shape[1], layout)
    loss.backward()
    return loss.detach(), p.grad, xr.grad


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("shape", SHAPES, ids=shape_id)
@pytest.mark.parametrize("batch", BATCHES)
def test_double_gradients_match_autograd(engine, layout, shape, batch):
    params, x, labels = problem(shape, batch, layout)
    loss, d_params, d_x = core.pullback(shape[0], engine, layout, params, x, labels, shape[1])
    ref_loss, ref_params, ref_x = autograd_reference(params, x, labels, shape, layout)
    assert abs(loss.item() - ref_loss.item()) <= 1e-12 * abs(ref_loss.item())
    assert core.max_rel_err(d_params, ref_params) < 1e-10
    assert core.max_rel_err(d_x, ref_x) < 1e-10


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("shape", SMALL, ids=shape_id)
def test_gradients_match_central_differences(engine, layout, shape):
    params, x, labels = problem(shape, 5, layout, seed=3)
    _, d_params, d_x = core.pullback(shape[0], engine, layout, params, x, labels, shape[1])

    def loss(p, xx):
        return core.forward(shape[0], engine, layout, p, xx, labels, shape[1]).item()

    h = 1e-6
    gen = torch.Generator().manual_seed(5)
    for _ in range(3):  # directional derivatives along random directions
        dp = torch.randn(params.shape, generator=gen, dtype=torch.float64)
        dx = torch.randn(x.shape, generator=gen, dtype=torch.float64)
        fd = (loss(params + h * dp, x + h * dx) - loss(params - h * dp, x - h * dx)) / (2 * h)
        analytic = (d_params @ dp + (d_x * dx).sum()).item()
        assert fd == pytest.approx(analytic, rel=1e-6, abs=1e-9)
    # and single coordinates of the first and last layers
    for i in [0, params.numel() // 3, params.numel() - 1]:
        e = torch.zeros_like(params)
        e[i] = 1
        fd = (loss(params + h * e, x) - loss(params - h * e, x)) / (2 * h)
        assert fd == pytest.approx(d_params[i].item(), rel=1e-5, abs=1e-9)


@pytest.mark.parametrize("shape", SHAPES, ids=shape_id)
def test_forward_agrees_across_engines(shape):
    model, dims = shape
    params, x, labels = problem(shape, 64, "rowmajor")
    layers = core.init_params(model, dims, 1)
    with torch.no_grad():
        pytorch_loss = nn.CrossEntropyLoss()(
            torch_nn_model(model, dims, [layer.double() for layer in layers])(x), labels.long()
        ).item()
    losses = {
        "pytorch": pytorch_loss,
        "libtorch": core.reference_loss(model, params, x, labels, dims, "rowmajor").item(),
    }
    for entry in core.engines():
        if entry["model"] != model:
            continue
        p = core.pack_params(layers, entry["layout"]).double()
        losses[f"{entry['engine']}-{entry['layout']}"] = core.forward(
            model, entry["engine"], entry["layout"], p, x, labels, dims
        ).item()
    reference = losses["libtorch"]
    assert len(losses) >= 6  # pytorch, libtorch, autograd x2, manual x2 (+ clad x2)
    assert all(abs(v - reference) <= 1e-12 * abs(reference) for v in losses.values()), losses


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("shape", SHAPES, ids=shape_id)
def test_float_gradients_within_1e4(engine, layout, shape):
    params, x, labels = problem(shape, 64, layout, dtype=torch.float32)
    _, d_params, d_x = core.pullback(shape[0], engine, layout, params, x, labels, shape[1])
    _, ref_params, ref_x = autograd_reference(params.double(), x.double(), labels, shape, layout)
    assert d_params.dtype == torch.float32
    assert core.max_rel_err(d_params, ref_params) < 1e-4
    assert core.max_rel_err(d_x, ref_x) < 1e-4


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("shape", [("mlp", [9, 7, 5, 3]), ("cnn", [2, 20, 3, 4, 2, 5, 2])], ids=shape_id)
def test_torch_op_gradcheck(engine, layout, shape):
    params, x, labels = problem(shape, 4, layout)
    params.requires_grad_()
    x.requires_grad_()

    def op(p, xx):
        return torch.ops.cladbench.loss(p, xx, labels, shape[0], shape[1], engine, layout)

    assert torch.autograd.gradcheck(op, (params, x), eps=1e-6, atol=1e-8, rtol=1e-6)
    loss = op(params, x)
    loss.backward()
    _, ref_params, ref_x = autograd_reference(params.detach(), x.detach(), labels, shape, layout)
    assert core.max_rel_err(params.grad, ref_params) < 1e-10
    assert core.max_rel_err(x.grad, ref_x) < 1e-10


def test_torch_op_names_a_missing_engine():
    params, x, labels = problem(("mlp", [4, 3]), 2, "rowmajor")
    with pytest.raises(ValueError, match="mlp engine .nonesuch. with rowmajor weights on cpu is not built"):
        torch.ops.cladbench.loss(params, x, labels, "mlp", [4, 3], "nonesuch", "rowmajor")
