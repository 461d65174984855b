"""The repository keeps one style, checked here so that it stays true: ruff (lint and format) for
the Python, snakefmt for the Snakemake rules, clang-format (.clang-format) for cpp/. `make format`
applies all three."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cladbench.paths import REPO

BIN = Path(sys.executable).parent
PYTHON = ["src", "tests", "tools"]
SNAKEMAKE = ["Snakefile", "workflow/rules"]


def tracked(*patterns: str) -> list[str]:
    return subprocess.run(
        ["git", "ls-files", *patterns], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()


@pytest.mark.parametrize(
    "command",
    [
        ["ruff", "check", *PYTHON],
        ["ruff", "format", "--check", *PYTHON],
        ["snakefmt", "--check", "--line-length", "120", *SNAKEMAKE],
        ["clang-format", "--dry-run", "--Werror", *tracked("cpp/*.cpp", "cpp/*.hpp", "cpp/*.cu", "cpp/*.h", "cpp/*.c")],
    ],
    ids=["ruff-check", "ruff-format", "snakefmt", "clang-format"],
)
def test_the_code_keeps_its_style(command):
    done = subprocess.run([str(BIN / command[0]), *command[1:]], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{' '.join(command)} (make format fixes it):\n{(done.stdout + done.stderr)[-3000:]}"


def test_the_lock_pins_what_requirements_txt_asks():
    """requirements.lock (what `make` installs, with hashes) holds every pin of requirements.txt:
    an edit of requirements.txt without `make lock` fails here."""

    def pins(name):
        lines = (REPO / name).read_text().splitlines()
        return dict(
            line.split(" ")[0].split("==") for line in lines if "==" in line and not line.startswith(("#", " "))
        )

    locked = {name.lower(): version.split("+")[0] for name, version in pins("requirements.lock").items()}
    wanted = {name.lower(): version for name, version in pins("requirements.txt").items()}
    assert {name: locked.get(name) for name in wanted} == wanted
    hashed = (REPO / "requirements.lock").read_text().count("--hash=sha256:")
    assert hashed >= len(locked), "every locked package carries its hashes"
