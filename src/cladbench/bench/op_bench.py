"""What composability costs: one training step's time (forward and backward, no optimizer) of the
fused op, torch.ops.cladbench.loss + backward, against the composable one,
torch.ops.cladbench.forward + F.cross_entropy + backward, same engine, params and batches.

    python -m cladbench.bench.op_bench --models mlp-784-128-10,gw-cnn --batch 32,256 --repetitions 5

Each repetition times both paths in turn (so a drift of the machine hits both), each `--steps`
steps after `--warmup`, and keeps each path's median step; the table gives the median over the
repetitions, their spread (IQR / median, cladbench.bench.timing) and the median of the per-repetition
ratios composable / fused. Batches are random (the kernels' work does not depend on the values),
gathered before the timed steps. Run it alone on the machine, as every timing run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from ..core import core
from .timing import spread

# The bench models (cladbench.bench's names): mlp-784-<hidden...>-10, and the GW CNN of config/config.yaml.
GW_CNN = [2, 2048, 8, 16, 4, 16, 8, 4, 16, 8, 4, 32, 2]


def model_dims(name: str) -> tuple[str, list[int]]:
    if name == "gw-cnn":
        return "cnn", GW_CNN
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


def bench_cell(name: str, batch: int, engine: str, layout: str, repetitions: int, warmup: int, steps: int) -> dict:
    model, dims = model_dims(name)
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
        "steps": steps,
        **{f"{path}_median_s": statistics.median(t) for path, t in times.items()},
        **{f"{path}_spread": spread(t) for path, t in times.items()},
        **{f"{path}_s": t for path, t in times.items()},
        "ratio_median": statistics.median(ratios),
        "ratio_spread": spread(ratios),
    }


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
    parser.add_argument("--out", type=Path, default=None, help="the cells as JSON")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    cells = []
    print(f"{'model':16} {'batch':>5} {'fused ms':>9} {'spread':>7} {'compos. ms':>10} {'spread':>7} {'ratio':>6}")
    for name in args.models.split(","):
        for batch in (int(b) for b in args.batch.split(",")):
            cell = bench_cell(name, batch, args.engine, args.layout, args.repetitions, args.warmup, args.steps)
            cells.append(cell)
            print(
                f"{name:16} {batch:5d} {cell['fused_median_s'] * 1e3:9.3f} {cell['fused_spread']:7.1%} "
                f"{cell['composable_median_s'] * 1e3:10.3f} {cell['composable_spread']:7.1%} "
                f"{cell['ratio_median']:6.3f}",
                flush=True,
            )
    if args.out:
        args.out.write_text(json.dumps(cells, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
