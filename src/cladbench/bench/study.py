"""The benchmark (the performance study): timing runs of every engine on the study's models.

A bench model is named as the report names it:
  mlp-784-128-10, mlp-784-512-512-10   an MLP on MNIST (input, hidden widths..., classes)
  gw-cnn                               the GW classifier of the config's gw section, on simulated strain

Each run is the engine's own trainer with --purpose bench: real training steps on real batches,
timed after a warm-up, with the step's GEMM-only floor timed in the same process. A run lasts as
many epochs as it takes to time at least `min_steps` steps, so large batches time as many steps
as small ones.

    cladbench bench --models mlp-784-128-10 --batch 32,64,256 --repetitions 5

runs the grid here and prints each engine's median step time, its distance to the GEMM floor and
clad's speedups. Within a repetition the variants of a cell run one after another, so a drift of
the machine hits them alike; the workflow runs one such cell (model, batch, threads, repetition:
--repetition R) per job, with no other job beside it (workflow/rules/bench.smk). With --device cuda it
runs the cuda variants (build/cuda-*/cladbench-train and pytorch on the GPU; batches up to 8192
are the GPU's range), timed with CUDA events against the cuBLAS floor; a variant this build or
machine cannot run is listed as not run, with the reason."""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ..matrix import CUDA_ENGINES, ENGINES, device_problem, parse_variant, variant_name


@dataclass(frozen=True)
class BenchModel:
    name: str
    dataset: str  # mnist or gw-sim
    model: str  # mlp or cnn
    hidden: list[int]


def parse_model(name: str) -> BenchModel:
    """mlp-784-<hidden...>-10 or gw-cnn; anything else is an error that names the accepted forms."""
    parts = name.split("-")
    if name == "gw-cnn":
        return BenchModel(name, "gw-sim", "cnn", [])
    if parts[0] == "mlp" and len(parts) >= 4 and all(p.isdigit() and int(p) > 0 for p in parts[1:]):
        if parts[1] != "784" or parts[-1] != "10":
            raise ValueError(f"bench model {name}: an MNIST MLP goes from 784 inputs to 10 classes")
        return BenchModel(name, "mnist", "mlp", [int(p) for p in parts[2:-1]])
    raise ValueError(f"bench model {name}: expected mlp-784-<hidden widths>-10 (e.g. mlp-784-128-10) or gw-cnn")


def epochs_for(n_train: int, batch: int, warmup: int, min_steps: int) -> int:
    """Epochs that give at least warmup + min_steps steps of `batch` from n_train samples."""
    steps_per_epoch = n_train // batch
    if steps_per_epoch < 1:
        raise ValueError(f"batch {batch} is larger than the {n_train} training samples")
    return max(1, math.ceil((warmup + min_steps) / steps_per_epoch))


# What a bench run takes from the workflow config, per dataset: train_args reads these keys and no
# others, so the workflow passes exactly them (--settings) and a change elsewhere reruns no timing run.
CONFIG_KEYS = {
    "mnist": {"mnist": ["train_range", "test_range"], "train": ["lr", "optimizer", "seed", "warmup"]},
    "gw-sim": {"gw": ["train_range", "test_range", "conv", "hidden", "lr", "optimizer", "seed", "warmup"]},
}


def bench_settings(model: BenchModel, config: dict) -> dict:
    """The config sections (only CONFIG_KEYS) a bench run of this model uses."""
    return {
        section: {key: config[section][key] for key in keys} for section, keys in CONFIG_KEYS[model.dataset].items()
    }


