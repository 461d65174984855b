"""The GW classifier trained by every engine on small simulated sets (cladbench.data.gw): loss curves
agree across engines, arena steps allocate nothing, the CNN learns, and the record carries the GW
metrics (roc_auc, gw150914_peak_offset_s over the real GW150914 windows when the mirror has them)."""

from __future__ import annotations

import json
import subprocess
import sys

import jsonschema
import numpy as np
import pytest
import torch
import yaml
from conftest import CLAD_BUILT, COMPILE_VARIANTS, RUNNABLE_VARIANTS, clad_skip_reason

from cladbench.cli import train_command
from cladbench.core import core
from cladbench.data import gw
from cladbench.data.fetch import GW150914, DataError, stage_all
from cladbench.engines.jax import jax_available
from cladbench.engines.pytorch_compile import compile_problem
from cladbench.matrix import parse_variant
from cladbench.paths import REPO

RECORD_SCHEMA = yaml.safe_load((REPO / "workflow" / "schemas" / "run_record.schema.yaml").read_text())
VARIANTS = RUNNABLE_VARIANTS  # jax's only when installed (an optional extra)
CNN = ["--model", "cnn", "--conv", "4k16p4,8k8p4", "--hidden", "16"]


@pytest.fixture(scope="module")
def gw_files(tmp_path_factory):
    """(simulated, real or None): a small simulated set, and GW150914's windows if the mirror has the strain."""
    directory = tmp_path_factory.mktemp("gw")
    simulated = directory / "simulated.h5"
    gw.simulate(simulated, n_windows=160, seed=3)
    try:
        h1, l1 = stage_all(GW150914, directory / "resources", download=False)
    except DataError:
        return simulated, None
    gw.real_windows(h1, l1, directory / "real.h5")
    return simulated, directory / "real.h5"


def train(variant, out, *args):
    _, engine, layout, alloc = parse_variant(variant)
    command, env = train_command(engine, layout, alloc, ["--dataset", "gw-sim", "--out", str(out), *args])
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def records(gw_files, tmp_path_factory):
    simulated, real = gw_files
    out_dir = tmp_path_factory.mktemp("runs")
    records = {}
    for variant in VARIANTS:
        out = out_dir / f"{variant}.json"
        args = [
            "--data",
            str(simulated),
            *(["--real", str(real)] if real else []),
            *CNN,
            "--train-range",
            "0:128",
            "--test-range",
            "128:160",
            "--batch",
            "16",
            "--epochs",
            "2",
            "--lr",
            "0.001",
            "--optimizer",
            "adam",
            "--warmup",
            "4",
        ]
        done = train(variant, out, *args)
        assert done.returncode == 0, f"{variant}: {done.stderr}"
        records[variant] = json.loads(out.read_text())
    return records


@pytest.mark.parametrize("variant", VARIANTS)
def test_gw_record(records, variant, gw_files):
    record = records[variant]
    jsonschema.validate(record, RECORD_SCHEMA)
    assert record["status"] == "ok" and record["dataset"] == "gw-sim"
    assert not {"params_file", "model_kind", "model_dims"} & record.keys()  # no --params-out, none of its keys
    assert record["model"] == "cnn-gw-2x2048-4k16p4-8k8p4-16-2"
    assert 0 <= record["roc_auc"] <= 1 and record["grad_max_rel_err"] < 1e-4
    if gw_files[1] is not None:
        assert isinstance(record["gw150914_peak_offset_s"], float)
        assert len(record["gw150914_scores"]) == len(record["gw150914_t_start_gps"]) > 300


def test_cnn_loss_curves_agree_across_engines(records):
    reference = records["cpu-libtorch-rowmajor-dynamic"]["epoch_train_loss"]
    for variant, record in records.items():
        assert all(abs(a - b) <= 1e-3 * b for a, b in zip(record["epoch_train_loss"], reference)), variant


def test_cnn_arena_steps_make_no_heap_allocations(records):
    for variant, record in records.items():
        if record["alloc"] == "arena":
            assert record["allocs_per_step"] == 0, variant
        else:
            assert record["allocs_per_step"] > 0, variant


def test_cnn_learns_to_detect_signals(tmp_path):
    """Loud injections, a few epochs: the classifier must separate them from noise."""
    data = tmp_path / "loud.h5"
    gw.simulate(data, n_windows=480, seed=5, snr_range=(12.0, 24.0))
    variant = "cpu-clad-rowmajor-arena" if "cpu-clad-rowmajor-arena" in VARIANTS else "cpu-manual-rowmajor-arena"
    out = tmp_path / "record.json"
    done = train(
        variant,
        out,
        "--data",
        str(data),
        *CNN,
        "--train-range",
        "0:400",
        "--test-range",
        "400:480",
        "--batch",
        "16",
        "--epochs",
        "6",
        "--lr",
        "0.002",
        "--optimizer",
        "adam",
    )
    assert done.returncode == 0, done.stderr
    record = json.loads(out.read_text())
    assert record["roc_auc"] > 0.9, record["epoch_test_accuracy"]


