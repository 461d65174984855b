# All run records -> tidy tables (results/tables) -> the report (results/report).


rule aggregate:
    input:
        MNIST_RECORDS + GW_RECORDS,
    output:
        runs=f"{RESULTS}/tables/runs.csv",
        parquet=f"{RESULTS}/tables/runs.parquet",
        epochs=f"{RESULTS}/tables/epochs.csv",
        gw_scores=f"{RESULTS}/tables/gw_scores.csv",
        trace=f"{RESULTS}/tables/gw150914_trace.csv",
        not_run=f"{RESULTS}/tables/not_run.csv",
    params:
        out=lambda wildcards, output: Path(output.runs).parent,
        not_run=json.dumps(NOT_RUN),
    localrule: True
    log:
        f"{RESULTS}/logs/aggregate.log",
    conda:
        "../../envs/report.yaml"
    shell:
        "python -m cladbench.aggregate {params.out} {input} --not-run '{params.not_run}' > {log} 2>&1"
