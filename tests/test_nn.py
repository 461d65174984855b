"""cladbench.nn.MLP and CNN (torch.nn modules over the composable op) and their C++ counterparts
(cpp/torch/nn.hpp): gradients against the same model in torch.nn, torch.optim.Adam against the same
loop in torch.nn, state_dict, .to(float64), train/eval, torch.compile, the fused loss(), clear
errors, and the C++ example's training loop."""

from __future__ import annotations

import io
import re
import subprocess
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from conftest import CLAD_BUILT, engine_param

import cladbench.nn
from cladbench.core import core
from cladbench.engines.models import torch_nn_model
from cladbench.paths import build_dir

CLAD = [engine_param("clad")]
LAYOUTS = ["rowmajor", "colmajor"]
# (constructor, model, dims) per case: a three-layer MLP and a two-block CNN with odd lengths.
CASES = {
    "mlp": (lambda **kw: cladbench.nn.MLP([11, 8, 6, 4], **kw), "mlp", [11, 8, 6, 4]),
    "cnn": (
        lambda **kw: cladbench.nn.CNN(2, 37, conv="3k4p2,4k3p2", hidden=6, classes=3, **kw),
        "cnn",
        [2, 37, 3, 4, 2, 4, 3, 2, 6, 3],
    ),
}


def batch_of(module, n, dtype=torch.float32, seed=0):
    gen = torch.Generator().manual_seed(seed)
    features = module.dims[0] * module.dims[1] if module.model == "cnn" else module.dims[0]
    x = torch.randn(n, features, generator=gen).to(dtype)
    return x, torch.randint(module.dims[-1], (n,), generator=gen)


def reference_of(model, dims, seed=1, dtype=torch.float32):
    """The same model in torch.nn, from the same initial parameters."""
    return torch_nn_model(model, dims, [layer.to(dtype) for layer in core.init_params(model, dims, seed)])


def packed_grads(reference, layout):
    """The torch.nn model's gradients as the kernel contract's flat vector."""
    grads = [p.grad.reshape(p.shape[0], -1) if p.dim() == 3 else p.grad for p in reference.parameters()]
    return core.pack_params(grads, layout)


def packed_params(reference, layout):
    return core.pack_params([p.detach().reshape(p.shape[0], -1) for p in reference.parameters()], layout)


@pytest.mark.parametrize("engine", CLAD)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("case", CASES)
def test_gradients_match_torch_nn_in_double(engine, layout, case):
    make, model, dims = CASES[case]
    module = make(engine=engine, layout=layout).to(torch.float64)
    assert module.params.dtype == torch.float64 and module.dims == dims
    reference = reference_of(model, dims, dtype=torch.float64)
    x, y = batch_of(module, 7, torch.float64)
    x_mod, x_ref = x.clone().requires_grad_(), x.clone().requires_grad_()
    logits = module(x_mod)
    assert logits.dtype == torch.float64 and logits.shape == (7, dims[-1])
    F.cross_entropy(logits, y).backward()
    F.cross_entropy(reference(x_ref), y).backward()
    assert core.max_rel_err(module.params.grad, packed_grads(reference, layout)) < 1e-10
    assert core.max_rel_err(x_mod.grad, x_ref.grad) < 1e-10


@pytest.mark.parametrize("engine", CLAD)
@pytest.mark.parametrize("case", CASES)
def test_adam_matches_the_same_loop_on_torch_nn(engine, case):
    """Five steps of torch.optim.Adam on cross-entropy + an L2 term over layers(): the module's
    parameters against the torch.nn model's, float, within 1e-5."""
    make, model, dims = CASES[case]
    module = make(engine=engine, layout="colmajor")
    reference = reference_of(model, dims)
    for name, net in (("module", module), ("torch", reference)):
        optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
        for step in range(5):
            x, y = batch_of(module, 16, seed=step)
            weights = module.layers()[::2] if name == "module" else [p for p in net.parameters() if p.dim() > 1]
            loss = F.cross_entropy(net(x), y) + 1e-3 * sum(w.square().sum() for w in weights)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    assert core.max_rel_err(module.params.detach(), packed_params(reference, "colmajor")) < 1e-5
    assert not torch.equal(module.params.detach(), core.pack_params(core.init_params(model, dims, 1), "colmajor"))


