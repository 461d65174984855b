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


# What Clad only warns about but which makes its gradient wrong or approximate: a call it cannot
# differentiate and takes as 0, a statement it skips, a numerical derivative in place of one.
_CLAD_GAPS = re.compile(
    r"attempted differentiation of function|numerical differentiation|statement kind '\w+' is not supported"
    r"|considering '.*' as 0"
)


def clad_gaps(stderr: str) -> list[str]:
    """Clad's warnings that the gradient it wrote is not the gradient (see _CLAD_GAPS)."""
    return [line for line in stderr.splitlines() if _DIAGNOSTIC.match(line) and _CLAD_GAPS.search(line)]


# A clang diagnostic: "file:line:col: kind: text".
_DIAGNOSTIC = re.compile(r"^(?P<where>[^\s:][^:]*:\d+:\d+): (?P<kind>fatal error|error|warning|note|remark): ")


def diagnostics(stderr: str, limit: int = 40) -> str:
    """The compiler's errors and Clad's warnings, each with its notes and the source lines clang
    quotes, and Clad's porting hints, without include chains; at most `limit` lines. Hints about
    CLADBENCH_MODEL's own code (Clad differentiating the loss it adds) are left out."""
    blocks: list[list[str]] = []
    for line in stderr.splitlines():
        m = _DIAGNOSTIC.match(line)
        if m and m["kind"] != "note":
            blocks.append([line])
        elif blocks and not line.startswith("In file included from"):
            blocks[-1].append(line)  # its notes and quoted source
    kept, seen = [], set()
    for block in blocks:
        kind = _DIAGNOSTIC.match(block[0])["kind"]
        if kind == "remark" and ("clad" not in block[0] or any("macro 'CLADBENCH_MODEL'" in b for b in block)):
            continue
        if kind == "warning" and not _CLAD_GAPS.search(block[0]):
            continue
        if "\n".join(block) not in seen:  # the same warning from the float and the double gradient
            seen.add("\n".join(block))
            kept += block
    if not kept:  # not clang's format (a linker error, a crash): its last lines
        kept = stderr.strip().splitlines()[-limit:]
    more = len(kept) - limit
    return "\n".join(kept[:limit] + ([f"... ({more} more lines)"] if more > 0 else []))


def build_library(
    name: str,
    root: Path,
    source: Path | None = None,
    text: str | None = None,
    quiet: bool = False,
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
    problem = refusal(source, done.returncode, done.stderr)
    if problem:
        log = directory / "compile.log"
        log.write_text(done.stderr)
        partial.unlink(missing_ok=True)
        raise ModelCompileError(f"{problem} (whole log: {log}):\n{diagnostics(done.stderr)}")
    partial.rename(library)  # atomic: a crashed build leaves no library behind
    return library


def refusal(source: Path | str, returncode: int, stderr: str) -> str | None:
    """Why a compile of `source` is refused, or None: it failed, or Clad left gaps in the gradient."""
    if returncode != 0:
        return f"compiling {source} with Clad failed"
    if clad_gaps(stderr):
        return (
            f"Clad could not differentiate all of {source}: the gradient it wrote would be wrong where it warns "
            "(give that function a custom derivative, clad::custom_derivatives; -fclad-porting-hints' notes "
            "name its signature)"
        )
    return None


def checked_compile(command: list[str]) -> int:
    """Runs a compile command (CMake's compiler launcher for cladbench_add_model), relays its
    output, and fails it as build_library would: on Clad's gaps too."""
    done = subprocess.run(command, capture_output=True, text=True)
    source = next((a for a in command if a.endswith((".cpp", ".cc", ".cxx"))), "the model")
    problem = refusal(source, done.returncode, done.stderr)
    sys.stdout.write(done.stdout)
    if problem or re.search(r": (warning|error): ", done.stderr):  # not the porting hints alone
        sys.stderr.write(done.stderr)
    if problem and done.returncode == 0:
        print(f"error: {problem}:\n{diagnostics(done.stderr)}", file=sys.stderr)
        for output in (command[i + 1] for i, a in enumerate(command[:-1]) if a == "-o"):
            Path(output).unlink(missing_ok=True)  # no object for make/ninja to take as built
    return 1 if problem else 0


if __name__ == "__main__":  # python -m cladbench.clad_compile <compiler> <args...>
    sys.exit(checked_compile(sys.argv[1:]))
