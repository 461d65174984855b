"""The CUDA side on the Python and workflow side: which cuda variants exist, which can run here and
why not (one place for the reasons doctor, bench, the workflow and the pytorch engine give), and the
pytorch engine's GPU pieces: CUDA-event timing and the step's cuBLAS GEMM floor.

The C++ cuda trainers (build/cuda-*/cladbench-train) are built where CMake finds nvcc and cuBLAS;
build/variants.json lists them under "cuda_variants", and "cuda_reason" says why not when it
lists none. JAX stays on the CPU."""

from __future__ import annotations

import time

from .matrix import parse_variant

NO_CUDA_BUILD = "this build has no CUDA variants"


def torch_cuda_problem(need_device: bool = True) -> str | None:
    """Why this torch cannot train on a GPU here, or None. need_device=False asks only whether it
    is a CUDA build (what a cluster's submit node, which has no GPU, can know)."""
    import torch

    if not torch.backends.cuda.is_built():
        return f"torch {torch.__version__} is a CPU-only build"
    if need_device and not torch.cuda.is_available():
        return "no GPU visible (torch.cuda.is_available() is false)"
    return None


def build_problem(variant: str, manifest: dict) -> str | None:
    """Why a C++ cuda variant is not in this build (build/variants.json), or None."""
    built = manifest.get("cuda_variants")
    if not built:
        reason = manifest.get("cuda_reason")
        return f"{NO_CUDA_BUILD}: {reason}" if reason else NO_CUDA_BUILD
    if variant not in built:
        return f"{variant} is not among the CUDA variants of this build ({', '.join(built)})"
    return None


def variant_problem(variant: str, manifest: dict, need_device: bool = True) -> str | None:
    """Why a cuda variant cannot run, or None: pytorch needs a CUDA torch; the C++ trainers must be
    in the build and, to run, link a CUDA LibTorch too. need_device=False (planning a workflow on
    a submit node) asks only what can be known there: the build, and whether torch is a CUDA build
    for pytorch."""
    if parse_variant(variant)[1] == "pytorch":
        return torch_cuda_problem(need_device)
    return build_problem(variant, manifest) or (torch_cuda_problem() if need_device else None)


# ---------------------------------------------------------------------------------------------
# Timing on the GPU (the pytorch engine)


class StepTimer:
    """Times one step: CUDA events around it after synchronising on a GPU, the monotonic clock on
    the CPU. with timer: ...; then timer.seconds."""

    def __init__(self, device):
        import torch

        self.cuda = torch.device(device).type == "cuda"
        if self.cuda:
            self.start, self.end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        self.seconds = 0.0

    def __enter__(self):
        if self.cuda:
            import torch

            torch.cuda.synchronize()  # nothing queued before the step is counted in it
            self.start.record()
        else:
            self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        if self.cuda:
            self.end.record()
            self.end.synchronize()
            self.seconds = self.start.elapsed_time(self.end) / 1e3
        else:
            self.seconds = time.perf_counter() - self.t0
        return False


def gemm_floor_seconds(gemms: list[dict], device, repeats: int = 50) -> float:
    """Median time of a step's GEMM calls alone (`core.step_gemms`: the calls the kernels make,
    C[M x N] = op(A) op(B) + beta C) on `device` with float32 tensors: cuBLAS on a GPU. The floor
    a step cannot beat, from the same definition as the C++ floors."""
    import torch

    gen = torch.Generator(device="cpu").manual_seed(7)  # seeded random, never zeros

    def operand(rows, cols, transposed):  # op(X) of a row-major X
        x = torch.randn((cols, rows) if transposed else (rows, cols), generator=gen).to(device)
        return x.t() if transposed else x

    calls = [
        (
            operand(g["M"], g["K"], g["trans_a"]),
            operand(g["K"], g["N"], g["trans_b"]),
            torch.randn(g["M"], g["N"], generator=gen).to(device),
            g["beta"],
        )
        for g in gemms
    ]

    def step():
        for a, b, c, beta in calls:
            if beta:
                c.addmm_(a, b, beta=beta)
            else:
                torch.mm(a, b, out=c)

    for _ in range(5):  # warm-up: cuBLAS handles and workspaces, caches
        step()
    times = []
    for _ in range(repeats):
        with StepTimer(device) as timer:
            step()
        times.append(timer.seconds)
    return sorted(times)[len(times) // 2]
