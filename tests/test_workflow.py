"""The workflow end to end on a tiny config, in a scratch directory, as `make run` runs it (the
default profile, here on 2 cores): every buildable variant gets a record and a row in runs.csv, the
GW runs carry their metrics, no timing job runs beside another job, a second run does nothing, and
a run without the data mirror shows the fetch error's instructions."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest
import yaml
from conftest import RUNNABLE_VARIANTS

from cladbench.data.fetch import MNIST_T10K, mirror_dir
from cladbench.matrix import parse_variant
from cladbench.paths import REPO, build_manifest
from cladbench.root import root_missing_reason

pytestmark = pytest.mark.skipif(
    not (mirror_dir() and all((mirror_dir() / name).exists() for name in MNIST_T10K)),
    reason="the workflow fetches MNIST by checksum: needs the data mirror (DATA_MIRROR or ../shared/data)",
)

TINY = {
    "mnist": {"split": "t10k", "train_range": [0, 1024], "test_range": [9000, 10000]},
    "train": {
        "hidden": [32],
        "batch": [64],
        "epochs": 1,
        "lr": 0.1,
        "optimizer": "sgd",
        "seed": 1,
        "threads": [1],
        "warmup": 2,
    },
    "gw": {
        "n_windows": 96,
        "seed": 2,
        "snr_range": [10, 20],
        "train_range": [0, 64],
        "test_range": [64, 96],
        "model": "cnn",
        "conv": "4k16p4,8k8p4",
        "hidden": 16,
        "batch": 16,
        "epochs": 1,
        "lr": 0.001,
        "optimizer": "adam",
        "warmup": 1,
        "engines": ["manual", "pytorch"],
        # The search's chain on a minute of simulated data each (the real slides are all run).
        "search": {"chunk_hours": 0.02, "background_chunks": 1, "foreground_chunks": 1},
    },
    "bench": {
        "grids": [
            {"models": ["mlp-784-32-10"], "batch": [32], "threads": [1], "repetitions": 2},
            {"models": ["gw-cnn"], "batch": [16], "threads": [1], "repetitions": 1},
        ],
        "ablation": ["mlp-784-32-10"],
        "min_steps": 20,
        "ops": {
            "models": ["mlp-784-32-10", "gw-cnn"],
            "batch": [16],
            "repetitions": 2,
            "warmup": 1,
            "steps": 3,
            "threads": 1,
        },
    },
    "onnx": {
        "hidden": [16],
        "train_range": [0, 1024],
        "tune_range": [9000, 9512],
        "epochs": 1,
        "tune_epochs": 2,
        "batch": 32,
        "lr": 0.05,
        "activation": "relu",
        "bench_reps": 200,
        "bench_warmup": 20,
    },
    "engines": ["clad", "manual", "libtorch", "pytorch", "jax"],
    "calib": {
        "regions": [2, 4],
        "events": 3000,
        "seed": 1,
        "spread": 0.05,
        "resolution": [0.015, 0.03],
        "grid_max_regions": 2,
        "adam_steps": 30,
        "bench_regions": [4],
        "bench_reps": 2,
        "threads": 1,
    },
    "layouts": ["rowmajor", "colmajor"],
    "allocs": ["arena", "dynamic"],
    "repetitions": 1,
}


def snakemake(workdir, *args, env=None):
    """The workflow as `make run` runs it (the default profile), on 2 cores."""
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "--profile",
        str(REPO / "workflow" / "profiles" / "default"),
        "--cores",
        "2",
        "--directory",
        str(workdir),
        "--snakefile",
        str(REPO / "Snakefile"),
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=900, env=env)


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
    assert (bench.gemm_floor_median_s > 0).all()
    assert set(bench[bench.dataset == "mnist"].variant) == variants and (bench.dataset == "mnist").sum() == 2 * len(
        variants
    )
    # the GW CNN's cells: each engine's headline variant (gw-cnn is not in the ablation)
    headline = {v for v in variants if v.endswith("-rowmajor-arena") or parse_variant(v)[1] not in ("clad", "manual")}
    assert set(bench[bench.dataset == "gw-sim"].variant) == headline
    for column in [
        "engine",
        "device",
        "layout",
        "alloc",
        "dataset",
        "model",
        "batch",
        "threads",
        "repetition",
        "step_time_median_s",
        "step_time_q1_s",
        "step_time_q3_s",
        "samples_per_s",
        "final_loss",
        "test_accuracy",
        "grad_max_rel_err",
        "allocs_per_step",
        "peak_rss_mb",
        "roc_auc",
        "torch_version",
        "git_commit",
        "cpu_model",
    ]:
        assert column in runs.columns
    assert (mnist.model == "mlp-784-32-10").sum() == len(variants)
    assert (runs.step_time_median_s > 0).all()


def job_intervals(workdir) -> list[tuple[str, float, float]]:
    """(rule, start, end) of every job of the run, from Snakemake's own metadata of its outputs (a
    job's outputs share its job_hash; each records when the job started and ended)."""
    times = {}
    for path in (workdir / ".snakemake" / "metadata").rglob("*"):
        meta = json.loads(path.read_text()) if path.is_file() else {}
        if meta.get("starttime") and meta.get("endtime"):
            times.setdefault((meta["rule"], meta["job_hash"]), []).append((meta["starttime"], meta["endtime"]))
    return [(rule, min(t[0] for t in ts), max(t[1] for t in ts)) for (rule, _), ts in times.items()]


