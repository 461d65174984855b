"""Every kernel engine's gradients against LibTorch autograd (float64, max rel err < 1e-10) and
central finite differences, forward agreement across engines, float32 agreement, and the
registered torch op through autograd.gradcheck."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cladbench.core import core
from conftest import engine_param

SHAPES = [[37, 19, 7], [784, 128, 10], [20, 16, 12, 8, 5]]  # odd widths, MNIST's, three hidden layers
BATCHES = [1, 5, 64]
ENGINES = [engine_param("clad"), engine_param("manual")]
LAYOUTS = ["rowmajor", "colmajor"]


def problem(dims, batch, layout, dtype=torch.float64, seed=0):
    torch.manual_seed(seed)
    params = core.pack_params(core.init_mlp_params(dims, seed + 1), layout).to(dtype)
    x = torch.randn(batch, dims[0], dtype=dtype)
    labels = torch.randint(dims[-1], (batch,), dtype=torch.int32)
    return params, x, labels


def autograd_reference(params, x, labels, dims, layout):
    p = params.clone().requires_grad_()
    xr = x.clone().requires_grad_()
    loss = core.reference_mlp_loss(p, xr, labels, dims, layout)
    loss.backward()
    return loss.detach(), p.grad, xr.grad


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dims", SHAPES, ids=lambda d: "-".join(map(str, d)))
@pytest.mark.parametrize("batch", BATCHES)
def test_double_gradients_match_autograd(engine, layout, dims, batch):
    params, x, labels = problem(dims, batch, layout)
    loss, d_params, d_x = core.mlp_pullback(engine, layout, params, x, labels, dims)
    ref_loss, ref_params, ref_x = autograd_reference(params, x, labels, dims, layout)
    assert abs(loss.item() - ref_loss.item()) <= 1e-12 * abs(ref_loss.item())
    assert core.max_rel_err(d_params, ref_params) < 1e-10
    assert core.max_rel_err(d_x, ref_x) < 1e-10


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dims", [[37, 19, 7], [20, 16, 12, 8, 5]], ids=lambda d: "-".join(map(str, d)))
def test_gradients_match_central_differences(engine, layout, dims):
    params, x, labels = problem(dims, 5, layout, seed=3)
    _, d_params, d_x = core.mlp_pullback(engine, layout, params, x, labels, dims)

    def loss(p, xx):
        return core.mlp_forward(engine, layout, p, xx, labels, dims).item()

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


@pytest.mark.parametrize("dims", SHAPES, ids=lambda d: "-".join(map(str, d)))
def test_forward_agrees_across_engines(dims):
    params, x, labels = problem(dims, 64, "rowmajor")
    layers = core.init_mlp_params(dims, 1)
    # pytorch: plain torch.nn with the same parameters
    modules = []
    for i in range(len(dims) - 1):
        linear = nn.Linear(dims[i], dims[i + 1]).double()
        with torch.no_grad():
            linear.weight.copy_(layers[2 * i])
            linear.bias.copy_(layers[2 * i + 1])
        modules += [linear, nn.ReLU()]
    with torch.no_grad():
        pytorch_loss = nn.CrossEntropyLoss()(nn.Sequential(*modules[:-1])(x), labels.long()).item()
    losses = {"pytorch": pytorch_loss, "libtorch": core.reference_mlp_loss(params, x, labels, dims, "rowmajor").item()}
    for entry in core.engines():
        colmajor = core.pack_params(layers, "colmajor").double()
        p = params if entry["layout"] == "rowmajor" else colmajor
        losses[f"{entry['engine']}-{entry['layout']}"] = core.mlp_forward(entry["engine"], entry["layout"], p, x, labels, dims).item()
    reference = losses["libtorch"]
    assert all(abs(v - reference) <= 1e-12 * abs(reference) for v in losses.values()), losses


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dims", SHAPES, ids=lambda d: "-".join(map(str, d)))
def test_float_gradients_within_1e4(engine, layout, dims):
    params, x, labels = problem(dims, 64, layout, dtype=torch.float32)
    _, d_params, d_x = core.mlp_pullback(engine, layout, params, x, labels, dims)
    _, ref_params, ref_x = autograd_reference(params.double(), x.double(), labels, dims, layout)
    assert d_params.dtype == torch.float32
    assert core.max_rel_err(d_params, ref_params) < 1e-4
    assert core.max_rel_err(d_x, ref_x) < 1e-4


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_torch_op_gradcheck(engine, layout):
    dims = [9, 7, 5, 3]
    params, x, labels = problem(dims, 4, layout)
    params.requires_grad_()
    x.requires_grad_()

    def op(p, xx):
        return torch.ops.cladbench.mlp_loss(p, xx, labels, dims, engine, layout)

    assert torch.autograd.gradcheck(op, (params, x), eps=1e-6, atol=1e-8, rtol=1e-6)
    loss = op(params, x)
    loss.backward()
    _, ref_params, ref_x = autograd_reference(params.detach(), x.detach(), labels, dims, layout)
    assert core.max_rel_err(params.grad, ref_params) < 1e-10
    assert core.max_rel_err(x.grad, ref_x) < 1e-10


def test_torch_op_names_a_missing_engine():
    params, x, labels = problem([4, 3], 2, "rowmajor")
    with pytest.raises(ValueError, match="engine .nonesuch. with rowmajor weights is not built"):
        torch.ops.cladbench.mlp_loss(params, x, labels, [4, 3], "nonesuch", "rowmajor")
