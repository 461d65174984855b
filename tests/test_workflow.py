"""The workflow end to end on a tiny config, in a scratch directory: every buildable variant gets
a record and a row in runs.csv, the GW runs carry their metrics, and a second run does nothing."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest
import yaml

from cladbench.data import MNIST_T10K, mirror_dir
from cladbench.paths import REPO, build_manifest
from conftest import RUNNABLE_VARIANTS

pytestmark = pytest.mark.skipif(
    not (mirror_dir() and all((mirror_dir() / name).exists() for name in MNIST_T10K)),
    reason="the workflow fetches MNIST by checksum: needs the data mirror (DATA_MIRROR or ../shared/data)")

TINY = {
    "mnist": {"split": "t10k", "train_range": [0, 1024], "test_range": [9000, 10000]},
    "train": {"hidden": [32], "batch": [64], "epochs": 1, "lr": 0.1, "optimizer": "sgd", "seed": 1,
              "threads": [1], "warmup": 2},
    "gw": {"n_windows": 96, "seed": 2, "snr_range": [10, 20], "train_range": [0, 64], "test_range": [64, 96],
           "model": "cnn", "conv": "4k16p4,8k8p4", "hidden": 16, "batch": 16, "epochs": 1, "lr": 0.001,
           "optimizer": "adam", "warmup": 1, "engines": ["manual", "pytorch"]},
    "bench": {"models": ["mlp-784-32-10"], "batch": [32], "threads": [1], "repetitions": 2, "min_steps": 20},
    "onnx": {"hidden": [16], "train_range": [0, 1024], "tune_range": [9000, 9512], "epochs": 1, "tune_epochs": 2,
             "batch": 32, "lr": 0.05, "activation": "relu", "bench_reps": 200, "bench_warmup": 20},
    "engines": ["clad", "manual", "libtorch", "pytorch", "jax"],
    "calib": {"regions": [2, 4], "events": 3000, "seed": 1, "spread": 0.05, "resolution": [0.015, 0.03],
              "grid_max_regions": 2, "adam_steps": 30, "bench_regions": [4], "bench_reps": 2, "threads": 1},
    "layouts": ["rowmajor", "colmajor"],
    "allocs": ["arena", "dynamic"],
    "repetitions": 1,
}


def snakemake(workdir, *args):
    command = [sys.executable, "-m", "snakemake", "--cores", "2", "--directory", str(workdir), "--snakefile",
               str(REPO / "Snakefile"), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("workflow")
    (workdir / "config").mkdir()
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(TINY))
    (workdir / "config" / "schema.yaml").write_text((REPO / "config" / "schema.yaml").read_text())
    done = snakemake(workdir)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return workdir


def test_every_buildable_variant_has_a_record_and_a_row(workdir):
    variants = set(RUNNABLE_VARIANTS)
    records = {p.name.split("-b")[0] for p in (workdir / "results" / "runs" / "mnist").glob("*.json")}
    assert records == variants
    runs = pd.read_csv(workdir / "results" / "tables" / "runs.csv")
    mnist = runs[(runs.dataset == "mnist") & (runs.purpose == "train")]
    assert set(mnist.variant) == variants and (mnist.status == "ok").all()
    bench = runs[runs.purpose == "bench"]
    assert len(bench) == 2 * len(variants) and (bench.gemm_floor_median_s > 0).all()
    for column in ["engine", "device", "layout", "alloc", "dataset", "model", "batch", "threads", "repetition",
                   "step_time_median_s", "step_time_q1_s", "step_time_q3_s", "samples_per_s", "final_loss",
                   "test_accuracy", "grad_max_rel_err", "allocs_per_step", "peak_rss_mb", "roc_auc",
                   "torch_version", "git_commit", "cpu_model"]:
        assert column in runs.columns
    assert (mnist.model == "mlp-784-32-10").sum() == len(variants)
    assert (runs.step_time_median_s > 0).all()


def test_gw_runs_carry_their_metrics(workdir):
    runs = pd.read_csv(workdir / "results" / "tables" / "runs.csv")
    gw = runs[runs.dataset == "gw-sim"]
    assert set(gw.engine) == {"manual", "pytorch"}
    assert gw.roc_auc.between(0, 1).all() and gw.gw150914_peak_offset_s.notna().all()
    scores = pd.read_csv(workdir / "results" / "tables" / "gw_scores.csv")
    assert len(scores) == 32 * len(gw)


def test_variants_that_cannot_run_are_reported(workdir):
    not_run = pd.read_csv(workdir / "results" / "tables" / "not_run.csv")
    assert "cuda-*" in set(not_run.variant)
    if not build_manifest()["clad_found"]:
        assert "cpu-clad-*" in set(not_run.variant)


def test_onnx_round_trip_and_input_gradient_bench(workdir):
    table = pd.read_csv(workdir / "results" / "tables" / "input_grad.csv")
    assert list(table.columns) == ["path", "model", "batch", "threads", "median_us", "q1_us", "q3_us"]
    assert "torch autograd" in set(table.path) and (table.batch == 1).all() and (table.threads == 1).all()
    assert ((table.q1_us <= table.median_us) & (table.median_us <= table.q3_us) & (table.q1_us > 0)).all()
    assert (workdir / "results" / "report" / "input_grad.pdf").read_bytes().startswith(b"%PDF")
    if build_manifest()["clad_found"]:
        assert "emitted+clad" in set(table.path)
        record = json.loads((workdir / "results" / "onnx" / "roundtrip.json").read_text())
        assert record["ok"] and record["fine_tune_losses"][-1] < record["fine_tune_losses"][0]
        assert (workdir / "results" / "onnx" / "mnist_mlp_784_16_10.cpp").exists()
def test_the_calibration_tables_and_its_report_section(workdir):
    from cladbench.calib_report import CALIB_FIGURES

    calib = pd.read_csv(workdir / "results" / "tables" / "calib.csv")
    assert list(calib.columns) == ["regions", "method", "engine", "region", "true_gain", "fitted_gain", "sigma",
                                   "loss_evals", "seconds"]
    assert set(calib.regions) == {2, 4} and set(calib[calib.regions == 2].method) == {"grid", "adam", "lbfgs"}
    report = workdir / "results" / "report"
    for name in CALIB_FIGURES:
        assert (report / f"{name}.pdf").read_bytes().startswith(b"%PDF")
    assert "\\toprule" in (report / "calib.tex").read_text()


def test_a_second_run_does_nothing(workdir):
    done = snakemake(workdir)
    assert done.returncode == 0
    assert "Nothing to be done" in done.stdout + done.stderr


def test_figures_and_tables_are_built_from_the_tables(workdir):
    from cladbench.report import FIGURES

    report = workdir / "results" / "report"
    for name in FIGURES:
        assert (report / f"{name}.pdf").read_bytes().startswith(b"%PDF") and (report / f"{name}.png").stat().st_size
    assert "\\toprule" in (report / "headline.tex").read_text()
    assert "\\toprule" in (report / "targets.tex").read_text()  # (the targets are the 784-128-10 model's)
    assert "\\toprule" in (report / "cuda.tex").read_text() and (report / "cuda_step_time.pdf").exists()  # CUDA section
    assert "not run" in (report / "provenance.md").read_text()


def test_deleting_one_figure_remakes_only_that_figure(workdir):
    (workdir / "results" / "report" / "speedup.png").unlink()
    done = snakemake(workdir)
    out = done.stdout + done.stderr
    assert done.returncode == 0 and (workdir / "results" / "report" / "speedup.png").exists()
    jobs = {line.split()[-1].rstrip(")") for line in out.splitlines() if "Finished jobid" in line}
    assert jobs == {"figure_speedup", "all"}, out[-2000:]


def test_the_html_report(workdir):
    done = snakemake(workdir, "--report", str(workdir / "report.html"))
    assert done.returncode == 0, done.stderr[-2000:]
    assert (workdir / "report.html").stat().st_size > 10000
