"""The input-gradient benchmark: d output / d input of an MLP 20 -> 5x128 -> 1 at batch 1, one
thread, with the same weights on every path:
  - emitted+clad          the ONNX export emitted as C++, Clad's input-only gradient, timed in C++
  - emitted+clad (ctypes) the same library called from Python (what a Python caller pays)
  - torch autograd        PyTorch eager: forward, then torch.autograd.grad w.r.t. the input
  - jax jit(grad)         jax.jit(jax.grad(...)) with the weights as arguments, and with the
                          weights closed over (constants), when JAX is installed (the `jax` extra)
Each path: warm-up calls, then `reps` timed calls (monotonic clock, one call each), the paths
taking turns in rounds so that a busy (shared) machine slows them alike; the table has
the median and quartiles in microseconds (results/tables/input_grad.csv), a JSON record beside it
the machine, versions, repetitions, gradient agreement and skipped paths with their reasons.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from ..host import cpu_model

COLUMNS = ["path", "model", "batch", "threads", "median_us", "q1_us", "q3_us"]
# The published anchor (another machine; SOFIE+Clad, PyTorch, JAX), for the caption and the note.
ANCHOR_US = {"SOFIE+Clad": 73.0, "PyTorch": 395.0, "JAX": 34.5}


def mlp(n_in: int = 20, hidden: int = 128, layers: int = 5, activation: str = "relu", seed: int = 0):
    import torch
    from torch import nn

    torch.manual_seed(seed)
    act = {"relu": nn.ReLU, "tanh": nn.Tanh}[activation]
    modules, width = [], n_in
    for _ in range(layers):
        modules += [nn.Linear(width, hidden), act()]
        width = hidden
    return nn.Sequential(*modules, nn.Linear(width, 1))


def _summary(path: str, model: str, batch: int, threads: int, seconds: np.ndarray) -> dict:
    q1, median, q3 = np.percentile(np.asarray(seconds) * 1e6, [25, 50, 75])
    return {
        "path": path,
        "model": model,
        "batch": batch,
        "threads": threads,
        "median_us": round(float(median), 3),
        "q1_us": round(float(q1), 3),
        "q3_us": round(float(q3), 3),
    }


def _timer(call):
    """chunk(n) -> seconds of n calls of `call`, one by one (monotonic clock)."""
    clock = time.perf_counter

    def chunk(n: int) -> np.ndarray:
        seconds = np.empty(n)
        for r in range(n):
            start = clock()
            call()
            seconds[r] = clock() - start
        return seconds

    return chunk


def _torch_path(model, x: np.ndarray):
    import torch

    xt = torch.tensor(x, requires_grad=True)

    def call():
        return torch.autograd.grad(model(xt).sum(), xt)[0]

    return _timer(call), call().numpy()


def _jax_paths(model, x: np.ndarray, threads: int) -> dict | str:
    """{path: (chunk, gradient)} for JAX with the weights as arguments and closed over as
    constants, or the reason JAX cannot run."""
    if "jax" not in sys.modules:  # one thread, set before JAX starts its runtime
        os.environ["XLA_FLAGS"] = (
            os.environ.get("XLA_FLAGS", "") + f" --xla_cpu_multi_thread_eigen={'true' if threads > 1 else 'false'}"
            f" intra_op_parallelism_threads={threads}"
        ).strip()
    try:
        import jax
        import jax.numpy as jnp
    except ImportError as error:
        return f"JAX not installed ({error}): pip install '.[jax]'"
    jax.config.update("jax_platforms", "cpu")
    layers = [
        (jnp.asarray(m.weight.detach().numpy()), jnp.asarray(m.bias.detach().numpy()))
        for m in model
        if hasattr(m, "weight")
    ]
    act = jax.nn.relu if any(type(m).__name__ == "ReLU" for m in model) else jnp.tanh

    def f(params, xs):
        h = xs
        for W, b in params[:-1]:
            h = act(h @ W.T + b)
        W, b = params[-1]
        return jnp.sum(h @ W.T + b)

    xj = jnp.asarray(x)
    with_args = jax.jit(jax.grad(f, argnums=1))
    closed = jax.jit(jax.grad(lambda xs: f(layers, xs)))
    calls = {
        "jax jit(grad)": lambda: with_args(layers, xj).block_until_ready(),
        "jax jit(grad), constant weights": lambda: closed(xj).block_until_ready(),
    }
    return {path: (_timer(call), np.asarray(call())) for path, call in calls.items()}, jax.__version__


def run(
    reps: int = 2000,
    warmup: int = 200,
    batch: int = 1,
    threads: int = 1,
    activation: str = "relu",
    seed: int = 0,
    rounds: int = 10,
) -> tuple[list[dict], dict]:
    """Rows for the table and the run's record. The paths take turns, `rounds` chunks of
    reps / rounds calls each, so that a busy machine slows them alike."""
    import torch

    from .compile import CladUnavailableError, clad_prefix, load
    from .emit import emit
    from .roundtrip import export, max_rel_err, params_from_torch

    torch.set_num_threads(threads)
    model = mlp(activation=activation, seed=seed).float()
    name = f"mlp-20-5x128-1-{activation}"
    x = np.random.default_rng(seed).normal(size=(batch, 20)).astype(np.float32)
    record = {
        "model": name,
        "batch": batch,
        "threads": threads,
        "reps": reps,
        "warmup": warmup,
        "rounds": rounds,
        "dtype": "float32",
        "cpu_model": cpu_model(),
        "machine": platform.node(),
        "cores": os.cpu_count(),
        "torch_version": torch.__version__,
        "not_run": {},
        "grad_max_rel_err": {},
        "anchor_us_other_machine": ANCHOR_US,
    }
    say = lambda text: print(f"cladbench onnx bench: {text}", file=sys.stderr)  # noqa: E731

    chunk, reference = _torch_path(model, x)
    paths = {"torch autograd": chunk}
    gradients = {}
    try:
        record["clad_prefix"] = str(clad_prefix())
        compiled = load(emit(export(model, torch.tensor(x)), name.replace("-", "_")), np.float32)
        compiled.params = params_from_torch(model, compiled).astype(np.float32)
        record["library"] = str(compiled.library)
        paths["emitted+clad"] = lambda n: compiled.time_input_grad(x, n)  # timed inside the library
        paths["emitted+clad (ctypes)"] = _timer(_ctypes_call(compiled, x))
        gradients["emitted+clad"] = compiled.vjp(x, np.ones((batch, 1)), inputs_only=True)[2]
    except CladUnavailableError as error:
        record["not_run"]["emitted+clad"] = str(error)
        say(f"emitted+clad not run: {error}")
    jax_paths = _jax_paths(model, x, threads)
    if isinstance(jax_paths, str):
        record["not_run"]["jax jit(grad)"] = jax_paths
        say(f"jax jit(grad) not run: {jax_paths}")
    else:
        jax_paths, record["jax_version"] = jax_paths
        for path, (chunk, gradient) in jax_paths.items():
            paths[path], gradients[path] = chunk, gradient
    for path, gradient in gradients.items():
        err = record["grad_max_rel_err"][path] = max_rel_err(gradient, reference)
        if not err < 1e-4:
            raise RuntimeError(f"{path}: input gradient differs from torch autograd (max rel err {err:.2e})")

    say(f"{', '.join(paths)}: {warmup} warm-up calls, then {reps} timed calls each in {rounds} rounds")
    for chunk in paths.values():
        chunk(warmup)
    seconds = {path: [] for path in paths}
    for _ in range(rounds):
        for path, chunk in paths.items():
            seconds[path].append(chunk(max(1, reps // rounds)))
    rows = [_summary(path, name, batch, threads, np.concatenate(s)) for path, s in seconds.items()]
    return rows, record


def _ctypes_call(compiled, x: np.ndarray):
    """One input-gradient call through ctypes with buffers made beforehand (zeroed per call)."""
    import ctypes

    from .compile import _ptr

    batch = x.shape[0]
    ws = np.zeros(batch * compiled.ws_per_sample, dtype=np.float32)
    d_x, d_ws = np.zeros_like(x), np.zeros_like(ws)
    cot, loss = np.ones(batch, dtype=np.float32), np.zeros(1, dtype=np.float32)
    fn = compiled._fn("output_dot_input_grad")
    args = [_ptr(compiled.params), _ptr(x), _ptr(cot), ctypes.c_int(batch), _ptr(ws), _ptr(loss), _ptr(d_x), _ptr(d_ws)]

    def call():
        d_x.fill(0)
        d_ws.fill(0)
        fn(*args)

    return call


def write(rows: list[dict], record: dict, csv: Path) -> None:
    import pandas as pd

    csv.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows, columns=COLUMNS).to_csv(csv, index=False)
    csv.with_suffix(".json").write_text(json.dumps(record, indent=1) + "\n")


def plot(csv: Path, out: list[Path]) -> None:
    """Median input-gradient time per path, quartiles as whiskers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    table = pd.read_csv(csv)
    fig, ax = plt.subplots(figsize=(7, 0.8 + 0.45 * len(table)))
    y = np.arange(len(table))
    ax.barh(y, table.median_us, color="#4c72b0")
    ax.errorbar(
        table.median_us,
        y,
        xerr=[table.median_us - table.q1_us, table.q3_us - table.median_us],
        fmt="none",
        color="black",
        capsize=3,
    )
    for yi, median, q3 in zip(y, table.median_us, table.q3_us):
        ax.text(q3 + 0.01 * table.q3_us.max(), yi, f" {median:.1f} µs", va="center", fontsize=8)
    ax.set_yticks(y, table.path)
    ax.set_xlim(0, table.q3_us.max() * 1.2)
    first = table.iloc[0]
    ax.set_xlabel(
        f"input gradient: µs per call, median and quartiles\n({first.model}, batch {first.batch}, "
        f"{first.threads} thread)"
    )
    ax.invert_yaxis()
    fig.tight_layout()
    for path in out:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cladbench.onnx.bench")
    sub = parser.add_subparsers(dest="what", required=True)
    plot_cmd = sub.add_parser("plot", help="the figure of input_grad.csv")
    plot_cmd.add_argument("csv", type=Path)
    plot_cmd.add_argument("out", type=Path, nargs="+")
    args = parser.parse_args(argv)
    plot(args.csv, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
