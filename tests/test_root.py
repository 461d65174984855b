"""ROOT integration: runs fed batch by batch (FedRun) from a TTree or an RNTuple, by the ROOT macro
under root.exe and by PyROOT, give the file-fed run's losses (same seed, same batches) within 1e-6
relative; the ROOT files read back as the trainers' data, by every reader; the feeding benchmark.

The FedRun tests need no ROOT. The ROOT-file tests need ROOT (in requirements.lock, so `make test`
runs them; `make test-root` runs this file alone) and are marked slow: about two minutes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import engine_param

from cladbench.cli import train_command
from cladbench.core import core
from cladbench.data import gw
from cladbench.paths import REPO
from cladbench.records import aggregate
from cladbench.report import build_report
from cladbench.report.tables import read_table, root_fed_table
from cladbench.root import FORMATS, INPUTS, readers_of, root_missing_reason

RECORD_SCHEMA = yaml.safe_load((REPO / "workflow" / "schemas" / "run_record.schema.yaml").read_text())
TRAIN, TEST = (0, 1536), (9000, 10000)
FLAGS = [
    "--hidden",
    "32",
    "--batch",
    "64",
    "--epochs",
    "3",
    "--lr",
    "0.1",
    "--seed",
    "5",
    "--threads",
    "1",
    "--warmup",
    "4",
    "--train-range",
    f"{TRAIN[0]}:{TRAIN[1]}",
    "--test-range",
    f"{TEST[0]}:{TEST[1]}",
]
ENGINES = [engine_param("clad"), engine_param("manual")]
needs_root = pytest.mark.skipif(root_missing_reason() is not None, reason=str(root_missing_reason()))


def file_fed(engine: str, images, labels, out: Path) -> dict:
    """The file-fed run (cladbench-train, rowmajor-arena) the TTree-fed runs must reproduce."""
    command, env = train_command(
        engine, "rowmajor", "arena", ["--images", str(images), "--labels", str(labels), "--out", str(out), *FLAGS]
    )
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return json.loads(out.read_text())


def assert_same_losses(fed: dict, file: dict) -> None:
    for key in ("epoch_train_loss", "epoch_test_loss"):
        np.testing.assert_allclose(fed[key], file[key], rtol=1e-6, atol=0, err_msg=key)
    assert len(fed["epoch_train_loss"]) == 3


# ---------------------------------------------------------------------------------------------
# FedRun through the Python module, fed from numpy: no ROOT needed


def fed_run(engine: str, images, labels, out: Path, *, order_of=None) -> dict:
    """MNIST rows fed to a FedRun in the order it asks for (or `order_of(epoch, order)`)."""
    x, y = (t.numpy() for t in core.load_mnist(str(images), str(labels)))
    train_x, train_y = x[TRAIN[0] : TRAIN[1]], y[TRAIN[0] : TRAIN[1]]
    run = core.FedRun(
        engine,
        "rowmajor",
        "arena",
        [*FLAGS, "--input", "ttree-pyroot", "--data", "numpy", "--out", str(out)],
        len(train_y),
        x.shape[1],
        10,
    )
    run.set_test(x[TEST[0] : TEST[1]], y[TEST[0] : TEST[1]])
    for epoch in range(run.epochs):
        order = run.epoch_order(epoch)
        order = order_of(epoch, order) if order_of else order
        for s in range(run.steps_per_epoch):
            rows = order[s * run.batch : (s + 1) * run.batch]
            run.step(train_x[rows], train_y[rows])
        run.end_epoch()
    assert run.finish() == 0
    return json.loads(out.read_text())


@pytest.mark.parametrize("engine", ENGINES)
def test_fed_run_in_the_seeds_order_is_the_file_fed_run(engine, mnist, tmp_path):
    images, labels, what = mnist
    file = file_fed(engine, images, labels, tmp_path / "file.json")
    fed = fed_run(engine, images, labels, tmp_path / "fed.json")
    assert_same_losses(fed, file)
    jsonschema.validate(fed, RECORD_SCHEMA)
    assert (fed["input"], file["input"]) == ("ttree-pyroot", "file")
    assert fed["grad_max_rel_err"] == pytest.approx(file["grad_max_rel_err"], rel=1e-6)
    assert fed["model"] == file["model"] and fed["steps_per_epoch"] == file["steps_per_epoch"] == 24


def test_fed_run_in_another_order_is_another_run(mnist, tmp_path):
    """The agreement above comes from the order: reversed batches give other losses."""
    images, labels, _ = mnist
    file = file_fed("manual", images, labels, tmp_path / "file.json")
    fed = fed_run("manual", images, labels, tmp_path / "fed.json", order_of=lambda epoch, order: order[::-1].copy())
    assert not np.allclose(fed["epoch_train_loss"], file["epoch_train_loss"], rtol=1e-5, atol=0)


def test_fed_run_refuses_what_does_not_fit(mnist):
    x, y = (t.numpy() for t in core.load_mnist(str(mnist[0]), str(mnist[1])))
    args = [*FLAGS, "--input", "ttree-macro", "--data", "t.root"]
    with pytest.raises(ValueError, match="train-range"):
        core.FedRun("manual", "rowmajor", "arena", args, 1000, 784, 10)
    with pytest.raises(ValueError, match="--images and --labels are required"):  # a file-fed run reads files
        core.FedRun("manual", "rowmajor", "arena", [*FLAGS, "--input", "file"], TRAIN[1], 784, 10)
    run = core.FedRun("manual", "rowmajor", "arena", args, TRAIN[1], 784, 10)
    with pytest.raises(ValueError, match="64 samples of 784 floats"):
        run.step(x[:32], y[:32])
    run.step(x[:64], y[:64])
    with pytest.raises(RuntimeError, match="no test set"):
        run.end_epoch()
    run.set_test(x[9000:], y[9000:])
    with pytest.raises(RuntimeError, match="ended after 1 steps, not 24"):
        run.end_epoch()


def test_non_finite_loss_fails_the_fed_run(mnist, tmp_path):
    x, y = (t.numpy() for t in core.load_mnist(str(mnist[0]), str(mnist[1])))
    out = tmp_path / "fed.json"
    flags = [*FLAGS, "--lr", "1e30", "--input", "ttree-macro", "--data", "t.root", "--out", str(out)]
    run = core.FedRun("manual", "rowmajor", "arena", flags, TRAIN[1], 784, 10)
    losses = []
    while not run.failed and len(losses) < 24:
        losses.append(run.step(x[:64], y[:64]))
    assert np.isnan(losses[-1]) and np.isfinite(losses[0])
    assert run.failed and "non-finite loss" in run.error
    with pytest.raises(RuntimeError, match="the run has failed"):
        run.step(x[:64], y[:64])
    assert run.finish() == 3
    record = json.loads(out.read_text())
    assert record["status"] == "failed" and "non-finite" in record["error"]


def test_report_compares_fed_runs_with_their_file_fed_twin(mnist, tmp_path):
    """runs.csv's input column, and the report's ROOT-fed table: a fed run beside its file-fed twin."""
    images, labels, _ = mnist
    file_fed("manual", images, labels, tmp_path / "file.json")
    fed_run("manual", images, labels, tmp_path / "fed.json")
    old = json.loads((tmp_path / "file.json").read_text())
    del old["input"]  # a record from before the input field
    (tmp_path / "old.json").write_text(json.dumps({**old, "repetition": 1}))
    aggregate.write_tables(
        [tmp_path / "file.json", tmp_path / "fed.json", tmp_path / "old.json"], tmp_path / "tables", {}
    )
    runs = pd.read_csv(tmp_path / "tables" / "runs.csv")
    assert sorted(runs["input"]) == ["file", "file", "ttree-pyroot"]
    table = root_fed_table(read_table(tmp_path / "tables", "runs"), read_table(tmp_path / "tables", "epochs"))
    assert len(table) == 1 and table.iloc[0]["epochs"] == 3 and table.iloc[0]["loss_max_rel_diff"] <= 1e-5
    build_report(tmp_path / "tables", tmp_path / "report", only="tables")
    assert "ttree-pyroot & manual-rowmajor-arena & 64" in (tmp_path / "report" / "root_fed.tex").read_text()


def test_workflow_runs_the_root_jobs_or_says_why_not(tmp_path):
    """A dry run of the quick default: the ROOT jobs where ROOT is installed, else a not-run line."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "-n",
            "--forceall",  # the jobs the target needs, whatever results/ already holds
            "--cores",
            "1",
            "--directory",
            str(REPO),
            "--snakefile",
            str(REPO / "Snakefile"),
            "root",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-3000:]
    if root_missing_reason():
        for fmt in FORMATS:
            assert f"not run: {fmt}-*: {root_missing_reason()}" in out
    else:
        for rule in ("train_root", "root_mnist", "root_gw", "root_feed"):
            assert rule in out
        for fmt in FORMATS:
            assert f"resources/root/mnist-{fmt}.root" in out and f"results/runs/root/{fmt}-macro/" in out


