"""The jax engine: the same models written in jax.numpy, one jit-compiled step (value_and_grad and
the optimizer update, buffers donated) on batches already on the device, on the CPU. The strongest
peer the benchmark compares the clad engine with. It runs in the Python engines' training loop
(pytorch_engine.py): same parameters, same batches, same updates, same run record.

JAX is an optional extra (`pip install -e '.[jax]'`); without it this engine exits 2 and the
workflow lists it as not run. Run as `python -m cladbench.engines.jax` or `cladbench train
--engine jax`."""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys

import numpy as np
import torch

from . import pytorch as pytorch_engine
from .models import conv_blocks


def jax_available() -> bool:
    return importlib.util.find_spec("jax") is not None


def _limit_threads(threads: int) -> None:
    """Give XLA's CPU client `threads` CPUs. It sizes its thread pools by DefaultThreadPoolSize()
    (xla/pjrt/utils.cc): $PJRT_NPROC, then $NPROC, else tsl::port::MaxParallelism(), the number
    of CPUs the process may run on (sched_getaffinity). So the process is pinned to `threads`
    CPUs, as the other engines pin their BLAS, and PJRT_NPROC says the same. No XLA flag sets it:
    intra_op_parallelism_threads is TensorFlow's, and XLA_FLAGS=--intra_op_parallelism_threads=1
    stops XLA with "Unknown flag in XLA_FLAGS" (without the "--" XLA ignores it). Must run before
    jax starts its CPU client."""
    cpus = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, set(cpus[:threads]))
    os.environ["PJRT_NPROC"] = str(threads)


def adam_schedule(lr: float, beta1: float, beta2: float) -> tuple[np.ndarray, np.ndarray]:
    """torch.optim.Adam's per-step scalars for steps t = 1, 2, ...: lr / (1 - beta1^t) and
    (1 - beta2^t)^0.5, computed in double as torch computes them, then float32 as its kernels
    apply them. Both converge monotonically, so the tables end at the step from which neither
    changes any more in float32 (t ~ 17,300 for beta2 = 0.999); later steps use the last entry."""
    step_size, bias_correction2_sqrt = [], []
    while not (step_size and step_size[-1] == np.float32(lr) and bias_correction2_sqrt[-1] == 1):
        t = len(step_size) + 1
        step_size.append(lr / (1 - beta1**t))
        bias_correction2_sqrt.append((1 - beta2**t) ** 0.5)
    return np.array(step_size, np.float32), np.array(bias_correction2_sqrt, np.float32)


class JaxStepper:
    name = "jax"
    generator = "JAX jit(value_and_grad)"

    def __init__(self, model_kind: str, dims: list[int], layers: list[torch.Tensor], args: argparse.Namespace):
        _limit_threads(args.threads)
        import jax
        import jax.numpy as jnp

        self.jax, self.jnp = jax, jnp
        params = [jnp.asarray(t.numpy()) for t in layers]
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
        self.adam = args.optimizer == "adam"
        if self.adam:  # torch.optim.Adam's arithmetic; its per-step scalars on the device, indexed by the step
            b1, b2, eps = 0.9, 0.999, 1e-8

            def step(state, x, y, schedule):
                params, m, v, t = state
                step_sizes, bias_corrections2_sqrt = schedule
                k = jnp.minimum(t, len(step_sizes) - 1)
                value, grads = value_and_grad(params, x, y)
                m = [mi + (1 - b1) * (g - mi) for mi, g in zip(m, grads)]
                v = [b2 * vi + (1 - b2) * g * g for vi, g in zip(v, grads)]
                params = [
                    p - step_sizes[k] * mi / (jnp.sqrt(vi) / bias_corrections2_sqrt[k] + eps)
                    for p, mi, vi in zip(params, m, v)
                ]
                return value, (params, m, v, t + 1)

            m = [jnp.zeros_like(p) for p in params]
            v = [jnp.zeros_like(p) for p in params]  # buffers of their own: both are donated
            self.state = (params, m, v, jnp.zeros((), jnp.int32))
            self.schedule = tuple(jnp.asarray(a) for a in adam_schedule(lr, b1, b2))
        else:  # SGD: nothing but the batch changes from step to step

            def step(params, x, y, schedule):
                value, grads = value_and_grad(params, x, y)
                return value, [p - lr * g for p, g in zip(params, grads)]

            self.state, self.schedule = params, ()
        self._step = jax.jit(step, donate_argnums=0)
        self._grad = jax.jit(jax.grad(loss))
        self._logits = jax.jit(forward)

    def _params(self):
        return self.state[0] if self.adam else self.state

    def prepare(self, x: torch.Tensor, y: torch.Tensor):
        """The batch as jax arrays on the device, ready; copies, for jax's arrays are immutable and torch
        may reuse the batch's memory."""
        return self.jax.block_until_ready((self.jnp.array(x.numpy()), self.jnp.asarray(y.numpy(), self.jnp.int32)))

    def step(self, batch) -> float:
        value, self.state = self._step(self.state, *batch, self.schedule)
        return float(value)

    def gradient(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        params = self._params()
        grads = self._grad(params, x.numpy(), y.numpy().astype(np.int32))
        flat = lambda arrays: torch.from_numpy(np.concatenate([np.asarray(a).reshape(-1) for a in arrays]))  # noqa: E731
        return flat(grads), flat(params)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        params = self._params()
        return torch.cat([torch.from_numpy(np.array(self._logits(params, chunk.numpy()))) for chunk in x.split(512)])

    def flat_params(self) -> torch.Tensor:
        """The parameters now, flat in the kernels' row-major order (torch's [out][in] per layer), float32."""
        return torch.from_numpy(np.concatenate([np.asarray(a, np.float32).reshape(-1) for a in self._params()]))


def main(argv: list[str] | None = None) -> int:
    if not jax_available():
        print(
            "cladbench jax engine: JAX is not installed (it is an optional extra: pip install -e '.[jax]')",
            file=sys.stderr,
        )
        return 2
    import jax

    JaxStepper.generator = f"JAX {jax.__version__} jit(value_and_grad)"
    return pytorch_engine.main(argv, JaxStepper, versions={"jax": jax.__version__})


if __name__ == "__main__":
    sys.exit(main())
