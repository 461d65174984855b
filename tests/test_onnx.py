"""ONNX import: torch -> torch.onnx.export -> emitted C++ -> Clad gradients, against torch autograd
(float64 < 1e-10, float32 < 1e-5) for several models with odd widths and both exporters; the
unsupported-op error; the weights file; fine-tuning an MNIST classifier with the Clad gradients."""

from __future__ import annotations

import copy
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from torch import nn

from cladbench.core import core
from cladbench.onnx.compile import CladUnavailableError, CompiledModel, clad_prefix, compile_model
from cladbench.onnx.emit import UnsupportedModelError, emit, read_weights
from cladbench.onnx.roundtrip import export, fine_tune, gradient_check, params_from_torch, train_torch_classifier


class Residual(nn.Module):
    """MatMul + Add (bias), an activation-activation Add, Sigmoid and a flatten of [batch, 1, 7]."""

    def __init__(self):
        super().__init__()
        self.W = nn.Parameter(torch.randn(7, 9) / 3)
        self.b = nn.Parameter(torch.randn(9))
        self.inner = nn.Linear(9, 9)
        self.head = nn.Linear(9, 3)

    def forward(self, x):
        h = torch.sigmoid(x.flatten(1) @ self.W + self.b)
        return self.head(torch.relu(self.inner(h)) + h)


def models() -> dict:
    """name -> (torch model, input shape without batch, exporter is dynamo)."""
    torch.manual_seed(3)
    return {
        "mlp_7_13_5": (nn.Sequential(nn.Linear(7, 13), nn.Tanh(), nn.Linear(13, 5), nn.Softmax(dim=1)), (7,), False),
        "residual": (Residual(), (1, 7), True),
        "conv1d": (
            nn.Sequential(
                nn.Conv1d(2, 3, 5, stride=2, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 9, 4), nn.Sigmoid()
            ),
            (2, 20),
            False,
        ),
    }


MNIST_TRAIN, MNIST_TUNE = slice(0, 2000), slice(2000, 3000)


@pytest.fixture(scope="session")
def mnist_xy(mnist):
    x, labels = core.load_mnist(str(mnist[0]), str(mnist[1]))
    return x.numpy(), labels.numpy()


@pytest.fixture(scope="session")
def mnist_classifier(mnist_xy):
    """A 784 -> 24 -> 10 classifier trained briefly with PyTorch (as the workflow's onnx rule does)."""
    x, labels = mnist_xy
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(784, 24), nn.ReLU(), nn.Linear(24, 10))
    train_torch_classifier(model, x[MNIST_TRAIN], labels[MNIST_TRAIN], epochs=1, batch=32, lr=0.05)
    return model


@pytest.fixture(scope="session")
def compiled(mnist_classifier, tmp_path_factory):
    """Every test model exported, emitted and compiled with Clad once (two at a time)."""
    try:
        clad_prefix()
    except CladUnavailableError as error:
        pytest.skip(str(error).split(";")[0])
    cases = {name: (model, shape, dynamo) for name, (model, shape, dynamo) in models().items()}
    cases["mnist_mlp"] = (mnist_classifier, (784,), False)
    emitted = {
        name: emit(export(model, torch.randn(2, *shape), dynamo=dynamo), name)
        for name, (model, shape, dynamo) in cases.items()
    }
    root = tmp_path_factory.mktemp("onnx-build")
    with ThreadPoolExecutor(2) as pool:
        libraries = dict(zip(emitted, pool.map(lambda m: compile_model(m, root, quiet=True), emitted.values())))
    return {name: (cases[name][0], cases[name][1], emitted[name], libraries[name]) for name in cases}


@pytest.mark.parametrize("name", ["mlp_7_13_5", "residual", "conv1d", "mnist_mlp"])
@pytest.mark.parametrize("dtype, tolerance", [(np.float64, 1e-10), (np.float32, 1e-5)], ids=["f64", "f32"])
def test_clad_gradients_match_torch_autograd(compiled, name, dtype, tolerance):
    model, shape, emitted, library = compiled[name]
    x = np.random.default_rng(1).normal(size=(5, *shape))
    errors = gradient_check(model, CompiledModel(emitted, library, dtype), x)
    assert max(errors.values()) < tolerance, errors


def test_the_emitted_code_is_readable_and_names_the_onnx_nodes(compiled):
    _, _, emitted, _ = compiled["conv1d"]
    source = emitted.source
    assert emitted.ops == ["Conv", "Relu", "Flatten", "Gemm", "Sigmoid"]
    assert '"/0/Conv" Conv' in source and "conv1d(x, params + P_0_weight" in source
    assert "Flatten" in source and "the same memory" in source
    assert 'clad::gradient(output_dot<double>, "x, ws, loss")' in source
    _, _, residual, _ = compiled["residual"]
    assert {"MatMul", "Add", "Reshape", "Sigmoid", "Relu", "Gemm"} <= set(residual.ops)


