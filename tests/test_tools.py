"""The command line around the core: doctor, the main job's config validation, data staging, and
the C++ tests (ctest)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

from cladbench.cuda import cuda_variant, trains_cnn, variant_problem
from cladbench.paths import REPO, build_dir, build_manifest
from conftest import CLAD_BUILT, COMPILE_VARIANTS, RUNNABLE_VARIANTS


def test_doctor_reports_the_machine():
    done = subprocess.run([sys.executable, "-m", "cladbench", "doctor"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "torch        2.13.0" in out and "share/cmake/Torch" in out
    assert "C++ compiler" in out and "nvcc" in out and "GPUs" in out
    assert "yes  cpu-manual-rowmajor-arena" in out
    for engine in ("clad", "manual", "libtorch", "pytorch"):  # each cuda variant, with why not where it cannot run
        variant = cuda_variant(engine)
        problem = variant_problem(variant, build_manifest())
        assert (f"no   {variant}: {problem}" if problem else f"yes  {variant}") in out
    if CLAD_BUILT:
        assert f"Clad         {build_manifest()['clad_version']} at {build_manifest()['clad_prefix']}" in out
        assert "yes  cpu-clad-rowmajor-arena" in out
    else:
        assert "Clad         not usable:" in out and "no   cpu-clad-rowmajor-arena" in out


def test_cpp_tests_pass():
    done = subprocess.run(["ctest", "--output-on-failure"], cwd=build_dir(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "100% tests passed" in done.stdout


def job_counts(out: str) -> dict[str, int]:
    """The 'Job stats' table of a snakemake run: {rule: count}."""
    rows = (line.split() for line in out.splitlines())
    return {row[0]: int(row[1]) for row in rows if len(row) == 2 and row[1].isdigit() and row[0] != "total"}


def dry_run(tmp_path, config, env=None):
    """`snakemake -n` of the workflow with this config, in a scratch directory."""
    (tmp_path / "config").mkdir(exist_ok=True)
    (tmp_path / "config" / "schema.yaml").write_text((REPO / "config" / "schema.yaml").read_text())
    (tmp_path / "config" / "config.yaml").write_text(yaml.safe_dump(config))
    command = [sys.executable, "-m", "snakemake", "--cores", "1", "-n", "--directory", str(tmp_path),
               "--snakefile", str(REPO / "Snakefile")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    return done.returncode, done.stdout + done.stderr


def test_without_a_compiler_for_inductor_pytorch_compile_is_not_run(tmp_path):
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    rc, out = dry_run(tmp_path, config, env={**os.environ, "CXX": str(tmp_path / "no-such-g++")})
    assert rc == 0, out
    assert (f"not run: cpu-pytorch-compile-*: torch.compile (Inductor) needs a C++ compiler: {tmp_path / 'no-such-g++'} "
            "not found (set CXX)") in out
    assert "cpu-pytorch-compile-rowmajor-dynamic" not in out.replace("cpu-pytorch-compile-*", "")


def test_the_default_config_dry_runs_the_whole_matrix(tmp_path):
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    rc, out = dry_run(tmp_path, config)
    assert rc == 0, out
    counts = job_counts(out)
    variants = len(RUNNABLE_VARIANTS) + len(COMPILE_VARIANTS)  # the configs list pytorch-compile
    assert counts["train_mnist"] == variants * len(config["train"]["batch"]) * len(config["train"]["threads"])
    assert counts["train_gw"] == variants
    bench = config["bench"]
    assert counts["bench"] == (len(bench["models"]) * variants * len(bench["batch"]) * len(bench["threads"])
                               * bench["repetitions"])
    assert "not run: cuda-*" in out
    if not COMPILE_VARIANTS:
        assert "not run: cpu-pytorch-compile-*: torch.compile (Inductor) needs" in out
    if not CLAD_BUILT:
        assert "not run: cpu-clad-*: Clad not available" in out


@pytest.mark.parametrize("change, message", [
    (lambda c: c["train"].update(optimiser="sgd"), "Additional properties are not allowed ('optimiser'"),
    (lambda c: c["train"].update(batch=[0]), "0 is less than the minimum of 1"),
    (lambda c: c.update(engines=["clad", "tensorflow"]), "'tensorflow' is not one of"),
    (lambda c: c["train"].update(epochs=0), "0 is less than the minimum of 1"),
])
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
    command = [sys.executable, "-m", "snakemake", "-n", "--profile", str(REPO / "workflow" / "profiles" / "slurm"),
               "--directory", str(tmp_path), "--snakefile", str(REPO / "Snakefile")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-3000:]
    variants = len(RUNNABLE_VARIANTS) + len(COMPILE_VARIANTS)  # the configs list pytorch-compile
    # devices [cpu, cuda]: the cuda variants this build made (and pytorch where torch is a CUDA build) run too
    cuda = [cuda_variant(e) for e in ("clad", "manual", "libtorch", "pytorch")
            if variant_problem(cuda_variant(e), build_manifest(), need_device=False) is None]
    cuda_cnn = sum(trains_cnn(v) for v in cuda)  # the GPU clad engine is the MLP's: no gw-cnn cells
    counts = job_counts(out)
    assert counts["train_mnist"] == (variants + len(cuda)) * 6 * 2 * 5  # batches x threads x repetitions
    # models: two MLPs and gw-cnn
    assert counts["bench"] == (3 * variants * 6 + (2 * len(cuda) + cuda_cnn) * len(config["bench"]["cuda_batch"])) * 2 * 5


def test_snakemake_lint_is_clean():
    done = subprocess.run([sys.executable, "-m", "snakemake", "--lint", "--snakefile", str(REPO / "Snakefile"),
                           "--directory", str(REPO)], capture_output=True, text=True, timeout=300)
    assert "Congratulations, your workflow is in a good condition!" in done.stdout + done.stderr, done.stdout