@pytest.mark.parametrize("engine", CLAD)
@pytest.mark.parametrize("case", CASES)
def test_one_parameter_and_layers_as_views(engine, case):
    make, model, dims = CASES[case]
    module = make(engine=engine, layout="colmajor", seed=5)
    assert [name for name, _ in module.named_parameters()] == ["params"]
    init = core.init_params(model, dims, 5)
    layers = module.layers()
    assert len(layers) == len(init)
    for view, expected in zip(layers, init, strict=True):
        assert view.shape == expected.shape and torch.equal(view, expected)
        assert view.untyped_storage().data_ptr() == module.params.untyped_storage().data_ptr()
    layers[0].sum().backward()  # gradients of a view land in params
    assert module.params.grad[: layers[0].numel()].eq(1).all()
    assert module.params.grad[layers[0].numel() :].eq(0).all()


@pytest.mark.parametrize("engine", CLAD)
def test_state_dict_round_trip_train_and_eval(engine):
    module = cladbench.nn.MLP([9, 7, 3], engine=engine)
    x, y = batch_of(module, 5)
    optimizer = torch.optim.SGD(module.parameters(), lr=0.1)
    F.cross_entropy(module(x), y).backward()
    optimizer.step()
    buffer = io.BytesIO()
    torch.save(module.state_dict(), buffer)
    buffer.seek(0)
    fresh = cladbench.nn.MLP([9, 7, 3], engine=engine, seed=2)
    assert not torch.equal(fresh.params, module.params)
    fresh.load_state_dict(torch.load(buffer, weights_only=True))
    assert torch.equal(fresh.params, module.params) and torch.equal(fresh(x), module(x))
    # train() and eval() change nothing
    module.eval()
    in_eval = module(x)
    module.train()
    assert torch.equal(in_eval, module(x))
    # Another layout's (or model's) state is refused, not misread.
    with pytest.raises(ValueError, match="is of mlp-9-7-3 with rowmajor weights, this module mlp-9-7-3 with colmajor"):
        cladbench.nn.MLP([9, 7, 3], engine=engine, layout="colmajor").load_state_dict(module.state_dict())
    with pytest.raises(ValueError, match="is of mlp-9-7-3 with rowmajor weights, this module mlp-9-8-3 with rowmajor"):
        cladbench.nn.MLP([9, 8, 3], engine=engine).load_state_dict(module.state_dict())


@pytest.mark.parametrize("engine", CLAD)
def test_to_float64_runs_the_double_kernels(engine):
    module = cladbench.nn.CNN(1, 30, conv="2k3p2", hidden=4, classes=2, engine=engine)
    optimizer = torch.optim.SGD(module.parameters(), lr=0.1)  # made before .to: the same Parameter
    before = module.params.detach().clone()
    assert module.to(torch.float64) is module and module.params.dtype == torch.float64
    x, y = batch_of(module, 4, torch.float64)
    logits = module(x)
    reference = core.reference_logits("cnn", module.params.detach(), x, module.dims, "rowmajor")
    assert logits.dtype == torch.float64 and core.max_rel_err(logits.detach(), reference) < 1e-12
    assert torch.equal(module(x.view(4, 1, 30)), logits)  # [batch, channels, length] too
    F.cross_entropy(logits, y).backward()
    assert module.params.grad.dtype == torch.float64
    optimizer.step()
    assert not torch.equal(module.params.detach().float(), before)


@pytest.mark.parametrize("engine", CLAD)
def test_torch_compile_of_the_module_gives_eager_gradients(engine):
    torch._dynamo.reset()
    eager = cladbench.nn.MLP([20, 16, 12, 5], engine=engine)
    compiled_module = cladbench.nn.MLP([20, 16, 12, 5], engine=engine)
    compiled = torch.compile(compiled_module, fullgraph=True)
    for batch in (8, 13):
        x, y = batch_of(eager, batch, seed=batch)
        grads = []
        for net, module in ((eager, eager), (compiled, compiled_module)):
            module.params.grad = None
            loss = F.cross_entropy(net(x), y) + 1e-3 * sum(w.square().sum() for w in module.layers()[::2])
            loss.backward()
            grads.append(module.params.grad)
        assert core.max_rel_err(grads[1], grads[0]) < 1e-6


@pytest.mark.parametrize("engine", CLAD)
@pytest.mark.parametrize("case", CASES)
def test_fused_loss_equals_cross_entropy_of_forward(engine, case):
    make, _, _ = CASES[case]
    fused, composed = make(engine=engine), make(engine=engine)
    x, y = batch_of(fused, 9)  # labels int64: loss() converts them
    loss_fused = fused.loss(x, y)
    loss_composed = F.cross_entropy(composed(x), y)
    assert abs(loss_fused.item() - loss_composed.item()) <= 1e-6 * abs(loss_composed.item())
    loss_fused.backward()
    loss_composed.backward()
    assert core.max_rel_err(fused.params.grad, composed.params.grad) < 1e-5


