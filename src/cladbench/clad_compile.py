"""The one path from C++ model source to a shared library with Clad's gradients in it: clang and the
Clad plugin, cached by content hash. The ONNX importer (cladbench.onnx.compile) and your own models
(cladbench.user_model.compile_model) both build through `build_library`.

A library links no LibTorch code of its own: only the BLAS (sgemm_/dgemm_) that libtorch_cpu
exports, so that it multiplies with the library PyTorch uses (docs/architecture.md, "The kernel
contract"). What fails comes back as a ModelCompileError holding the compiler's diagnostics, each
with its file and line, Clad's included.
"""

from __future__ import annotations

import functools
import hashlib
import re
import subprocess
import sys
from pathlib import Path

from .doctor import cxx_compiler, find_clad
from .paths import REPO

CPP = REPO / "cpp"
# The project's headers a model may include: the layer library, the model ABI, the kernels' helpers.
INCLUDE_DIRS = [CPP / "model", CPP / "onnx", CPP / "kernels"]


class CladUnavailableError(RuntimeError):
    """No Clad plugin that loads into the compiler (the reason comes from cpp/cmake/clad.cmake)."""


class ModelCompileError(RuntimeError):
    """The compiler or Clad refused a model's source; the message has their diagnostics."""


@functools.lru_cache(maxsize=None)
def clad_prefix() -> Path:
    """Clad's prefix, from the project's one Clad finder; raises CladUnavailableError with its reason."""
    info = find_clad(cxx_compiler())
    if info.get("CLAD_FOUND") != "TRUE":
        raise CladUnavailableError(f"Clad not usable: {info.get('CLAD_REASON', 'unknown reason')}")
    return Path(info["CLAD_PREFIX"])


def torch_lib_dir() -> Path:
    import torch

    return Path(torch.__file__).parent / "lib"


def clad_args(*args: str) -> list[str]:
    """Arguments for the Clad plugin, as clang takes them."""
    return [word for arg in args for word in ("-Xclang", "-plugin-arg-clad", "-Xclang", arg)]


def compile_command(cpp: Path, library: Path) -> list[str]:
    clad = clad_prefix()
    return [
        cxx_compiler(),
        "-std=c++20",
        "-O2",
        "-fPIC",
        "-shared",
        "-Wno-unused-variable",
        f"-fplugin={clad}/lib/clad.so",
        f"-I{clad}/include",
        # TBR: tape only what the reverse sweep reads; porting hints: name the custom derivative a
        # function from a header is missing, where Clad falls back to differentiating its body.
        *clad_args("-enable-tbr", "-fclad-porting-hints"),
        *(f"-I{d}" for d in INCLUDE_DIRS),
        str(cpp),
        "-o",
        str(library),
        f"-L{torch_lib_dir()}",
        "-ltorch_cpu",
        f"-Wl,-rpath,{torch_lib_dir()}",
    ]


def _headers() -> list[Path]:
    return sorted(h for d in INCLUDE_DIRS for h in d.glob("*.hpp"))


# A clang diagnostic: "file:line:col: kind: text".
_DIAGNOSTIC = re.compile(r"^(?P<where>[^\s:][^:]*:\d+:\d+): (?P<kind>fatal error|error|warning|note|remark): ")


def diagnostics(stderr: str, limit: int = 40) -> str:
    """The compiler's errors with the notes and Clad remarks around them, and the source lines clang
    quotes, without the include chains; at most `limit` lines."""
    kept, keep_quote = [], False
    for line in stderr.splitlines():
        m = _DIAGNOSTIC.match(line)
        if m:
            keep_quote = m["kind"] in ("fatal error", "error", "note") or "clad" in line
            if keep_quote:
                kept.append(line)
        elif keep_quote and (line.startswith(" ") or line.strip().isdigit() or "|" in line[:8]):
            kept.append(line)  # the quoted source line and its caret
        else:
            keep_quote = False
    if not kept:  # not clang's format (a linker error, a crash): its last lines
        kept = stderr.strip().splitlines()[-limit:]
    more = len(kept) - limit
    return "\n".join(kept[:limit] + ([f"... ({more} more lines)"] if more > 0 else []))


def build_library(
    name: str, root: Path, source: Path | None = None, text: str | None = None, quiet: bool = False,
    what: str = "cladbench",
) -> Path:
    """The shared library of a model: root/<hash>/lib<name>.so, compiled unless a library of the same
    source, headers and compiler already exists. From the file `source` (the compiler reads it
    there, so its diagnostics name that file and its lines), or from C++ `text`, written beside the
    library as <name>.cpp."""
    if text is None:
        text = Path(source).read_text()
    key = hashlib.sha256(text.encode())
    for header in _headers():
        key.update(header.read_bytes())
    key.update(" ".join(compile_command(Path("m.cpp"), Path("m.so"))).encode())
    directory = Path(root) / key.hexdigest()[:16]
    library = directory / f"lib{name}.so"
    if library.exists():
        return library
    directory.mkdir(parents=True, exist_ok=True)
    if source is None:
        source = directory / f"{name}.cpp"
        source.write_text(text)
    if not quiet:
        print(f"{what}: compiling {name} with Clad ({source})", file=sys.stderr)
    partial = directory / f".lib{name}.so.partial"
    done = subprocess.run(compile_command(Path(source), partial), capture_output=True, text=True)
    if done.returncode != 0:
        log = directory / "compile.log"
        log.write_text(done.stderr)
        raise ModelCompileError(f"compiling {source} with Clad failed (whole log: {log}):\n{diagnostics(done.stderr)}")
    partial.rename(library)  # atomic: a crashed build leaves no library behind
    return library
