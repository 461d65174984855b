"""Input files: located in a mirror directory, verified by SHA-256, staged atomically.

The mirror is tried first (config `data.mirror`, else env DATA_MIRROR, else ../shared/data beside
the repository when it exists). Files are identified by hash, never by name: Fashion-MNIST ships
under MNIST's file names.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .paths import REPO


@dataclass(frozen=True)
class DataFile:
    path: str  # relative to the mirror and to resources/
    sha256: str
    size: int
    url: str


FILES = {
    f.path: f
    for f in [
        DataFile("mnist/t10k-images-idx3-ubyte.gz", "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
                 1648877, "https://ossci-datasets.s3.amazonaws.com/mnist/t10k-images-idx3-ubyte.gz"),
        DataFile("mnist/t10k-labels-idx1-ubyte.gz", "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
                 4542, "https://ossci-datasets.s3.amazonaws.com/mnist/t10k-labels-idx1-ubyte.gz"),
        DataFile("mnist/train-images-idx3-ubyte.gz", "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
                 9912422, "https://ossci-datasets.s3.amazonaws.com/mnist/train-images-idx3-ubyte.gz"),
        DataFile("mnist/train-labels-idx1-ubyte.gz", "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
                 28881, "https://ossci-datasets.s3.amazonaws.com/mnist/train-labels-idx1-ubyte.gz"),
    ]
}


class DataError(RuntimeError):
    """A data file is missing or is not the file it should be."""


def mirror_dir(configured: str | os.PathLike | None = None) -> Path | None:
    for candidate in (configured, os.environ.get("DATA_MIRROR"), REPO.parent / "shared" / "data"):
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return None


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def stage(name: str, resources: Path = REPO / "resources", mirror: str | os.PathLike | None = None) -> Path:
    """resources/<name>, verified; copied from the mirror if not there yet. Raises DataError."""
    spec = FILES[name]
    dest = Path(resources) / spec.path
    if dest.exists() and sha256(dest) == spec.sha256:
        return dest
    source_dir = mirror_dir(mirror)
    source = source_dir / spec.path if source_dir else None
    if source is None or not source.exists():
        raise DataError(
            f"{spec.path} is missing: no copy in a data mirror ({source_dir or 'none configured'}) and this "
            f"machine fetches nothing. Pre-stage it: download {spec.url} (sha256 {spec.sha256}) into "
            f"a mirror directory as {spec.path} and set DATA_MIRROR to that directory.")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=dest.parent, prefix=dest.name, suffix=".part", delete=False) as tmp:
        shutil.copyfileobj(open(source, "rb"), tmp)
    got = sha256(Path(tmp.name))
    if got != spec.sha256:
        os.unlink(tmp.name)
        raise DataError(f"{source} is not {spec.path}: sha256 {got}, expected {spec.sha256} "
                        f"(a truncated download, or another data set under the same name)")
    os.replace(tmp.name, dest)  # the file appears whole or not at all
    return dest


def mnist_t10k(mirror: str | os.PathLike | None = None, resources: Path = REPO / "resources") -> tuple[Path, Path]:
    """The verified MNIST test images and labels (the 10,000 the offline mirror holds)."""
    return (stage("mnist/t10k-images-idx3-ubyte.gz", resources, mirror),
            stage("mnist/t10k-labels-idx1-ubyte.gz", resources, mirror))
