"""CUDA on the Python and workflow side: the archive of recorded GPU runs and the report's CUDA
section (on real run records of a tiny CPU bench, re-labelled as cuda runs with chosen step
times), the pytorch engine's --device cuda (a clear error without a GPU; the real run on one),
bench's not-run listing, the GEMM floor's shapes, and the workflow's cuda jobs asking for a GPU."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from conftest import CLAD_BUILT
from torch import nn

from cladbench.core import core
from cladbench.cuda import gemm_floor_seconds, variant_problem
from cladbench.engines.models import torch_nn_model
from cladbench.matrix import CUDA_ENGINES, cuda_variant
from cladbench.paths import REPO, build_manifest
from cladbench.records import archive
from cladbench.records.aggregate import tables
from cladbench.report import cuda as cuda_report

GPU = "NVIDIA H100 80GB HBM3"
ENGINES = [e for e in CUDA_ENGINES if e != "clad" or CLAD_BUILT]  # CPU records, re-labelled as cuda runs
# Step times (µs) per engine and repetition, chosen so that the median of the per-repetition
# ratios (libtorch: 2, 1.1, 1.5 -> 1.5) differs from the ratio of the medians (20 / 12).
STEP_US = {"clad": [10, 30, 12], "libtorch": [20, 33, 18], "pytorch": [40, 45, 36]}
FLOOR_US = [5, 10, 8]  # clad / floor per repetition: 2, 3, 1.5 -> 2


def cli(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, timeout=300, **kwargs)


@pytest.fixture(scope="module")
def cpu_records(tmp_path_factory, mnist) -> dict[str, dict]:
    """{engine: record} of a real tiny bench run on this CPU."""
    out = tmp_path_factory.mktemp("bench")
    images, labels, _ = mnist
    done = cli(
        "cladbench",
        "bench",
        "--models",
        "mlp-784-32-10",
        "--engines",
        ",".join(ENGINES),
        "--batch",
        "32",
        "--repetitions",
        "1",
        "--min-steps",
        "20",
        "--images",
        str(images),
        "--labels",
        str(labels),
        "--out-dir",
        str(out),
    )
    assert done.returncode == 0, done.stderr[-2000:]
    records = [json.loads(p.read_text()) for p in sorted(out.glob("*/*.json"))]
    return {r["engine"]: r for r in records}


def as_cuda(record: dict, *, batch: int, repetition: int, step_us: float, floor_us: float, grad: float) -> dict:
    """A CPU record re-labelled as a cuda run, as the C++ cuda trainers write them."""
    step = step_us * 1e-6 * batch / 32  # time grows with the batch
    return {
        **record,
        "device": "cuda",
        "gpu_model": GPU,
        "timer": "cuda-events",
        "batch": batch,
        "repetition": repetition,
        "versions": {**record["versions"], "cuda": "13.0"},
        "step_time_median_s": step,
        "step_time_q1_s": 0.95 * step,
        "step_time_q3_s": 1.05 * step,
        "gemm_floor_median_s": floor_us * 1e-6 * batch / 32,
        "grad_max_rel_err": grad,
        "started_utc": f"2026-11-20T10:{repetition:02d}:00Z",
        "hostname": "gpu-node-1",
    }


def write_archive(
    root: Path, records: dict[str, dict], *, slug="nvidia-h100", date="2026-11-20", batches=(32, 8192), manifest=True
) -> Path:
    base = root / slug / date
    for engine, record in records.items():
        for batch in batches:
            for rep, step_us in enumerate(STEP_US[engine]):
                r = as_cuda(
                    record,
                    batch=batch,
                    repetition=rep,
                    step_us=step_us,
                    floor_us=FLOOR_US[rep],
                    grad=3e-6 if (engine, rep) == ("libtorch", 2) else 1e-7,
                )
                path = (
                    base
                    / "runs"
                    / "bench"
                    / r["model"]
                    / f"cuda-{engine}-{r['layout']}-{r['alloc']}-b{batch}-t1-r{rep}.json"
                )
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(r))
    if manifest:
        (base / "MANIFEST.yaml").write_text(
            yaml.safe_dump(
                {
                    "device": GPU,
                    "date": date,
                    "host": "gpu-node-1",
                    "git_commit": "0123456789ab",
                    "command": "make cuda-records",
                }
            )
        )
    return base


def test_the_archive_reads_as_aggregate_does(tmp_path, cpu_records):
    write_archive(tmp_path, cpu_records)
    write_archive(
        tmp_path,
        {"libtorch": cpu_records["libtorch"]},
        slug="nvidia-a100",
        date="2026-10-01",
        batches=(64,),
        manifest=False,
    )
    runs = archive.archive_runs(tmp_path)
    assert list(runs.columns) == [*tables({})["runs"].columns, "archive_device", "archive_date"]
    assert len(runs) == len(ENGINES) * 2 * 3 + 3
    h100 = runs[runs.archive_device.eq(GPU)]
    assert set(h100.archive_date) == {"2026-11-20"} and set(h100.variant.str[:5]) == {"cuda-"}
    assert set(h100.timer) == {"cuda-events"} and set(h100.gpu_model) == {GPU} and set(h100.cuda_version) == {"13.0"}
    # No MANIFEST: the folder names say the device and the date.
    a100 = runs[runs.archive_device.eq("nvidia-a100")]
    assert len(a100) == 3 and set(a100.archive_date) == {"2026-10-01"}
    # The CLI writes the table; a broken record is an error that names it.
    out = tmp_path / "tables" / "archive_runs.csv"
    assert cli("cladbench.records.archive", str(out), "--archive", str(tmp_path)).returncode == 0
    assert len(pd.read_csv(out)) == len(runs)
    bad = tmp_path / "nvidia-a100" / "2026-10-01" / "runs" / "bench" / "broken.json"
    bad.write_text("{not json")
    done = cli("cladbench.records.archive", str(out), "--archive", str(tmp_path))
    assert done.returncode == 2 and str(bad) in done.stderr and "Traceback" not in done.stderr


def test_cuda_table_ratios_floor_and_provenance(tmp_path, cpu_records):
    write_archive(tmp_path / "archive", cpu_records)
    tables_dir = tmp_path / "tables"
    assert (
        cli(
            "cladbench.records.archive", str(tables_dir / "archive_runs.csv"), "--archive", str(tmp_path / "archive")
        ).returncode
        == 0
    )
    # This study's own runs: the CPU records (not CUDA), one archived run seen again (counted
    # once) and a new cuda run on another GPU.
    again = as_cuda(cpu_records["libtorch"], batch=32, repetition=0, step_us=20, floor_us=5, grad=1e-7)
    other = {
        **as_cuda(cpu_records["libtorch"], batch=32, repetition=0, step_us=50, floor_us=5, grad=1e-7),
        "gpu_model": "NVIDIA L4",
        "started_utc": "2026-11-22T08:00:00Z",
    }
    live = {f"r{i}.json": r for i, r in enumerate([*cpu_records.values(), again, other])}
    tables(live)["runs"].to_csv(tables_dir / "runs.csv", index=False)

    written = cuda_report.build(tables_dir, tmp_path / "report")
    table = pd.read_csv(tmp_path / "report" / "cuda.csv")
    assert {p.name for p in written} == {"cuda_step_time.pdf", "cuda_step_time.png", "cuda.tex", "cuda.csv"}
    h100 = table[table.archive_device.eq(GPU)].set_index("batch")
    assert list(h100.index) == [32, 8192] and set(h100.archive_date) == {"2026-11-20"}
    assert (h100.repetitions == 3).all()  # the live copy of an archived run is not a fourth repetition
    assert h100.loc[32, "libtorch_us"] == pytest.approx(20)
    assert h100.loc[8192, "libtorch_us"] == pytest.approx(20 * 256)
    assert h100.loc[32, "floor_us"] == pytest.approx(8)
    if CLAD_BUILT:
        assert h100.loc[32, "clad_vs_libtorch"] == pytest.approx(1.5)  # per repetition, then the median
        assert h100.loc[32, "clad_vs_pytorch"] == pytest.approx(3.0)
        assert h100.loc[32, "clad_vs_floor"] == pytest.approx(2.0)
    assert h100.loc[32, "grad_max_rel_err"] == pytest.approx(3e-6)
    l4 = table[table.archive_device.eq("NVIDIA L4")]
    assert len(l4) == 1 and l4.archive_date.iloc[0] == "2026-11-22" and l4.libtorch_us.iloc[0] == pytest.approx(50)
    tex = (tmp_path / "report" / "cuda.tex").read_text()
    assert "\\toprule" in tex and GPU in tex and "2026-11-20" in tex and "NVIDIA L4" in tex
    assert (tmp_path / "report" / "cuda_step_time.pdf").read_bytes().startswith(b"%PDF")


def test_without_cuda_runs_the_section_says_how_to_make_them(tmp_path, cpu_records):
    tables(dict(enumerate(cpu_records.values())))["runs"].to_csv(tmp_path / "runs.csv", index=False)  # CPU only
    written = cuda_report.build(tmp_path, tmp_path / "report")
    assert len(written) == 4
    tex = (tmp_path / "report" / "cuda.tex").read_text()
    assert "no recorded CUDA runs; on a GPU machine run make cuda-records" in tex
    assert pd.read_csv(tmp_path / "report" / "cuda.csv").empty
    fig = cuda_report.fig_cuda_step_time(pd.DataFrame())
    assert "make cuda-records" in fig.note


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_pytorch_on_cuda_without_a_gpu_is_a_clear_error(tmp_path, mnist):
    images, labels, _ = mnist
    done = cli(
        "cladbench",
        "train",
        "--engine",
        "pytorch",
        "--device",
        "cuda",
        "--images",
        str(images),
        "--labels",
        str(labels),
        "--out",
        str(tmp_path / "r.json"),
    )
    assert done.returncode == 2 and not (tmp_path / "r.json").exists()
    assert done.stderr.strip().splitlines() == [
        f"cladbench pytorch engine: no CUDA device: {variant_problem(cuda_variant('pytorch'), {})}"
    ]


def test_jax_stays_on_the_cpu():
    from cladbench.engines.jax import JaxStepper
    from cladbench.engines.pytorch import TorchStepper, device_problem

    assert device_problem(JaxStepper, "cuda").startswith("the jax engine runs on the CPU only")
    assert device_problem(JaxStepper, "cpu") is None and device_problem(TorchStepper, "cpu") is None


def test_bench_lists_the_cuda_variants_it_cannot_run(tmp_path, mnist):
    images, labels, _ = mnist
    manifest = build_manifest()
    cuda = cuda_variant("libtorch")
    if variant_problem(cuda, manifest) is None:
        pytest.skip(f"{cuda} is built here: nothing to list")
    done = cli(
        "cladbench",
        "bench",
        "--models",
        "mlp-784-32-10",
        "--variants",
        f"cpu-manual-rowmajor-arena,{cuda}",
        "--batch",
        "32",
        "--repetitions",
        "1",
        "--min-steps",
        "10",
        "--images",
        str(images),
        "--labels",
        str(labels),
        "--out-dir",
        str(tmp_path),
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"cladbench bench: not run: {cuda}: {variant_problem(cuda, manifest)}" in done.stderr
    assert [p.name for p in tmp_path.glob("*/*.json")] == ["cpu-manual-rowmajor-arena-b32-t1-r0.json"]
    # Nothing runnable at all: exit 2, every variant listed with its reason.
    done = cli(
        "cladbench",
        "bench",
        "--device",
        "cuda",
        "--models",
        "mlp-784-32-10",
        "--images",
        str(images),
        "--labels",
        str(labels),
        "--out-dir",
        str(tmp_path),
    )
    if all(variant_problem(cuda_variant(e), manifest) for e in CUDA_ENGINES):
        assert done.returncode == 2 and "none of the asked variants can run here" in done.stderr
        for engine in CUDA_ENGINES:
            assert f"not run: {cuda_variant(engine)}: " in done.stderr


def layer_gemms(model, x) -> list[tuple[int, int, int]]:
    """(rows, in, out) of each Linear and Conv1d of a torch.nn model as it runs on x (a conv as a
    GEMM on im2col: rows = batch x output length, in = c_in x kernel)."""
    layers = []

    def hook(module, inputs, output):
        if isinstance(module, nn.Linear):
            layers.append((inputs[0].shape[0], module.in_features, module.out_features))
        else:
            layers.append(
                (output.shape[0] * output.shape[2], module.in_channels * module.kernel_size[0], module.out_channels)
            )

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv1d))]
    with torch.no_grad():
        model(x)
    for handle in handles:
        handle.remove()
    return layers


def test_every_floor_times_the_step_gemms_of_the_kernels():
    # The MLP: forward x W^T per layer; backward d_x = d_y W (not for the first layer), d_W = d_y^T x.
    gemms = [
        (g["trans_a"], g["trans_b"], g["M"], g["N"], g["K"])
        for g in core.step_gemms("mlp", [784, 128, 10], "rowmajor", 32)
    ]
    assert gemms == [
        (False, True, 32, 128, 784),
        (False, True, 32, 10, 128),
        (False, False, 32, 128, 10),
        (True, False, 10, 128, 32),
        (True, False, 128, 784, 32),
    ]
    # The CNN, whose conv blocks run per chunk of samples: as many multiply-adds as the torch model's
    # layers need (forward, d_W, and d_input but for the first layer).
    dims = [2, 64, 4, 5, 2, 8, 3, 2, 16, 2]
    shapes = [(4, 2 * 5), (4,), (8, 4 * 3), (8,), (16, 8 * 14), (16,), (2, 16), (2,)]
    cnn = torch_nn_model("cnn", dims, [torch.randn(s) for s in shapes])
    layers = layer_gemms(cnn, torch.randn(3, 128))
    assert layers == [(3 * 60, 10, 4), (3 * 28, 12, 8), (3, 112, 16), (3, 16, 2)]
    needed = sum(rows * n_in * n_out * (2 + (i > 0)) for i, (rows, n_in, n_out) in enumerate(layers))
    assert sum(g["M"] * g["N"] * g["K"] for g in core.step_gemms("cnn", dims, "rowmajor", 3)) == needed
    mlp_gemms = core.step_gemms("mlp", [784, 128, 10], "rowmajor", 32)
    assert 0 < gemm_floor_seconds(mlp_gemms, "cpu", repeats=5) < 0.1  # the torch floor (cuBLAS on a GPU)


def test_cuda_jobs_ask_for_a_gpu_and_cpu_jobs_do_not(tmp_path):
    """The workflow with devices [cpu, cuda], dry-run through the slurm profile, against a build
    whose manifest lists two cuda variants: those run and ask for a GPU; manual has no cuda variant."""
    build = tmp_path / "build"
    build.mkdir()
    manifest = {
        **build_manifest(),
        "cuda_variants": ["cuda-clad-rowmajor-arena", "cuda-libtorch-rowmajor-dynamic"],
        "cuda_reason": "",
    }
    (build / "variants.json").write_text(json.dumps(manifest))
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config.update(
        devices=["cpu", "cuda"], engines=["clad", "manual", "libtorch"], layouts=["rowmajor"], allocs=["arena"]
    )
    config["bench"].update(cuda_batch=[1024, 4096])  # the quick config trains on 8000 rows
    work = tmp_path / "work"
    (work / "config").mkdir(parents=True)
    (work / "config" / "schema.yaml").write_text((REPO / "config" / "schema.yaml").read_text())
    (work / "config" / "config.yaml").write_text(yaml.safe_dump(config))
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "-n",
        "--profile",
        str(REPO / "workflow" / "profiles" / "slurm"),
        "--directory",
        str(work),
        "--snakefile",
        str(REPO / "Snakefile"),
    ]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=300, env={**os.environ, "CLADBENCH_BUILD_DIR": str(build)}
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-3000:]
    assert "not run: cuda-manual-*: the manual engine runs on the CPU only" in out
    jobs = {}  # (rule, output) -> resources line, for each output of each job
    for block in out.split("\nrule ")[1:]:
        lines = block.splitlines()
        outputs = next((line.split(": ", 1)[1] for line in lines if line.strip().startswith("output:")), "")
        resources = next((line for line in lines if line.strip().startswith("resources:")), "")
        jobs.update({(lines[0].rstrip(":"), output): resources for output in outputs.split(", ")})
    runs = {
        key: res for key, res in jobs.items() if key[0] in ("train_mnist", "train_gw") or key[0].startswith("bench_")
    }
    cuda = {key: res for key, res in runs.items() if "/cuda-" in key[1]}
    cpu = {key: res for key, res in runs.items() if "/cpu-" in key[1]}
    assert {re.match(r"cuda-\w+-\w+-\w+", Path(k[1]).name)[0] for k in cuda} == {
        "cuda-clad-rowmajor-arena",
        "cuda-libtorch-rowmajor-dynamic",
    }
    assert len(cpu) and all("gpu=0" in res for res in cpu.values())
    assert all("gpu=1" in res for res in cuda.values())
    # The cuda bench runs use the GPU's batches.
    assert {re.search(r"-b(\d+)-", k[1])[1] for k in cuda if k[0].startswith("bench_")} == {"1024", "4096"}
    assert any(k[0] == "train_gw" for k in cuda)  # the GW runs of the cuda variants too
    # ... except the GPU clad engine's, which is the MLP's only.
    assert not any(k[0] == "train_gw" and "/cuda-clad-" in k[1] for k in cuda)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_pytorch_trains_on_the_gpu_with_agreeing_gradients(tmp_path, mnist):
    images, labels, _ = mnist
    out = tmp_path / "r.json"
    done = cli(
        "cladbench",
        "train",
        "--engine",
        "pytorch",
        "--device",
        "cuda",
        "--images",
        str(images),
        "--labels",
        str(labels),
        "--hidden",
        "64",
        "--batch",
        "256",
        "--epochs",
        "1",
        "--train-range",
        "0:4096",
        "--test-range",
        "9000:10000",
        "--out",
        str(out),
    )
    assert done.returncode == 0, done.stderr[-2000:]
    record = json.loads(out.read_text())
    assert record["device"] == "cuda" and record["timer"] == "cuda-events"
    assert record["gpu_model"] == torch.cuda.get_device_name()
    assert record["grad_max_rel_err"] < 1e-4
    assert 0 < record["gemm_floor_median_s"] < record["step_time_median_s"]


def test_cuda_records_writes_an_archive_the_report_reads(tmp_path, mnist):
    """`make cuda-records`' command, run on the CPU (--device cpu) with a one-cell grid: the archive
    layout, config and MANIFEST it writes, and that cladbench.records.archive reads the runs back."""
    images, labels, _ = mnist
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "cladbench.bench.cuda_records",
            "--device",
            "cpu",
            "--archive",
            str(tmp_path),
            "--models",
            "mlp-784-16-10",
            "--engines",
            "manual",
            "--batch",
            "64",
            "--repetitions",
            "1",
            "--min-steps",
            "10",
            "--gw-engines",
            "",
            "--images",
            str(images),
            "--labels",
            str(labels),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (out,) = tmp_path.glob("cpu/*")
    info = yaml.safe_load((out / "MANIFEST.yaml").read_text())
    assert info["device"] == "cpu" and str(info["date"]) == out.name and info["command"].startswith("python -m")
    assert yaml.safe_load((out / "config.yaml").read_text())["mnist"]["train_range"] == [0, 10000]
    runs = archive.archive_runs(tmp_path)
    assert len(runs) == 1 and runs.archive_device.iloc[0] == "cpu"
    run = runs.iloc[0]
    assert run.engine == "manual" and run.batch == 64 and run.status == "ok" and run.grad_max_rel_err < 1e-4
