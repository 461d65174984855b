"""`cladbench doctor`: what this machine has and which variants it can build, with reasons."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from .cuda import variant_problem
from .matrix import CUDA_ENGINES, ENGINES, cuda_variant, device_problem, variants_of
from .paths import REPO, NotBuiltError, build_dir, build_manifest


def _run(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"error: {error}"
    return (out.stdout + out.stderr).strip()


def cxx_compiler() -> str:
    """The compiler the build uses: $CXX, else clang++-19 (the clang Clad is built against here)."""
    return os.environ.get("CXX") or shutil.which("clang++-19") or shutil.which("clang++") or "c++"


def find_clad(cxx: str) -> dict:
    """Asks cpp/cmake/clad.cmake, the one place that finds Clad, what it finds for this compiler."""
    out = _run(["cmake", f"-DCXX={cxx}", "-P", str(REPO / "cpp" / "cmake" / "clad.cmake")])
    info = {}
    for line in out.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.startswith("CLAD_"):
            info[key] = value
    if "CLAD_FOUND" not in info:
        info = {"CLAD_FOUND": "FALSE", "CLAD_REASON": f"cmake could not run the Clad finder: {out[:200]}"}
    return info


def cpu_problems(clad: dict | None = None) -> dict[str, str]:
    """{engine: why it cannot run on this machine's CPU}, for the engines that need what may be
    missing: Clad, JAX, a C++ compiler for Inductor. The reasons doctor and the workflow give."""
    from .engines.jax import jax_available
    from .engines.pytorch_compile import compile_problem

    clad = clad if clad is not None else find_clad(cxx_compiler())
    problems = {
        "clad": None if clad.get("CLAD_FOUND") == "TRUE" else f"Clad not available: {clad.get('CLAD_REASON', '')}",
        "jax": None if jax_available() else "JAX not installed (an optional extra: pip install -e '.[jax]')",
        "pytorch-compile": compile_problem(),
    }
    return {engine: why for engine, why in problems.items() if why}


def report() -> list[str]:
    lines = []
    say = lines.append
    import torch

    torch_dir = Path(torch.__file__).parent
    say(f"torch        {torch.__version__} at {torch_dir}")
    say(
        f"LibTorch     {torch_dir / 'share' / 'cmake' / 'Torch'} "
        f"({'CUDA ' + torch.version.cuda if torch.version.cuda else 'CPU-only build'})"
    )
    cxx = cxx_compiler()
    say(f"C++ compiler {cxx}: {_run([cxx, '--version']).splitlines()[0] if shutil.which(cxx) else 'not found'}")

    clad = find_clad(cxx)
    clad_ok = clad.get("CLAD_FOUND") == "TRUE"
    if clad_ok:
        say(f"Clad         {clad['CLAD_VERSION']} at {clad['CLAD_PREFIX']}; the plugin loads into {cxx}")
    else:
        say(f"Clad         not usable: {clad.get('CLAD_REASON')}")

    nvcc = shutil.which("nvcc") or ("/usr/local/cuda/bin/nvcc" if Path("/usr/local/cuda/bin/nvcc").exists() else None)
    say(f"nvcc         {_run([nvcc, '--version']).splitlines()[-1] if nvcc else 'not found'}")
    gpus = _run(["nvidia-smi", "-L"]) if shutil.which("nvidia-smi") else ""
    gpu_lines = [g for g in gpus.splitlines() if g.startswith("GPU")]
    say(f"GPUs         {'; '.join(gpu_lines) if gpu_lines else 'none'}")
    say(
        f"CUDA LibTorch {'yes' if torch.version.cuda else 'no'}; torch.cuda.is_available(): {torch.cuda.is_available()}"
    )

    try:
        manifest = build_manifest()
        say(f"built        {len(manifest['variants'])} variants in {build_dir()}: {', '.join(manifest['variants'])}")
    except NotBuiltError as error:
        say(f"built        nothing yet ({error})")

    say("variants this machine can build:")
    problems = cpu_problems(clad)
    for engine in ENGINES:
        for variant in variants_of(engine):
            say(f"  no   {variant}: {problems[engine]}" if engine in problems else f"  yes  {variant}")
    # The cuda variants: the C++ ones as this build's manifest lists them (build/variants.json:
    # cuda_variants, cuda_reason), pytorch as this torch and machine allow.
    try:
        manifest = build_manifest()
    except NotBuiltError as error:
        manifest = {"cuda_reason": str(error)}
    for engine in CUDA_ENGINES:
        variant = cuda_variant(engine)
        problem = variant_problem(variant, manifest)
        say(f"  no   {variant}: {problem}" if problem else f"  yes  {variant}")
    for engine in ENGINES:
        if problem := device_problem(engine, "cuda"):
            say(f"  no   cuda-{engine}-*: {problem}")
    return lines