def train_args(
    model: BenchModel, batch: int, threads: int, repetition: int, *, mnist: dict, gw: dict, train: dict, min_steps: int
) -> list[str]:
    """The trainer flags of one bench run. mnist: images, labels, train_range, test_range; gw: the
    config's gw section plus data (the simulated windows); train: the MNIST optimizer (lr,
    optimizer, seed, warmup)."""
    if model.dataset == "mnist":
        data, optimiser = mnist, train
        args = ["--dataset", "mnist", "--images", str(mnist["images"]), "--labels", str(mnist["labels"])]
        args += ["--hidden", ",".join(map(str, model.hidden))]
    else:
        data, optimiser = gw, gw
        args = ["--dataset", "gw-sim", "--data", str(gw["data"]), "--model", "cnn", "--conv", gw["conv"]]
        args += ["--hidden", str(gw["hidden"])]
    for flag in ("lr", "optimizer", "seed", "warmup"):
        args += [f"--{flag}", str(optimiser[flag])]
    args += ["--test-range", "{}:{}".format(*data["test_range"])]
    begin, end = data["train_range"]
    warmup = optimiser["warmup"]
    epochs = epochs_for(end - begin, batch, warmup, min_steps)
    return [
        *args,
        "--train-range",
        f"{begin}:{end}",
        "--batch",
        str(batch),
        "--epochs",
        str(epochs),
        "--threads",
        str(threads),
        "--repetition",
        str(repetition),
        "--purpose",
        "bench",
    ]


def run_cell(variant: str, args: list[str], out: Path) -> int:
    """One bench run of one variant (<device>-<engine>-<layout>-<alloc>); its record goes to `out`."""
    from ..cli import train_command

    device, engine, layout, alloc = parse_variant(variant)
    command, env = train_command(engine, layout, alloc, [*args, "--out", str(out)], device)
    return subprocess.run(command, env=env).returncode


def clad_ratio(speedup: float) -> str:
    """clad's speedup over a variant (t_variant / t_clad), in words that cannot be misread."""
    return f"clad {speedup:.2f}x faster" if speedup >= 1 else f"clad {speedup:.2f}x (slower)"


def summary(records: list[dict]) -> str:
    """Per model, threads and batch: each variant's median step time (median over repetitions),
    its ratio to the GEMM floor, and clad's speedup over it (per repetition, then the median)."""
    import pandas as pd

    from .timing import ok_runs

    runs = ok_runs(pd.DataFrame(records)) if records else pd.DataFrame()
    if runs.empty:
        return "no successful bench runs"
    runs["variant"] = runs["device"] + "-" + runs["engine"] + "-" + runs["layout"] + "-" + runs["alloc"]
    runs["floor_ratio"] = runs["step_time_median_s"] / runs["gemm_floor_median_s"]
    lines = []
    for (model, device, threads, batch), cell in runs.groupby(["model", "device", "threads", "batch"]):
        clad = cell[(cell["engine"] == "clad") & (cell["layout"] == "rowmajor") & (cell["alloc"] == "arena")]
        clad_time = clad.set_index("repetition")["step_time_median_s"]
        lines.append(f"{model}, {device}, {threads} thread(s), batch {batch}:")
        for variant, runs_of in cell.groupby("variant", sort=False):
            times = runs_of.set_index("repetition")["step_time_median_s"]
            speedup = (times / clad_time).dropna()
            lines.append(
                f"  {variant:32s} {times.median() * 1e6:10.1f} us  {runs_of['floor_ratio'].median():5.2f}x floor"
                + (
                    f"  {clad_ratio(speedup.median())}"
                    if len(speedup) and not variant.endswith("-clad-rowmajor-arena")
                    else ""
                )
            )
    return "\n".join(lines)