# ---------------------------------------------------------------------------------------------
# The ROOT files: need ROOT (slow)


def cladbench_root(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cladbench", "root", *args], capture_output=True, text=True, timeout=600
    )


def write_mnist(mnist, out: Path, fmt: str, train=TRAIN) -> Path:
    done = cladbench_root(
        "write-mnist",
        "--format",
        fmt,
        "--images",
        str(mnist[0]),
        "--labels",
        str(mnist[1]),
        "--train-range",
        f"{train[0]}:{train[1]}",
        "--test-range",
        f"{TEST[0]}:{TEST[1]}",
        "--out",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture(scope="module")
def root_files(mnist, tmp_path_factory) -> dict[str, Path]:
    """The MNIST rows as a TTree file and as an RNTuple file: {format: path}."""
    folder = tmp_path_factory.mktemp("root")
    return {fmt: write_mnist(mnist, folder / f"mnist-{fmt}.root", fmt) for fmt in FORMATS}


def root_fed(input: str, engine: str, data: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return cladbench_root(
        "train", "--input", input, "--data", str(data), "--engine", engine, "--out", str(out), *FLAGS, *extra
    )


@pytest.mark.slow
@needs_root
@pytest.mark.parametrize("engine", ENGINES)
def test_macro_and_pyroot_give_the_file_fed_losses(engine, mnist, root_files, tmp_path):
    file = file_fed(engine, mnist[0], mnist[1], tmp_path / "file.json")
    for input in INPUTS:
        data, out = root_files[input.split("-")[0]], tmp_path / f"{input}.json"
        done = root_fed(input, engine, data, out)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        record = json.loads(out.read_text())
        jsonschema.validate(record, RECORD_SCHEMA)
        assert_same_losses(record, file)
        assert record["input"] == input and record["engine"] == engine and record["data_files"] == [str(data)]
        assert record["versions"]["root"].startswith("6.")
        # No Python in the macro's process; its steps allocate as the file-fed trainer's do (counted).
        assert (record["versions"]["python"] is None) == input.endswith("-macro")
        assert record["allocs_per_step"] == file["allocs_per_step"] == 0


@pytest.mark.slow
@needs_root
def test_macro_reports_bad_input_with_status_2(root_files, tmp_path):
    for fmt in FORMATS:
        done = root_fed(f"{fmt}-macro", "manual", root_files[fmt], tmp_path / "x.json", "--train-range", "0:999")
        assert done.returncode == 2
        assert "the training set has 1536 samples but --train-range 0:999 names 999" in done.stderr
        assert not (tmp_path / "x.json").exists()


@pytest.mark.slow
@needs_root
def test_root_files_read_back_as_the_trainers_see_the_data(mnist, root_files, tmp_path):
    from cladbench.root import read_samples, write_gw

    x, y = (t.numpy() for t in core.load_mnist(str(mnist[0]), str(mnist[1])))
    simulated = tmp_path / "simulated.h5"
    gw.simulate(simulated, n_windows=8, seed=4)
    sim = core.load_gw_windows(str(simulated))
    for fmt in FORMATS:
        gw_file = write_gw(str(simulated), "", tmp_path / f"gw-{fmt}.root", fmt)
        for reader in readers_of(fmt):
            for name, (a, b) in (("train", TRAIN), ("test", TEST)):
                tx, ty = read_samples(root_files[fmt], name, reader)
                np.testing.assert_array_equal(tx, x[a:b], err_msg=f"{fmt} {reader} {name}")
                np.testing.assert_array_equal(ty, y[a:b], err_msg=f"{fmt} {reader} {name}")
            gx, glabels = read_samples(gw_file, "windows", reader)
            np.testing.assert_array_equal(gx, sim["x"].numpy())
            np.testing.assert_array_equal(glabels, sim["labels"].numpy())
        import ROOT

        snr = ROOT.RDataFrame("windows", str(gw_file)).AsNumpy(["snr"])["snr"]
        np.testing.assert_array_equal(snr, sim["snr"].numpy())
        assert ROOT.TFile.Open(str(gw_file)).Get("channels").GetVal() == sim["channels"]
    with pytest.raises(ValueError, match="reader nope"):
        read_samples(root_files["ttree"], "train", "nope")


@pytest.mark.slow
@needs_root
def test_feeding_benchmark_times_every_format_and_reader(mnist, root_files, tmp_path):
    simulated = tmp_path / "simulated.h5"
    gw.simulate(simulated, n_windows=16, seed=2)
    gw_files = []
    for fmt in FORMATS:
        gw_files.append(tmp_path / f"gw-{fmt}.root")
        assert (
            cladbench_root("write-gw", "--format", fmt, "--data", str(simulated), "--out", str(gw_files[-1])).returncode
            == 0
        )
    out = tmp_path / "root_feed.csv"
    args = ["feed", "--images", str(mnist[0]), "--labels", str(mnist[1]), "--train-range", f"{TRAIN[0]}:{TRAIN[1]}"]
    args += ["--mnist", *map(str, root_files.values()), "--gw-data", str(simulated), "--gw", *map(str, gw_files)]
    done = cladbench_root(*args, "--repetitions", "2", "--out", str(out))
    assert done.returncode == 0, done.stderr
    table = pd.read_csv(out)
    assert list(table.groupby(["dataset", "format"]).size().items()) == [
        (("gw", "hdf5"), 1),
        (("gw", "rntuple"), 3),
        (("gw", "ttree"), 2),
        (("mnist", "idx"), 1),
        (("mnist", "rntuple"), 3),
        (("mnist", "ttree"), 2),
    ]
    mnist_rows = table[table.dataset.eq("mnist")].set_index("format")
    assert mnist_rows.loc["ttree", "samples"].tolist() == [TRAIN[1] - TRAIN[0]] * 2
    assert mnist_rows.loc["idx", "samples"] == len(core.load_mnist(str(mnist[0]), str(mnist[1]))[1])
    assert table[table.dataset.eq("gw")].samples.eq(16).all() and table.repetitions.eq(2).all()
    assert (table.samples_per_s > 0).all() and (table.seconds_q1 <= table.seconds_q3).all()
    # Trees of other rows than --train-range says are not the data: the benchmark refuses them.
    other = write_mnist(mnist, tmp_path / "other.root", "ttree", train=(1, TRAIN[1] + 1))
    args[args.index("--mnist") + 1] = str(other)
    done = cladbench_root(*args, "--repetitions", "1", "--out", str(tmp_path / "x.csv"))
    assert done.returncode == 2 and "differs from the mnist data the trainers read" in done.stderr
