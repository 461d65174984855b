"""The workflow on a real SLURM (`make test-cluster`): a single-node cluster started here
(tests/local_slurm.py), the tiny config run with `--profile workflow/profiles/slurm`, and the
faults a cluster run meets: a job killed mid-run, a job that exits non-zero, two invocations
on the same directory, and a job that asks more than any node has. Every Snakemake invocation has a
time limit (SNAKEMAKE_TIMEOUT): a job that would pend forever fails the test, showing the queue."""

from __future__ import annotations

import copy
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from local_slurm import PARTITION, LocalSlurm, missing_commands
from test_workflow import TINY, snakemake

from cladbench.data.fetch import MNIST_T10K, mirror_dir
from cladbench.paths import REPO

pytestmark = pytest.mark.cluster
PROFILE = REPO / "workflow" / "profiles" / "slurm"
RETRIES = yaml.safe_load((PROFILE / "config.v8+.yaml").read_text())["retries"]
# The tiny config, smaller still: one C++ and one Python engine, one bench run each, the GW chain
# (simulation, real strain, training) for one engine: every rule family that runs on the cluster.
SMALL = copy.deepcopy(TINY)
SMALL.update(engines=["manual", "pytorch"], layouts=["rowmajor"], allocs=["arena"])
SMALL["bench"]["grids"] = [{**SMALL["bench"]["grids"][0], "repetitions": 1}]  # the MLP's cell, once
SMALL["gw"]["engines"] = ["manual"]
TABLES = "results/tables/runs.csv"  # the target: every record and the tables, not the figures
# The time limit (minutes) each remote rule asks for: its resources, else the profile's.
BENCH = "bench_mlp_784_32_10"  # the bench rule of SMALL's model
RUNTIMES = {"train_mnist": "60", BENCH: "120", "train_gw": "120", "gw_simulate": "30", "gw_real": "60"}
REMOTE_RULES = set(RUNTIMES)
# Seconds one Snakemake invocation may take here: the longest takes about 2 minutes on 2 cores.
SNAKEMAKE_TIMEOUT = 480
RESULT_KEYS = [
    "status",
    "epoch_train_loss",
    "epoch_test_loss",
    "epoch_test_accuracy",
    "final_loss",
    "test_accuracy",
    "roc_auc",
    "gw150914_peak_offset_s",
]


def unavailable(reason: str):
    """Skips, except under `make test-cluster` (CLADBENCH_CLUSTER_TESTS=required), where it fails."""
    if os.environ.get("CLADBENCH_CLUSTER_TESTS") == "required":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def cluster():
    if missing_commands():
        unavailable(
            f"no SLURM here (missing {', '.join(missing_commands())}): `make test-cluster` installs "
            "Debian's slurm-wlm and munge"
        )
    if not (mirror_dir() and all((mirror_dir() / name).exists() for name in MNIST_T10K)):
        unavailable("the workflow fetches MNIST by checksum: needs the data mirror (DATA_MIRROR or ../shared/data)")
    slurm = LocalSlurm()
    try:
        slurm.start()
        yield slurm
    finally:
        slurm.stop()


def scratch(tmp_path_factory, name: str, config: dict) -> Path:
    workdir = tmp_path_factory.mktemp(name)
    (workdir / "config").mkdir()
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(config))
    (workdir / "config" / "schema.yaml").write_text((REPO / "config" / "schema.yaml").read_text())
    return workdir


def on_slurm_command(workdir: Path, *args: str) -> list[str]:
    """Snakemake with the SLURM profile as it is (jobs go to the cluster's default partition), plus
    what this cluster needs: squeue for job states (no slurmdbd), and a 2 s wait before the first
    state query instead of 40 s."""
    return [
        sys.executable,
        "-m",
        "snakemake",
        "--profile",
        str(PROFILE),
        "--directory",
        str(workdir),
        "--snakefile",
        str(REPO / "Snakefile"),
        "--slurm-status-command",
        "squeue",
        "--slurm-init-seconds-before-status-checks",
        "2",
        *args,
    ]


