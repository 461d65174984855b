# All run records -> tidy tables (results/tables) -> the report (results/report).


rule aggregate:
    input:
        records=MNIST_RECORDS + GW_RECORDS + BENCH_RECORDS + ROOT_RECORDS,
        code=str(REPO / "src" / "cladbench" / "records" / "aggregate.py"),
    output:
        runs=f"{RESULTS}/tables/runs.csv",
        parquet=f"{RESULTS}/tables/runs.parquet",
        epochs=f"{RESULTS}/tables/epochs.csv",
        gw_scores=f"{RESULTS}/tables/gw_scores.csv",
        trace=f"{RESULTS}/tables/gw150914_trace.csv",
        not_run=f"{RESULTS}/tables/not_run.csv",
    log:
        f"{RESULTS}/logs/aggregate.log",
    localrule: True
    conda:
        "../../envs/report.yaml"
    params:
        out=lambda wildcards, output: Path(output.runs).parent,
        not_run=shlex.quote(json.dumps(NOT_RUN)),  # reasons may hold quotes (CMake's, "pip install -e '.[jax]'")
    shell:
        "python -m cladbench.records.aggregate {params.out} {input.records} --not-run {params.not_run} > {log} 2>&1"


# One job per figure, so that a deleted or changed figure is remade alone; every figure is drawn
# from the tables only (cladbench.report), with its caption for `snakemake --report`.
from cladbench.report.figures import FIGURES

# The report package's modules that draw it: a change to any of them remakes the figures and tables.
REPORT_CODE = [
    str(REPO / "src" / "cladbench" / "report" / f"{name}.py")
    for name in ("__init__", "style", "tables", "figures", "latex", "provenance")
]

# Tables a figure reads beside the aggregated ones: the op bench's (workflow/rules/bench.smk) and,
# where ROOT runs, the feeding table (workflow/rules/root.smk).
FIGURE_TABLES = {"op_cost": {"op_cost": rules.op_bench.output.table}}
if ROOT_OK:
    FIGURE_TABLES["root_feed"] = {"root_feed": ROOT_FEED}

for figure in FIGURES:

    rule:
        name:
            f"figure_{figure}"
        input:
            **rules.aggregate.output,
            **FIGURE_TABLES.get(figure, {}),
            code=REPORT_CODE,  # a change to the drawing remakes it
        output:
            pdf=report(f"{RESULTS}/report/{figure}.pdf", caption=f"../report/{figure}.rst", category="Figures"),
            png=f"{RESULTS}/report/{figure}.png",
        log:
            f"{RESULTS}/logs/figure_{figure}.log",
        localrule: True
        conda:
            "../../envs/report.yaml"
        params:
            figure=figure,
            tables=lambda wildcards, input: Path(input.runs).parent,
            out=lambda wildcards, output: Path(output.pdf).parent,
        shell:
            "python -m cladbench.report {params.tables} {params.out} --only {params.figure} > {log} 2>&1"


rule report_tables:
    input:
        **rules.aggregate.output,
        op_cost=rules.op_bench.output.table,
        code=REPORT_CODE,
    output:
        headline=report(f"{RESULTS}/report/headline.tex", category="Tables"),
        targets=report(f"{RESULTS}/report/targets.tex", caption="../report/targets.rst", category="Tables"),
        targets_csv=f"{RESULTS}/report/targets.csv",
        gw=report(f"{RESULTS}/report/gw.tex", category="Tables"),
        root_fed=report(f"{RESULTS}/report/root_fed.tex", caption="../report/root_fed_table.rst", category="Tables"),
        op_cost=report(f"{RESULTS}/report/op_cost.tex", caption="../report/op_cost_table.rst", category="Tables"),
        provenance=report(f"{RESULTS}/report/provenance.md", category="Provenance"),
    log:
        f"{RESULTS}/logs/report_tables.log",
    localrule: True
    conda:
        "../../envs/report.yaml"
    params:
        tables=lambda wildcards, input: Path(input.runs).parent,
        out=lambda wildcards, output: Path(output.headline).parent,
    shell:
        "python -m cladbench.report {params.tables} {params.out} --only tables > {log} 2>&1"
