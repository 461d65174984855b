# The performance benchmark (cladbench bench): one job per cell of the config's bench grids (model x
# batch x threads x repetition), running every variant of the cell one after another, as `cladbench
# bench` does, so that a drift of the machine hits all engines of a repetition alike; nothing else
# runs beside it (TIMING_RESOURCES). Each variant's record (purpose=bench, with the step's GEMM-only
# floor measured in the same process) is one output. The report's timing figures and tables use these
# records only. A rule per device and model (its variants differ): bench_<model>, bench_cuda_<model>.
for (device, model), cells in BENCH_CELLS.items():

    rule:
        name:
            "bench_" + ("" if device == "cpu" else f"{device}_") + model.replace("-", "_")
        input:
            trainers=sorted({f for variant in bench_variants(device, model) for f in trainer_files(variant)}),
            data=bench_data(model),
        output:
            [
                BENCH_RECORD.format(
                    results=RESULTS, model=model, variant=variant, batch="{batch}", threads="{threads}", rep="{rep}"
                )
                for variant in bench_variants(device, model)
            ],
        log:
            f"{RESULTS}/logs/bench/{model}/{device}-b{{batch}}-t{{threads}}-r{{rep}}.log",
        benchmark:
            f"{RESULTS}/benchmarks/bench/{model}/{device}-b{{batch}}-t{{threads}}-r{{rep}}.tsv"
        wildcard_constraints:
            batch=r"\d+",
            threads=r"\d+",
            rep=r"\d+",
        conda:
            "../../envs/train.yaml"
        threads: lambda wildcards: int(wildcards.threads)
        resources:
            **TIMING_RESOURCES,
            cpus_per_task=lambda wildcards: int(wildcards.threads),
            runtime=120,  # minutes: the cell's variants, one after another
            mem_mb=4000,
            gpu=1 if device == "cuda" else 0,
        params:
            model=model,
            variants=",".join(bench_variants(device, model)),
            data=bench_data_flags(model),
            settings=shlex.quote(json.dumps(bench_settings(parse_model(model), config), sort_keys=True)),
            min_steps=config["bench"]["min_steps"],
            out_dir=lambda wildcards, output: Path(output[0]).parent.parent,  # records go to <out_dir>/<model>/
        shell:
            "cladbench bench --models {params.model} --variants {params.variants} --batch {wildcards.batch} "
            "--threads {wildcards.threads} --repetition {wildcards.rep} --min-steps {params.min_steps} {params.data} "
            "--settings {params.settings} --out-dir {params.out_dir} > {log} 2>&1"


# What composability costs (python -m cladbench.bench.op_bench): one training step (forward and
# backward, no optimizer) of the fused op torch.ops.cladbench.loss against the composable
# torch.ops.cladbench.forward + F.cross_entropy, for every model x batch of bench.ops, both paths in
# turn in each repetition; a timing job, alone on the machine (TIMING_RESOURCES). One row per model,
# batch and repetition (OP_COST_COLUMNS, cladbench.bench.timing); the report's op_cost section reads it.
OPS = config["bench"]["ops"]
OPS_ENGINE = "clad" if CLAD_OK else "manual"  # the table's engine column says which
if not CLAD_OK:
    logger.warning(f"not run: op bench of clad: {CPU_PROBLEMS['clad']}; it times the manual engine's kernels instead")
OP_BENCH_CODE = [
    str(REPO / "src" / "cladbench" / "bench" / "op_bench.py"),
    *sorted(str(p) for p in (REPO / "src" / "cladbench").glob("_core*.so")),  # the ops and their kernels
]


rule op_bench:
    input:
        code=OP_BENCH_CODE,
    output:
        table=f"{RESULTS}/tables/op_cost.csv",
    log:
        f"{RESULTS}/logs/op_bench.log",
    benchmark:
        f"{RESULTS}/benchmarks/op_bench.tsv"
    conda:
        "../../envs/train.yaml"
    threads: OPS["threads"]
    resources:
        **TIMING_RESOURCES,
        cpus_per_task=OPS["threads"],
        runtime=60,
        mem_mb=4000,
    params:
        args=" ".join(
            [
                f"--models {','.join(OPS['models'])} --batch {','.join(map(str, OPS['batch']))}",
                f"--repetitions {OPS['repetitions']} --warmup {OPS['warmup']} --steps {OPS['steps']}",
                f"--engine {OPS_ENGINE} --threads {OPS['threads']}",
                f"--conv {config['gw']['conv']} --cnn-hidden {config['gw']['hidden']}",
            ]
        ),
    shell:
        "python -m cladbench.bench.op_bench --out {output.table} {params.args} > {log} 2>&1"
