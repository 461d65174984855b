"""The command line around the core: doctor, the main job's config validation, data staging, and
the C++ tests (ctest)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml
from conftest import CLAD_BUILT, COMPILE_VARIANTS, RUNNABLE_VARIANTS

from cladbench.cuda import variant_problem
from cladbench.matrix import CUDA_ENGINES, cuda_variant, parse_variant, trains_cnn
from cladbench.paths import REPO, build_dir, build_manifest


def test_doctor_reports_the_machine():
    done = subprocess.run([sys.executable, "-m", "cladbench", "doctor"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "torch        2.13.0" in out and "share/cmake/Torch" in out
    assert "C++ compiler" in out and "nvcc" in out and "GPUs" in out
    assert "yes  cpu-manual-rowmajor-arena" in out
    for engine in CUDA_ENGINES:  # each cuda variant, with why not where it cannot run
        variant = cuda_variant(engine)
        problem = variant_problem(variant, build_manifest())
        assert (f"no   {variant}: {problem}" if problem else f"yes  {variant}") in out
    if CLAD_BUILT:
        assert f"Clad         {build_manifest()['clad_version']} at {build_manifest()['clad_prefix']}" in out
        assert "yes  cpu-clad-rowmajor-arena" in out
    else:
        assert "Clad         not usable:" in out and "no   cpu-clad-rowmajor-arena" in out


def test_cpp_tests_pass():
    done = subprocess.run(
        ["ctest", "--output-on-failure"], cwd=build_dir(), capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "100% tests passed" in done.stdout


def job_counts(out: str) -> dict[str, int]:
    """The 'Job stats' table of a snakemake run: {rule: count}."""
    rows = (line.split() for line in out.splitlines())
    return {row[0]: int(row[1]) for row in rows if len(row) == 2 and row[1].isdigit() and row[0] != "total"}


def dry_run(tmp_path, config, env=None, args=()):
    """`snakemake -n` of the workflow with this config, in a scratch directory; args: more flags, targets."""
    (tmp_path / "config").mkdir(exist_ok=True)
    (tmp_path / "config" / "schema.yaml").write_text((REPO / "config" / "schema.yaml").read_text())
    (tmp_path / "config" / "config.yaml").write_text(yaml.safe_dump(config))
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "--cores",
        "1",
        "-n",
        "--directory",
        str(tmp_path),
        "--snakefile",
        str(REPO / "Snakefile"),
        *args,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    return done.returncode, done.stdout + done.stderr


def bench_rule(model: str, device: str = "cpu") -> str:
    """The name of the bench rule of a model's cells (workflow/rules/bench.smk)."""
    return "bench_" + ("" if device == "cpu" else f"{device}_") + model.replace("-", "_")


def test_without_a_compiler_for_inductor_pytorch_compile_is_not_run(tmp_path):
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    rc, out = dry_run(tmp_path, config, env={**os.environ, "CXX": str(tmp_path / "no-such-g++")})
    assert rc == 0, out
    assert (
        f"not run: cpu-pytorch-compile-*: torch.compile (Inductor) needs a C++ compiler: {tmp_path / 'no-such-g++'} "
        "not found (set CXX)"
    ) in out
    assert "cpu-pytorch-compile-rowmajor-dynamic" not in out.replace("cpu-pytorch-compile-*", "")


