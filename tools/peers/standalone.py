"""Minimal training loops of the benchmark's peers, written apart from cladbench (no cladbench
imports): what a JAX or PyTorch user writes for speed. The engines (`cladbench bench`) must come
within 10% of these, measured right beside them.

Cells (random data of the right shapes; one thread):
  mlp32, mlp64  MLP 784-128-10 on [batch, 784], SGD lr 0.1
  cnn32         the GW CNN on [batch, 2, 2048]: per block Conv1d(c_in, c_out, k) -> MaxPool1d(p) -> ReLU,
                blocks 8k16p4, 16k8p4, 16k8p4, then Flatten, Linear(464, 32), ReLU, Linear(32, 2); Adam lr 1e-3
Loops: jax, eager (PyTorch), compile (torch.compile). Each loop runs in a process of its own and
prints the median microseconds per step (one step: gradient, update, the loss back on the host).

    .venv/bin/python tools/peers/standalone.py                      # every loop, every cell
    .venv/bin/python tools/peers/standalone.py --cells mlp32 --engines   # and the engines beside them

--engines runs, after each cell's loops, `cladbench bench` for the same cell (jax, pytorch,
pytorch-compile; it prints the command) and the engine/loop ratios. gw-cnn needs --gw-data, a
simulated set (`cladbench gw simulate --out F --n 6000`; the workflow makes
resources/gw/simulated-n6000-seed1.h5)."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CELLS = {"mlp32": ("mlp", 32), "mlp64": ("mlp", 64), "cnn32": ("cnn", 32)}
LOOPS = ("jax", "eager", "compile")
ENGINE_OF_LOOP = {"jax": "jax", "eager": "pytorch", "compile": "pytorch-compile"}
STEPS = {"mlp": (50, 2000), "cnn": (10, 150)}  # warm-up, timed
N_BATCHES = 16  # distinct batches, cycled


# One thread for every library, in the environment each loop's process starts with (OpenMP and MKL
# read it at start-up; XLA's CPU client reads PJRT_NPROC). torch also gets set_num_threads(1), and
# XLA, which sizes its pools by the CPUs it may run on, a process pinned to one CPU.
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PJRT_NPROC": "1"}


def median_us(step, batches, warmup: int, timed: int) -> float:
    for i in range(warmup):
        step(batches[i % len(batches)])
    times = []
    for i in range(timed):
        start = time.perf_counter()
        step(batches[i % len(batches)])
        times.append(time.perf_counter() - start)
    return sorted(times)[timed // 2] * 1e6


def jax_loop(model: str, batch: int) -> float:
    """jit(value_and_grad) and the update in one jitted function, the parameters (and Adam's
    moments) donated so XLA updates them in place, batches put on the device beforehand: the
    form JAX's docs give for a fast training step. Adam is optax.adam's arithmetic written out
    (optax is not installed here), its bias corrections from a step counter on the device."""
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    import jax
    import jax.numpy as jnp
    import numpy as np

    rng = np.random.default_rng(0)
    if model == "mlp":
        shapes, x_shape, classes = [(128, 784), (128,), (10, 128), (10,)], (batch, 784), 10
    else:
        shapes = [(8, 2, 16), (8,), (16, 8, 8), (16,), (16, 16, 8), (16,), (32, 464), (32,), (2, 32), (2,)]
        x_shape, classes = (batch, 2, 2048), 2
    params = [jnp.asarray(rng.normal(0, 0.05, s).astype(np.float32)) for s in shapes]

    def forward(p, x):
        h = x
        if model == "cnn":
            for i in range(3):
                h = jax.lax.conv_general_dilated(h, p[2 * i], (1,), "VALID", dimension_numbers=("NCH", "OIH", "NCH"))
                h = h + p[2 * i + 1][None, :, None]
                h = jax.lax.reduce_window(h, -jnp.inf, jax.lax.max, (1, 1, 4), (1, 1, 4), "VALID")
                h = jax.nn.relu(h)
            h = h.reshape(h.shape[0], -1)
            p = p[6:]
        h = jax.nn.relu(h @ p[0].T + p[1])
        return h @ p[2].T + p[3]

    def loss(p, x, y):
        logits = forward(p, x)
        return jnp.mean(jax.nn.logsumexp(logits, axis=1) - jnp.take_along_axis(logits, y[:, None], axis=1)[:, 0])

    if model == "mlp":

        @jax.jit
        def update(p, x, y):
            value, grads = jax.value_and_grad(loss)(p, x, y)
            return value, [w - 0.1 * g for w, g in zip(p, grads)]

        state = params
    else:

        def update(state, x, y):
            p, m, v, t = state
            value, grads = jax.value_and_grad(loss)(p, x, y)
            t = t + 1
            m = [0.9 * mi + 0.1 * g for mi, g in zip(m, grads)]
            v = [0.999 * vi + 0.001 * g * g for vi, g in zip(v, grads)]
            p = [w - 1e-3 * (mi / (1 - 0.9**t)) / (jnp.sqrt(vi / (1 - 0.999**t)) + 1e-8) for w, mi, vi in zip(p, m, v)]
            return value, (p, m, v, t)

        state = (params, [jnp.zeros_like(w) for w in params], [jnp.zeros_like(w) for w in params], jnp.float32(0))
    update = jax.jit(update, donate_argnums=0)
    batches = [
        (
            jax.device_put(rng.random(x_shape, np.float32)),
            jax.device_put(rng.integers(0, classes, batch).astype(np.int32)),
        )
        for _ in range(N_BATCHES)
    ]

    def step(b):
        nonlocal state
        value, state = update(state, *b)
        float(value)  # waits for the step, as .item() does in torch

    return median_us(step, batches, *STEPS[model])


def torch_model(model: str):
    import torch
    from torch import nn

    torch.manual_seed(0)
    if model == "mlp":
        net = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
        return net, torch.optim.SGD(net.parameters(), lr=0.1), (784,), 10
    layers, c_in = [], 2
    for c_out, kernel, pool in ((8, 16, 4), (16, 8, 4), (16, 8, 4)):
        layers += [nn.Conv1d(c_in, c_out, kernel), nn.MaxPool1d(pool), nn.ReLU()]
        c_in = c_out
    net = nn.Sequential(*layers, nn.Flatten(), nn.Linear(464, 32), nn.ReLU(), nn.Linear(32, 2))
    return net, torch.optim.Adam(net.parameters(), lr=1e-3), (2, 2048), 2


def torch_loop(model: str, batch: int, compiled: bool) -> float:
    """eager: the loop of PyTorch's tutorials (zero_grad, forward, loss, backward, step, item).
    compile: the same train step wrapped whole in torch.compile, as the torch.compile tutorial's
    training example does (default mode; on the CPU "reduce-overhead" has no CUDA graphs to use)."""
    import torch

    torch.set_num_threads(1)
    net, optimizer, sample_shape, classes = torch_model(model)
    loss_fn = torch.nn.CrossEntropyLoss()

    def train_step(x, y):
        optimizer.zero_grad()
        loss = loss_fn(net(x), y)
        loss.backward()
        optimizer.step()
        return loss

    update = torch.compile(train_step) if compiled else train_step
    batches = [(torch.rand(batch, *sample_shape), torch.randint(0, classes, (batch,))) for _ in range(N_BATCHES)]
    start = time.perf_counter()
    update(*batches[0]).item()
    if compiled:
        update(*batches[1]).item()  # the optimizer's state exists from the second step on: its recompile
        print(f"compile (first two steps): {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return median_us(lambda b: update(*b).item(), batches, *STEPS[model])


def child(loop: str, cell: str) -> None:
    model, batch = CELLS[cell]
    us = jax_loop(model, batch) if loop == "jax" else torch_loop(model, batch, compiled=loop == "compile")
    print(json.dumps({"loop": loop, "cell": cell, "median_us": us}))


def run_loop(loop: str, cell: str) -> float:
    done = subprocess.run(
        [sys.executable, __file__, "--child", loop, cell],
        capture_output=True,
        text=True,
        env={**os.environ, **ONE_THREAD},
    )
    if done.returncode:
        raise SystemExit(f"standalone {loop} {cell} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.splitlines()[-1])["median_us"]


def bench_command(cell: str, loops: list[str], out_dir: Path, gw_data: str) -> list[str]:
    """The `cladbench bench` run of the same cell with the loops' engines: one repetition, one thread."""
    model, batch = CELLS[cell]
    cladbench = Path(sys.executable).with_name("cladbench")
    command = [
        str(cladbench),
        "bench",
        "--models",
        "mlp-784-128-10" if model == "mlp" else "gw-cnn",
        "--engines",
        ",".join(ENGINE_OF_LOOP[loop] for loop in loops),
        "--batch",
        str(batch),
        "--threads",
        "1",
        "--repetitions",
        "1",
        "--out-dir",
        str(out_dir),
    ]
    return command + (["--gw-data", gw_data] if model == "cnn" else [])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", default=",".join(CELLS), help=f"comma-separated, of {', '.join(CELLS)}")
    parser.add_argument("--loops", default=",".join(LOOPS), help=f"comma-separated, of {', '.join(LOOPS)}")
    parser.add_argument("--engines", action="store_true", help="also run the engines' bench of each cell")
    parser.add_argument("--gw-data", default="resources/gw/simulated-n6000-seed1.h5", help="for cnn32 with --engines")
    parser.add_argument("--child", nargs=2, metavar=("LOOP", "CELL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return 0
    loops = [loop for loop in args.loops.split(",") if loop]
    for cell in [c for c in args.cells.split(",") if c]:
        standalone = {loop: run_loop(loop, cell) for loop in loops}
        for loop, us in standalone.items():
            print(f"{cell:6s} standalone {loop:8s} {us:10.1f} us/step", flush=True)
        if not args.engines:
            continue
        with tempfile.TemporaryDirectory() as out_dir:
            command = bench_command(cell, loops, Path(out_dir), args.gw_data)
            print("  " + " ".join(command), flush=True)
            if subprocess.run(command, stdout=subprocess.DEVNULL).returncode:
                print(f"{cell}: the bench failed (its messages above)", file=sys.stderr)
                return 1
            for loop in loops:
                engine = ENGINE_OF_LOOP[loop]
                record = json.loads(next(Path(out_dir).glob(f"*/cpu-{engine}-rowmajor-dynamic-*.json")).read_text())
                us = record["step_time_median_s"] * 1e6
                print(
                    f"{cell:6s} engine     {engine:16s} {us:10.1f} us/step  "
                    f"{us / standalone[loop]:5.2f}x its standalone loop",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
