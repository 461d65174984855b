"""The jax engine: the same models written in jax.numpy, one jit-compiled step (value_and_grad and
the optimizer update, buffers donated), on the CPU. The strongest peer the benchmark compares the
clad engine with. It runs in the Python engines' training loop (pytorch_engine.py): same
parameters, same batches, same updates, same run record.

JAX is an optional extra (`pip install -e '.[jax]'`); without it this engine exits 2 and the
workflow lists it as not run. Run as `python -m cladbench.jax_engine` or `cladbench train
--engine jax`."""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import sys

import numpy as np
import torch

from . import pytorch_engine
from .models import conv_blocks


def jax_available() -> bool:
    return importlib.util.find_spec("jax") is not None


def _limit_threads(threads: int) -> None:
    """XLA's CPU client sizes its thread pools from the CPUs it may run on: pin the process to
    `threads` of them, as the other engines pin their BLAS. Must run before jax is imported."""
    cpus = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, set(cpus[:threads]))
    if threads == 1:
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                                   " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1").strip()


class JaxStepper:
    name = "jax"
    generator = "JAX jit(value_and_grad)"

    def __init__(self, model_kind: str, dims: list[int], layers: list[torch.Tensor], args: argparse.Namespace):
        _limit_threads(args.threads)
        import jax
        import jax.numpy as jnp

        self.jnp = jnp
        self.shapes = [tuple(t.shape) for t in layers]
        self.params = [jnp.asarray(t.numpy()) for t in layers]
        blocks = conv_blocks(dims) if model_kind == "cnn" else []

        def forward(params, x):
            h = x
            if blocks:  # [batch][channels][time], torch's Conv1d and MaxPool1d, then Flatten
                h = x.reshape(x.shape[0], dims[0], dims[1])
                for i, (c_out, kernel, pool) in enumerate(blocks):
                    w = params[2 * i].reshape(c_out, h.shape[1], kernel)
                    h = jax.lax.conv_general_dilated(h, w, (1,), "VALID", dimension_numbers=("NCH", "OIH", "NCH"))
                    h = h + params[2 * i + 1][None, :, None]
                    h = jax.lax.reduce_window(h, -jnp.inf, jax.lax.max, (1, 1, pool), (1, 1, pool), "VALID")
                    h = jax.nn.relu(h)
                h = h.reshape(h.shape[0], -1)
            linear = range(len(blocks), len(params) // 2)
            for i in linear:
                h = h @ params[2 * i].T + params[2 * i + 1]
                if i + 1 < len(params) // 2:
                    h = jax.nn.relu(h)
            return h

        def loss(params, x, y):
            logits = forward(params, x)
            picked = jnp.take_along_axis(logits, y[:, None], axis=1)[:, 0]
            return jnp.mean(jax.nn.logsumexp(logits, axis=1) - picked)

        value_and_grad = jax.value_and_grad(loss)
        lr = args.lr
        self.adam, self.t = args.optimizer == "adam", 0
        if self.adam:  # torch.optim.Adam's arithmetic; its bias corrections in double, on the host
            b1, b2, eps = 0.9, 0.999, 1e-8

            def step(state, x, y, step_size, bc2_sqrt):
                params, m, v = state
                value, grads = value_and_grad(params, x, y)
                m = [mi + (1 - b1) * (g - mi) for mi, g in zip(m, grads)]
                v = [b2 * vi + (1 - b2) * g * g for vi, g in zip(v, grads)]
                params = [p - step_size * mi / (jnp.sqrt(vi) / bc2_sqrt + eps) for p, mi, vi in zip(params, m, v)]
                return value, (params, m, v)

            self.state = (self.params, [jnp.zeros_like(p) for p in self.params], [jnp.zeros_like(p) for p in self.params])
        else:
            def step(state, x, y, step_size, bc2_sqrt):
                value, grads = value_and_grad(state, x, y)
                return value, [p - lr * g for p, g in zip(state, grads)]

            self.state = self.params
        self.lr = lr
        self._step = jax.jit(step, donate_argnums=0)
        self._grad = jax.jit(jax.grad(loss))
        self._logits = jax.jit(forward)

    def _params(self):
        return self.state[0] if self.adam else self.state

    def step(self, x: torch.Tensor, y: torch.Tensor) -> float:
        self.t += 1
        step_size, bc2_sqrt = self.lr / (1 - 0.9 ** self.t), math.sqrt(1 - 0.999 ** self.t)
        value, self.state = self._step(self.state, x.numpy(), y.numpy().astype(np.int32), np.float32(step_size),
                                       np.float32(bc2_sqrt))
        return float(value)

    def gradient(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        params = self._params()
        grads = self._grad(params, x.numpy(), y.numpy().astype(np.int32))
        flat = lambda arrays: torch.from_numpy(np.concatenate([np.asarray(a).reshape(-1) for a in arrays]))  # noqa: E731
        return flat(grads), flat(params)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        params = self._params()
        return torch.cat([torch.from_numpy(np.array(self._logits(params, chunk.numpy()))) for chunk in x.split(512)])


def main(argv: list[str] | None = None) -> int:
    if not jax_available():
        print("cladbench jax engine: JAX is not installed (it is an optional extra: pip install -e '.[jax]')",
              file=sys.stderr)
        return 2
    import jax

    JaxStepper.generator = f"JAX {jax.__version__} jit(value_and_grad)"
    return pytorch_engine.main(argv, JaxStepper, versions={"jax": jax.__version__})


if __name__ == "__main__":
    sys.exit(main())
