# ROOT (issues 7 and 19): MNIST and the GW windows as TTrees and as RNTuples; MNIST runs fed from
# each, by the ROOT macro under root.exe (no Python in that process) and by PyROOT, beside the
# file-fed runs they are compared with in the report; and the feeding table (how fast each format
# and reader brings the samples into memory). Runs only where ROOT is installed (requirements.lock
# has the `root` wheel; conda: envs/root.yaml) and config root.enabled is on; otherwise reported as
# not run, with the reason. Logic: cladbench.root.
from cladbench.root import FORMATS, MACRO, SAMPLES_HEADER, root_missing_reason

ROOT_CONFIG = config.get("root", {})
_root_missing = root_missing_reason()
ROOT_OK = ROOT_CONFIG.get("enabled", False) and _root_missing is None
for _fmt in FORMATS:
    if not ROOT_CONFIG.get("enabled", False):
        NOT_RUN[f"{_fmt}-*"] = "ROOT-fed runs are off in the config (root.enabled)"
    elif _root_missing:
        NOT_RUN[f"{_fmt}-*"] = _root_missing
        logger.warning(f"not run: {_fmt}-*: {_root_missing}")

# One ROOT-fed run per input x engine (rowmajor-arena) x batch (root.batch, else the training
# runs') x the training runs' threads and repetitions: each has a file-fed twin in MNIST_RECORDS.
ROOT_ENGINES = [
    e for e in ROOT_CONFIG.get("engines", ["clad", "manual"]) if e in config["engines"] and (e != "clad" or CLAD_OK)
]
ROOT_RECORDS = (
    expand(
        f"{RESULTS}/runs/root/{{input}}/cpu-{{engine}}-rowmajor-arena-b{{batch}}-t{{threads}}-r{{rep}}.json",
        input=ROOT_CONFIG.get("inputs", ["ttree-macro", "ttree-pyroot", "rntuple-macro", "rntuple-pyroot"]),
        engine=ROOT_ENGINES,
        batch=ROOT_CONFIG.get("batch", config["train"]["batch"]),
        threads=config["train"]["threads"],
        rep=range(config["repetitions"]),
    )
    if ROOT_OK
    else []
)
ROOT_FEED = f"{RESULTS}/tables/root_feed.csv"
ROOT_OUTPUTS = ROOT_RECORDS + ([ROOT_FEED] if ROOT_OK else [])
ROOT_CODE = [str(REPO / "src" / "cladbench" / "root.py"), str(SAMPLES_HEADER)]


rule root_mnist:
    input:
        data=[f"resources/{name}" for name in MNIST_FILES[config["mnist"]["split"]]],
        test=[f"resources/{name}" for name in MNIST_FILES["t10k"]],
        code=ROOT_CODE,
    output:
        "resources/root/mnist-{format}.root",
    log:
        f"{RESULTS}/logs/root_mnist-{{format}}.log",
    wildcard_constraints:
        format="|".join(FORMATS),
    conda:
        "../../envs/root.yaml"
    params:
        ranges="--train-range {0}:{1} ".format(*config["mnist"]["train_range"])
        + "--test-range {0}:{1}".format(*config["mnist"]["test_range"]),
    shell:
        "cladbench root write-mnist --format {wildcards.format} --images {input.data[0]} --labels {input.data[1]} "
        "--test-images {input.test[0]} --test-labels {input.test[1]} {params.ranges} --out {output} 2> {log}"


rule root_gw:
    input:
        data=GW_DATA,
        real="resources/gw/gw150914-windows.h5",
        code=ROOT_CODE,
    output:
        "resources/root/gw-{format}.root",
    log:
        f"{RESULTS}/logs/root_gw-{{format}}.log",
    wildcard_constraints:
        format="|".join(FORMATS),
    conda:
        "../../envs/root.yaml"
    shell:
        "cladbench root write-gw --format {wildcards.format} --data {input.data} --real {input.real} --out {output} "
        "2> {log}"


# Timed: alone on the machine (TIMING_RESOURCES), one thread, as the trainers read.
rule root_feed:
    input:
        data=[f"resources/{name}" for name in MNIST_FILES[config["mnist"]["split"]]],
        mnist=expand("resources/root/mnist-{format}.root", format=FORMATS),
        gw_data=GW_DATA,
        gw=expand("resources/root/gw-{format}.root", format=FORMATS),
        code=ROOT_CODE,
    output:
        table=ROOT_FEED,
    log:
        f"{RESULTS}/logs/root_feed.log",
    conda:
        "../../envs/root.yaml"
    threads: 1
    resources:
        **TIMING_RESOURCES,
        runtime=30,
        mem_mb=6000,
    params:
        train_range="{0}:{1}".format(*config["mnist"]["train_range"]),
        repetitions=ROOT_CONFIG.get("feed_repetitions", 5),
    shell:
        "cladbench root feed --images {input.data[0]} --labels {input.data[1]} --train-range {params.train_range} "
        "--mnist {input.mnist} --gw-data {input.gw_data} --gw {input.gw} --repetitions {params.repetitions} "
        "--out {output.table} 2> {log}"


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


rule train_root:
    input:
        data="resources/root/mnist-{format}.root",
        # what the run runs: the macro and the C ABI, or PyROOT and the Python module
        code=lambda wildcards: (
            [str(MACRO), str(SAMPLES_HEADER), f"{BUILD}/libcladbench_c.so"]
            if wildcards.reader == "macro"
            else [*ROOT_CODE, *map(str, PYTHON_PACKAGE.glob("_core*.so"))]
        ),
    output:
        f"{RESULTS}/runs/root/{{format}}-{{reader}}/{{variant}}-b{{batch}}-t{{threads}}-r{{rep}}.json",
    log:
        f"{RESULTS}/logs/train_root/{{format}}-{{reader}}-{{variant}}-b{{batch}}-t{{threads}}-r{{rep}}.log",
    wildcard_constraints:
        format="|".join(FORMATS),
        reader="macro|pyroot",
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
        "cladbench root train --input {wildcards.format}-{wildcards.reader} --data {input.data} {params.engine} "
        "{params.args} --batch {wildcards.batch} --threads {wildcards.threads} --repetition {wildcards.rep} --out {output} 2> {log}"


# The ROOT stage alone: `snakemake root`.
rule root:
    input:
        ROOT_OUTPUTS,
    localrule: True