def test_the_default_config_dry_runs_the_whole_matrix(tmp_path):
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    rc, out = dry_run(tmp_path, config)
    assert rc == 0, out
    counts = job_counts(out)
    variants = len(RUNNABLE_VARIANTS) + len(COMPILE_VARIANTS)  # the configs list pytorch-compile
    assert counts["train_mnist"] == variants * len(config["train"]["batch"]) * len(config["train"]["threads"])
    headline = len({parse_variant(v)[1] for v in RUNNABLE_VARIANTS + COMPILE_VARIANTS})  # gw.variants: headline
    assert counts["train_gw"] == (variants if config["gw"]["variants"] == "all" else headline)
    # One bench job per cell (model, batch, threads, repetition), timing the cell's variants in turn.
    cells = {}
    for grid in config["bench"]["grids"]:
        for model in grid["models"]:
            cells[bench_rule(model)] = len(grid["batch"]) * len(grid["threads"]) * grid["repetitions"]
    assert {rule: n for rule, n in counts.items() if rule.startswith("bench_")} == cells
    assert cells[bench_rule("gw-cnn")] >= 6  # the GW CNN's cells: 1 and 2 threads, 3 repetitions at least
    assert counts["op_bench"] == counts["figure_op_cost"] == counts["report_tables"] == 1  # composable vs fused
    search = config["gw"]["search"]  # the GW search: one real scan, a job per simulated chunk, one summary
    assert counts["gw_search_real"] == counts["gw_search_summary"] == counts["gw_search_report_tables"] == 1
    assert counts["gw_search_simulated"] == search["background_chunks"] + search["foreground_chunks"]
    assert "not run: cuda-*" in out
    if not COMPILE_VARIANTS:
        assert "not run: cpu-pytorch-compile-*: torch.compile (Inductor) needs" in out
    if not CLAD_BUILT:
        assert "not run: cpu-clad-*: Clad not available" in out


def test_the_op_bench_is_one_timing_job_over_the_configs_cells(tmp_path):
    """Rule op_bench (composable vs fused op): the config's bench.ops cells and the gw section's CNN on
    its command line, the whole machine (TIMING_RESOURCES), and its table feeding the report."""
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["bench"]["ops"].update(models=["mlp-784-64-10", "gw-cnn"], batch=[8, 64], repetitions=2, steps=7)
    config["gw"].update(conv="4k16p4,8k8p4", hidden=16)
    profile = ["--profile", str(REPO / "workflow" / "profiles" / "default"), "-p"]
    rc, out = dry_run(tmp_path, config, args=[*profile, "results/report/op_cost.tex", "results/report/op_cost.pdf"])
    assert rc == 0, out
    job = out.split("rule op_bench:")[1].split("\n\n")[0]
    assert "output: results/tables/op_cost.csv" in job and "machine=100" in job and "slurm_extra=--exclusive" in job
    engine = "clad" if CLAD_BUILT else "manual"
    assert (
        "python -m cladbench.bench.op_bench --out results/tables/op_cost.csv --models mlp-784-64-10,gw-cnn "
        f"--batch 8,64 --repetitions 2 --warmup {config['bench']['ops']['warmup']} --steps 7 --engine {engine} "
        "--threads 1 --conv 4k16p4,8k8p4 --cnn-hidden 16"
    ) in job
    for rule in ("report_tables", "figure_op_cost"):
        assert "results/tables/op_cost.csv" in out.split(f"rule {rule}:")[1].split("output:")[0], rule


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda c: c["train"].update(optimiser="sgd"), "Additional properties are not allowed ('optimiser'"),
        (lambda c: c["train"].update(batch=[0]), "0 is less than the minimum of 1"),
        (lambda c: c.update(engines=["clad", "tensorflow"]), "'tensorflow' is not one of"),
        (lambda c: c["train"].update(epochs=0), "0 is less than the minimum of 1"),
        (lambda c: c["bench"]["ops"].update(models=["resnet50"]), "'resnet50' does not match"),
    ],
)
def test_an_invalid_config_fails_with_the_schema_message(tmp_path, change, message):
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    change(config)
    rc, out = dry_run(tmp_path, config)
    assert rc != 0 and "Error validating config file" in out and message in out, out


