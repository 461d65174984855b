"""What composability costs: one training step's time (forward and backward, no optimizer) of the
fused op, torch.ops.cladbench.loss + backward, against the composable one,
torch.ops.cladbench.forward + F.cross_entropy + backward, same engine, params and batches.

    python -m cladbench.bench.op_bench --models mlp-784-128-10,gw-cnn --batch 32,256 --repetitions 5

Each repetition times both paths in turn (so a drift of the machine hits both), each `--steps`
steps after `--warmup`, and keeps each path's median step; the table gives the median over the
repetitions, their spread (IQR / median, cladbench.bench.timing) and the median of the per-repetition
ratios composable / fused. Batches are random (the kernels' work does not depend on the values),
gathered before the timed steps. Run it alone on the machine, as every timing run: the workflow's
rule op_bench (workflow/rules/bench.smk) does, and writes its table with --out results/tables/op_cost.csv
(one row per model, batch and repetition: OP_COST_COLUMNS), from which the report's op_cost section
computes its medians, quartiles and ratios. --out with any other suffix writes the cells as JSON.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from ..core import core
from ..engines.models import parse_conv
from .timing import OP_COST_COLUMNS, spread

# The bench models (cladbench.bench's names): mlp-784-<hidden...>-10, and gw-cnn, the GW CNN (two
# detectors, 1 s at 2048 Hz) of the config's gw section (its conv blocks and hidden width: --conv, --cnn-hidden).
GW_CONV, GW_HIDDEN = "8k16p4,16k8p4,16k8p4", 32


def model_dims(name: str, conv: str = GW_CONV, hidden: int = GW_HIDDEN) -> tuple[str, list[int]]:
    if name == "gw-cnn":
        try:
            blocks = parse_conv(conv)
        except ValueError as error:
            raise ValueError(f"gw-cnn: conv {conv!r} is not <c_out>k<kernel>p<pool>,..., e.g. 8k16p4,16k8p4") from error
        return "cnn", [2, 2048, *blocks, hidden, 2]
    parts = name.split("-")
    if parts[0] == "mlp" and len(parts) >= 3 and all(p.isdigit() for p in parts[1:]):
        return "mlp", [int(p) for p in parts[1:]]
    raise ValueError(f"model {name}: expected mlp-<widths> (e.g. mlp-784-128-10) or gw-cnn")


def time_steps(step, batches, warmup: int, steps: int) -> float:
    """Median seconds of `steps` calls of step(batch), after `warmup` untimed ones."""
    for i in range(warmup):
        step(*batches[i % len(batches)])
    times = []
    for i in range(steps):
        batch = batches[i % len(batches)]
        start = time.perf_counter()
        step(*batch)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_cell(
    name: str,
    batch: int,
    engine: str,
    layout: str,
    repetitions: int,
    warmup: int,
    steps: int,
    conv: str = GW_CONV,
    hidden: int = GW_HIDDEN,
) -> dict:
    model, dims = model_dims(name, conv, hidden)
    params = core.pack_params(core.init_params(model, dims, 1), layout).requires_grad_()
    features = dims[0] * dims[1] if model == "cnn" else dims[0]
    gen = torch.Generator().manual_seed(0)
    batches = []
    for _ in range(16):
        labels = torch.randint(dims[-1], (batch,), generator=gen)
        batches.append((torch.randn(batch, features, generator=gen), labels.int(), labels))

    def fused(x, y32, y64):
        params.grad = None
        torch.ops.cladbench.loss(params, x, y32, model, dims, engine, layout).backward()

    def composable(x, y32, y64):
        params.grad = None
        F.cross_entropy(torch.ops.cladbench.forward(params, x, model, dims, engine, layout), y64).backward()

    times = {"fused": [], "composable": []}
    for _ in range(repetitions):
        for path, step in (("fused", fused), ("composable", composable)):
            times[path].append(time_steps(step, batches, warmup, steps))
    ratios = [c / f for c, f in zip(times["composable"], times["fused"])]
    return {
        "model": name,
        "batch": batch,
        "engine": engine,
        "layout": layout,
        "threads": torch.get_num_threads(),
        "repetitions": repetitions,
        "warmup": warmup,
        "steps": steps,
        **{f"{path}_median_s": statistics.median(t) for path, t in times.items()},
        **{f"{path}_spread": spread(t) for path, t in times.items()},
        **{f"{path}_s": t for path, t in times.items()},
        "ratio_median": statistics.median(ratios),
        "ratio_spread": spread(ratios),
    }


def table_rows(cells: list[dict]) -> list[dict]:
    """The cells as the op_cost table: one row per model, batch and repetition (OP_COST_COLUMNS)."""
    return [
        {
            **{key: cell[key] for key in ("model", "batch", "engine", "layout", "threads", "warmup", "steps")},
            "repetition": rep,
            "fused_s": fused,
            "composable_s": composable,
        }
        for cell in cells
        for rep, (fused, composable) in enumerate(zip(cell["fused_s"], cell["composable_s"]))
    ]


def write_out(cells: list[dict], path: Path) -> None:
    """The table (.csv) or the cells (JSON), written whole or not at all (a temporary file renamed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with partial.open("w", newline="") as f:
        if path.suffix == ".csv":
            writer = csv.DictWriter(f, fieldnames=OP_COST_COLUMNS)
            writer.writeheader()
            writer.writerows(table_rows(cells))
        else:
            json.dump(cells, f, indent=1)
    os.replace(partial, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cladbench.bench.op_bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="mlp-784-128-10,gw-cnn")
    parser.add_argument("--batch", default="32,256")
    parser.add_argument("--engine", default="clad")
    parser.add_argument("--layout", default="rowmajor")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--steps", type=int, default=200, help="timed steps per path and repetition")
    parser.add_argument("--conv", default=GW_CONV, help="gw-cnn: conv blocks CkKpP (the gw section's conv)")
    parser.add_argument("--cnn-hidden", type=int, default=GW_HIDDEN, help="gw-cnn: hidden width (the gw section's)")
    parser.add_argument("--out", type=Path, default=None, help="X.csv: the op_cost table; else the cells as JSON")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    models, batches = args.models.split(","), [int(b) for b in args.batch.split(",")]
    for name in models:
        model_dims(name, args.conv, args.cnn_hidden)  # a bad name fails before anything is timed
    cells = []
    print(f"{'model':16} {'batch':>5} {'fused ms':>9} {'spread':>7} {'compos. ms':>10} {'spread':>7} {'ratio':>6}")
    grid = [(name, batch) for name in models for batch in batches]
    for i, (name, batch) in enumerate(grid):
        print(
            f"cell {i + 1}/{len(grid)}: {name} batch {batch}, {args.repetitions} repetitions of "
            f"{args.warmup} + {args.steps} steps per path",
            file=sys.stderr,
            flush=True,
        )
        cell = bench_cell(
            name, batch, args.engine, args.layout, args.repetitions, args.warmup, args.steps, args.conv, args.cnn_hidden
        )
        cells.append(cell)
        print(
            f"{name:16} {batch:5d} {cell['fused_median_s'] * 1e3:9.3f} {cell['fused_spread']:7.1%} "
            f"{cell['composable_median_s'] * 1e3:10.3f} {cell['composable_spread']:7.1%} "
            f"{cell['ratio_median']:6.3f}",
            flush=True,
        )
    if args.out:
        write_out(cells, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
