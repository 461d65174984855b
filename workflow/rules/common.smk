# The study's matrix, decided once: which variants run here, which cannot and why
# (cladbench.matrix names the variants, cladbench.doctor says what this machine lacks;
# docs/architecture.md, "The variant matrix").
import json
import shlex
from pathlib import Path

from cladbench.bench.study import bench_settings, parse_model
from cladbench.cuda import variant_problem
from cladbench.doctor import cpu_problems
from cladbench.matrix import (
    CPP_ENGINES,
    PYTHON_ENGINES,
    cuda_variant,
    device_problem,
    engine_module,
    parse_variant,
    record_variant,
    trains_cnn,
    variant_name,
    variant_pattern,
    variants_of,
)
from cladbench.paths import build_dir

REPO = Path(workflow.basedir)
BUILD = build_dir()  # the repository's one C++ build (build/, or $CLADBENCH_BUILD_DIR), wherever the workflow runs
DEVICES = config.get("devices", ["cpu"])
LAYOUTS = config["layouts"]
ALLOCS = config["allocs"]
RESULTS = config.get("results", "results")
CPU_PROBLEMS = cpu_problems()  # {engine: why not}: Clad, JAX, Inductor's compiler (checked, nothing compiled)
CLAD_OK = "clad" not in CPU_PROBLEMS
VARIANTS = [v for e in config["engines"] if e not in CPU_PROBLEMS for v in variants_of(e, LAYOUTS, ALLOCS)]
VARIANTS = VARIANTS if "cpu" in DEVICES else []
NOT_RUN = {f"cpu-{e}-*": CPU_PROBLEMS[e] for e in config["engines"] if e in CPU_PROBLEMS}
# The cuda variants, where the config lists the device: the C++ ones this build made (build/variants.json's
# cuda_variants), pytorch where torch is a CUDA build. The GPU itself is the job's (a cluster's submit node has none).
if "cuda" in DEVICES:
    _manifest_path = BUILD / "variants.json"
    _manifest = (
        json.loads(_manifest_path.read_text())
        if _manifest_path.exists()
        else {"cuda_reason": f"{_manifest_path} not found: build the C++ core first (`make build`)"}
    )
    for engine in config["engines"]:
        if problem := device_problem(engine, "cuda"):
            NOT_RUN[f"cuda-{engine}-*"] = problem
        elif problem := variant_problem(cuda_variant(engine), _manifest, need_device=False):
            NOT_RUN[cuda_variant(engine)] = problem
        else:
            VARIANTS.append(cuda_variant(engine))
else:
    NOT_RUN["cuda-*"] = "devices in the config do not include cuda (config/paper.yaml lists it, for a GPU node)"
if any(not trains_cnn(v) for v in VARIANTS):
    NOT_RUN["cuda-clad-* on the GW CNN"] = "the GPU kernels cover the MLP (docs/cuda.md)"
for pattern, reason in NOT_RUN.items():
    logger.warning(f"not run: {pattern}: {reason}")


def trainer_files(variant):
    """What a variant's runs depend on: its binary (rule build_variant), or for a Python engine
    its Python and the C++ core module it shares data and initialisation with."""
    engine = parse_variant(variant)[1]
    if engine in PYTHON_ENGINES:
        package = REPO / "src" / "cladbench"
        engine_code = package.joinpath(*engine_module(engine).split(".")[1:]).with_suffix(".py")
        code = {package / "engines" / "pytorch.py", engine_code, package / "engines" / "models.py"}
        return sorted(map(str, code)) + sorted(map(str, package.glob("_core*.so")))
    return [f"{BUILD}/{variant}/cladbench-train"]


def trainer(wildcards):
    return trainer_files(wildcards.variant)


def engine_flags(wildcards):
    device, engine, layout, alloc = parse_variant(wildcards.variant)
    return f"--engine {engine} --layout {layout} --alloc {alloc}" + (" --device cuda" if device == "cuda" else "")


def gpus(wildcards):
    """The GPUs a run asks for (the slurm executor's `gpu` resource: --gpus): one for a cuda variant."""
    return 1 if wildcards.variant.startswith("cuda-") else 0


MNIST_FILES = {
    "t10k": ["mnist/t10k-images-idx3-ubyte.gz", "mnist/t10k-labels-idx1-ubyte.gz"],
    "train": ["mnist/train-images-idx3-ubyte.gz", "mnist/train-labels-idx1-ubyte.gz"],
}
# The MNIST model and optimizer flags, shared by the training and the bench runs.
MNIST_ARGS = (
    "--hidden {} --lr {lr} --optimizer {optimizer} --seed {seed} --warmup {warmup}".format(
        ",".join(map(str, config["train"]["hidden"])), **config["train"]
    )
    + " --train-range {0}:{1}".format(*config["mnist"]["train_range"])
    + " --test-range {0}:{1}".format(*config["mnist"]["test_range"])
)
GW_DATA = "resources/gw/simulated-n{n_windows}-seed{seed}.h5".format(**config["gw"])

