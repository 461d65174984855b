# The performance benchmark (cladbench bench): one timing run per (model x variant x batch x threads
# x repetition), records marked purpose=bench, each with the step's GEMM-only floor measured in the
# same process. The report's timing figures and its targets table use these.
from cladbench.bench import parse_model, train_args


def bench_data(wildcards):
    if parse_model(wildcards.model).dataset == "gw-sim":
        return [GW_DATA]
    return [f"resources/{name}" for name in MNIST_FILES[config["mnist"]["split"]]]


def bench_args(wildcards, input):
    """The trainer's flags, as `cladbench bench` makes them (src/cladbench/bench.py)."""
    model = parse_model(wildcards.model)
    data = input.data
    mnist = {**config["mnist"], "images": data[0], "labels": data[-1]}
    gw = {**config["gw"], "data": data[0]}
    args = train_args(model, int(wildcards.batch), int(wildcards.threads), int(wildcards.rep), mnist=mnist, gw=gw,
                      train=config["train"], min_steps=config["bench"]["min_steps"])
    return " ".join(args)


rule bench:
    input:
        trainer=trainer,
        data=bench_data,
    output:
        f"{RESULTS}/runs/bench/{{model}}/{{variant}}-b{{batch}}-t{{threads}}-r{{rep}}.json",
    params:
        engine=engine_flags,
        args=bench_args,
    threads: lambda wildcards: int(wildcards.threads)
    resources:
        cpus_per_task=lambda wildcards: int(wildcards.threads),
        runtime=30,
        mem_mb=4000,
    log:
        f"{RESULTS}/logs/bench/{{model}}/{{variant}}-b{{batch}}-t{{threads}}-r{{rep}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/bench/{{model}}/{{variant}}-b{{batch}}-t{{threads}}-r{{rep}}.tsv"
    conda:
        "../../envs/train.yaml"
    shell:
        "cladbench train {params.engine} {params.args} --out {output} 2> {log}"