def on_slurm(
    cluster: LocalSlurm, workdir: Path, *args: str, timeout: float = SNAKEMAKE_TIMEOUT
) -> subprocess.CompletedProcess:
    process = subprocess.Popen(
        on_slurm_command(workdir, *args),
        cwd=workdir,
        env=cluster.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    out, err = finish(cluster, process, timeout)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def start_on_slurm(cluster: LocalSlurm, workdir: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        on_slurm_command(workdir, *args),
        cwd=workdir,
        env=cluster.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def finish(cluster: LocalSlurm, process: subprocess.Popen, timeout: float = SNAKEMAKE_TIMEOUT) -> tuple[str, str]:
    """The output of a Snakemake run once it ends; past the timeout it is killed (with its process
    group) and the test fails with the queue (e.g. a job pending for PartitionConfig) and its output."""
    try:
        return process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
        pytest.fail(
            f"snakemake did not end within {timeout} s; the queue: {cluster.queue()}\n"
            f"{(out or '')[-2000:]}{(err or '')[-2000:]}"
        )


def submissions(out: str) -> dict[str, str]:
    """{SLURM job id: rule} from Snakemake's 'Job N has been submitted with SLURM jobid X (log: ...)'."""
    return {m[1]: m[2] for m in re.finditer(r"submitted with SLURM jobid (\d+) \(log: \S*/rule_(\w+?)/", out)}


def finished(out: str) -> list[str]:
    """The rules of the jobs a Snakemake run finished, sorted."""
    return sorted(re.findall(r"Finished jobid: \d+ \(Rule: (\w+)\)", out))


def records(workdir: Path) -> dict[str, dict]:
    runs = workdir / "results" / "runs"
    return {str(p.relative_to(runs)): json.loads(p.read_text()) for p in sorted(runs.rglob("*.json"))}


def wait_for(condition, timeout: float, what: str, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process is not None and process.poll() is not None:
            raise AssertionError(
                f"snakemake ended ({process.returncode}) before {what}:\n{process.stdout.read()[-3000:]}"
            )
        assert time.monotonic() < deadline, f"no {what} within {timeout} s"
        time.sleep(0.25)


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    workdir = scratch(tmp_path_factory, "local", SMALL)
    done = snakemake(workdir, TABLES)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return workdir


@pytest.fixture(scope="module")
def cluster_run(cluster, tmp_path_factory):
    """The small config on SLURM; while it runs, a second invocation on the same directory."""
    workdir = scratch(tmp_path_factory, "cluster", SMALL)
    first = start_on_slurm(cluster, workdir, TABLES)
    try:
        # The lock is taken before the first submission, which makes the SLURM log directory.
        wait_for(lambda: (workdir / ".snakemake" / "slurm_logs").exists(), 300, "first submission", first)
        second = on_slurm(cluster, workdir, TABLES)
        out, _ = finish(cluster, first)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    assert first.returncode == 0, out[-4000:]
    return workdir, out, second


def test_jobs_go_through_sbatch_and_match_a_local_run(cluster, cluster_run, local_run):
    workdir, out, _ = cluster_run
    submitted = submissions(out)
    assert set(submitted.values()) == REMOTE_RULES, out[-3000:]
    assert len(submitted) == 6  # train_mnist x2, one bench cell (both engines), gw_simulate, gw_real, train_gw
    run_id = re.search(r"SLURM run ID: (\S+)", out)[1]
    accounting = cluster.accounting()
    for job_id, rule in submitted.items():
        assert accounting[job_id]["name"] == run_id and accounting[job_id]["state"] == "COMPLETED"
        assert accounting[job_id]["partition"] == PARTITION
        assert accounting[job_id]["timelimit"] == RUNTIMES[rule], (rule, accounting[job_id])
    # The timing job had the node to itself (sbatch --exclusive): no other job ran while it ran.
    spans = {job_id: (accounting[job_id]["start"], accounting[job_id]["end"]) for job_id in submitted}
    (bench,) = [job_id for job_id, rule in submitted.items() if rule == BENCH]
    beside = [
        submitted[j]
        for j, (start, end) in spans.items()
        if j != bench and start < spans[bench][1] and spans[bench][0] < end
    ]
    assert not beside, (beside, spans)
    # Local rules (fetch, aggregate) stay on the submitting machine.
    assert {"fetch_mnist_t10k", "aggregate"} <= set(finished(out))

    cluster_records, local_records = records(workdir), records(local_run)
    assert cluster_records.keys() == local_records.keys() and len(local_records) == 5
    for name, local in local_records.items():
        for key in RESULT_KEYS:
            assert cluster_records[name].get(key) == local.get(key), (name, key)  # same seeds, same binaries


def test_a_second_invocation_on_the_same_directory_is_refused(cluster_run, local_run):
    workdir, _, second = cluster_run
    assert second.returncode != 0
    assert "LockException" in second.stderr and "Directory cannot be locked" in second.stderr, second.stderr[-2000:]
    assert "has been submitted" not in second.stdout + second.stderr
    # The first run's outputs are whole (the records match the local run above) and its lock is gone.
    locks = workdir / ".snakemake" / "locks"
    assert not locks.exists() or not any(locks.iterdir())
    assert records(workdir).keys() == records(local_run).keys()


def test_a_job_killed_mid_run_is_rerun_alone(cluster, tmp_path_factory):
    """The submitting Snakemake dies (a lost login session) while a training job runs, and the job
    is killed on the node. The rerun, after --unlock, runs that job and the aggregation only."""
    config = copy.deepcopy(SMALL)
    config["bench"]["grids"] = []
    config["gw"]["engines"] = []
    config["train"]["epochs"] = 1000  # the pytorch run takes long enough to be killed mid-run
    workdir = scratch(tmp_path_factory, "killed", config)
    kept = "results/runs/mnist/cpu-manual-rowmajor-arena-b64-t1-r0.json"
    killed = "results/runs/mnist/cpu-pytorch-rowmajor-dynamic-b64-t1-r0.json"
    done = on_slurm(cluster, workdir, kept)
    assert done.returncode == 0, done.stderr[-3000:]
    kept_mtime = (workdir / kept).stat().st_mtime_ns

    run = start_on_slurm(cluster, workdir, TABLES)
    try:
        # The trainer has started once its log exists (the shell redirects stderr there).
        trainer_log = workdir / "results" / "logs" / "train_mnist" / "cpu-pytorch-rowmajor-dynamic-b64-t1-r0.log"
        wait_for(trainer_log.exists, 300, "pytorch training", run)
        time.sleep(2)
        job = [j for j in cluster.queue() if j["state"] == "RUNNING" and "cpu-pytorch" in j["comment"]]
        assert len(job) == 1, cluster.queue()
    finally:
        os.killpg(run.pid, signal.SIGKILL)
        run.wait()
    cluster.run("scancel", job[0]["id"])
    wait_for(lambda: cluster.accounting().get(job[0]["id"], {}).get("state") == "CANCELLED", 60, "cancelled job")
    # Records are written whole or not at all: nothing half-written is left to pass for a result.
    assert sorted(p.name for p in (workdir / "results" / "runs" / "mnist").iterdir()) == [Path(kept).name]

    refused = on_slurm(cluster, workdir, TABLES)
    assert refused.returncode != 0 and "--unlock" in refused.stderr, refused.stderr[-2000:]
    assert on_slurm(cluster, workdir, "--unlock").returncode == 0
    rerun = on_slurm(cluster, workdir, TABLES)
    out = rerun.stdout + rerun.stderr
    assert rerun.returncode == 0, out[-3000:]
    assert finished(out) == ["aggregate", "train_mnist"], out[-3000:]
    assert list(submissions(out).values()) == ["train_mnist"]
    assert (workdir / kept).stat().st_mtime_ns == kept_mtime
    record = json.loads((workdir / killed).read_text())
    assert record["status"] == "ok" and len(record["epoch_train_loss"]) == 1000


def test_a_failing_job_is_retried_then_reported_with_its_logs(cluster, tmp_path_factory):
    """A real failure of the trainers: a learning rate that makes the loss NaN (exit status 3)."""
    config = copy.deepcopy(SMALL)
    config.update(engines=["manual"])
    config["train"]["lr"] = 1e12
    workdir = scratch(tmp_path_factory, "failing", config)
    target = "results/runs/mnist/cpu-manual-rowmajor-arena-b64-t1-r0.json"
    done = on_slurm(cluster, workdir, target)
    out = done.stdout + done.stderr
    assert done.returncode != 0
    attempts = [job_id for job_id, rule in submissions(out).items() if rule == "train_mnist"]
    assert len(attempts) == RETRIES + 1, out[-3000:]
    accounting = cluster.accounting()
    assert [accounting[a]["state"] for a in attempts] == ["FAILED"] * len(attempts)
    # The error names the rule's log and the SLURM log of the last attempt; both say what went wrong.
    assert "Error in rule train_mnist" in out
    rule_log = "results/logs/train_mnist/cpu-manual-rowmajor-arena-b64-t1-r0.log"
    slurm_log = f".snakemake/slurm_logs/rule_train_mnist/cpu-manual-rowmajor-arena_64_1_0/{attempts[-1]}.log"
    assert rule_log in out and slurm_log in out, out[-3000:]
    assert "non-finite loss" in (workdir / rule_log).read_text()
    assert "non-zero exit" in (workdir / slurm_log).read_text()
    assert not (workdir / target).exists()


def test_a_job_asking_more_cpus_than_any_node_has_fails_at_once(cluster, tmp_path_factory):
    """Training on more threads than the node has CPUs: SLURM would leave the job pending forever
    (PartitionConfig); the workflow stops before submitting anything, naming the rule and the numbers."""
    cpus = max(int(c.rstrip("+")) for c in cluster.run("sinfo", "--noheader", "--Node", "--format=%c").split())
    config = copy.deepcopy(SMALL)
    config["train"]["threads"] = [cpus + 1]
    config["bench"]["grids"] = []
    config["gw"]["engines"] = []
    workdir = scratch(tmp_path_factory, "too-big", config)
    started = time.monotonic()
    done = on_slurm(cluster, workdir, TABLES, timeout=180)
    out = done.stdout + done.stderr
    assert done.returncode != 0 and "has been submitted" not in out, out[-3000:]
    assert (
        f"rule train_mnist asks {cpus + 1} CPUs, 4000 MB but the nodes of partition {PARTITION} have at most "
        f"{cpus} CPUs"
    ) in out, out[-3000:]
    assert "Traceback" not in out and time.monotonic() - started < 120
