"""The C++ core for Python: `from cladbench.core import core`. Loads torch first (the module links
LibTorch), and turns a missing build into a clear error."""

import torch  # noqa: F401  (libtorch must be loaded before _core)

try:
    from . import _core as core
except ImportError as error:  # pragma: no cover - only without a build
    raise ImportError(f"cladbench's C++ module is not built ({error}); run `make build`") from error

from . import ops as _ops  # noqa: E402, F401  (the torch ops' fake kernels, for torch.compile)

__all__ = ["core"]