def not_runnable(variants: list[str]) -> dict[str, str]:
    """{variant: why it cannot run here} for the cuda variants this build or machine lacks (the
    CPU variants' own errors come from their trainers)."""
    from ..cuda import variant_problem
    from ..paths import NotBuiltError, build_manifest

    cuda = [v for v in variants if v.startswith("cuda-")]
    if not cuda:
        return {}
    try:
        manifest = build_manifest()
    except NotBuiltError as error:
        manifest = {"cuda_reason": str(error)}
    why = {}
    for variant in cuda:
        if problem := device_problem(parse_variant(variant)[1], "cuda") or variant_problem(variant, manifest):
            why[variant] = problem
    return why


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..paths import REPO

    parser.add_argument("--models", default="mlp-784-128-10", help="comma-separated bench models")
    parser.add_argument("--engines", default="", help="comma-separated engines (default: every engine of the device)")
    parser.add_argument(
        "--device",
        choices=("cpu", "cuda"),
        default="cpu",
        help="cuda: the cuda variants (build/cuda-*, pytorch on the GPU)",
    )
    parser.add_argument(
        "--variants",
        default="",
        help="comma-separated variants (cpu-clad-rowmajor-arena, ...); default: each engine's headline variant",
    )
    parser.add_argument("--batch", default="32,64,256", help="comma-separated batch sizes")
    parser.add_argument("--threads", default="1", help="comma-separated thread counts")
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--repetition", type=int, default=None, help="run only this repetition (the workflow's cells)")
    parser.add_argument("--min-steps", type=int, default=100, help="timed steps per run, at least")
    parser.add_argument(
        "--config",
        type=Path,
        default=REPO / "config" / "config.yaml",
        help="the workflow config whose mnist, train and gw sections the runs use",
    )
    parser.add_argument(
        "--settings",
        default="",
        help="those sections as JSON, in place of --config's (the workflow passes its own: bench_settings)",
    )
    parser.add_argument("--images", default="", help="MNIST images (default: the t10k file, staged from the mirror)")
    parser.add_argument("--labels", default="")
    parser.add_argument("--gw-data", default="", help="simulated GW windows for gw-cnn (cladbench gw simulate)")
    parser.add_argument("--out", type=Path, default=None, help="one cell only: its record's path")
    parser.add_argument(
        "--out-dir", type=Path, default=Path("results/bench"), help="records: <dir>/<model>/<variant>-b..json"
    )


def run(args: argparse.Namespace) -> int:
    """`cladbench bench`: the cells of the grid, one trainer process each; 0 when all succeeded."""
    import yaml

    from ..data.fetch import DataError, mnist_t10k

    config = json.loads(args.settings) if args.settings else yaml.safe_load(args.config.read_text())
    try:
        models = [parse_model(m) for m in args.models.split(",") if m]
        if not (args.images and args.labels) and any(m.dataset == "mnist" for m in models):
            args.images, args.labels = map(str, mnist_t10k())
        if any(m.dataset == "gw-sim" for m in models) and not args.gw_data:
            raise ValueError("gw-cnn needs --gw-data (cladbench gw simulate --out FILE makes it)")
    except (ValueError, DataError) as error:
        print(f"cladbench bench: {error}", file=sys.stderr)
        return 2
    engines = [e for e in args.engines.split(",") if e] or list(CUDA_ENGINES if args.device == "cuda" else ENGINES)
    variants = [v for v in args.variants.split(",") if v] or [
        variant_name(e, "rowmajor", "arena", args.device) for e in engines
    ]
    not_run = not_runnable(variants)
    for variant, reason in not_run.items():
        print(f"cladbench bench: not run: {variant}: {reason}", file=sys.stderr)
    variants = [v for v in variants if v not in not_run]
    if not variants:
        print("cladbench bench: none of the asked variants can run here (see above)", file=sys.stderr)
        return 2
    batches = [int(b) for b in args.batch.split(",")]
    threads = [int(t) for t in args.threads.split(",")]
    repetitions = [args.repetition] if args.repetition is not None else range(args.repetitions)
    cells = [(m, v, b, t, r) for m in models for t in threads for b in batches for r in repetitions for v in variants]
    if args.out and len(cells) != 1:
        print(f"cladbench bench: --out takes one cell, this asks for {len(cells)}; use --out-dir", file=sys.stderr)
        return 2
    mnist = {**config.get("mnist", {}), "images": args.images, "labels": args.labels}
    gw = {**config.get("gw", {}), "data": args.gw_data}
    records, failed = [], 0
    for i, (model, variant, batch, thread, rep) in enumerate(cells, 1):
        out = args.out or args.out_dir / model.name / f"{variant}-b{batch}-t{thread}-r{rep}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        print(
            f"[bench {i}/{len(cells)}] {model.name} {variant} batch {batch} threads {thread} rep {rep}",
            file=sys.stderr,
            flush=True,
        )
        try:
            run_args = train_args(
                model, batch, thread, rep, mnist=mnist, gw=gw, train=config.get("train", {}), min_steps=args.min_steps
            )
        except ValueError as error:
            print(f"cladbench bench: {error}", file=sys.stderr)
            return 2
        status = run_cell(variant, run_args, out)
        if status == 0:
            records.append(json.loads(out.read_text()))
        else:
            failed += 1
            print(f"cladbench bench: {variant} failed (exit {status}); see its messages above", file=sys.stderr)
    if not args.out:
        print(summary(records))
    return 1 if failed else 0
