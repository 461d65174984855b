# ONNX import (cladbench onnx): a torch MLP trained on MNIST -> torch.onnx.export -> emitted C++ ->
# Clad gradients, checked against torch autograd and fine-tuned; the input-gradient benchmark of an
# MLP 20 -> 5x128 -> 1 (emitted+Clad vs torch autograd vs JAX when installed) and its figure.
ONNX = config["onnx"]
ONNX_CODE = [
    str(p)
    for p in [
        *(REPO / "src" / "cladbench" / "onnx").glob("*.py"),
        *(REPO / "cpp" / "onnx").glob("*.hpp"),
        REPO / "cpp" / "kernels" / "blas.hpp",
    ]
]
ONNX_MODEL = "mnist_mlp_" + "_".join(map(str, [784, *ONNX["hidden"], 10]))
# The round trip needs Clad; without it the bench still runs (and records emitted+clad as not run).
ONNX_TARGETS = [
    f"{RESULTS}/tables/input_grad.csv",
    f"{RESULTS}/report/input_grad.pdf",
    f"{RESULTS}/report/input_grad.png",
]
if CLAD_OK:
    ONNX_TARGETS.append(f"{RESULTS}/onnx/roundtrip.json")
else:
    logger.warning(f"not run: onnx round trip: {CPU_PROBLEMS['clad']}")


rule onnx_roundtrip:
    input:
        data=[f"resources/{name}" for name in MNIST_FILES["t10k"]],
        code=ONNX_CODE,
    output:
        record=f"{RESULTS}/onnx/roundtrip.json",
        model=f"{RESULTS}/onnx/{ONNX_MODEL}.onnx",
        cpp=f"{RESULTS}/onnx/{ONNX_MODEL}.cpp",
        weights=f"{RESULTS}/onnx/{ONNX_MODEL}.weights",
    log:
        f"{RESULTS}/logs/onnx_roundtrip.log",
    conda:
        "../../envs/onnx.yaml"
    threads: 1
    resources:
        runtime=30,
        mem_mb=4000,
    params:
        out=lambda wildcards, output: Path(output.record).parent,
        args="--hidden {hidden} --train-range {train_range[0]}:{train_range[1]} --tune-range {tune_range[0]}:{tune_range[1]} "
        "--epochs {epochs} --tune-epochs {tune_epochs} --batch {batch} --lr {lr}".format(
            **{**ONNX, "hidden": ",".join(map(str, ONNX["hidden"]))}
        ),
    shell:
        "cladbench onnx check --images {input.data[0]} --labels {input.data[1]} --out {params.out} {params.args} "
        "> {log} 2>&1"


# A timing job on one thread, with the machine to itself like the bench cells (TIMING_RESOURCES).
rule onnx_bench:
    input:
        code=ONNX_CODE,
    output:
        table=report(f"{RESULTS}/tables/input_grad.csv", category="Tables"),
        record=f"{RESULTS}/tables/input_grad.json",
    log:
        f"{RESULTS}/logs/onnx_bench.log",
    conda:
        "../../envs/onnx.yaml"
    threads: 1
    resources:
        **TIMING_RESOURCES,
        runtime=30,
        mem_mb=4000,
    params:
        args="--reps {bench_reps} --warmup {bench_warmup} --activation {activation}".format(**ONNX),
    shell:
        "cladbench onnx bench --out {output.table} --batch 1 --threads 1 {params.args} > {log} 2>&1"


rule figure_input_grad:
    input:
        table=rules.onnx_bench.output.table,
        code=str(REPO / "src" / "cladbench" / "onnx" / "bench.py"),
    output:
        pdf=report(f"{RESULTS}/report/input_grad.pdf", caption="../report/input_grad.rst", category="Figures"),
        png=f"{RESULTS}/report/input_grad.png",
    log:
        f"{RESULTS}/logs/figure_input_grad.log",
    localrule: True
    conda:
        "../../envs/report.yaml"
    shell:
        "python -m cladbench.onnx.bench plot {input.table} {output.pdf} {output.png} > {log} 2>&1"
