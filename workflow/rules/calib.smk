# The Z->ee detector calibration (issue 6): gains of R eta regions fitted by grid scan, Adam and
# L-BFGS-B with Clad gradients; the engines' loss+gradient timed; its own report section.
from cladbench.report.calib import CALIB_FIGURES

CALIB = config["calib"]
CALIB_TABLES = {
    name: f"{RESULTS}/tables/{name}.csv"
    for name in ["calib", "calib_timing", "calib_cost", "calib_trace", "calib_masses", "calib_hessian"]
}
CALIB_SOURCES = [p for p in CPP_SOURCES if "/calib/" in p]


rule build_calib:
    input:
        CONFIGURED,
        CALIB_SOURCES,
    output:
        touch(f"{BUILD}/calib/_calib.built"),
    log:
        f"{RESULTS}/logs/build_calib.log",
    conda:
        "../../envs/calib.yaml"
    shell:
        f"cmake --build {BUILD} --target _calib > {{log}} 2>&1"


rule calib:
    input:
        module=rules.build_calib.output,
        code=str(REPO / "src" / "cladbench" / "calib" / "fit.py"),
    output:
        **CALIB_TABLES,
    log:
        f"{RESULTS}/logs/calib.log",
    benchmark:
        f"{RESULTS}/benchmarks/calib.tsv"
    conda:
        "../../envs/calib.yaml"
    threads: 1
    resources:
        **TIMING_RESOURCES,  # its fits are quick; its engine timings feed calib_timing
        runtime=30,
        mem_mb=4000,
    params:
        out=lambda wildcards, output: Path(output.calib).parent,
        args=" ".join(
            [
                "--regions",
                *map(str, CALIB["regions"]),
                "--events",
                str(CALIB["events"]),
                "--seed",
                str(CALIB["seed"]),
                "--spread",
                str(CALIB["spread"]),
                "--resolution",
                *map(str, CALIB["resolution"]),
                "--grid-max-regions",
                str(CALIB["grid_max_regions"]),
                "--adam-steps",
                str(CALIB["adam_steps"]),
                "--bench-regions",
                *map(str, CALIB["bench_regions"]),
                "--bench-reps",
                str(CALIB["bench_reps"]),
                "--threads",
                str(CALIB["threads"]),
            ]
        ),
    shell:
        "cladbench calib run --out {params.out} {params.args} 2> {log}"


# One job per figure, as in report.smk, drawn from the calib tables only (cladbench.report.calib).
for figure in CALIB_FIGURES:

    rule:
        name:
            f"figure_{figure}"
        input:
            **CALIB_TABLES,
            code=str(REPO / "src" / "cladbench" / "report" / "calib.py"),
        output:
            pdf=report(f"{RESULTS}/report/{figure}.pdf", caption=f"../report/{figure}.rst", category="Calibration"),
            png=f"{RESULTS}/report/{figure}.png",
        log:
            f"{RESULTS}/logs/figure_{figure}.log",
        localrule: True
        conda:
            "../../envs/report.yaml"
        params:
            figure=figure,
            tables=lambda wildcards, input: Path(input.calib).parent,
            out=lambda wildcards, output: Path(output.pdf).parent,
        shell:
            "python -m cladbench.report.calib {params.tables} {params.out} --only {params.figure} > {log} 2>&1"


rule calib_report_tables:
    input:
        **CALIB_TABLES,
        code=str(REPO / "src" / "cladbench" / "report" / "calib.py"),
    output:
        cost=report(f"{RESULTS}/report/calib.tex", category="Calibration"),
    log:
        f"{RESULTS}/logs/calib_report_tables.log",
    localrule: True
    conda:
        "../../envs/report.yaml"
    params:
        tables=lambda wildcards, input: Path(input.calib).parent,
        out=lambda wildcards, output: Path(output.cost).parent,
    shell:
        "python -m cladbench.report.calib {params.tables} {params.out} --only tables > {log} 2>&1"


CALIB_TARGETS = [
    *CALIB_TABLES.values(),
    *rules.calib_report_tables.output,
    *expand(f"{RESULTS}/report/{{figure}}.{{ext}}", figure=CALIB_FIGURES, ext=["pdf", "png"]),
]