def test_bad_inputs_give_clear_errors():
    engine = "clad" if CLAD_BUILT else "manual"
    module = cladbench.nn.MLP([9, 7, 3], engine=engine)
    x, y = batch_of(module, 4)
    with pytest.raises(RuntimeError, match=r"x must be \[batch, 9\] with batch >= 1 for mlp-9-7-3, got \[4, 8\]"):
        module(x[:, :8])
    with pytest.raises(RuntimeError, match=r"x must be \[batch, 9\]"):
        module(x.view(4, 9, 1))
    with pytest.raises(TypeError, match=r"MLP mlp-9-7-3 has torch.float32 parameters but x is torch.float64: convert"):
        module(x.double())
    with pytest.raises(TypeError, match="MLP takes a tensor, not list"):
        module([[0.0] * 9])
    with pytest.raises(RuntimeError, match=r"labels must lie in \[0, 3\), got 3"):
        module.loss(x, torch.full((4,), 3))
    with pytest.raises(RuntimeError, match=r"labels must be \[batch\]"):
        module.loss(x, y[:3])
    with pytest.raises(ValueError, match="unknown layout 'diagonal'"):
        cladbench.nn.MLP([9, 3], engine=engine, layout="diagonal")
    with pytest.raises(ValueError, match="the mlp engine 'nonesuch' with rowmajor weights is not built here; built:"):
        cladbench.nn.MLP([9, 3], engine="nonesuch")
    with pytest.raises(ValueError, match="at least two"):
        cladbench.nn.MLP([9], engine=engine)
    with pytest.raises(ValueError, match="must be positive"):
        cladbench.nn.MLP([9, 0, 3], engine=engine)
    with pytest.raises(ValueError, match="conv block 0 of .* leaves no output step of a window of 10"):
        cladbench.nn.CNN(1, 10, conv="4k8p4", engine=engine)
    with pytest.raises(ValueError, match="is not <c_out>k<kernel>p<pool>"):
        cladbench.nn.CNN(1, 10, conv="4k3", engine=engine)


def test_cpp_modules_match_autograd():
    """cpp/tests/test_nn.cpp: the C++ modules' gradients against autograd of reference_logits
    (double, 1e-10), every engine linked in; save/load, layers(), errors."""
    done = subprocess.run([build_dir() / "tests" / "test_nn"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "all passed" in done.stdout
    if CLAD_BUILT:
        assert "MLP clad colmajor: d_params" in done.stdout and "CNN clad rowmajor: d_params" in done.stdout


def test_cpp_example_trains():
    """examples/libtorch_mlp.cpp: cladbench::nn::MLP with torch::optim::SGD; its loss falls."""
    engine = "clad" if CLAD_BUILT else "manual"
    done = subprocess.run(
        [build_dir() / "cladbench_example_libtorch", "--steps", "40", "--engine", engine],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"cladbench::nn::MLP(mlp-64-32-10, engine={engine}, layout=rowmajor)" in done.stdout
    losses = [float(v) for v in re.findall(r"^step \d+ loss (\S+)$", done.stdout, re.M)]
    assert len(losses) == 40
    assert sum(losses[-5:]) / 5 < 0.5 * sum(losses[:5]) / 5


@pytest.mark.parametrize("engine", CLAD)
def test_the_readme_example_trains(engine):
    """README, "Clad gradients in your own PyTorch or LibTorch code": its Python example, as written,
    lowers the loss on batches of a learnable problem."""
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    section = readme.split("## Clad gradients in your own PyTorch or LibTorch code")[1]
    code = section.split("```python\n")[1].split("```")[0]
    gen = torch.Generator().manual_seed(0)
    prototypes = torch.randn(10, 784, generator=gen)
    labels = [torch.randint(10, (32,), generator=gen) for _ in range(30)]
    batches = [(prototypes[y] + torch.randn(32, 784, generator=gen), y) for y in labels]
    scope = {"batches": batches}
    exec(code, scope)
    model = scope["model"]
    first, last = (F.cross_entropy(model(x), y).item() for x, y in (batches[0], batches[-1]))
    assert model.engine == engine and scope["loss"].requires_grad
    assert last < 0.5 * F.cross_entropy(cladbench.nn.MLP([784, 128, 10])(batches[-1][0]), batches[-1][1]).item()
    assert first < F.cross_entropy(cladbench.nn.MLP([784, 128, 10])(batches[0][0]), batches[0][1]).item()
