"""Compiling emitted models (cladbench.onnx.emit) into a shared library with a C ABI, through the
project's one Clad compile path (cladbench.clad_compile: clang, the Clad plugin, cached by content
hash), and calling it from Python through ctypes."""

from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np

from ..clad_compile import CladUnavailableError, build_library, clad_prefix
from ..paths import build_dir
from .emit import EmittedModel

__all__ = ["CladUnavailableError", "CompiledModel", "clad_prefix", "compile_model", "load"]


def compile_model(model: EmittedModel, root: Path | None = None, quiet: bool = False) -> Path:
    """The shared library of an emitted model: build/onnx/<hash>/lib<name>.so, compiled (by the one
    compile path, cladbench.clad_compile) unless a library of the same source already exists."""
    root = Path(root) if root else build_dir() / "onnx"
    return build_library(model.name, root, text=model.source, quiet=quiet, what="cladbench onnx")


_f32p, _f64p = ctypes.POINTER(ctypes.c_float), ctypes.POINTER(ctypes.c_double)
_intp = ctypes.POINTER(ctypes.c_int)


def _ptr(array: np.ndarray | None):
    return None if array is None else array.ctypes.data_as(ctypes.c_void_p)


class CompiledModel:
    """An emitted model's library, called with numpy arrays. dtype: float32 or float64."""

    def __init__(self, model: EmittedModel, library: Path, dtype=np.float64):
        self.model, self.library, self.dtype = model, library, np.dtype(dtype)
        self.lib = ctypes.CDLL(str(library))
        self.suffix = {np.dtype(np.float32): "f32", np.dtype(np.float64): "f64"}[self.dtype]
        sizes = (ctypes.c_long * 4)()
        self._fn("sizes", typed=False)(sizes)
        self.param_count, self.input_size, self.output_size, self.ws_per_sample = list(sizes)
        assert self.param_count == model.params.size, "library and emitted model disagree"
        self.params = model.params.astype(self.dtype)

    def _fn(self, what: str, typed: bool = True):
        fn = getattr(self.lib, f"{self.model.name}_{what}" + (f"_{self.suffix}" if typed else ""))
        fn.restype = None
        return fn

    def _buffers(self, x: np.ndarray) -> tuple[np.ndarray, int, np.ndarray]:
        x = np.ascontiguousarray(x, dtype=self.dtype)
        batch = x.shape[0]
        if x.size != batch * self.input_size:
            raise ValueError(
                f"input of shape {x.shape}: expected [batch, {', '.join(map(str, self.model.input_shape))}]"
            )
        return x, batch, np.zeros(batch * self.ws_per_sample, dtype=self.dtype)

    def load_weights(self, path: Path) -> None:
        fn = self._fn("load_weights")
        fn.restype = ctypes.c_int
        rc = fn(str(path).encode(), _ptr(self.params))
        if rc != 0:
            raise ValueError(
                f"{path}: cannot load weights (code {rc}: -1 unreadable, -2 not a weights file, "
                f"-3 wrong size for {self.model.name})"
            )

    def forward(self, x: np.ndarray, params: np.ndarray | None = None) -> np.ndarray:
        x, batch, ws = self._buffers(x)
        y = np.empty((batch, *self.model.output_shape), dtype=self.dtype)
        self._fn("forward")(_ptr(self.params if params is None else params), _ptr(x), batch, _ptr(ws), _ptr(y))
        return y

    def vjp(self, x: np.ndarray, cotangent: np.ndarray, inputs_only: bool = False):
        """(<cotangent, y>, d_params, d_x): the vector-Jacobian product with respect to the weights
        and the input (d_params is None for inputs_only)."""
        x, batch, ws = self._buffers(x)
        cot = np.ascontiguousarray(cotangent, dtype=self.dtype)
        loss = np.zeros(1, dtype=self.dtype)
        d_x, d_ws = np.zeros_like(x), np.zeros_like(ws)
        if inputs_only:
            self._fn("output_dot_input_grad")(
                _ptr(self.params), _ptr(x), _ptr(cot), batch, _ptr(ws), _ptr(loss), _ptr(d_x), _ptr(d_ws)
            )
            return loss[0], None, d_x
        d_params = np.zeros_like(self.params)
        self._fn("output_dot_grad")(
            _ptr(self.params), _ptr(x), _ptr(cot), batch, _ptr(ws), _ptr(loss), _ptr(d_params), _ptr(d_x), _ptr(d_ws)
        )
        return loss[0], d_params, d_x

    def cross_entropy_grad(self, x: np.ndarray, labels: np.ndarray):
        """(mean cross-entropy, d_params, d_x) of a batch against integer labels."""
        x, batch, ws = self._buffers(x)
        labels = np.ascontiguousarray(labels, dtype=np.int32)
        loss = np.zeros(1, dtype=self.dtype)
        d_params, d_x, d_ws = np.zeros_like(self.params), np.zeros_like(x), np.zeros_like(ws)
        self._fn("cross_entropy_grad")(
            _ptr(self.params), _ptr(x), _ptr(labels), batch, _ptr(ws), _ptr(loss), _ptr(d_params), _ptr(d_x), _ptr(d_ws)
        )
        return loss[0], d_params, d_x

    def cross_entropy(self, x: np.ndarray, labels: np.ndarray) -> float:
        x, batch, ws = self._buffers(x)
        labels = np.ascontiguousarray(labels, dtype=np.int32)
        loss = np.zeros(1, dtype=self.dtype)
        self._fn("cross_entropy")(_ptr(self.params), _ptr(x), _ptr(labels), batch, _ptr(ws), _ptr(loss))
        return float(loss[0])

    def time_input_grad(self, x: np.ndarray, reps: int) -> np.ndarray:
        """Seconds per input-gradient call (cotangent 1), timed inside the library, `reps` calls."""
        x, batch, ws = self._buffers(x)
        cot = np.ones(batch * self.output_size, dtype=self.dtype)
        seconds = np.zeros(reps, dtype=np.float64)
        self._fn("time_input_grad")(
            _ptr(self.params),
            _ptr(x),
            _ptr(cot),
            batch,
            _ptr(ws),
            _ptr(np.zeros_like(x)),
            _ptr(np.zeros_like(ws)),
            reps,
            _ptr(seconds),
        )
        return seconds


def load(model: EmittedModel, dtype=np.float64, root: Path | None = None) -> CompiledModel:
    """Compile (or reuse) and load an emitted model."""
    return CompiledModel(model, compile_model(model, root), dtype)
