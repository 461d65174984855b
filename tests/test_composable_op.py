"""The composable op torch.ops.cladbench.forward (logits; backward the kernels' vector-Jacobian
product over the saved workspace) and the fused torch.ops.cladbench.loss as torch ops: gradcheck
of both w.r.t. params and x, torch.library.opcheck (fake kernels, torch.compile's tracing),
torch.compile against eager, agreement with the reference logits and the fused gradient, clear
errors, and a training loop with a torch loss of its own against the same loop in plain torch."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from conftest import CLAD_BUILT, clad_skip_reason, engine_param

from cladbench.core import core
from cladbench.engines.models import torch_nn_model

ENGINES = [engine_param("clad"), engine_param("manual"), engine_param("autograd")]
LAYOUTS = ["rowmajor", "colmajor"]
SHAPES = [
    ("mlp", [9, 7, 5, 3]),
    ("mlp", [6, 4]),  # one layer
    ("mlp", [11, 8, 6, 5, 4]),
    ("cnn", [2, 20, 3, 4, 2, 5, 2]),
    ("cnn", [1, 31, 2, 3, 2, 3, 2, 2, 4, 3]),  # two blocks, odd lengths
]
needs_clad = pytest.mark.skipif(not CLAD_BUILT, reason=clad_skip_reason())


def shape_id(shape):
    return shape[0] + "-" + "-".join(map(str, shape[1]))


def features(model, dims):
    return dims[0] * dims[1] if model == "cnn" else dims[0]


def problem(shape, batch, layout, dtype=torch.float64, seed=0):
    model, dims = shape
    gen = torch.Generator().manual_seed(seed)
    params = core.pack_params(core.init_params(model, dims, seed + 1), layout).to(dtype)
    x = torch.randn(batch, features(model, dims), dtype=dtype, generator=gen)
    labels = torch.randint(dims[-1], (batch,), dtype=torch.int32, generator=gen)
    return params, x, labels


def forward(shape, engine, layout):
    return lambda p, x: torch.ops.cladbench.forward(p, x, shape[0], shape[1], engine, layout)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("shape", SHAPES, ids=shape_id)
@pytest.mark.parametrize("batch", [1, 3])
def test_forward_gradcheck(engine, layout, shape, batch):
    params, x, _ = problem(shape, batch, layout)
    inputs = (params.requires_grad_(), x.requires_grad_())
    assert torch.autograd.gradcheck(forward(shape, engine, layout), inputs, eps=1e-6, atol=1e-8, rtol=1e-6)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("shape", SHAPES, ids=shape_id)
def test_loss_gradcheck(engine, layout, shape):
    params, x, labels = problem(shape, 3, layout)

    def loss(p, xx):
        return torch.ops.cladbench.loss(p, xx, labels, shape[0], shape[1], engine, layout)

    assert torch.autograd.gradcheck(loss, (params.requires_grad_(), x.requires_grad_()), eps=1e-6, atol=1e-8)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("shape", SHAPES, ids=shape_id)
@pytest.mark.parametrize("input_grad", [False, True], ids=["params", "params-x"])
def test_opcheck(engine, layout, shape, input_grad):
    params, x, labels = problem(shape, 4, layout)
    params.requires_grad_()
    x.requires_grad_(input_grad)
    model, dims = shape
    for op, args in [
        (torch.ops.cladbench.forward.default, (params, x, model, dims, engine, layout)),
        (torch.ops.cladbench.loss.default, (params, x, labels, model, dims, engine, layout)),
    ]:
        results = torch.library.opcheck(op, args)
        assert set(results) == {
            "test_schema",
            "test_autograd_registration",
            "test_faketensor",
            "test_aot_dispatch_dynamic",
        }
        assert all(r == "SUCCESS" for r in results.values()), results


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("shape", SHAPES, ids=shape_id)
def test_logits_and_gradient_match_reference_and_fused_op(engine, layout, shape):
    model, dims = shape
    params, x, labels = problem(shape, 7, layout)
    p, xx = params.clone().requires_grad_(), x.clone().requires_grad_()
    logits = torch.ops.cladbench.forward(p, xx, model, dims, engine, layout)
    reference = core.reference_logits(model, params, x, dims, layout)
    assert logits.shape == (7, dims[-1]) and logits.dtype == torch.float64
    assert core.max_rel_err(logits.detach(), reference) < 1e-12
    F.cross_entropy(logits, labels.long()).backward()
    fused_p, fused_x = params.clone().requires_grad_(), x.clone().requires_grad_()
    torch.ops.cladbench.loss(fused_p, fused_x, labels, model, dims, engine, layout).backward()
    assert core.max_rel_err(p.grad, fused_p.grad) < 1e-10
    assert core.max_rel_err(xx.grad, fused_x.grad) < 1e-10


@pytest.mark.parametrize("engine", [engine_param("clad"), engine_param("manual")])
@pytest.mark.parametrize("shape", [SHAPES[0], SHAPES[4]], ids=shape_id)
def test_float_vjp_and_no_input_gradient(engine, shape):
    """float32, an arbitrary seed (not a loss's), and x not requiring grad: params' gradient only."""
    model, dims = shape
    params, x, _ = problem(shape, 5, "rowmajor", dtype=torch.float32)
    seed = torch.randn(5, dims[-1])
    p = params.clone().requires_grad_()
    (torch.ops.cladbench.forward(p, x, model, dims, engine, "rowmajor") * seed).sum().backward()
    ref = params.double().requires_grad_()
    (core.reference_logits(model, ref, x.double(), dims, "rowmajor") * seed.double()).sum().backward()
    assert p.grad.dtype == torch.float32 and x.grad is None
    assert core.max_rel_err(p.grad, ref.grad) < 1e-5


def test_forward_ws_and_vjp_leave_their_inputs_alone():
    """The backward reads the saved workspace and writes nothing of it (the CNN works in its adjoint)."""
    shape = SHAPES[4]
    model, dims = shape
    params, x, _ = problem(shape, 3, "rowmajor")
    engine = "clad" if CLAD_BUILT else "manual"
    logits, ws = torch.ops.cladbench.forward_ws(params, x, model, dims, engine, "rowmajor")
    assert ws.numel() == core.workspace_size(model, dims, 3)
    saved = ws.clone()
    grad = torch.randn_like(logits)
    d_params, d_x = torch.ops.cladbench.forward_vjp(params, x, ws, grad, model, dims, engine, "rowmajor", True)
    assert torch.equal(ws, saved)
    assert d_params.shape == params.shape and d_x.shape == x.shape
    _, no_x = torch.ops.cladbench.forward_vjp(params, x, ws, grad, model, dims, engine, "rowmajor", False)
    assert no_x.numel() == 0


def test_clear_errors():
    model, dims = "mlp", [9, 7, 3]
    params, x, _ = problem((model, dims), 4, "rowmajor")
    op = torch.ops.cladbench.forward
    with pytest.raises(RuntimeError, match="expected 94 parameters for mlp-9-7-3"):
        op(params[:-1], x, model, dims, "manual", "rowmajor")
    with pytest.raises(RuntimeError, match=r"x must be \[batch, 9\]"):
        op(params, x[:, :8], model, dims, "manual", "rowmajor")
    with pytest.raises(RuntimeError, match="x and params must share a dtype"):
        op(params, x.float(), model, dims, "manual", "rowmajor")
    with pytest.raises(RuntimeError, match="params must be float32 or float64"):
        op(params.half(), x.half(), model, dims, "manual", "rowmajor")
    with pytest.raises(RuntimeError, match="dims must be positive"):
        op(params, x, model, [9, 0, 3], "manual", "rowmajor")
    with pytest.raises(RuntimeError, match="conv block 1 of dims .* leaves no output step"):
        op(params, x, "cnn", [1, 9, 2, 3, 2, 4, 3, 2, 3, 2], "manual", "rowmajor")
    with pytest.raises(ValueError, match="model must be mlp, cnn or a model loaded with cladbench.compile_model"):
        op(params, x, "rnn", dims, "manual", "rowmajor")
    with pytest.raises(ValueError, match="mlp engine .nonesuch. with rowmajor weights on cpu is not built"):
        op(params, x, model, dims, "nonesuch", "rowmajor")
    with pytest.raises(ValueError, match="unknown layout"):
        op(params, x, model, dims, "manual", "diagonal")
    logits, ws = torch.ops.cladbench.forward_ws(params, x, model, dims, "manual", "rowmajor")
    vjp = torch.ops.cladbench.forward_vjp
    with pytest.raises(RuntimeError, match=r"grad_logits must be \[4, 3\]"):
        vjp(params, x, ws, logits[:, :2], model, dims, "manual", "rowmajor", False)
    with pytest.raises(RuntimeError, match=rf"ws must be the \[{core.workspace_size(model, dims, 4)}\] workspace"):
        vjp(params, x, ws[:-1], logits, model, dims, "manual", "rowmajor", False)


class KernelMLP(torch.nn.Module):
    """A module whose forward is the composable op (a test's stand-in for a user's module)."""

    def __init__(self, dims, engine="clad", layout="rowmajor"):
        super().__init__()
        self.dims, self.engine, self.layout = dims, engine, layout
        self.params = torch.nn.Parameter(core.pack_params(core.init_params("mlp", dims, 1), layout))

    def forward(self, x):
        return torch.ops.cladbench.forward(self.params, x, "mlp", self.dims, self.engine, self.layout)


@needs_clad
@pytest.mark.parametrize("layout", LAYOUTS)
def test_torch_compile_gives_eager_gradients(layout):
    torch._dynamo.reset()
    dims = [20, 16, 12, 5]
    eager, compiled_model = KernelMLP(dims, layout=layout), KernelMLP(dims, layout=layout)

    def loss(model, x, y):
        return F.cross_entropy(torch.tanh(model(x)), y) + 1e-3 * model.params.square().sum()

    compiled = torch.compile(loss, fullgraph=True)
    gen = torch.Generator().manual_seed(0)
    for batch in (8, 13, 21):  # the second and third run the graph compiled for a dynamic batch
        x = torch.randn(batch, dims[0], generator=gen)
        y = torch.randint(dims[-1], (batch,), generator=gen)
        for m in (eager, compiled_model):
            m.params.grad = None
        expected = loss(eager, x, y)
        expected.backward()
        got = compiled(compiled_model, x, y)
        got.backward()
        assert abs(got.item() - expected.item()) <= 1e-6 * abs(expected.item())
        assert core.max_rel_err(compiled_model.params.grad, eager.params.grad) < 1e-6


@needs_clad
def test_torch_compile_of_the_cnn_and_of_the_input_gradient():
    torch._dynamo.reset()
    model, dims = SHAPES[3]
    params, x, labels = problem(SHAPES[3], 6, "rowmajor", dtype=torch.float32)

    def loss(p, xx):
        return F.cross_entropy(torch.ops.cladbench.forward(p, xx, model, dims, "clad", "rowmajor"), labels.long())

    grads = {}
    for name, f in (("eager", loss), ("compiled", torch.compile(loss, fullgraph=True))):
        p, xx = params.clone().requires_grad_(), x.clone().requires_grad_()
        f(p, xx).backward()
        grads[name] = (p.grad, xx.grad)
    assert core.max_rel_err(grads["compiled"][0], grads["eager"][0]) < 1e-6
    assert core.max_rel_err(grads["compiled"][1], grads["eager"][1]) < 1e-6


@pytest.mark.parametrize("engine", [engine_param("clad"), engine_param("manual")])
def test_training_with_a_torch_loss_matches_plain_torch(engine, mnist):
    """Two epochs of SGD on cross-entropy + an L2 term: the composable op against the same model in
    torch.nn, same initial parameters, same batches; every step's loss within 1e-5 relative."""
    images, labels_file, _ = mnist
    x_all, y_all = core.load_mnist(str(images), str(labels_file))
    x_all, y_all = x_all[:2048], y_all[:2048].long()
    dims, batch, lr, l2, epochs = [784, 32, 10], 64, 0.05, 1e-4, 2
    layers = core.init_params("mlp", dims, 1)
    orders = core.epoch_orders(len(y_all), epochs, 1)

    kernel_params = torch.nn.Parameter(core.pack_params(layers, "rowmajor"))
    torch_model = torch_nn_model("mlp", dims, [layer.clone() for layer in layers])
    runs = {
        "composable": (
            [kernel_params],
            lambda x: torch.ops.cladbench.forward(kernel_params, x, "mlp", dims, engine, "rowmajor"),
        ),
        "torch": (list(torch_model.parameters()), torch_model),
    }
    losses = {}
    for name, (parameters, logits_of) in runs.items():
        optimizer = torch.optim.SGD(parameters, lr=lr)
        losses[name] = []
        for epoch in range(epochs):
            for step in range(len(y_all) // batch):
                index = orders[epoch, step * batch : (step + 1) * batch]
                optimizer.zero_grad()
                loss = F.cross_entropy(logits_of(x_all[index]), y_all[index])
                loss = loss + l2 * sum(p.square().sum() for p in parameters)
                loss.backward()
                optimizer.step()
                losses[name].append(loss.item())
    composable, plain = torch.tensor(losses["composable"]), torch.tensor(losses["torch"])
    assert len(composable) == 64
    assert ((composable - plain).abs() / plain.abs()).max() < 1e-5
    assert composable[-8:].mean() < composable[:8].mean()  # it learns


def test_op_bench_runs(tmp_path):
    """python -m cladbench.bench.op_bench: both paths timed, a ratio per cell (tiny settings, not a timing)."""
    from cladbench.bench import op_bench

    out = tmp_path / "cells.json"
    common = ["--batch", "4", "--engine", "manual", "--repetitions", "2", "--steps", "3", "--warmup", "1"]
    with pytest.raises(ValueError, match="expected mlp-<widths>"):
        op_bench.main(["--models", "cnn-x", *common])
    assert op_bench.main(["--models", "mlp-20-8-4", *common, "--out", str(out)]) == 0
    (cell,) = json.loads(out.read_text())
    assert cell["model"] == "mlp-20-8-4" and len(cell["fused_s"]) == len(cell["composable_s"]) == 2
    assert cell["ratio_median"] > 0


def test_op_bench_writes_the_report_table(tmp_path, capsys):
    """--out X.csv: the op_cost table the workflow's rule op_bench writes and the report reads, one row
    per model, batch and repetition with both paths' times; gw-cnn is the CNN of --conv/--cnn-hidden."""
    import pandas as pd

    from cladbench.bench import op_bench
    from cladbench.bench.timing import OP_COST_COLUMNS
    from cladbench.report.tables import TABLES, op_cost_table, read_table

    engine = "clad" if CLAD_BUILT else "manual"
    args = ["--models", "mlp-784-16-10,gw-cnn", "--batch", "4,8", "--repetitions", "1", "--steps", "3"]
    args += ["--warmup", "1", "--engine", engine, "--conv", "4k16p4", "--cnn-hidden", "8"]
    assert op_bench.main([*args, "--out", str(tmp_path / "tables" / "op_cost.csv")]) == 0
    assert "cell 4/4: gw-cnn batch 8" in capsys.readouterr().err  # the progress lines
    table = pd.read_csv(tmp_path / "tables" / "op_cost.csv")
    assert list(table.columns) == OP_COST_COLUMNS == TABLES["op_cost"][0]
    assert table[["model", "batch"]].values.tolist() == [
        ["mlp-784-16-10", 4],
        ["mlp-784-16-10", 8],
        ["gw-cnn", 4],
        ["gw-cnn", 8],
    ]
    assert (table.engine == engine).all() and (table.repetition == 0).all() and (table.steps == 3).all()
    assert (table.fused_s > 0).all() and (table.composable_s > 0).all()
    assert not list(tmp_path.glob("tables/*.partial"))  # written whole, then renamed
    cells = op_cost_table(read_table(tmp_path / "tables", "op_cost"))
    assert len(cells) == 4 and (cells.n == 1).all() and (cells.ratio_median > 0).all()
    assert not cells.ratio_noisy.any()  # one repetition: no spread to judge
    with pytest.raises(ValueError, match="conv"):
        op_bench.main([*args[:-4], "--conv", "4x16", "--out", str(tmp_path / "bad.csv")])
    assert not (tmp_path / "bad.csv").exists()
