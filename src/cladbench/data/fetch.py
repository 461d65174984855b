"""Input files: fetched from a mirror directory or their publishers, verified by SHA-256, staged
atomically into resources/.

A mirror is tried first (config `data.mirror`, else env DATA_MIRROR, else ../shared/data beside the
repository when it exists), then the publishers' URLs. Files are identified by hash, never by
name: Fashion-MNIST ships under MNIST's file names.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ..paths import REPO


@dataclass(frozen=True)
class DataFile:
    path: str  # relative to the mirror and to resources/
    sha256: str
    size: int
    urls: tuple[str, ...]  # the publishers' copies, tried in order


# MNIST: the mirrors torchvision lists; GWOSC: the GW150914 event release (hashes in ../shared/data/README.md).
_MNIST_URLS = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/")
_GWOSC_URL = "https://gwosc.org/GW150914data/"


def _mnist(name: str, sha256: str, size: int) -> DataFile:
    return DataFile(f"mnist/{name}", sha256, size, tuple(u + name for u in _MNIST_URLS))


def _gwosc(name: str, sha256: str, size: int) -> DataFile:
    return DataFile(f"gwosc/{name}", sha256, size, (_GWOSC_URL + name,))


FILES = {
    f.path: f
    for f in [
        _mnist(
            "t10k-images-idx3-ubyte.gz", "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6", 1648877
        ),
        _mnist("t10k-labels-idx1-ubyte.gz", "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6", 4542),
        _mnist(
            "train-images-idx3-ubyte.gz", "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609", 9912422
        ),
        _mnist("train-labels-idx1-ubyte.gz", "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c", 28881),
        _gwosc(
            "H-H1_LOSC_4_V2-1126259446-32.hdf5",
            "6e6976e932074a3b4e4a398ed02c62e30fcaa2781811762caea04937133583f6",
            1040592,
        ),
        _gwosc(
            "L-L1_LOSC_4_V2-1126259446-32.hdf5",
            "56706e68c811b15548f1d7ed69d7c48d5fcc62aeb21fbaf131355f3cc5c07189",
            1007420,
        ),
    ]
}
MNIST_T10K = ("mnist/t10k-images-idx3-ubyte.gz", "mnist/t10k-labels-idx1-ubyte.gz")
MNIST_TRAIN = ("mnist/train-images-idx3-ubyte.gz", "mnist/train-labels-idx1-ubyte.gz")
GW150914 = ("gwosc/H-H1_LOSC_4_V2-1126259446-32.hdf5", "gwosc/L-L1_LOSC_4_V2-1126259446-32.hdf5")
GROUPS = {"mnist-t10k": MNIST_T10K, "mnist-train": MNIST_TRAIN, "gw150914": GW150914}


class DataError(RuntimeError):
    """A data file is missing or is not the file it should be."""


def mirror_dir(configured: str | os.PathLike | None = None) -> Path | None:
    """The mirror named in the config, else $DATA_MIRROR, else ../shared/data if it exists. A mirror
    that is named but missing is an error, not a silent fallback."""
    named = configured or os.environ.get("DATA_MIRROR")
    if named:
        if not Path(named).is_dir():
            raise DataError(
                f"data mirror {named} (from {'the config' if configured else 'DATA_MIRROR'}) is not a directory"
            )
        return Path(named)
    default = REPO.parent / "shared" / "data"
    return default if default.is_dir() else None


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _copy_verified(open_source, spec: DataFile, dest: Path, origin: str) -> None:
    """Copies into a temporary file beside dest, checks the hash, renames: dest is whole or absent."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = tempfile.NamedTemporaryFile(dir=dest.parent, prefix=dest.name + ".", suffix=".part", delete=False)
    try:
        with tmp, open_source() as source:
            shutil.copyfileobj(source, tmp)
        got = sha256(Path(tmp.name))
        if got != spec.sha256:
            size = Path(tmp.name).stat().st_size
            raise DataError(
                f"{origin} is not {spec.path}: sha256 {got} ({size} bytes), expected {spec.sha256} "
                f"({spec.size} bytes): a truncated file, or another data set under the same name"
            )
        os.chmod(tmp.name, 0o644)  # a temporary file is private; the staged copy is not
        os.replace(tmp.name, dest)
    finally:
        if os.path.exists(tmp.name):
            os.unlink(tmp.name)


def stage(
    name: str, resources: Path = REPO / "resources", mirror: str | os.PathLike | None = None, download: bool = True
) -> Path:
    """resources/<name>, verified: from resources/ if already there, else the mirror, else the
    publishers' URLs. Raises DataError saying what was tried and how to pre-stage the file."""
    spec = FILES[name]
    dest = Path(resources) / spec.path
    if dest.exists():
        if sha256(dest) == spec.sha256:
            return dest
        dest.unlink()  # a damaged or foreign file is not kept
    tried = []
    source_dir = mirror_dir(mirror)
    if source_dir and (source_dir / spec.path).exists():
        _copy_verified(lambda: open(source_dir / spec.path, "rb"), spec, dest, str(source_dir / spec.path))
        return dest
    tried.append(f"no copy in a mirror ({source_dir or 'none configured'})")
    for url in spec.urls if download else ():
        try:
            print(f"downloading {url}", file=sys.stderr, flush=True)
            _copy_verified(lambda: urllib.request.urlopen(url, timeout=60), spec, dest, url)
            return dest
        except (urllib.error.URLError, OSError) as error:
            tried.append(f"{url}: {getattr(error, 'reason', error)}")
    raise DataError(
        f"{spec.path} (sha256 {spec.sha256}) could not be fetched: {'; '.join(tried)}. "
        f"Pre-stage it: download {spec.urls[0]} into a mirror directory as {spec.path} "
        f"and set DATA_MIRROR (or config data.mirror) to that directory."
    )


def stage_all(
    names, resources: Path = REPO / "resources", mirror: str | os.PathLike | None = None, download: bool = True
) -> list[Path]:
    """Stages every file, then reports every one that failed in one error."""
    staged, errors = [], []
    for name in names:
        try:
            staged.append(stage(name, resources, mirror, download))
        except DataError as error:
            errors.append(f"  - {error}")
    if errors:
        raise DataError(f"{len(errors)} of {len(staged) + len(errors)} data files are missing:\n" + "\n".join(errors))
    return staged


def mnist_t10k(mirror: str | os.PathLike | None = None, resources: Path = REPO / "resources") -> tuple[Path, Path]:
    """The verified MNIST test images and labels (the 10,000 the offline mirror holds)."""
    images, labels = stage_all(MNIST_T10K, resources, mirror)
    return images, labels
