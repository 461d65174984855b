# cladbench workflow: entry point (docs/architecture.md, "Data flow"). Loads and validates the
# config, includes the stages: data (fetch, GW windows) -> build (one target per variant) -> train
# and bench (one record per run) -> report (tables, figures, LaTeX, provenance); and the Z->ee
# calibration (calib).
import os
import sys

from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config/config.yaml"


validate(config, "config/schema.yaml")

# The rules call `cladbench`: find the one installed beside this Snakemake (e.g. .venv/bin).
os.environ.update(PATH=os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")]))


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/build.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/bench.smk"
include: "workflow/rules/root.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/cuda.smk"
include: "workflow/rules/onnx.smk"
include: "workflow/rules/calib.smk"
include: "workflow/rules/search.smk"


rule all:
    input:
        rules.aggregate.output,
        ROOT_OUTPUTS,
        rules.report_tables.output,
        expand(f"{RESULTS}/report/{{figure}}.{{ext}}", figure=FIGURES, ext=["pdf", "png"]),
        ONNX_TARGETS,
        CALIB_TARGETS,
        SEARCH_TARGETS,
        CUDA_TARGETS,
