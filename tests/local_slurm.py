"""A single-node SLURM cluster on this machine, for the cluster tests: munged, slurmctld and slurmd
from Debian's munge and slurm-wlm, configured in a temporary directory, listening on free ports
of 127.0.0.1, and stopped again (jobs cancelled first) by `stop()`.

No slurmdbd (it needs a database): accounting storage is off, so `sacct` reads the job completion
log instead (`JobCompType=jobcomp/filetxt`, `sacct --completion`), and Snakemake's SLURM plugin
polls job states with `squeue` (`--slurm-status-command squeue`), which sees finished jobs for
`MinJobAge` seconds."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

COMMANDS = ["munged", "slurmctld", "slurmd", "sbatch", "squeue", "sacct", "scancel", "srun", "sinfo"]
PARTITION = "cladbench"


def missing_commands() -> list[str]:
    return [name for name in COMMANDS if not shutil.which(name) and not Path("/usr/sbin", name).exists()]


def _command(name: str) -> str:
    return shutil.which(name) or f"/usr/sbin/{name}"


def _user() -> str:
    return pwd.getpwuid(os.getuid()).pw_name


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalSlurm:
    def __init__(self):
        # munged insists that every user can reach its socket's directory; pytest's tmp_path is 0700.
        self.root = Path(tempfile.mkdtemp(prefix="cladbench-slurm-"))
        self.root.chmod(0o711)
        self.conf = self.root / "slurm.conf"
        self.bin = self.root / "bin"
        self.jobcomp = self.root / "jobcomp.txt"
        self.processes: dict[str, subprocess.Popen] = {}
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}

    def start(self, timeout: float = 60) -> None:
        root = self.root
        for name in ["state", "spool", "log", "bin"]:
            (root / name).mkdir()
        key = root / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o600)
        socket_path = root / "munge.socket"
        # The node as slurmd sees it (CPUs, memory), reachable on 127.0.0.1.
        node = subprocess.run([_command("slurmd"), "-C"], capture_output=True, text=True, check=True).stdout
        node = node.splitlines()[0]
        hostname = node.split()[0].split("=")[1]
        self.conf.write_text(f"""\
ClusterName=cladbench
SlurmctldHost={hostname}(127.0.0.1)
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
SlurmUser={_user()}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={socket_path}
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc={self.jobcomp}
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MinJobAge=3600
ReturnToService=2
MpiDefault=none
{node} NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName={PARTITION} Nodes={hostname} Default=YES MaxTime=INFINITE State=UP
""")
        # Snakemake's jobstep plugin removes every SLURM_* variable, SLURM_CONF too, before it calls
        # srun inside a job. A real cluster keeps slurm.conf where srun looks without the variable
        # (/etc/slurm); this one lives here, so srun gets it from a wrapper first in PATH.
        srun = self.bin / "srun"
        srun.write_text(f'#!/bin/sh\nSLURM_CONF={self.conf} exec {_command("srun")} "$@"\n')
        srun.chmod(0o755)
        self.env["PATH"] = f"{self.bin}{os.pathsep}{self.env['PATH']}"

        self._spawn(
            "munged",
            [
                _command("munged"),
                "--foreground",
                f"--socket={socket_path}",
                f"--key-file={key}",
                f"--log-file={root}/log/munged.log",
                f"--pid-file={root}/munged.pid",
                f"--seed-file={root}/munged.seed",
            ],
        )
        self._wait(lambda: socket_path.exists(), timeout, "munged did not create its socket")
        self._spawn("slurmctld", [_command("slurmctld"), "-D", "-f", str(self.conf)])
        self._spawn("slurmd", [_command("slurmd"), "-D", "-f", str(self.conf)])
        self._wait(
            lambda: self.run("sinfo", "-h", "-o", "%T", check=False).strip() == "idle",
            timeout,
            "the node did not become idle",
        )

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = open(self.root / "log" / f"{name}.out", "w")
        self.processes[name] = subprocess.Popen(
            argv, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def _wait(self, condition, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited with {process.returncode}:\n{self.logs()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} within {timeout} s:\n{self.logs()}")
            time.sleep(0.5)

    def logs(self) -> str:
        return "\n".join(
            f"== {p.name}\n" + "\n".join(p.read_text(errors="replace").splitlines()[-15:])
            for p in sorted((self.root / "log").glob("*"))
        )

    def run(self, command: str, *args: str, check: bool = True) -> str:
        """A SLURM client command on this cluster; its stdout."""
        done = subprocess.run([_command(command), *args], env=self.env, capture_output=True, text=True, timeout=60)
        if check and done.returncode:
            raise RuntimeError(f"{command} {' '.join(args)}: {done.stderr}")
        return done.stdout

    def queue(self) -> list[dict]:
        """Every job slurmctld still knows (finished ones for MinJobAge): id, state, comment (Snakemake
        puts the rule and wildcards there), reason (why a job pends)."""
        rows = self.run("squeue", "--states=all", "-h", "-o", "%i|%T|%k|%r").splitlines()
        return [dict(zip(["id", "state", "comment", "reason"], row.split("|"))) for row in rows]

    def accounting(self) -> dict[str, dict]:
        """sacct from the job completion log: {job id: {name, state, partition, time limit, start,
        end}} of finished jobs (start and end to the second, ISO 8601)."""
        rows = self.run(
            "sacct",
            "--completion",
            "--parsable2",
            "--noheader",
            "--format=JobIdRaw,JobName,State,Partition,Timelimit,Start,End",
        ).splitlines()
        keys = ["name", "state", "partition", "timelimit", "start", "end"]
        return {r[0]: dict(zip(keys, r[1:])) for r in (row.split("|") for row in rows)}

    def stop(self) -> None:
        """Cancels what still runs, then stops the daemons; safe to call on a half-started cluster."""
        if "slurmd" in self.processes and self.processes["slurmd"].poll() is None:
            active = self.run("squeue", "-h", "-o", "%i", check=False).split()
            if active:
                self.run("scancel", "--full", *active, check=False)
            deadline = time.monotonic() + 30
            while self.run("squeue", "-h", "-o", "%i", check=False).split() and time.monotonic() < deadline:
                time.sleep(0.5)
        for name in ["slurmd", "slurmctld", "munged"]:
            process = self.processes.get(name)
            if process is None or process.poll() is not None:
                continue
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(self.root, ignore_errors=True)
