"""Your own model (cpp/model/cladbench_model.hpp, cladbench.compile_model, cladbench_add_model):
the examples/resmlp model's gradients against the same model written in torch (double, 1e-10),
from Python and from C++; gradcheck, opcheck and torch.compile of its op; the fused loss; the
module; training from Python and C++; the cache; and each mistake's named error."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from conftest import CLAD_BUILT, clad_skip_reason

import cladbench
from cladbench.clad_compile import ModelCompileError
from cladbench.core import core
from cladbench.paths import REPO, build_dir

pytestmark = pytest.mark.skipif(not CLAD_BUILT, reason=clad_skip_reason())

EXAMPLE = REPO / "examples" / "resmlp" / "resmlp.cpp"
IN, HIDDEN, OUT = 784, 64, 10  # resmlp.cpp's sizes


def resmlp_in_torch(p: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """resmlp.cpp written in torch ops, from the same flat parameters (W [out, in] then b)."""
    sizes = [(HIDDEN, IN), (HIDDEN,), (HIDDEN, HIDDEN), (HIDDEN,), (OUT, HIDDEN), (OUT,)]
    W1, b1, W2, b2, W3, b3 = (t.view(s) for t, s in zip(p.split([torch.Size(s).numel() for s in sizes]), sizes))
    h1 = torch.tanh(F.linear(x, W1, b1))
    h2 = torch.tanh(F.linear(h1, W2, b2))
    return F.linear(h1 + h2, W3, b3)


@pytest.fixture(scope="module")
def resmlp():
    return cladbench.compile_model(EXAMPLE, quiet=True)


def model_source(
    tmp_path: Path,
    name: str,
    forward_body: str,
    signature: str = "const T* params, const T* x, int batch, T* ws",
    sizes: str = ".params = 20, .inputs = 4, .outputs = 5, .workspace = 5, .output_offset = 0",
    before: str = "",
) -> Path:
    """A small model file as a user writes one: W [5 x 4], y = W x, into ws."""
    path = tmp_path / f"{name}.cpp"
    path.write_text(
        f'#include "cladbench_model.hpp"\n{before}'
        f"namespace {name} {{\n"
        f"using namespace cladbench::layers;\n"
        f"constexpr cladbench::ModelSizes kSizes{{{sizes}}};\n"
        f"template <class T>\n"
        f"void forward({signature}) {{\n{forward_body}\n}}\n"
        f"}}  // namespace {name}\n"
        f"CLADBENCH_MODEL({name}, {name}::forward, {name}::kSizes)\n"
    )
    return path


def line_of(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


@pytest.mark.parametrize("batch", [1, 7, 64])
def test_gradients_equal_torch_autograd_in_double(resmlp, batch):
    """The VJP of the composable op, for params and x, against autograd of resmlp_in_torch."""
    gen = torch.Generator().manual_seed(batch)
    params = (torch.randn(resmlp.params, generator=gen, dtype=torch.float64) * 0.1).requires_grad_()
    x = torch.randn(batch, IN, generator=gen, dtype=torch.float64).requires_grad_()
    cotangent = torch.randn(batch, OUT, generator=gen, dtype=torch.float64)
    out = resmlp.forward(params, x)
    reference = resmlp_in_torch(params, x)
    assert core.max_rel_err(out.detach(), reference.detach()) < 1e-12
    d_params, d_x = torch.autograd.grad((out * cotangent).sum(), (params, x))
    ref_params, ref_x = torch.autograd.grad((reference * cotangent).sum(), (params, x))
    assert core.max_rel_err(d_params, ref_params) < 1e-10
    assert core.max_rel_err(d_x, ref_x) < 1e-10


def test_gradcheck_of_the_op(resmlp):
    gen = torch.Generator().manual_seed(0)
    params = (torch.randn(resmlp.params, generator=gen, dtype=torch.float64) * 0.1).requires_grad_()
    x = torch.randn(3, IN, generator=gen, dtype=torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(resmlp.forward, (params, x), fast_mode=True)


def test_fused_loss_equals_cross_entropy_of_forward(resmlp):
    """The fused op (loss and gradient in one pass of Clad's pullback) against the composable one."""
    gen = torch.Generator().manual_seed(1)
    params = (torch.randn(resmlp.params, generator=gen, dtype=torch.float64) * 0.1).requires_grad_()
    x = torch.randn(9, IN, generator=gen, dtype=torch.float64)
    labels = torch.randint(OUT, (9,), generator=gen)
    fused = resmlp.loss(params, x, labels)
    (d_fused,) = torch.autograd.grad(fused, params)
    composed = F.cross_entropy(resmlp_in_torch(params, x), labels)
    (d_composed,) = torch.autograd.grad(composed, params)
    assert abs(fused.item() - composed.item()) < 1e-12
    assert core.max_rel_err(d_fused, d_composed) < 1e-10


def test_opcheck_and_torch_compile(resmlp):
    gen = torch.Generator().manual_seed(2)
    params = (torch.randn(resmlp.params, generator=gen) * 0.1).requires_grad_()
    x = torch.randn(5, IN, generator=gen)
    torch.library.opcheck(torch.ops.cladbench.forward.default, (params, x, resmlp.name, [], "clad", "rowmajor"))
    labels = torch.randint(OUT, (5,), generator=gen, dtype=torch.int32)
    torch.library.opcheck(torch.ops.cladbench.loss.default, (params, x, labels, resmlp.name, [], "clad", "rowmajor"))

    module = resmlp.module(params.detach())
    eager_loss = F.cross_entropy(module(x), labels.long())
    (eager,) = torch.autograd.grad(eager_loss, module.params)
    compiled = torch.compile(module)
    (traced,) = torch.autograd.grad(F.cross_entropy(compiled(x), labels.long()), module.params)
    assert core.max_rel_err(traced, eager) < 1e-6


def test_module_state_dict_and_float64(resmlp, tmp_path):
    module = resmlp.module(seed=3)
    assert isinstance(module, cladbench.nn.Model) and module.params.numel() == resmlp.params
    torch.save(module.state_dict(), tmp_path / "resmlp.pt")
    other = resmlp.module(seed=4)
    assert not torch.equal(other.params, module.params)
    other.load_state_dict(torch.load(tmp_path / "resmlp.pt"))
    assert torch.equal(other.params, module.params)
    x = torch.randn(4, IN)
    double = resmlp.module(module.params.detach()).to(torch.float64)
    assert core.max_rel_err(double(x.double()).float(), module(x).detach()) < 1e-5


def test_the_python_example_trains(mnist):
    """examples/resmlp/train.py: two epochs of Adam on F.cross_entropy; the loss falls."""
    images, labels, what = mnist
    done = subprocess.run(
        [
            sys.executable,
            REPO / "examples" / "resmlp" / "train.py",
            "--epochs",
            "2",
            "--samples",
            "2000",
            "--mnist",
            images,
            labels,
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    epochs = re.findall(r"^epoch (\d) train loss (\S+) test accuracy (\S+)$", done.stdout, re.M)
    assert [e[0] for e in epochs] == ["0", "1"], done.stdout
    losses = [float(e[1]) for e in epochs]
    assert losses[1] < losses[0] < 2.3
    if what == "MNIST t10k":
        assert float(epochs[1][2]) > 0.8


def test_the_cpp_example_checks_and_trains():
    """examples/resmlp/train_resmlp.cpp (cladbench_add_model): Clad's gradients against torch
    autograd within 1e-10 (double), then a falling loss."""
    done = subprocess.run(
        [build_dir() / "cladbench_example_resmlp", "--steps", "40"], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    check = re.search(r"gradient check \(double, vs torch autograd\): params (\S+), x (\S+)", done.stdout)
    assert check and max(float(check[1]), float(check[2])) < 1e-10, done.stdout
    losses = [float(v) for v in re.findall(r"^step \d+ loss (\S+)$", done.stdout, re.M)]
    assert losses[-1] < losses[0]


def test_compiled_once_per_content(tmp_path, capfd):
    source = model_source(
        tmp_path,
        "cached",
        "dense(x, params, params + 20, ws, batch, 4, 5, 1);",
        sizes=".params = 25, .inputs = 4, .outputs = 5, .workspace = 5, .output_offset = 0",
    )
    first = cladbench.compile_model(source, root=tmp_path / "models")
    assert "compiling cached" in capfd.readouterr().err
    again = cladbench.compile_model(source, root=tmp_path / "models")
    assert again.library == first.library and "compiling" not in capfd.readouterr().err
    source.write_text(source.read_text().replace(".outputs = 5, .workspace = 5", ".outputs = 5, .workspace = 6"))
    edited = cladbench.compile_model(source, root=tmp_path / "models", quiet=True)
    assert edited.library != first.library  # the rebuilt model replaces the loaded one
    assert core.user_model("cached")["workspace"] == 6


# ---- what a user gets wrong -------------------------------------------------------------------


def test_a_forward_off_the_contract_is_named(tmp_path):
    source = model_source(
        tmp_path, "offcontract", "ws[0] = params[0] * x[0];", signature="const T* params, const T* x, T* ws, int batch"
    )
    with pytest.raises(ModelCompileError) as error:
        cladbench.compile_model(source, root=tmp_path)
    assert f"{source}:{line_of(source, 'CLADBENCH_MODEL(')}" in str(error.value)
    assert "must be `template <class T> void offcontract::forward(const T* params, const T* x, int batch" in str(
        error.value
    )


def test_sizes_that_do_not_fit_are_named(tmp_path):
    source = model_source(
        tmp_path,
        "badsizes",
        "ws[0] = params[0] * x[0];",
        sizes=".params = 20, .inputs = 4, .outputs = 5, .workspace = 5, .output_offset = 3",
    )
    with pytest.raises(ModelCompileError, match=r"must lie inside the workspace") as error:
        cladbench.compile_model(source, root=tmp_path)
    assert f"{source}:{line_of(source, 'CLADBENCH_MODEL(')}" in str(error.value)


def test_what_clad_cannot_differentiate_is_refused_with_its_diagnostic(tmp_path):
    """Clad only warns on a statement it skips; its gradient would be wrong, so the build fails."""
    body = (
        "for (int i = 0; i < batch * 5; ++i) {\n"
        "try { ws[i] = params[i % 20] * x[i % 4]; } catch (...) { ws[i] = 0; }\n}"
    )
    source = model_source(tmp_path, "withtry", body)
    with pytest.raises(ModelCompileError) as error:
        cladbench.compile_model(source, root=tmp_path)
    message = str(error.value)
    assert "Clad could not differentiate all of" in message
    assert f"{source}:{line_of(source, 'try { ws')}" in message and "'CXXTryStmt' is not supported" in message


def test_a_missing_custom_derivative_gets_the_porting_hint(tmp_path):
    """gemm called directly: Clad descends into it, cannot differentiate sgemm_ and would take it
    as 0; -fclad-porting-hints names the custom derivative to write."""
    source = model_source(
        tmp_path, "rawgemm", "cladbench::gemm(false, true, batch, 5, 4, T(1), x, 4, params, 4, T(0), ws, 5);"
    )
    with pytest.raises(ModelCompileError) as error:
        cladbench.compile_model(source, root=tmp_path)
    message = str(error.value)
    assert f"{source}:{line_of(source, 'cladbench::gemm(')}" in message
    assert "provide clad::custom_derivatives::gemm_pullback with signature" in message
    assert "attempted differentiation of function 'sgemm_'" in message


def test_no_model_line_and_a_missing_file(tmp_path):
    source = tmp_path / "nomodel.cpp"
    source.write_text("int f(int x) { return x; }\n")
    with pytest.raises(ModelCompileError, match="needs exactly one CLADBENCH_MODEL"):
        cladbench.compile_model(source, root=tmp_path)
    with pytest.raises(FileNotFoundError, match="no model source"):
        cladbench.compile_model(tmp_path / "absent.cpp", root=tmp_path)


def test_wrong_sizes_name_the_model_source(resmlp):
    where = f"{EXAMPLE}:{line_of(EXAMPLE, 'CLADBENCH_MODEL(')}"
    assert resmlp.source == where
    with pytest.raises(RuntimeError, match=re.escape(f"expected {resmlp.params} parameters for resmlp ({where})")):
        resmlp.forward(torch.zeros(100), torch.zeros(2, IN))
    with pytest.raises(RuntimeError, match=re.escape(f"x must be [batch, {IN}] with batch >= 1 for resmlp ({where})")):
        resmlp.forward(torch.zeros(resmlp.params), torch.zeros(2, 100))
    with pytest.raises(ValueError, match=re.escape(f"resmlp ({where}) takes x [batch, {IN}], got (2, 100)")):
        resmlp.module()(torch.zeros(2, 100))
    with pytest.raises(ValueError, match=re.escape(f"resmlp ({where}) has {resmlp.params} parameters")):
        resmlp.module(torch.zeros(7))
    with pytest.raises(ValueError, match="has fixed sizes: pass dims"):
        torch.ops.cladbench.forward(torch.zeros(resmlp.params), torch.zeros(2, IN), "resmlp", [3], "clad", "rowmajor")
    with pytest.raises(ValueError, match="no model 'nosuch' is loaded"):
        torch.ops.cladbench.forward(torch.zeros(3), torch.zeros(2, 3), "nosuch", [], "clad", "rowmajor")


def test_the_readme_example_runs(resmlp):
    """README, "Your own model": its Python example, as written, takes a step that lowers the loss."""
    readme = (REPO / "README.md").read_text()
    code = readme.split("### Your own model")[1].split("```python\n")[1].split("```")[0]
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(32, IN, generator=gen), torch.randint(OUT, (32,), generator=gen)
    scope = {"x": x, "y": y}
    exec(code, scope)
    assert scope["net"].model == "resmlp" and scope["loss"].requires_grad
    assert F.cross_entropy(scope["net"](x), y).item() < scope["loss"].item()
