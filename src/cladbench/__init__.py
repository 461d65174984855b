"""cladbench: Clad-generated gradients as a LibTorch gradient engine, measured against autograd.

The C++ core (kernels, engines, trainers) is built by CMake into build/ and, for Python, into
cladbench._core; import it through cladbench.core, which loads torch first.
"""

__version__ = "0.1.0"