def test_the_slurm_profile_dry_runs_the_paper_study(tmp_path):
    config = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "schema.yaml").write_text((REPO / "config" / "schema.yaml").read_text())
    (tmp_path / "config" / "config.yaml").write_text(yaml.safe_dump(config))
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "-n",
        "--profile",
        str(REPO / "workflow" / "profiles" / "slurm"),
        "--directory",
        str(tmp_path),
        "--snakefile",
        str(REPO / "Snakefile"),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-3000:]
    variants = len(RUNNABLE_VARIANTS) + len(COMPILE_VARIANTS)  # the configs list pytorch-compile
    # devices [cpu, cuda]: the cuda variants this build made (and pytorch where torch is a CUDA build) run too
    cuda = [
        cuda_variant(e)
        for e in CUDA_ENGINES
        if variant_problem(cuda_variant(e), build_manifest(), need_device=False) is None
    ]
    cuda_cnn = sum(trains_cnn(v) for v in cuda)  # the GPU clad engine is the MLP's: no gw-cnn cells
    counts = job_counts(out)
    assert counts["train_mnist"] == (variants + len(cuda)) * 6 * 2 * 5  # batches x threads x repetitions
    # One bench job per cell: the two MLPs and gw-cnn, at 6 batches, 1 and 16 threads, 5 repetitions; the
    # cuda variants' cells at the GPU's batches.
    expected = {bench_rule(model): 6 * 2 * 5 for model in ("mlp-784-128-10", "mlp-784-512-512-10", "gw-cnn")}
    for model in ("mlp-784-128-10", "mlp-784-512-512-10", "gw-cnn"):
        if len(cuda) if model != "gw-cnn" else cuda_cnn:
            expected[bench_rule(model, "cuda")] = len(config["bench"]["cuda_batch"]) * 2 * 5
    assert {rule: n for rule, n in counts.items() if rule.startswith("bench_")} == expected
    assert counts["op_bench"] == 1
    # The search's month of simulated background, planned as cluster jobs of a chunk each.
    search = config["gw"]["search"]
    assert search["chunk_hours"] * search["background_chunks"] >= 30 * 24
    assert counts["gw_search_simulated"] == search["background_chunks"] + search["foreground_chunks"]


def test_snakemake_lint_is_clean():
    done = subprocess.run(
        [sys.executable, "-m", "snakemake", "--lint", "--snakefile", str(REPO / "Snakefile"), "--directory", str(REPO)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "Congratulations, your workflow is in a good condition!" in done.stdout + done.stderr, done.stdout


def test_jobs_that_fit_no_node_of_their_partition_are_named():
    """cladbench.slurm on a made-up sinfo: a 2-CPU default partition and a GPU partition."""
    from cladbench.slurm import Demand, misfits, parse_sinfo

    partitions, default = parse_sinfo("cpu*|2|3900|(null)\ncpu*|2|7800|(null)\ngpu|16|64000|gpu:a100:4(S:0-1)\n")
    assert default == "cpu" and partitions["gpu"] == [{"cpus": 16, "mem_mb": 64000, "gpus": 4}]
    fine = [Demand("train_mnist", "", 2, 4000, 0), Demand("bench_cuda_gw_cnn", "gpu", 16, 4000, 1)]
    assert misfits(fine, partitions, default) == []
    too_big = [
        Demand("build_variant", "", 4, 8000, 0),
        Demand("build_variant", "", 4, 8000, 0),
        Demand("bench_cuda_gw_cnn", "", 1, 4000, 1),
        Demand("calib", "long", 1, 4000, 0),
    ]
    assert misfits(too_big, partitions, default) == [
        "rule build_variant asks 4 CPUs, 8000 MB but the nodes of partition cpu have at most 2 CPUs, 7800 MB: lower "
        "its resources (set-resources in the profile, or its threads in the config) or send it to a partition whose "
        "nodes have them (slurm_partition)",
        "rule bench_cuda_gw_cnn asks 1 CPUs, 4000 MB, 1 GPUs but the nodes of partition cpu have at most 2 CPUs, "
        "7800 MB, 0 GPUs: lower its resources (set-resources in the profile, or its threads in the config) or send "
        "it to a partition whose nodes have them (slurm_partition)",
        "rule calib asks 1 CPUs, 4000 MB but no partition 'long' (sinfo lists cpu, gpu): lower its resources "
        "(set-resources in the profile, or its threads in the config) or send it to a partition whose nodes have "
        "them (slurm_partition)",
    ]