def test_input_gradient_of_one_sample(compiled):
    """The benchmark's case: batch 1; the Clad input gradient equals torch's."""
    model, shape, emitted, library = compiled["conv1d"]
    m = CompiledModel(emitted, library, np.float64)
    model = copy.deepcopy(model).double()
    m.params = params_from_torch(model, m)
    x = torch.randn(1, *shape, dtype=torch.float64, requires_grad=True)
    model(x).sum().backward()
    _, _, d_x = m.vjp(x.detach().numpy(), np.ones((1, 4)), inputs_only=True)
    np.testing.assert_allclose(d_x, x.grad.numpy(), rtol=1e-10, atol=1e-14)
    assert (m.time_input_grad(x.detach().numpy(), 5) > 0).all()


def test_weights_file_round_trip(compiled, tmp_path):
    _, _, emitted, library = compiled["mlp_7_13_5"]
    cpp, weights = emitted.write(tmp_path)
    assert cpp.read_text() == emitted.source
    np.testing.assert_array_equal(read_weights(weights), emitted.params)
    m = CompiledModel(emitted, library, np.float32)
    m.params[:] = 0
    m.load_weights(weights)  # the C++ loader
    np.testing.assert_array_equal(m.params, emitted.params.astype(np.float32))
    other = compiled["residual"][2]
    other.write(tmp_path / "other")
    with pytest.raises(ValueError, match="wrong size"):
        m.load_weights(tmp_path / "other" / "residual.weights")


@pytest.mark.parametrize(
    "model, shape, node, why",
    [
        (
            nn.Sequential(nn.Linear(3, 4), nn.LeakyReLU(), nn.Linear(4, 2)),
            (3,),
            "/1/LeakyRelu (LeakyRelu)",
            "op not supported",
        ),
        (
            nn.Sequential(nn.Conv2d(1, 2, 2), nn.Flatten(), nn.Linear(18, 2)),
            (1, 4, 4),
            "/0/Conv (Conv)",
            "2-D convolution",
        ),
    ],
    ids=["LeakyRelu", "Conv2d"],
)
def test_an_unsupported_op_names_the_op_the_node_and_the_supported_set(model, shape, node, why):
    with pytest.raises(UnsupportedModelError) as error:
        emit(export(model, torch.randn(2, *shape)), "bad")
    message = str(error.value)
    node_name, op = node.split(" ")
    assert f"ONNX node '{node_name}' {op}" in message and why in message, message
    assert "supports Add, Conv (1-D), Flatten, Gemm, MatMul, Relu" in message and "Softmax, Tanh" in message


def test_fine_tuning_with_clad_gradients_lowers_the_loss(compiled, mnist_xy):
    """The trained classifier, imported, keeps learning on data it has not seen."""
    model, _, emitted, library = compiled["mnist_mlp"]
    m = CompiledModel(emitted, library, np.float32)
    m.params = params_from_torch(model, m).astype(np.float32)
    x, labels = mnist_xy
    losses = fine_tune(m, x[MNIST_TUNE], labels[MNIST_TUNE], epochs=3, batch=32, lr=0.05)
    assert all(b < a for a, b in zip(losses, losses[1:])), losses
    assert losses[-1] < 0.9 * losses[0], losses
    with torch.no_grad():  # the imported model starts where torch left it
        ref = nn.functional.cross_entropy(model(torch.tensor(x[MNIST_TUNE])), torch.tensor(labels[MNIST_TUNE]).long())
    assert losses[0] == pytest.approx(ref.item(), rel=1e-5)


def test_torchscript_and_torch_export_programs_reach_the_emitter_through_onnx(tmp_path):
    """What the README says: a TorchScript module (also one saved and loaded) goes through the
    TorchScript exporter, a torch.export program (also saved and loaded) through the dynamo one."""
    import io
    import warnings

    import onnx

    model = models()["mlp_7_13_5"][0].eval()
    x = torch.randn(3, 7)
    torch.jit.save(torch.jit.script(model), tmp_path / "model.pt")
    torch.export.save(torch.export.export(model, (x,)), tmp_path / "model.pt2")
    expected = ["Gemm", "Tanh", "Gemm", "Softmax"]
    for scripted in (torch.jit.trace(model, x), torch.jit.load(tmp_path / "model.pt")):
        buffer = io.BytesIO()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(scripted, (x,), buffer, dynamo=False, input_names=["x"], dynamic_axes={"x": {0: "b"}})
        assert emit(onnx.load_from_string(buffer.getvalue()), "ts").ops == expected
    program = torch.export.load(tmp_path / "model.pt2")
    assert emit(torch.onnx.export(program, (x,), dynamo=True, verbose=False).model_proto, "ep").ops == expected
