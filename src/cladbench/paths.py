"""Where things are: the repository, the C++ build and what it built."""

from __future__ import annotations

import json
import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


class NotBuiltError(RuntimeError):
    """The C++ core has not been built (or not this variant)."""


def build_dir() -> Path:
    return Path(os.environ.get("CLADBENCH_BUILD_DIR", REPO / "build"))


def build_manifest() -> dict:
    """build/variants.json, written by CMake: the variants built and why Clad is missing if it is."""
    path = build_dir() / "variants.json"
    if not path.exists():
        raise NotBuiltError(f"{path} not found: build the C++ core first (`make build`)")
    return json.loads(path.read_text())


def trainer(variant: str) -> Path:
    """The cladbench-train binary of a variant such as cpu-clad-rowmajor-arena, if the last build
    made it (a binary left over from an earlier build, say with Clad, does not count)."""
    manifest = build_manifest()
    path = build_dir() / variant / "cladbench-train"
    if variant not in [*manifest["variants"], *manifest.get("cuda_variants", [])] or not path.exists():
        why = ""
        if variant.startswith("cuda-"):
            from .cuda import build_problem

            why = f" ({build_problem(variant, manifest) or 'its binary is missing'})"
        elif "-clad-" in variant and not manifest["clad_found"]:
            why = f" (the clad engine was not built: {manifest['clad_reason']})"
        raise NotBuiltError(f"variant {variant} is not built{why}; built: {', '.join(manifest['variants'])}")
    return path


def alloc_counter_library() -> Path:
    return build_dir() / "libcladbench_alloc_count.so"
