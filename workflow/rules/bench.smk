# The performance benchmark (cladbench bench): one timing run per (model x variant x batch x threads
# x repetition), records marked purpose=bench, each with the step's GEMM-only floor measured in the
# same process. The report's timing figures and its targets table use these.
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
        gpu=gpus,
    log:
        f"{RESULTS}/logs/bench/{{model}}/{{variant}}-b{{batch}}-t{{threads}}-r{{rep}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/bench/{{model}}/{{variant}}-b{{batch}}-t{{threads}}-r{{rep}}.tsv"
    conda:
        "../../envs/train.yaml"
    shell:
        "cladbench train {params.engine} {params.args} --out {output} 2> {log}"
