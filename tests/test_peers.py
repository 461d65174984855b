"""The peers at their best: the pytorch-compile engine (torch.compile) trains like the pytorch
engine, JAX's timed step makes no host-to-device transfer and a 1-thread JAX run uses one core,
every engine's process gets the run's threads, and the standalone loops run."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

import jsonschema
import numpy as np
import pytest
import yaml
from conftest import COMPILE_VARIANTS

from cladbench.cli import train_command
from cladbench.engines.jax import adam_schedule, jax_available
from cladbench.engines.pytorch_compile import INDUCTOR_CACHE
from cladbench.matrix import PYTHON_ENGINES, parse_variant
from cladbench.options import GRADIENT_TOLERANCE
from cladbench.paths import REPO, build_manifest

RECORD_SCHEMA = yaml.safe_load((REPO / "workflow" / "schemas" / "run_record.schema.yaml").read_text())
needs_jax = pytest.mark.skipif(
    not jax_available(), reason="JAX not installed (optional extra: pip install -e '.[jax]')"
)
needs_inductor = pytest.mark.skipif(not COMPILE_VARIANTS, reason="torch.compile cannot compile here (no C++ compiler)")


def train(engine: str, mnist, out, *extra: str) -> subprocess.CompletedProcess:
    images, labels, _ = mnist
    argv = [
        "--images",
        str(images),
        "--labels",
        str(labels),
        "--out",
        str(out),
        "--batch",
        "32",
        "--epochs",
        "2",
        "--seed",
        "1",
        *extra,
    ]
    command, env = train_command(engine, "rowmajor", "dynamic", argv)
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)


@needs_inductor
@pytest.mark.parametrize("optimizer, lr", [("sgd", "0.1"), ("adam", "0.001")])
def test_compiled_engine_trains_as_the_pytorch_engine(mnist, tmp_path, optimizer, lr):
    records = {}
    for engine in ("pytorch", "pytorch-compile"):
        done = train(engine, mnist, tmp_path / f"{engine}.json", "--optimizer", optimizer, "--lr", lr)
        assert done.returncode == 0, done.stderr
        records[engine] = json.loads((tmp_path / f"{engine}.json").read_text())
    compiled = records["pytorch-compile"]
    jsonschema.validate(compiled, RECORD_SCHEMA)
    assert compiled["status"] == "ok" and compiled["engine"] == "pytorch-compile"
    assert (
        compiled["gradient_generator"].startswith("PyTorch 2.13.0")
        and "torch.compile" in compiled["gradient_generator"]
    )
    assert compiled["grad_max_rel_err"] < GRADIENT_TOLERANCE  # the compiled forward and backward, against LibTorch
    assert compiled["compile_time_s"] > 0.5 > records["pytorch"]["compile_time_s"]  # the compile, outside the timing
    assert compiled["steps_timed"] == 2 * (8000 // 32) - 10 and compiled["step_time_median_s"] > 0
    # The same parameters, batches and updates: the curves agree to rounding (1e-8 measured).
    for a, b in zip(compiled["epoch_train_loss"], records["pytorch"]["epoch_train_loss"]):
        assert abs(a - b) <= 1e-6 * b
    assert compiled["test_accuracy"] >= 0.9
    assert any((INDUCTOR_CACHE / "fxgraph").iterdir())  # the compiled graphs, kept for the next run


@needs_inductor
def test_compiled_engine_without_a_compiler_says_so(mnist, tmp_path):
    images, labels, _ = mnist
    env = {**os.environ, "CXX": str(tmp_path / "no-such-g++")}  # Inductor's compiler: $CXX, else g++
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "cladbench.engines.pytorch_compile",
            "--images",
            str(images),
            "--labels",
            str(labels),
            "--out",
            str(tmp_path / "r.json"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"cladbench pytorch-compile engine: torch.compile (Inductor) needs a C++ compiler: "
        f"{tmp_path / 'no-such-g++'} not found (set CXX)"
    )
    assert not (tmp_path / "r.json").exists()


@needs_jax
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_jax_step_moves_nothing_from_the_host(optimizer):
    """prepare puts the batch on the device; the timed step then transfers nothing host-to-device
    (no numpy batch, no per-step scalar), which jax.transfer_guard would stop. In a child
    process: the stepper pins its process to one CPU."""
    script = f"""
