# The GW classifier as a search (issue 18; cladbench.gw_search): every GW training run's network
# scanned over the real GW150914 data (zero lag and time slides) and over simulated chunks of
# background and of foreground (injections); the summary's tables; its own report section.
from cladbench.report.gw_search import SEARCH_FIGURES

SEARCH = config["gw"].get("search")
SEARCH_DIR = f"{RESULTS}/gw/search"
SEARCH_TABLES = {
    name: f"{RESULTS}/tables/{name}.csv"
    for name in [
        "gw_background",
        "gw_search_segments",
        "gw_significance",
        "gw_sensitivity",
        "gw_search_trace",
        "gw_injections",
    ]
}
SCAN_OUTPUTS = ["events", "segments", "injections"]
SEARCH_FLAGS = f"--threshold {SEARCH['trigger_threshold']} --cluster-s {SEARCH['cluster_s']}" if SEARCH else ""
# The simulated chunks' directories: {kind: [one per chunk]}.
SCAN_DIRS = {
    kind: [f"{SEARCH_DIR}/{kind}-{chunk}" for chunk in range(SEARCH[f"{kind}_chunks"] if SEARCH else 0)]
    for kind in ("background", "foreground")
}


rule gw_search_real:
    input:
        records=GW_RECORDS,
        windows="resources/gw/gw150914-windows.h5",
        code=str(REPO / "src" / "cladbench" / "gw_search.py"),
    output:
        **{name: f"{SEARCH_DIR}/real/{name}.csv" for name in ["events", "segments", "trace"]},
    log:
        f"{RESULTS}/logs/gw_search_real.log",
    benchmark:
        f"{RESULTS}/benchmarks/gw_search_real.tsv"
    priority: 2  # the longest scan first (see gw_simulate)
    conda:
        "../../envs/search.yaml"
    threads: 1
    resources:
        runtime=30,
        mem_mb=4000,
    params:
        out=lambda wildcards, output: Path(output.events).parent,
        flags=SEARCH_FLAGS,
        step=SEARCH["slide_step_s"] if SEARCH else None,
    shell:
        "cladbench search real --records {input.records} --windows {input.windows} --slide-step-s {params.step} "
        "{params.flags} --out {params.out} 2> {log}"


# A chunk of simulated data: background (noise and glitches) or foreground (injections too), from
# its own seed (gw.seed, kind, chunk), scanned by every network.
rule gw_search_simulated:
    input:
        records=GW_RECORDS,
        code=[str(REPO / "src" / "cladbench" / name) for name in ("gw_search.py", "data/gw.py")],
    output:
        **{name: f"{SEARCH_DIR}/{{kind}}-{{chunk}}/{name}.csv" for name in SCAN_OUTPUTS},
    log:
        f"{RESULTS}/logs/gw_search_{{kind}}_{{chunk}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/gw_search_{{kind}}_{{chunk}}.tsv"
    wildcard_constraints:
        kind="background|foreground",
        chunk=r"\d+",
    priority: 1
    conda:
        "../../envs/search.yaml"
    threads: 1
    resources:
        runtime=60,
        mem_mb=4000,
    params:
        out=lambda wildcards, output: Path(output.events).parent,
        flags=SEARCH_FLAGS,
        seed=lambda wildcards: f"{config['gw']['seed']} {2 if wildcards.kind == 'background' else 3} {wildcards.chunk}",
        stream=lambda wildcards: (
            f"--hours {SEARCH['chunk_hours']} --glitch-rate-hz {SEARCH['glitch_rate_hz']} --stride-s {SEARCH['stride_s']}"
            + (
                f" --injection-spacing-s {SEARCH['injection_spacing_s']} --distance-max-mpc {SEARCH['distance_max_mpc']}"
                if wildcards.kind == "foreground"
                else ""
            )
        ),
    shell:
        "cladbench search simulated --records {input.records} --seed {params.seed} {params.stream} {params.flags} "
        "--out {params.out} 2> {log}"


rule gw_search_summary:
    input:
        real=rules.gw_search_real.output,
        background=[f"{d}/events.csv" for d in SCAN_DIRS["background"]],
        foreground=[f"{d}/injections.csv" for d in SCAN_DIRS["foreground"]],
        code=str(REPO / "src" / "cladbench" / "gw_search.py"),
    output:
        **SEARCH_TABLES,
    log:
        f"{RESULTS}/logs/gw_search_summary.log",
    localrule: True
    conda:
        "../../envs/report.yaml"
    params:
        real=lambda wildcards, input: Path(input.real[0]).parent,
        background=lambda wildcards, input: " ".join(str(Path(f).parent) for f in input.background),
        foreground=lambda wildcards, input: " ".join(str(Path(f).parent) for f in input.foreground),
        distance=SEARCH["distance_max_mpc"] if SEARCH else None,
        out=lambda wildcards, output: Path(output.gw_background).parent,
    shell:
        "cladbench search summary --real {params.real} --background {params.background} "
        "--foreground {params.foreground} --distance-max-mpc {params.distance} --out {params.out} > {log} 2>&1"


# One job per figure, as in report.smk, drawn from the search tables only (cladbench.report.gw_search).
for figure in SEARCH_FIGURES:

    rule:
        name:
            f"figure_{figure}"
        input:
            **SEARCH_TABLES,
            code=str(REPO / "src" / "cladbench" / "report" / "gw_search.py"),
        output:
            pdf=report(f"{RESULTS}/report/{figure}.pdf", caption=f"../report/{figure}.rst", category="GW search"),
            png=f"{RESULTS}/report/{figure}.png",
        log:
            f"{RESULTS}/logs/figure_{figure}.log",
        localrule: True
        conda:
            "../../envs/report.yaml"
        params:
            figure=figure,
            tables=lambda wildcards, input: Path(input.gw_background).parent,
            out=lambda wildcards, output: Path(output.pdf).parent,
        shell:
            "python -m cladbench.report.gw_search {params.tables} {params.out} --only {params.figure} > {log} 2>&1"


rule gw_search_report_tables:
    input:
        **SEARCH_TABLES,
        code=str(REPO / "src" / "cladbench" / "report" / "gw_search.py"),
    output:
        significance=report(
            f"{RESULTS}/report/gw_search.tex", caption="../report/gw_search_table.rst", category="GW search"
        ),
    log:
        f"{RESULTS}/logs/gw_search_report_tables.log",
    localrule: True
    conda:
        "../../envs/report.yaml"
    params:
        tables=lambda wildcards, input: Path(input.gw_background).parent,
        out=lambda wildcards, output: Path(output.significance).parent,
    shell:
        "python -m cladbench.report.gw_search {params.tables} {params.out} --only tables > {log} 2>&1"


SEARCH_TARGETS = (
    [
        *SEARCH_TABLES.values(),
        *rules.gw_search_report_tables.output,
        *expand(f"{RESULTS}/report/{{figure}}.{{ext}}", figure=SEARCH_FIGURES, ext=["pdf", "png"]),
    ]
    if SEARCH and GW_RECORDS
    else []
)