def test_mlp_baseline_on_strain(gw_files, tmp_path):
    out = tmp_path / "mlp.json"
    done = train(
        "cpu-manual-rowmajor-arena",
        out,
        "--data",
        str(gw_files[0]),
        "--model",
        "mlp",
        "--hidden",
        "32",
        "--train-range",
        "0:128",
        "--test-range",
        "128:160",
        "--batch",
        "16",
        "--epochs",
        "1",
        "--warmup",
        "2",
    )
    assert done.returncode == 0, done.stderr
    record = json.loads(out.read_text())
    assert record["model"] == "mlp-4096-32-2" and record["allocs_per_step"] == 0


def test_bad_gw_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "not.h5"
    bad.write_text("not HDF5")
    done = train("cpu-manual-rowmajor-arena", tmp_path / "r.json", "--data", str(bad), *CNN)
    assert done.returncode == 2 and f"GW windows file {bad}: cannot open as HDF5" in done.stderr
    assert "Traceback" not in done.stderr


def params_variant(variant: str):
    """One engine's variant for the --params-out test; skipped, with the reason, where it cannot run."""
    engine = parse_variant(variant)[1]
    if variant in RUNNABLE_VARIANTS + COMPILE_VARIANTS:
        return pytest.param(variant, id=engine)
    if engine == "clad" and not CLAD_BUILT:
        reason = clad_skip_reason()
    elif engine == "jax" and not jax_available():
        reason = "JAX not installed (optional extra: pip install -e '.[jax]')"
    else:
        reason = compile_problem() if engine == "pytorch-compile" else f"{variant} is not built"
    return pytest.param(variant, id=engine, marks=pytest.mark.skip(reason=reason))


# One variant per engine; manual in the column-major layout, whose flat vector differs from row-major's.
PARAMS_VARIANTS = [
    "cpu-manual-colmajor-arena",
    "cpu-clad-rowmajor-arena",
    "cpu-libtorch-rowmajor-dynamic",
    "cpu-pytorch-rowmajor-dynamic",
    "cpu-pytorch-compile-rowmajor-dynamic",
    "cpu-jax-rowmajor-dynamic",
]


@pytest.mark.parametrize("variant", [params_variant(v) for v in PARAMS_VARIANTS])
def test_params_out_reproduces_the_test_scores(variant, gw_files, tmp_path):
    """`cladbench train --params-out` (into a directory it creates): the trained flat parameters as
    a .npy, which the reference forward turns into the record's held-out scores."""
    _, engine, layout, alloc = parse_variant(variant)
    simulated = str(gw_files[0])
    params_file, out = tmp_path / "new" / "dir" / "params.npy", tmp_path / "record.json"
    command = [sys.executable, "-m", "cladbench", "train", "--engine", engine, "--layout", layout, "--alloc", alloc]
    options = ["--dataset", "gw-sim", "--data", simulated, *CNN, "--train-range", "0:96", "--test-range", "128:160"]
    run = ["--batch", "16", "--epochs", "2", "--lr", "0.002", "--optimizer", "adam", "--warmup", "2"]
    paths = ["--out", str(out), "--params-out", str(params_file)]
    done = subprocess.run([*command, *options, *run, *paths], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    record = json.loads(out.read_text())
    jsonschema.validate(record, RECORD_SCHEMA)
    dims = [2, 2048, 4, 16, 4, 8, 8, 4, 16, 2]
    assert record["status"] == "ok" and record["layout"] == layout
    assert (record["params_file"], record["model_kind"], record["model_dims"]) == (str(params_file), "cnn", dims)
    assert [p.name for p in params_file.parent.iterdir()] == ["params.npy"]  # no temporary file left
    with params_file.open("rb") as f:
        assert np.lib.format.read_magic(f) == (1, 0)
    params = np.load(params_file)
    assert params.dtype == np.dtype("<f4") and params.shape == (core.param_count("cnn", dims),)
    x = core.load_gw_windows(simulated)["x"][128:160]
    logits = core.reference_logits("cnn", torch.from_numpy(params), x, dims, layout)
    scores = torch.softmax(logits, 1)[:, 1]
    np.testing.assert_allclose(scores.numpy(), record["gw_test_scores"], rtol=0, atol=1e-5)