import argparse, jax, torch
from cladbench.core import core
from cladbench.engines.jax import JaxStepper
args = argparse.Namespace(threads=1, lr=0.001, optimizer="{optimizer}", warmup=0)
stepper = JaxStepper("mlp", [784, 16, 10], core.init_params("mlp", [784, 16, 10], 1), args)
batch = stepper.prepare(torch.rand(8, 784), torch.randint(0, 10, (8,)))
assert all(isinstance(a, jax.Array) for a in batch)
with jax.transfer_guard_host_to_device("disallow"):
    losses = [stepper.step(batch) for _ in range(3)]
assert losses[2] < losses[0], losses
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_adam_schedule_is_torchs_scalars_in_float32():
    step_size, bias_correction2_sqrt = adam_schedule(1e-3, 0.9, 0.999)
    for t in (1, 2, 10, 1000, len(step_size)):  # torch.optim.Adam: Python floats (double), then float32 kernels
        assert step_size[t - 1] == np.float32(1e-3 / (1 - 0.9**t))
        assert bias_correction2_sqrt[t - 1] == np.float32((1 - 0.999**t) ** 0.5)
    assert step_size[-1] == np.float32(1e-3) and bias_correction2_sqrt[-1] == 1  # from here on, constant
    assert 10_000 < len(step_size) < 40_000


@needs_jax
def test_a_one_thread_jax_run_uses_one_core(mnist, tmp_path):
    """The child's CPU time over its wall time, from the kernel's resource usage: near 1 with one
    thread. The model is large enough that XLA would spread its GEMMs over every core it may use."""
    images, labels, _ = mnist
    argv = [
        "--images",
        str(images),
        "--labels",
        str(labels),
        "--out",
        str(tmp_path / "r.json"),
        "--hidden",
        "1024,1024",
        "--batch",
        "256",
        "--epochs",
        "2",
        "--threads",
        "1",
        "--warmup",
        "2",
    ]
    command, env = train_command("jax", "rowmajor", "dynamic", argv)
    start = time.perf_counter()
    child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    assert child.returncode == 0
    cores = (usage.ru_utime + usage.ru_stime) / wall
    assert cores <= 1.1, f"a 1-thread jax run kept {cores:.2f} cores busy"


def test_every_engine_gets_the_runs_threads():
    """OMP_NUM_THREADS and MKL_NUM_THREADS are the run's --threads in every engine's environment
    (OpenMP and MKL read them once, at start-up), C++ trainers and Python engines alike."""
    variants = [*build_manifest()["variants"], *(f"cpu-{engine}-rowmajor-dynamic" for engine in PYTHON_ENGINES)]
    for variant in variants:
        _, engine, layout, alloc = parse_variant(variant)
        for argv, threads in ((["--threads", "3", "--batch", "8"], "3"), (["--batch", "8"], "1")):
            _, env = train_command(engine, layout, alloc, argv)
            assert env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == threads, variant


def test_standalone_loops_run_without_cladbench():
    script = REPO / "tools" / "peers" / "standalone.py"
    source = script.read_text()
    assert not re.search(r"^\s*(import|from)\s+cladbench", source, re.MULTILINE)
    loops = "jax,eager" if jax_available() else "eager"
    done = subprocess.run(
        [sys.executable, str(script), "--cells", "mlp32", "--loops", loops],
        capture_output=True,
        text=True,
        timeout=600,
        cwd="/",
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == len(loops.split(",")) and all(line.startswith("mlp32  standalone ") for line in lines)
    assert all(float(line.split()[-2]) > 0 for line in lines)
