"""The benchmark (cladbench bench): model names, the runs' lengths, and real bench runs of the kernel
and LibTorch engines on MNIST whose records carry their GEMM floor. Speed itself is not asserted
here: it lives in the benchmark's figures and targets table."""

from __future__ import annotations

import json
import re
import statistics
import subprocess
import sys

import pytest
from conftest import CLAD_BUILT, clad_skip_reason

from cladbench.bench import study as bench
from cladbench.bench.study import epochs_for, parse_model, train_args

MNIST_SECTION = {"train_range": [0, 8000], "test_range": [8000, 10000]}
TRAIN_SECTION = {"lr": 0.1, "optimizer": "sgd", "seed": 1, "warmup": 10}


def test_model_names():
    assert parse_model("mlp-784-512-512-10").hidden == [512, 512]
    assert parse_model("gw-cnn").dataset == "gw-sim"
    for bad in ("mlp-784-10", "mlp-100-128-10", "mlp-784-0-10", "cnn", "mlp-784-x-10"):
        with pytest.raises(ValueError, match="bench model"):
            parse_model(bad)


def test_runs_time_at_least_min_steps_at_every_batch():
    for batch in (1, 8, 32, 256, 1024):
        epochs = epochs_for(8000, batch, warmup=10, min_steps=100)
        assert (8000 // batch) * epochs >= 110
        assert (8000 // batch) * (epochs - 1) < 110 or epochs == 1  # no more epochs than needed
    with pytest.raises(ValueError, match="larger than"):
        epochs_for(100, 128, 10, 100)


def test_train_args_for_mnist_and_gw():
    mnist = {**MNIST_SECTION, "images": "i.gz", "labels": "l.gz"}
    args = train_args(
        parse_model("mlp-784-512-512-10"), 1024, 2, 3, mnist=mnist, gw={}, train=TRAIN_SECTION, min_steps=100
    )
    flags = dict(zip(args[::2], args[1::2]))
    assert flags["--hidden"] == "512,512" and flags["--purpose"] == "bench" and flags["--threads"] == "2"
    assert flags["--epochs"] == str(epochs_for(8000, 1024, 10, 100)) and flags["--repetition"] == "3"
    gw = {
        "train_range": [0, 5000],
        "test_range": [5000, 6000],
        "conv": "8k16p4",
        "hidden": 32,
        "lr": 0.001,
        "optimizer": "adam",
        "seed": 1,
        "warmup": 10,
        "data": "sim.h5",
    }
    flags = dict(
        zip(
            *[iter(train_args(parse_model("gw-cnn"), 32, 1, 0, mnist=mnist, gw=gw, train=TRAIN_SECTION, min_steps=100))]
            * 2
        )
    )
    assert flags["--model"] == "cnn" and flags["--data"] == "sim.h5" and flags["--dataset"] == "gw-sim"


@pytest.fixture(scope="module")
def bench_run(mnist, tmp_path_factory):
    images, labels, _ = mnist
    out = tmp_path_factory.mktemp("bench")
    variants = ["cpu-manual-rowmajor-arena", "cpu-libtorch-rowmajor-dynamic"] + (
        ["cpu-clad-rowmajor-arena"] if CLAD_BUILT else []
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "cladbench",
            "bench",
            "--models",
            "mlp-784-32-10",
            "--variants",
            ",".join(variants),
            "--batch",
            "64",
            "--repetitions",
            "2",
            "--min-steps",
            "20",
            "--images",
            str(images),
            "--labels",
            str(labels),
            "--out-dir",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    return done, out, variants


def test_bench_writes_a_record_per_cell_with_its_floor(bench_run):
    done, out, variants = bench_run
    assert done.returncode == 0, done.stderr
    records = [json.loads(p.read_text()) for p in sorted((out / "mlp-784-32-10").glob("*.json"))]
    assert len(records) == 2 * len(variants)
    for record in records:
        assert record["purpose"] == "bench" and record["status"] == "ok" and record["model"] == "mlp-784-32-10"
        assert record["steps_timed"] >= 20
        assert 0 < record["gemm_floor_median_s"] < record["step_time_median_s"] * 1.5
    assert "[bench 1/" in done.stderr  # a progress line per run
    assert "x floor" in done.stdout and "libtorch-rowmajor-dynamic" in done.stdout


def test_bench_summary_prints_clads_ratios_as_the_records_give_them(bench_run):
    """Each printed ratio is the median over repetitions of t_variant / t_clad from the records, and
    says "faster" exactly when it is above 1."""
    done, out, variants = bench_run
    if not CLAD_BUILT:
        pytest.skip(clad_skip_reason())
    records = [json.loads(p.read_text()) for p in (out / "mlp-784-32-10").glob("*.json")]
    times = {(r["engine"], r["repetition"]): r["step_time_median_s"] for r in records}
    printed = dict(re.findall(r"^\s+cpu-(\w+)-\S+ .*  (clad \d+\.\d+x (?:faster|\(slower\)))$", done.stdout, re.M))
    assert set(printed) == {"manual", "libtorch"}, done.stdout
    for engine, text in printed.items():
        expected = statistics.median(times[engine, rep] / times["clad", rep] for rep in (0, 1))
        assert text == bench.clad_ratio(expected), (engine, text, expected)
    assert bench.clad_ratio(1.22) == "clad 1.22x faster" and bench.clad_ratio(0.81) == "clad 0.81x (slower)"


def test_bench_rejects_a_bad_model(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "cladbench", "bench", "--models", "resnet50", "--out-dir", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and "bench model resnet50" in done.stderr and "Traceback" not in done.stderr
