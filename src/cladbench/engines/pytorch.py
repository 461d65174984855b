"""The pytorch engine: the models in plain torch.nn, eager autograd and torch.optim, as a PyTorch
user writes them. It starts from the same parameters, sees the same batches in the same order and
makes the same updates as the C++ engines (the shared helpers come from the C++ core), and writes
the same run record. Run as `python -m cladbench.engines.pytorch`, or through `cladbench train`,
which preloads the allocation counter.

The training loop here serves every Python engine: an engine is a Stepper (TorchStepper here,
CompiledTorchStepper in pytorch_compile.py, JaxStepper in jax.py): `prepare` turns a
batch into the engine's own form before the timer starts, `step` is what is timed."""

from __future__ import annotations

import argparse
import ctypes
import json
import math
import os
import platform
import resource
import socket
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..core import core
from ..cuda import StepTimer, gemm_floor_seconds, torch_cuda_problem
from ..host import cpu_model, git_commit
from ..matrix import CUDA_ENGINES, engine_module
from ..options import GRADIENT_TOLERANCE, add_train_arguments, parse_range, prefetch_steps
from .models import parse_conv, torch_nn_model


class TrainingFailed(RuntimeError):
    """A run whose result cannot stand: a wrong gradient, a non-finite loss (exit 3, a failed record)."""


def _alloc_counter():
    """The preloaded malloc counter, if this process runs under it; else None."""
    try:
        lib = ctypes.CDLL(None)
        lib.cladbench_alloc_count_active.restype = ctypes.c_int
        lib.cladbench_alloc_count.restype = ctypes.c_uint64
    except AttributeError:
        return None
    return lib.cladbench_alloc_count if lib.cladbench_alloc_count_active() else None