MNIST_RECORDS = expand(
    f"{RESULTS}/runs/mnist/{{variant}}-b{{batch}}-t{{threads}}-r{{rep}}.json",
    variant=VARIANTS,
    batch=config["train"]["batch"],
    threads=config["train"]["threads"],
    rep=range(config["repetitions"]),
)


def is_headline(variant):
    """Whether a variant is its engine's headline one on its device (rowmajor-arena where it has a choice)."""
    device, engine, _, _ = parse_variant(variant)
    return variant == variant_name(engine, device=device)


GW_RECORDS = (
    expand(f"{RESULTS}/runs/gw/{{variant}}-r{{rep}}.json", variant=VARIANTS, rep=range(config["repetitions"]))
    if config["gw"]["engines"]
    else []
)
GW_RECORDS = [
    r
    for r in GW_RECORDS
    if parse_variant(record_variant(Path(r).name))[1] in config["gw"]["engines"] and trains_cnn(Path(r).name)
    # gw.variants: headline trains each engine's headline variant only (the MNIST runs cover every
    # layout x alloc, and no GW training run feeds a timing); all trains every variant.
    and (config["gw"]["variants"] == "all" or is_headline(record_variant(Path(r).name)))
]


# The performance benchmark (bench.smk): one job per cell (model, batch, threads, repetition) of a
# bench grid, timing the cell's variants one after another; the cuda variants' cells have their
# own jobs and batches (bench.cuda_batch, a GPU's range).
def bench_variants(device, model):
    """The variants a cell of this model times on this device: those that train the model; every
    layout x alloc for the ablation's models, else each engine's headline variant (rowmajor-arena).
    """
    variants = [v for v in VARIANTS if parse_variant(v)[0] == device and (model != "gw-cnn" or trains_cnn(v))]
    if model in config["bench"].get("ablation", []):
        return variants
    return [v for v in variants if is_headline(v)]


BENCH_CELLS = {}  # (device, model): {(batch, threads, repetition), ...}
for grid in config["bench"]["grids"]:
    for device in DEVICES:
        batches = config["bench"].get("cuda_batch", grid["batch"]) if device == "cuda" else grid["batch"]
        for model in grid["models"]:
            if bench_variants(device, model):
                BENCH_CELLS.setdefault((device, model), set()).update(
                    (b, t, r) for b in batches for t in grid["threads"] for r in range(grid["repetitions"])
                )
BENCH_RECORD = "{results}/runs/bench/{model}/{variant}-b{batch}-t{threads}-r{rep}.json"
BENCH_RECORDS = [
    BENCH_RECORD.format(results=RESULTS, model=model, variant=variant, batch=b, threads=t, rep=r)
    for (device, model), cells in BENCH_CELLS.items()
    for variant in bench_variants(device, model)
    for b, t, r in sorted(cells)
]


def bench_data(model):
    if parse_model(model).dataset == "gw-sim":
        return [GW_DATA]
    return [f"resources/{name}" for name in MNIST_FILES[config["mnist"]["split"]]]


def bench_data_flags(model):
    files = bench_data(model)
    return (
        f"--gw-data {files[0]}"
        if parse_model(model).dataset == "gw-sim"
        else f"--images {files[0]} --labels {files[1]}"
    )


# Timing jobs (their records feed the timing figures and tables) have the machine to themselves.
# Locally they take all of the `machine` resource, of which every other job holds 1 (the profile
# workflow/profiles/default: 100 in all, each job 1 by default; a job asks at most what there is),
# so a timing job starts only when nothing else runs and nothing starts beside it. On SLURM each
# gets a node of its own (sbatch --exclusive).
TIMING_RESOURCES = dict(machine=100, slurm_extra="--exclusive")
# The other jobs share the cores. The longest chain of them (gw_simulate, then train_gw, then the GW
# search's scans) goes first (their `priority`), so that the rest fills the other core beside it
# rather than leaving one idle while the chain runs alone at the end.


# On SLURM, before the first submission: a job that no node of its partition can hold would pend
# forever, so stop at once, naming the rule, what it asks and what the nodes have (cladbench.slurm).
onstart:
    if workflow.executor_plugin.name == "slurm":
        from cladbench.slurm import Demand, check_jobs

        demands = [
            Demand(
                job.rule.name,
                job.resources.get("slurm_partition") or "",
                int(job.resources.get("cpus_per_task") or job.threads),
                int(job.resources.get("mem_mb") or 0),
                int(job.resources.get("gpu") or 0),
            )
            for job in workflow.dag.needrun_jobs()
            if not job.is_local
        ]
        if problems := check_jobs(demands):
            raise WorkflowError("\n".join(problems))
