# cladbench workflow: entry point (DESIGN §2). Loads and validates the config, includes the stages.
# Today one stage: the MNIST training of every engine this machine built (`cladbench run`); the
# workflow issue splits it into the variant matrix, aggregation and the report.
import os
import sys

from snakemake.utils import min_version, validate

min_version("9.0")

configfile: "config/config.yaml"
validate(config, "config/schema.yaml")

# The rules call `cladbench`: find the one installed beside this Snakemake (e.g. .venv/bin).
os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]

include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"


rule all:
    input:
        rules.train_mnist.output,
