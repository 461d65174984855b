"""The command line around the core: doctor, the main job's config validation, data staging, and
the C++ tests (ctest)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from cladbench.paths import REPO, build_dir, build_manifest
from cladbench.run import ConfigError, load_config
from conftest import CLAD_BUILT


def test_doctor_reports_the_machine():
    done = subprocess.run([sys.executable, "-m", "cladbench", "doctor"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "torch        2.13.0" in out and "share/cmake/Torch" in out
    assert "C++ compiler" in out and "nvcc" in out and "GPUs" in out
    assert "yes  cpu-manual-rowmajor-arena" in out and "cuda-*:" in out
    if CLAD_BUILT:
        assert f"Clad         {build_manifest()['clad_version']} at {build_manifest()['clad_prefix']}" in out
        assert "yes  cpu-clad-rowmajor-arena" in out
    else:
        assert "Clad         not usable:" in out and "no   cpu-clad-rowmajor-arena" in out


def test_cpp_tests_pass():
    done = subprocess.run(["ctest", "--output-on-failure"], cwd=build_dir(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "100% tests passed" in done.stdout


def test_default_config_is_valid():
    config = load_config("config/config.yaml")
    assert config["train"]["batch"] == [32, 256]


@pytest.mark.parametrize("change, message", [
    (lambda c: c["train"].update(optimiser="sgd"), "Additional properties are not allowed ('optimiser'"),
    (lambda c: c["train"].update(batch=[0]), "train/batch/0"),
    (lambda c: c.update(engines=["clad", "tensorflow"]), "engines/1"),
])
def test_invalid_config_names_itself(tmp_path, change, message):
    config = yaml.safe_load(open("config/config.yaml"))
    change(config)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("[", r"\[")):
        load_config(path)


def test_snakefile_dry_runs_and_rejects_an_invalid_config(tmp_path):
    snakemake = [sys.executable, "-m", "snakemake", "--cores", "1", "-n", "--directory", str(tmp_path),
                 "--snakefile", str(REPO / "Snakefile")]
    (tmp_path / "config").mkdir()
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    for name in ("config.yaml", "schema.yaml"):
        (tmp_path / "config" / name).write_text((REPO / "config" / name).read_text())
    done = subprocess.run(snakemake, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "train_mnist" in done.stdout + done.stderr

    config["train"]["epochs"] = 0
    (tmp_path / "config" / "config.yaml").write_text(yaml.safe_dump(config))
    done = subprocess.run(snakemake, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    message = done.stdout + done.stderr
    assert "Error validating config file" in message and "['epochs']" in message and "minimum of 1" in message
