"""Whether the workflow's SLURM jobs fit the nodes they ask for, checked before the first submission.

A job asking more CPUs, memory or GPUs than any node of its partition has is accepted by sbatch
on many clusters and then pends forever (reason PartitionConfig). The workflow (common.smk's
onstart, on the slurm executor) asks `sinfo` what the nodes have and stops at once with one line
per such rule: what it asks, what the partition's nodes have, and what to change."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass

SINFO = ["sinfo", "--noheader", "--Node", "--format=%P|%c|%m|%G"]  # partition, CPUs, memory (MB), GRES


@dataclass(frozen=True)
class Demand:
    """What one job asks of a node."""

    rule: str
    partition: str  # "" for the cluster's default partition
    cpus: int
    mem_mb: int
    gpus: int

    def fits(self, node: dict) -> bool:
        return self.cpus <= node["cpus"] and self.mem_mb <= node["mem_mb"] and self.gpus <= node["gpus"]

    def asks(self) -> str:
        return f"{self.cpus} CPUs, {self.mem_mb} MB" + (f", {self.gpus} GPUs" if self.gpus else "")


def parse_sinfo(text: str) -> tuple[dict[str, list[dict]], str]:
    """`sinfo` rows (SINFO's format) -> ({partition: [nodes]}, the default partition's name)."""
    partitions, default = {}, ""
    for line in text.splitlines():
        if not line.strip():
            continue
        partition, cpus, mem, gres = line.strip().split("|")
        if partition.endswith("*"):  # sinfo marks the default partition
            partition = default = partition.rstrip("*")
        gpus = sum(int(m[1]) for m in re.finditer(r"gpu(?::[^:,(]+)?:(\d+)", gres))
        partitions.setdefault(partition, []).append(
            {"cpus": int(cpus.rstrip("+")), "mem_mb": int(mem.rstrip("+")), "gpus": gpus}
        )
    return partitions, default


def misfits(demands: list[Demand], partitions: dict[str, list[dict]], default: str) -> list[str]:
    """One line per rule with a job that no node of its partition can hold."""
    lines = {}
    for demand in demands:
        name = demand.partition or default
        nodes = partitions.get(name, [])
        if demand.rule in lines or any(demand.fits(node) for node in nodes):
            continue
        if not nodes:
            have = f"no partition {name!r} (sinfo lists {', '.join(sorted(partitions)) or 'none'})"
        else:
            most = {key: max(node[key] for node in nodes) for key in ("cpus", "mem_mb", "gpus")}
            have = f"the nodes of partition {name} have at most {most['cpus']} CPUs, {most['mem_mb']} MB" + (
                f", {most['gpus']} GPUs" if demand.gpus else ""
            )
        lines[demand.rule] = (
            f"rule {demand.rule} asks {demand.asks()} but {have}: lower its resources "
            "(set-resources in the profile, or its threads in the config) or send it to a "
            "partition whose nodes have them (slurm_partition)"
        )
    return list(lines.values())


def check_jobs(demands: list[Demand]) -> list[str]:
    """misfits of these jobs on this cluster, as `sinfo` describes it."""
    done = subprocess.run(SINFO, capture_output=True, text=True, timeout=60)
    if done.returncode:
        return [f"sinfo failed ({done.stderr.strip()}): cannot check that the jobs fit the cluster's nodes"]
    return misfits(demands, *parse_sinfo(done.stdout))
