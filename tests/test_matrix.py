"""The study's matrix (cladbench.matrix) is the one list of engines, devices, layouts and allocs:
the schemas' enums, the C++ build and the variant names all agree with it."""

from __future__ import annotations

import re

import pytest
import yaml

from cladbench import matrix
from cladbench.paths import REPO, build_manifest


def test_the_schemas_list_the_matrix():
    config = yaml.safe_load((REPO / "config" / "schema.yaml").read_text())["properties"]
    assert config["engines"]["items"]["enum"] == list(matrix.ENGINES)
    assert config["gw"]["properties"]["engines"]["items"]["enum"] == list(matrix.ENGINES)
    assert config["root"]["properties"]["engines"]["items"]["enum"] == list(matrix.CPP_ENGINES)
    for field, values in (("devices", matrix.DEVICES), ("layouts", matrix.LAYOUTS), ("allocs", matrix.ALLOCS)):
        assert config[field]["items"]["enum"] == list(values), field
    record = yaml.safe_load((REPO / "workflow" / "schemas" / "run_record.schema.yaml").read_text())["properties"]
    for field, values in (
        ("engine", matrix.ENGINES),
        ("device", matrix.DEVICES),
        ("layout", matrix.LAYOUTS),
        ("alloc", matrix.ALLOCS),
    ):
        assert record[field]["enum"] == list(values), field


def test_the_build_makes_the_variants_the_matrix_names():
    manifest = build_manifest()
    cpu = [v for e in matrix.CPP_ENGINES if e != "clad" or manifest["clad_found"] for v in matrix.variants_of(e)]
    assert sorted(manifest["variants"]) == sorted(cpu)
    for variant in manifest.get("cuda_variants", []):
        device, engine, layout, alloc = matrix.parse_variant(variant)
        assert device == "cuda" and engine in matrix.CUDA_ENGINES and engine not in matrix.PYTHON_ENGINES


@pytest.mark.parametrize("engine", matrix.ENGINES)
def test_variant_names_round_trip(engine):
    for device in matrix.DEVICES:
        for variant in matrix.variants_of(engine, device=device):
            assert matrix.variant_name(*matrix.parse_variant(variant)[1:], device) == variant
            assert matrix.parse_variant(variant)[:2] == (device, engine)
            assert matrix.record_variant(f"{variant}-b32-t1-r0.json") == variant
            assert matrix.record_variant(f"{variant}-r3.json") == variant
            assert re.fullmatch(matrix.variant_pattern(), variant)
    kernel = engine in matrix.KERNEL_ENGINES
    assert len(matrix.variants_of(engine)) == (len(matrix.LAYOUTS) * len(matrix.ALLOCS) if kernel else 1)
    assert bool(re.fullmatch(matrix.variant_pattern(matrix.CPP_ENGINES), matrix.variant_name(engine))) == (
        engine in matrix.CPP_ENGINES
    )


def test_what_has_no_variant_says_why():
    assert matrix.device_problem("jax", "cuda") == "the jax engine runs on the CPU only"
    assert matrix.device_problem("manual", "cuda") == "the manual engine runs on the CPU only"
    assert matrix.device_problem("clad", "cuda") is None and matrix.device_problem("jax", "cpu") is None
    with pytest.raises(ValueError, match="manual engine has no cuda variant"):
        matrix.cuda_variant("manual")
    with pytest.raises(ValueError, match="is not <device>-<engine>-<layout>-<alloc>"):
        matrix.parse_variant("cpu-clad")
    with pytest.raises(ValueError, match="not named"):
        matrix.record_variant("notes.json")
    assert matrix.cuda_variant("clad") == "cuda-clad-rowmajor-arena"
    assert matrix.cuda_variant("pytorch") == "cuda-pytorch-rowmajor-dynamic"
    assert not matrix.trains_cnn("cuda-clad-rowmajor-arena") and matrix.trains_cnn(
        "cuda-libtorch-rowmajor-dynamic-r0.json"
    )
    assert matrix.engine_module("pytorch-compile") == "cladbench.engines.pytorch_compile"
