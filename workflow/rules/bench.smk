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