def _quantile(sorted_values: list[float], q: float) -> float:
    pos = q * (len(sorted_values) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (pos - lo) * (sorted_values[hi] - sorted_values[lo])


def _load(args: argparse.Namespace) -> tuple[dict, str, list[int]]:
    """The dataset (as the C++ trainer loads it), the model and its dims."""
    if args.dataset == "gw-sim":
        data = core.load_gw_windows(args.data)
        classes, head = 2, [data["channels"], data["length"], *parse_conv(args.conv)] if args.model == "cnn" else None
    else:
        x, labels = core.load_mnist(args.images, args.labels)
        data, classes, head = {"x": x, "labels": labels, "snr": None}, 10, None
    hidden = [int(w) for w in args.hidden.split(",") if w]
    dims = [*head, *hidden, classes] if head else [data["x"].shape[1], *hidden, classes]
    return data, args.model, dims


class TorchStepper:
    """One engine's model and optimizer: PyTorch eager."""

    name = "pytorch"
    generator = f"PyTorch {torch.__version__} eager autograd"
    devices = ("cpu", "cuda")  # a stepper without this attribute runs on the CPU only

    def __init__(self, model_kind: str, dims: list[int], layers: list[torch.Tensor], args: argparse.Namespace):
        self.model = torch_nn_model(model_kind, dims, layers).to(args.device)
        self.optimizer = (
            torch.optim.Adam(self.model.parameters(), lr=args.lr)
            if args.optimizer == "adam"
            else torch.optim.SGD(self.model.parameters(), lr=args.lr)
        )
        self.loss_fn = nn.CrossEntropyLoss()

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.loss_fn(self.model(x), y)

    def prepare(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch as step takes it: torch's tensors as they are."""
        return x, y

    def step(self, batch: tuple[torch.Tensor, torch.Tensor]) -> float:
        """Gradient and update on one batch; the batch loss."""
        x, y = batch
        self.optimizer.zero_grad()
        loss = self.loss(x, y)
        loss.backward()
        self.optimizer.step()
        return loss.item()

    def gradient(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(gradient, parameters), flat in the kernels' row-major order; parameters unchanged.
        (conv weights [c_out][c_in][k] flatten exactly as the kernels' [c_out][c_in*k].)"""
        self.model.zero_grad()
        self.loss(x, y).backward()
        parameters = list(self.model.parameters())
        return (
            torch.cat([p.grad.reshape(-1) for p in parameters]),
            torch.cat([p.detach().reshape(-1) for p in parameters]),
        )

    @torch.no_grad()
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.model(chunk) for chunk in x.split(512)])

    def flat_params(self) -> torch.Tensor:
        """The parameters now, flat in the kernels' row-major order, float32 on the CPU."""
        return torch.cat([p.detach().reshape(-1) for p in self.model.parameters()]).float().cpu()


def write_params(path: str, params: torch.Tensor) -> None:
    """A flat parameter vector as a .npy file (float32, 1-D), whole or absent: written beside it,
    then renamed. Its directory is created."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    with open(tmp, "wb") as f:  # a file, not a name: np.save would add ".npy" to it
        np.save(f, params.numpy().astype("<f4", copy=False))
    os.replace(tmp, target)


def _train(args: argparse.Namespace, record: dict, make_stepper) -> None:
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)  # cpu, or cuda: model, parameters and batches on the GPU
    data, model_kind, dims = _load(args)
    x_all, y_all = data["x"], data["labels"]
    tb, te = parse_range(args.train_range)
    vb, ve = parse_range(args.test_range)
    if not 0 <= tb < te <= len(x_all):
        raise ValueError(f"--train-range range {tb}:{te} does not fit a dataset of {len(x_all)} samples")
    if args.test_images:  # MNIST: the t10k file as the test set
        x_all_test, y_all_test = core.load_mnist(args.test_images, args.test_labels)
    else:
        x_all_test, y_all_test = x_all, y_all
    if not 0 <= vb < ve <= len(x_all_test):
        raise ValueError(f"--test-range range {vb}:{ve} does not fit a dataset of {len(x_all_test)} samples")
    x_train, y_train = x_all[tb:te].to(device), y_all[tb:te].long().to(device)
    x_test, y_test = x_all_test[vb:ve].to(device), y_all_test[vb:ve].long()
    record["model"] = core.model_name(model_kind, dims)

    stepper = make_stepper(model_kind, dims, core.init_params(model_kind, dims, args.seed), args)

    n_train = len(x_train)
    steps_per_epoch = n_train // args.batch
    if steps_per_epoch < 1:
        raise ValueError("--batch is larger than the training set")
    if steps_per_epoch * args.epochs <= args.warmup:
        raise ValueError(
            f"--warmup {args.warmup} leaves no step to time ({steps_per_epoch * args.epochs} steps in all)"
        )
    orders = core.epoch_orders(n_train, args.epochs, args.seed).to(device)

    def batch_at(epoch: int, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        idx = orders[epoch, step * args.batch : (step + 1) * args.batch]
        return x_train.index_select(0, idx), y_train.index_select(0, idx)

    # Gradient agreement at the first step, against LibTorch autograd in double, on the same device.
    xb, yb = batch_at(0, 0)
    start = time.perf_counter()
    grad, params = stepper.gradient(xb, yb)
    untimed_s = time.perf_counter() - start  # with the warm-up steps' time: a compiling engine's compile
    params = params.double().requires_grad_()
    reference = core.reference_loss(model_kind, params, xb.double(), yb.int(), dims, "rowmajor")
    (ref_grad,) = torch.autograd.grad(reference, params)
    record["grad_max_rel_err"] = core.max_rel_err(grad, ref_grad)
    if not record["grad_max_rel_err"] <= GRADIENT_TOLERANCE:
        raise TrainingFailed(
            f"wrong gradient: its largest error relative to LibTorch autograd's is "
            f"{record['grad_max_rel_err']:.3g}, over the tolerance {GRADIENT_TOLERANCE:g}"
        )

    count = _alloc_counter()
    times, allocations = [], 0
    train_loss, test_loss, test_acc = [], [], []
    global_step = 0
    prefetch = prefetch_steps(args.batch * x_all.shape[1] * 4)  # float32 batches
    for epoch in range(args.epochs):
        loss_sum = 0.0
        for first in range(0, steps_per_epoch, prefetch):
            # The next batches, gathered and in the engine's form (its device, its types) before any is
            # timed, so that steps run back to back as in a minimal loop (options.prefetch_steps).
            ahead = range(first, min(first + prefetch, steps_per_epoch))
            for batch in [stepper.prepare(*batch_at(epoch, step)) for step in ahead]:
                a0 = count() if count else 0
                with StepTimer(device) as timer:  # CUDA events after synchronising on a GPU
                    value = stepper.step(batch)
                a1 = count() if count else 0
                if not math.isfinite(value):
                    raise TrainingFailed(
                        f"non-finite loss ({value}) at step {global_step} (epoch {epoch + 1}); try a smaller --lr"
                    )
                if global_step >= args.warmup:
                    times.append(timer.seconds)
                    allocations += a1 - a0
                else:
                    untimed_s += timer.seconds
                loss_sum += value
                global_step += 1
        logits = stepper.logits(x_test).cpu()
        test_loss.append(nn.functional.cross_entropy(logits, y_test).item())
        test_acc.append((logits.argmax(1) == y_test).double().mean().item())
        train_loss.append(loss_sum / steps_per_epoch)
        print(
            f"[{stepper.name}] epoch {epoch + 1}/{args.epochs}: train loss {train_loss[-1]:.6g}, "
            f"test accuracy {test_acc[-1]:.4g}",
            file=sys.stderr,
            flush=True,
        )

    times.sort()
    median = _quantile(times, 0.5)
    # The same process, the same threads: the step's GEMM calls alone, the floor it cannot beat.
    if device.type == "cuda":  # the same GEMMs (core.step_gemms) through cuBLAS
        record["gemm_floor_median_s"] = gemm_floor_seconds(
            core.step_gemms(model_kind, dims, "rowmajor", args.batch), device
        )
    else:
        record["gemm_floor_median_s"] = core.gemm_floor_seconds(model_kind, dims, "rowmajor", args.batch)
    record.update(
        {
            # jax.jit and torch.compile compile in the gradient check's call and the warm-up steps: the
            # time those took beyond as many timed steps
            "compile_time_s": max(0.0, untimed_s - (1 + args.warmup) * median),
            "steps_per_epoch": steps_per_epoch,
            "steps_timed": len(times),
            "step_time_median_s": median,
            "step_time_q1_s": _quantile(times, 0.25),
            "step_time_q3_s": _quantile(times, 0.75),
            "samples_per_s": args.batch / median,
            "allocs_per_step": allocations / len(times) if count and times else None,
            "epoch_train_loss": train_loss,
            "epoch_test_loss": test_loss,
            "epoch_test_accuracy": test_acc,
            "final_loss": train_loss[-1],
            "test_accuracy": test_acc[-1],
        }
    )
    if args.dataset == "gw-sim":
        score = torch.softmax(logits, 1)[:, 1]
        real = core.load_gw_windows(args.real) if args.real else None
        real_score = torch.softmax(stepper.logits(real["x"].to(device)).cpu(), 1)[:, 1] if real else None
        record.update(
            json.loads(
                core.gw_metrics(
                    score,
                    y_test.int(),
                    data["snr"][vb:ve],
                    data["merger_offset"],
                    real_score,
                    real["t_start"] if real else None,
                )
            )
        )
    if args.params_out:  # before the record, which names the file
        write_params(args.params_out, stepper.flat_params())
        record.update(params_file=args.params_out, model_kind=model_kind, model_dims=dims)


def train(args: argparse.Namespace, make_stepper=TorchStepper, versions: dict | None = None) -> tuple[dict, int]:
    """Trains; returns (record, exit status) with the statuses of cladbench-train (0, 3)."""
    record = {
        "status": "running",
        "purpose": args.purpose,
        "error": None,
        "engine": make_stepper.name,
        "device": args.device,
        "layout": "rowmajor",
        "alloc": "dynamic",
        "dataset": args.dataset,
        "model": None,
        "batch": args.batch,
        "threads": args.threads,
        "seed": args.seed,
        "repetition": args.repetition,
        "optimizer": args.optimizer,
        "lr": args.lr,
        "epochs": args.epochs,
        "warmup_steps": args.warmup,
        "train_range": list(parse_range(args.train_range)),
        "test_range": list(parse_range(args.test_range)),
        "data_files": (
            [args.data, args.real]
            if args.dataset == "gw-sim"
            else [args.images, args.labels, args.test_images, args.test_labels]
        ),
        "gradient_generator": make_stepper.generator,
        "versions": {
            "torch": torch.__version__,
            "clad": "",
            "compiler": "",
            "cuda": torch.version.cuda,
            "python": platform.python_version(),
            **(versions or {}),
        },
        "compile_flags": "",
        "git_commit": git_commit(),
        "cpu_model": cpu_model(),
        "hostname": socket.gethostname(),
        "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if args.device == "cuda":
        record.update(gpu_model=torch.cuda.get_device_name(), timer="cuda-events")
    start = time.perf_counter()
    status = 0
    try:
        _train(args, record, make_stepper)
        record["status"] = "ok"
    except TrainingFailed as error:
        record.update(status="failed", error=str(error))
        status = 3
    record["wall_time_s"] = time.perf_counter() - start
    record["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return record, status


def device_problem(make_stepper, device: str) -> str | None:
    """Why this engine cannot train on `device` here (one line), or None."""
    if device not in getattr(make_stepper, "devices", ("cpu",)):
        return (
            f"the {make_stepper.name} engine runs on the CPU only (--device {device} is for {', '.join(CUDA_ENGINES)})"
        )
    if device == "cuda" and (problem := torch_cuda_problem()):
        return f"no CUDA device: {problem}"
    return None


def main(argv: list[str] | None = None, make_stepper=TorchStepper, versions: dict | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {engine_module(make_stepper.name)}", description=__doc__)
    add_train_arguments(parser)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    args = parser.parse_args(argv)
    problem = device_problem(make_stepper, args.device)
    if problem:
        print(f"cladbench {make_stepper.name} engine: {problem}", file=sys.stderr)
        return 2
    try:
        record, status = train(args, make_stepper, versions)
    except (ValueError, RuntimeError, OSError) as error:  # bad data file (IdxError: ValueError), range, --params-out
        print(f"cladbench {make_stepper.name} engine: {error}", file=sys.stderr)
        return 2
    text = json.dumps(record, indent=2)
    if args.out:
        tmp = Path(args.out + ".tmp")
        tmp.write_text(text + "\n")
        os.replace(tmp, args.out)
    else:
        print(text)
    if status:
        print(f"cladbench {make_stepper.name} engine: training failed: {record['error']}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