def test_no_timing_job_runs_beside_another_job(workdir):
    """Jobs whose records feed a timing figure or table (the bench cells, the ONNX bench, the
    calibration's engine timings, the op bench) ran with nothing else running, though 2 cores let two jobs run."""
    jobs = job_intervals(workdir)
    timing = [j for j in jobs if j[0].startswith("bench_") or j[0] in ("onnx_bench", "calib", "op_bench")]
    assert {j[0] for j in timing} == {"bench_mlp_784_32_10", "bench_gw_cnn", "onnx_bench", "calib", "op_bench"}
    assert len(timing) == 2 + 1 + 1 + 1 + 1
    overlaps = [(t[0], j[0]) for t in timing for j in jobs if j != t and t[1] < j[2] and j[1] < t[2]]
    assert not overlaps, overlaps
    # ... while other jobs did share the machine (so the check above could fail).
    others = sorted((j for j in jobs if j not in timing), key=lambda j: j[1])
    assert any(b[1] < a[2] for a, b in zip(others, others[1:])), others


def test_gw_runs_carry_their_metrics(workdir):
    runs = pd.read_csv(workdir / "results" / "tables" / "runs.csv")
    gw = runs[(runs.dataset == "gw-sim") & (runs.purpose == "train")]
    assert set(gw.engine) == {"manual", "pytorch"}
    assert gw.roc_auc.between(0, 1).all() and gw.gw150914_peak_offset_s.notna().all()
    scores = pd.read_csv(workdir / "results" / "tables" / "gw_scores.csv")
    assert (scores.purpose == "train").sum() == 32 * len(gw)


def test_the_gw_search_scans_every_network_and_has_its_report_section(workdir):
    from cladbench.report.gw_search import SEARCH_FIGURES

    tables = workdir / "results" / "tables"
    significance = pd.read_csv(tables / "gw_significance.csv")
    assert set(significance.engine) == {"manual", "pytorch"}
    assert (significance.slides == 238).all() and (significance.slide_livetime_h > 1).all()  # every slide of 24 s
    trace = pd.read_csv(tables / "gw_search_trace.csv")
    assert set(trace.engine) == {"manual", "pytorch"} and set(trace.network) == set(significance.network)
    assert (trace.groupby("network").size() == 369).all()  # every real window, per network
    injections = pd.read_csv(tables / "gw_injections.csv")
    assert set(injections.engine) == {"manual", "pytorch"} and (injections.snr > 0).all()
    segments = pd.read_csv(tables / "gw_search_segments.csv")
    assert {"zero-lag", "slide", "simulated"} <= set(segments.kind)
    report = workdir / "results" / "report"
    for name in SEARCH_FIGURES:
        assert (report / f"{name}.pdf").read_bytes().startswith(b"%PDF")
    assert "\\toprule" in (report / "gw_search.tex").read_text()


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
    from cladbench.report.calib import CALIB_FIGURES

    calib = pd.read_csv(workdir / "results" / "tables" / "calib.csv")
    assert list(calib.columns) == [
        "regions",
        "method",
        "engine",
        "region",
        "true_gain",
        "fitted_gain",
        "sigma",
        "loss_evals",
        "seconds",
    ]
    minuit = set() if root_missing_reason() else {"minuit2"}  # where ROOT is installed (the default setup)
    assert set(calib.regions) == {2, 4} and set(calib[calib.regions == 2].method) == {"grid", "adam", "lbfgs"} | minuit
    report = workdir / "results" / "report"
    for name in CALIB_FIGURES:
        assert (report / f"{name}.pdf").read_bytes().startswith(b"%PDF")
    assert "\\toprule" in (report / "calib.tex").read_text()


def test_the_op_bench_table_and_its_report_section(workdir):
    from cladbench.bench.timing import OP_COST_COLUMNS

    table = pd.read_csv(workdir / "results" / "tables" / "op_cost.csv")
    assert list(table.columns) == OP_COST_COLUMNS
    assert sorted(map(tuple, table[["model", "batch", "repetition"]].values.tolist())) == [
        ("gw-cnn", 16, 0),
        ("gw-cnn", 16, 1),
        ("mlp-784-32-10", 16, 0),
        ("mlp-784-32-10", 16, 1),
    ]
    assert (table.fused_s > 0).all() and (table.composable_s > 0).all() and (table.steps == 3).all()
    report = workdir / "results" / "report"
    tex = (report / "op_cost.tex").read_text()
    assert "\\toprule" in tex and "mlp-784-32-10 & 16 &" in tex and "gw-cnn & 16 &" in tex
    assert (report / "op_cost.pdf").read_bytes().startswith(b"%PDF")


def test_a_second_run_does_nothing(workdir):
    done = snakemake(workdir)
    assert done.returncode == 0
    assert "Nothing to be done" in done.stdout + done.stderr


def test_figures_and_tables_are_built_from_the_tables(workdir):
    from cladbench.report.figures import FIGURES

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


def test_a_run_without_the_data_mirror_shows_how_to_pre_stage_the_data(tmp_path):
    """A newcomer's `make run` with no data mirror: the fetch fails, and its error, with the
    pre-staging instructions, is on the terminal (not only in the log file it points to)."""
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.yaml").write_text(yaml.safe_dump(TINY))
    (tmp_path / "config" / "schema.yaml").write_text((REPO / "config" / "schema.yaml").read_text())
    (tmp_path / "empty").mkdir()
    done = snakemake(
        tmp_path,
        "resources/mnist/t10k-images-idx3-ubyte.gz",
        env={**os.environ, "DATA_MIRROR": str(tmp_path / "empty")},
    )
    out = done.stdout + done.stderr
    assert done.returncode != 0 and "Error in rule fetch_mnist_t10k" in out
    assert "could not be fetched: no copy in a mirror" in out and "Pre-stage it: download" in out, out[-3000:]
