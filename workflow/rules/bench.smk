# Timing runs (the headline bench): the MNIST model for a few epochs per (variant x batch x
# threads x repetition), records marked purpose=bench; every record also carries the step's
# GEMM-only floor, measured in the same process. The report's timing figures use these.


rule bench_mnist:
    input:
        trainer=trainer,
        data=[f"resources/{name}" for name in MNIST_FILES["t10k"]],
    output:
        f"{RESULTS}/runs/bench/{{variant}}-b{{batch}}-t{{threads}}-r{{rep}}.json",
    params:
        engine=engine_flags,
        args=f"{MNIST_ARGS} --epochs {config['bench']['epochs']}",
    threads: lambda wildcards: int(wildcards.threads)
    resources:
        cpus_per_task=lambda wildcards: int(wildcards.threads),
        runtime=30,
        mem_mb=4000,
    log:
        f"{RESULTS}/logs/bench_mnist/{{variant}}-b{{batch}}-t{{threads}}-r{{rep}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/bench_mnist/{{variant}}-b{{batch}}-t{{threads}}-r{{rep}}.tsv"
    conda:
        "../../envs/train.yaml"
    shell:
        "cladbench train {params.engine} --purpose bench --dataset mnist --images {input.data[0]} "
        "--labels {input.data[1]} {params.args} --batch {wildcards.batch} --threads {wildcards.threads} "
        "--repetition {wildcards.rep} --out {output} 2> {log}"
