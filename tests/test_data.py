"""Fetching input files: verified by SHA-256, written atomically, and every failure named with
the expected hash and how to pre-stage, leaving nothing behind in resources/."""

from __future__ import annotations

import gzip
import io
import urllib.error

import numpy as np
import pytest
from conftest import write_idx

from cladbench.data import fetch as data
from cladbench.data.fetch import FILES, MNIST_T10K, DataError, stage, stage_all

LABELS = "mnist/t10k-labels-idx1-ubyte.gz"


@pytest.fixture
def offline(monkeypatch):
    """No publisher answers (as on the build machines), without touching the network."""

    def refuse(url, timeout=None):
        raise urllib.error.URLError("network unreachable")

    monkeypatch.setattr(data.urllib.request, "urlopen", refuse)


@pytest.fixture
def mirror(tmp_path):
    (tmp_path / "mirror" / "mnist").mkdir(parents=True)
    return tmp_path / "mirror"


def leftovers(resources):
    return [p for p in resources.rglob("*") if p.is_file()] if resources.exists() else []


def test_checksum_mismatch_is_named_and_leaves_nothing(tmp_path, mirror, offline):
    (mirror / LABELS).write_bytes(b"\x1f\x8b not the MNIST labels")
    with pytest.raises(
        DataError, match=f"{mirror / LABELS} is not {LABELS}: sha256 .* expected {FILES[LABELS].sha256}"
    ):
        stage(LABELS, tmp_path / "resources", mirror)
    assert leftovers(tmp_path / "resources") == []


def test_truncated_file_is_rejected(tmp_path, mirror, offline):
    real = data.mirror_dir()
    content = (real / LABELS).read_bytes() if real and (real / LABELS).exists() else gzip.compress(bytes(10008))
    (mirror / LABELS).write_bytes(content[: len(content) // 2])
    with pytest.raises(DataError, match="a truncated file"):
        stage(LABELS, tmp_path / "resources", mirror)
    assert leftovers(tmp_path / "resources") == []


def test_another_dataset_under_mnist_names_is_rejected(tmp_path, mirror, offline):
    """A well-formed IDX file with other contents (as Fashion-MNIST's, which uses MNIST's names)."""
    write_idx(mirror / LABELS, np.random.default_rng(0).integers(0, 10, 10000))
    with pytest.raises(DataError, match="another data set under the same name"):
        stage(LABELS, tmp_path / "resources", mirror)
    assert leftovers(tmp_path / "resources") == []


def test_a_named_mirror_that_does_not_exist_is_an_error(tmp_path, monkeypatch, offline):
    monkeypatch.setenv("DATA_MIRROR", str(tmp_path / "nowhere"))
    with pytest.raises(
        DataError, match=f"data mirror {tmp_path / 'nowhere'} \\(from DATA_MIRROR\\) is not a directory"
    ):
        stage(LABELS, tmp_path / "resources")


def test_offline_without_mirror_names_every_missing_file(tmp_path, monkeypatch, offline):
    monkeypatch.delenv("DATA_MIRROR", raising=False)
    monkeypatch.setattr(data, "REPO", tmp_path / "repo")  # no ../shared/data beside it
    names = [*MNIST_T10K, *data.GW150914]
    with pytest.raises(DataError) as error:
        stage_all(names, tmp_path / "resources")
    message = str(error.value)
    assert message.startswith("4 of 4 data files are missing")
    for name in names:
        assert name in message and FILES[name].sha256 in message and FILES[name].urls[0] in message
    assert "network unreachable" in message and "set DATA_MIRROR" in message
    assert leftovers(tmp_path / "resources") == []


def test_download_is_verified_then_renamed(tmp_path, monkeypatch):
    real = data.mirror_dir()
    if not (real and (real / LABELS).exists()):
        pytest.skip("needs the real MNIST labels in the data mirror to serve as the 'download'")
    content = (real / LABELS).read_bytes()
    seen = []

    def serve(url, timeout=None):
        seen.append(url)
        return io.BytesIO(content)

    monkeypatch.setattr(data.urllib.request, "urlopen", serve)
    monkeypatch.delenv("DATA_MIRROR", raising=False)
    monkeypatch.setattr(data, "REPO", tmp_path / "repo")  # no mirror anywhere
    path = stage(LABELS, tmp_path / "resources", download=True)
    assert seen == [FILES[LABELS].urls[0]]
    assert path.read_bytes() == content and leftovers(tmp_path / "resources") == [path]


def test_a_damaged_staged_file_is_replaced_from_the_mirror(tmp_path, offline):
    real = data.mirror_dir()
    if not (real and (real / LABELS).exists()):
        pytest.skip("needs the real MNIST labels in the data mirror")
    resources = tmp_path / "resources"
    (resources / "mnist").mkdir(parents=True)
    (resources / LABELS).write_bytes(b"damaged")
    assert stage(LABELS, resources, real).read_bytes() == (real / LABELS).read_bytes()
