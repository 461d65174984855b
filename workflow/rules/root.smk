# ROOT (issue 7): MNIST and the GW windows as TTrees, and MNIST runs fed from the tree, by the ROOT
# macro under root.exe (no Python in that process) and by PyROOT, beside the file-fed runs they are
# compared with in the report. Runs only where ROOT is installed (the `root` extra or envs/root.yaml)
# and config root.enabled is on; otherwise reported as not run, with the reason. Logic: cladbench.root.
from cladbench.root import MACRO, root_missing_reason

ROOT_CONFIG = config.get("root", {})
_root_missing = root_missing_reason()
ROOT_OK = ROOT_CONFIG.get("enabled", False) and _root_missing is None
if not ROOT_CONFIG.get("enabled", False):
    NOT_RUN["ttree-*"] = "TTree-fed runs are off in the config (root.enabled)"
elif _root_missing:
    NOT_RUN["ttree-*"] = _root_missing
    logger.warning(f"not run: ttree-*: {_root_missing}")

# One TTree-fed run per input x engine (rowmajor-arena) x the training runs' batches, threads and
# repetitions: each has a file-fed twin in MNIST_RECORDS.
ROOT_ENGINES = [
    e for e in ROOT_CONFIG.get("engines", ["clad", "manual"]) if e in config["engines"] and (e != "clad" or CLAD_OK)
]
ROOT_RECORDS = (
    expand(
        f"{RESULTS}/runs/root/{{input}}/cpu-{{engine}}-rowmajor-arena-b{{batch}}-t{{threads}}-r{{rep}}.json",
        input=ROOT_CONFIG.get("inputs", ["ttree-macro", "ttree-pyroot"]),
        engine=ROOT_ENGINES,
        batch=config["train"]["batch"],
        threads=config["train"]["threads"],
        rep=range(config["repetitions"]),
    )
    if ROOT_OK
    else []
)
ROOT_OUTPUTS = ROOT_RECORDS + (["resources/root/gw.root"] if ROOT_OK else [])


rule ttree_mnist:
    input:
        data=[f"resources/{name}" for name in MNIST_FILES[config["mnist"]["split"]]],
        test=[f"resources/{name}" for name in MNIST_FILES["t10k"]],
    output:
        "resources/root/mnist.root",
    log:
        f"{RESULTS}/logs/ttree_mnist.log",
    conda:
        "../../envs/root.yaml"
    params:
        ranges="--train-range {0}:{1} ".format(*config["mnist"]["train_range"])
        + "--test-range {0}:{1}".format(*config["mnist"]["test_range"]),
    shell:
        "cladbench root trees-mnist --images {input.data[0]} --labels {input.data[1]} --test-images {input.test[0]} "
        "--test-labels {input.test[1]} {params.ranges} --out {output} 2> {log}"


rule ttree_gw:
    input:
        data=GW_DATA,
        real="resources/gw/gw150914-windows.h5",
    output:
        "resources/root/gw.root",
    log:
        f"{RESULTS}/logs/ttree_gw.log",
    conda:
        "../../envs/root.yaml"
    shell:
        "cladbench root trees-gw --data {input.data} --real {input.real} --out {output} 2> {log}"


rule build_capi:
    input:
        CONFIGURED,
        CPP_SOURCES,
    output:
        f"{BUILD}/libcladbench_c.so",
    log:
        f"{RESULTS}/logs/build_capi.log",
    conda:
        "../../envs/train.yaml"
    shell:
        f"cmake --build {BUILD} --target cladbench_c > {{log}} 2>&1 && touch {{output}}"


PYTHON_PACKAGE = REPO / "src" / "cladbench"


rule train_ttree:
    input:
        trees="resources/root/mnist.root",
        # what the run runs: the macro and the C ABI, or PyROOT and the Python module
        code=lambda wildcards: (
            [str(MACRO), f"{BUILD}/libcladbench_c.so"]
            if wildcards.input == "ttree-macro"
            else [str(PYTHON_PACKAGE / "root.py"), *map(str, PYTHON_PACKAGE.glob("_core*.so"))]
        ),
    output:
        f"{RESULTS}/runs/root/{{input}}/{{variant}}-b{{batch}}-t{{threads}}-r{{rep}}.json",
    log:
        f"{RESULTS}/logs/train_ttree/{{input}}-{{variant}}-b{{batch}}-t{{threads}}-r{{rep}}.log",
    wildcard_constraints:
        input="ttree-macro|ttree-pyroot",
        variant=variant_pattern(CPP_ENGINES, ["cpu"]),
    conda:
        "../../envs/root.yaml"
    threads: lambda wildcards: int(wildcards.threads)
    resources:
        cpus_per_task=lambda wildcards: int(wildcards.threads),
        runtime=60,
        mem_mb=4000,
    params:
        engine=engine_flags,
        args=f"{MNIST_ARGS} --epochs {config['train']['epochs']}",
    shell:
        "cladbench root train --input {wildcards.input} --trees {input.trees} {params.engine} {params.args} "
        "--batch {wildcards.batch} --threads {wildcards.threads} --repetition {wildcards.rep} --out {output} 2> {log}"


# The ROOT stage alone: `snakemake root`.
rule root:
    input:
        ROOT_OUTPUTS,
    localrule: True
