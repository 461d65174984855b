# The report's CUDA section (cladbench.report.cuda): clad vs libtorch vs pytorch on a GPU, against the
# cuBLAS floor, from the recorded GPU runs kept in the repository (results-archive/<device>/<date>/,
# cladbench.records.archive) and this study's own cuda runs. Every archived file is an input: a new archive
# remakes the section.
from cladbench.records.archive import archive_files
from cladbench.report.cuda import CUDA_FIGURES

ARCHIVE_FILES = [str(p) for p in archive_files(REPO / "results-archive")]


rule archive_table:
    input:
        ARCHIVE_FILES,
        code=str(REPO / "src" / "cladbench" / "records" / "archive.py"),
    output:
        f"{RESULTS}/tables/archive_runs.csv",
    log:
        f"{RESULTS}/logs/archive_table.log",
    localrule: True
    conda:
        "../../envs/report.yaml"
    params:
        archive=str(REPO / "results-archive"),
    shell:
        "python -m cladbench.records.archive {output} --archive {params.archive} > {log} 2>&1"


CUDA_INPUTS = {
    "runs": rules.aggregate.output.runs,
    "archive": rules.archive_table.output[0],
    "code": [str(REPO / "src" / "cladbench" / "report" / "cuda.py"), *REPORT_CODE],
}

for figure in CUDA_FIGURES:

    rule:
        name:
            f"figure_{figure}"
        input:
            **CUDA_INPUTS,
        output:
            pdf=report(f"{RESULTS}/report/{figure}.pdf", caption=f"../report/{figure}.rst", category="CUDA"),
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
            "python -m cladbench.report.cuda {params.tables} {params.out} --only {params.figure} > {log} 2>&1"


rule cuda_tables:
    input:
        **CUDA_INPUTS,
    output:
        tex=report(f"{RESULTS}/report/cuda.tex", caption="../report/cuda_table.rst", category="CUDA"),
        csv=f"{RESULTS}/report/cuda.csv",
    log:
        f"{RESULTS}/logs/cuda_tables.log",
    localrule: True
    conda:
        "../../envs/report.yaml"
    params:
        tables=lambda wildcards, input: Path(input.runs).parent,
        out=lambda wildcards, output: Path(output.tex).parent,
    shell:
        "python -m cladbench.report.cuda {params.tables} {params.out} --only tables > {log} 2>&1"


CUDA_TARGETS = [
    *rules.cuda_tables.output,
    *expand(f"{RESULTS}/report/{{figure}}.{{ext}}", figure=CUDA_FIGURES, ext=["pdf", "png"]),
]
