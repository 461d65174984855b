"""What a run record says about where it ran: the CPU model and the repository's commit. (The C++
trainers take the commit from CMake, trainer/build_info.hpp, and read the CPU model themselves.)"""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path

from .paths import REPO


def cpu_model() -> str:
    """The CPU's model name, e.g. 'Intel(R) Xeon(R) Processor'."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def git_commit() -> str:
    """`git describe --always --dirty` of the repository, or "" outside a checkout."""
    try:
        return subprocess.run(
            ["git", "describe", "--always", "--dirty", "--abbrev=12"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""
