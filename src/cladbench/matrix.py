"""The study's matrix, defined once: engines, devices, layouts, allocations and the variant names
made of them. The CLI, the bench, the Snakemake rules, aggregation and the report import it;
nothing else lists an engine.

A variant is `<device>-<engine>-<layout>-<alloc>`, the name of its build directory
(build/<variant>/cladbench-train) and of its run records. The project's kernel engines (clad,
manual) are built in every layout x alloc; libtorch (torch::nn), PyTorch and JAX own their layout
and memory, so they have one variant per device, `rowmajor-dynamic`.
"""

from __future__ import annotations

import re

ENGINES = ("clad", "manual", "libtorch", "pytorch", "pytorch-compile", "jax")
KERNEL_ENGINES = ("clad", "manual")  # the project's kernels: every layout x alloc
PYTHON_ENGINES = ("pytorch", "pytorch-compile", "jax")  # trained by a Python module (engine_module)
CPP_ENGINES = tuple(e for e in ENGINES if e not in PYTHON_ENGINES)  # C++ trainers, build/<variant>/
BASELINES = ("libtorch", "pytorch", "pytorch-compile", "jax")  # what clad's speedup is measured against
LAYOUTS = ("rowmajor", "colmajor")
ALLOCS = ("arena", "dynamic")
LAYOUT_ALLOCS = tuple(f"{layout}-{alloc}" for layout in LAYOUTS for alloc in ALLOCS)
DEVICES = ("cpu", "cuda")
# The engines with a cuda variant: what the CUDA build makes (cpp/CMakeLists.txt: clad, libtorch)
# and pytorch. The GPU kernels cover the MLP only (docs/cuda.md); the GW CNN runs on CUDA through
# libtorch and pytorch.
CUDA_ENGINES = ("clad", "libtorch", "pytorch")
CUDA_CNN_ENGINES = ("libtorch", "pytorch")


def variant_name(engine: str, layout: str = "rowmajor", alloc: str = "arena", device: str = "cpu") -> str:
    """`<device>-<engine>-<layout>-<alloc>`; an engine that owns its layout and memory gets
    rowmajor-dynamic whatever is asked."""
    if engine not in KERNEL_ENGINES:
        layout, alloc = "rowmajor", "dynamic"
    return f"{device}-{engine}-{layout}-{alloc}"


def variants_of(engine: str, layouts=LAYOUTS, allocs=ALLOCS, device: str = "cpu") -> list[str]:
    """Every variant of an engine on a device, over the given layouts and allocations."""
    names = [variant_name(engine, layout, alloc, device) for layout in layouts for alloc in allocs]
    return list(dict.fromkeys(names))  # one, for an engine that owns its layout and memory


def variant_pattern(engines=ENGINES, devices=DEVICES) -> str:
    """A regular expression for the variant names of these engines on these devices (Snakemake's
    wildcard constraints)."""
    return "-".join(f"({'|'.join(map(re.escape, part))})" for part in (devices, engines, LAYOUTS, ALLOCS))


def parse_variant(variant: str) -> tuple[str, str, str, str]:
    """'<device>-<engine>-<layout>-<alloc>' -> its four parts; an engine name may hold a hyphen
    (pytorch-compile), so device is the first part and layout, alloc the last two."""
    parts = variant.split("-")
    if len(parts) < 4:
        raise ValueError(f"variant {variant!r} is not <device>-<engine>-<layout>-<alloc>")
    return parts[0], "-".join(parts[1:-2]), parts[-2], parts[-1]


def record_variant(filename: str) -> str:
    """The variant a run record's file is named after: '<variant>-b32-t1-r0.json' or '<variant>-r0.json'."""
    pattern = rf"(.+?-(?:{'|'.join(LAYOUTS)})-(?:{'|'.join(ALLOCS)}))(?:-|\.json$)"
    match = re.match(pattern, filename)
    if not match:
        raise ValueError(f"record file {filename!r} is not named <device>-<engine>-<layout>-<alloc>-...")
    return match.group(1)


def cuda_variant(engine: str) -> str:
    """The one cuda variant of an engine: clad in rowmajor-arena (what the CUDA build makes),
    libtorch and pytorch owning their layout and memory as on the CPU."""
    if engine not in CUDA_ENGINES:
        raise ValueError(f"the {engine} engine has no cuda variant (cuda engines: {', '.join(CUDA_ENGINES)})")
    return variant_name(engine, device="cuda")


def device_problem(engine: str, device: str) -> str | None:
    """Why an engine has no variant on a device, or None."""
    if device == "cuda" and engine not in CUDA_ENGINES:
        return f"the {engine} engine runs on the CPU only"
    return None


def trains_cnn(variant: str) -> bool:
    """Whether a variant (or a record file named after one) can train the GW CNN."""
    device, engine = parse_variant(record_variant(variant) if variant.endswith(".json") else variant)[:2]
    return device != "cuda" or engine in CUDA_CNN_ENGINES


def engine_module(engine: str) -> str:
    """The module that trains a Python engine: cladbench.engines.pytorch_compile for pytorch-compile."""
    if engine not in PYTHON_ENGINES:
        raise ValueError(f"the {engine} engine is a C++ trainer, not a Python module")
    return f"cladbench.engines.{engine.replace('-', '_')}"
