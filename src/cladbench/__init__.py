"""cladbench: Clad-generated gradients as a LibTorch gradient engine, measured against autograd.

The C++ core (kernels, engines, trainers) is built by CMake into build/ and, for Python, into
cladbench._core; import it through cladbench.core, which loads torch first.
"""

__version__ = "0.1.0"


def compile_model(source, root=None, quiet=False):
    """Your own model from one C++ file, with Clad's gradients, as a torch op and module: see
    cladbench.user_model.compile_model."""
    from .user_model import compile_model as compile_

    return compile_(source, root, quiet)
