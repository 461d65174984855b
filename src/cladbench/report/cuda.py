"""The report's CUDA section: clad vs libtorch vs pytorch on a GPU, against the cuBLAS floor, from
recorded runs: the archived ones (archive_runs.csv, cladbench.records.archive: results-archive/) and any
cuda runs of this study (runs.csv). Every row and panel names the GPU and the date of its runs, so
a report built on a machine without a GPU says where its CUDA numbers come from.

    python -m cladbench.report.cuda TABLES_DIR OUT_DIR [--only cuda_step_time|tables]

Writes cuda_step_time.pdf/.png (median step time vs batch, log-log, one line per engine and the
cuBLAS floor, a panel per model and archive), cuda.tex and cuda.csv.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ..matrix import CUDA_ENGINES
from .latex import num, tabular, tex
from .style import (
    COLORS,
    RC,
    batch_axis,
    dodge,
    engine_legend,
    engine_order,
    facets,
    log_y_axis,
    placeholder,
    save,
    section_main,
)
from .tables import headline_runs, read_table, speedup_per_repetition, timing_runs

CUDA_BASELINES = ["libtorch", "pytorch"]  # clad's ratios
CUDA_FIGURES = ["cuda_step_time"]
ARCHIVE = ["archive_device", "archive_date"]
CELL = [*ARCHIVE, "dataset", "model", "threads", "batch"]  # one row of cuda.tex
NO_RUNS = "no recorded CUDA runs; on a GPU machine run `make cuda-records`"
# Identify a run across runs.csv and the archive (a live record that was also archived counts once).
SAME_RUN = ["variant", "purpose", "dataset", "model", "batch", "threads", "repetition", "hostname", "started_utc"]


def cuda_runs(runs: pd.DataFrame, archive: pd.DataFrame) -> pd.DataFrame:
    """The cuda runs of the archive and of this study, each marked with its GPU and date (this
    study's: the record's gpu_model and start date); finished runs of the headline variants, bench
    runs where a model has any (tables.timing_runs, per archive)."""
    live = runs[runs["device"].eq("cuda")]
    live = live.assign(
        archive_device=live["gpu_model"].fillna("unknown GPU") if "gpu_model" in live else "unknown GPU",
        archive_date=live["started_utc"].astype(str).str[:10],
    )
    archived = archive[archive["device"].eq("cuda")]
    if len(archived) and len(live):
        seen = pd.MultiIndex.from_frame(archived[SAME_RUN].astype(str))
        live = live[~pd.MultiIndex.from_frame(live[SAME_RUN].astype(str)).isin(seen)]
    data = pd.concat([archived, live], ignore_index=True)
    data = headline_runs(data[data["engine"].isin(CUDA_ENGINES)])
    if data.empty:
        return data
    return pd.concat([timing_runs(group) for _, group in data.groupby(ARCHIVE)], ignore_index=True)


def cuda_table(data: pd.DataFrame) -> pd.DataFrame:
    """Per GPU, date, model and batch: each engine's median step time (µs, median over
    repetitions), the cuBLAS floor (µs), clad's ratios t_libtorch / t_clad and t_pytorch / t_clad
    (per repetition, then the median: tables.speedup_per_repetition), clad / floor (per
    repetition, clad's own floor, then the median) and the largest gradient error of the cell."""
    columns = [
        *CELL,
        *[f"{e}_us" for e in CUDA_ENGINES],
        "floor_us",
        *[f"clad_vs_{b}" for b in CUDA_BASELINES],
        "clad_vs_floor",
        "grad_max_rel_err",
        "repetitions",
    ]
    data = data.dropna(subset=["step_time_median_s"]) if len(data) else data
    if data.empty:
        return pd.DataFrame(columns=columns)
    times = data.pivot_table(index=CELL, columns="engine", values="step_time_median_s", aggfunc="median") * 1e6
    table = times.reindex(columns=list(CUDA_ENGINES)).add_suffix("_us")
    cells = data.groupby(CELL)
    table["floor_us"] = cells["gemm_floor_median_s"].median() * 1e6
    table["grad_max_rel_err"] = cells["grad_max_rel_err"].max()
    table["repetitions"] = cells["repetition"].nunique()
    # Ratios within one archive only: runs of different GPUs or days are never compared.
    ratios = []
    for key, group in data.groupby(ARCHIVE):
        per_rep = speedup_per_repetition(group, CUDA_BASELINES)
        ratios.append(per_rep.assign(**dict(zip(ARCHIVE, key))))
    ratios = pd.concat(ratios, ignore_index=True)
    speed = (
        ratios.pivot_table(index=CELL, columns="baseline", values="speedup", aggfunc="median")
        if len(ratios)
        else pd.DataFrame()
    )
    for baseline in CUDA_BASELINES:
        table[f"clad_vs_{baseline}"] = speed[baseline] if baseline in speed else np.nan
    clad = data[data["engine"].eq("clad")]
    table["clad_vs_floor"] = (
        (clad["step_time_median_s"] / clad["gemm_floor_median_s"]).groupby([clad[k] for k in CELL]).median()
    )
    return table.reset_index().reindex(columns=columns)


def fig_cuda_step_time(data: pd.DataFrame) -> Figure:
    table = cuda_table(data)
    if table.empty:
        return placeholder(NO_RUNS)
    # One panel per model and archive: the title's "device" line names the GPU and the date.
    runs = data.dropna(subset=["step_time_median_s"])
    runs = runs.assign(device=runs["archive_device"] + " · " + runs["archive_date"])
    curves = (
        runs.groupby(["dataset", "model", "device", "engine", "batch"])
        .agg(
            median_s=("step_time_median_s", "median"),
            q1_s=("step_time_q1_s", "median"),
            q3_s=("step_time_q3_s", "median"),
            floor_s=("gemm_floor_median_s", "median"),
        )
        .reset_index()
    )

    def draw(ax, panel):
        for engine in engine_order(panel["engine"]):
            r = panel[panel["engine"].eq(engine)].sort_values("batch")
            x, y = r["batch"].to_numpy(float), r["median_s"].to_numpy(float) * 1e6
            err = np.clip([y - r["q1_s"].to_numpy(float) * 1e6, r["q3_s"].to_numpy(float) * 1e6 - y], 0, None)
            ax.errorbar(
                dodge(x, CUDA_ENGINES.index(engine), len(CUDA_ENGINES)),
                y,
                yerr=err,
                color=COLORS[engine],
                marker="o",
                ms=3.5,
                lw=1.2,
                capsize=2,
            )
        floor = panel.groupby("batch")["floor_s"].median().dropna()
        ax.plot(floor.index.to_numpy(float), floor.to_numpy(float) * 1e6, color="0.2", ls="--", lw=1)
        log_y_axis(ax)
        batch_axis(ax, panel["batch"])
        ax.set_ylabel("median step time (µs)")

    fig = facets(curves, ["dataset", "model", "device"], draw, panel=(3.0, 2.3))
    engine_legend(fig, curves["engine"], [Line2D([], [], color="0.2", ls="--", label="cuBLAS floor")])
    return fig


def cuda_tex(data: pd.DataFrame) -> str:
    table = cuda_table(data)
    header = [
        "GPU",
        "date",
        "model",
        "batch",
        *[f"{e} ($\\mu$s)" for e in CUDA_ENGINES],
        "floor ($\\mu$s)",
        *[f"clad vs {b}" for b in CUDA_BASELINES],
        "clad / floor",
        "max grad err",
    ]
    rows = [
        [
            tex(r.archive_device),
            tex(r.archive_date),
            tex(r.model),
            str(r.batch),
            *[num(getattr(r, f"{e}_us"), ".1f") for e in CUDA_ENGINES],
            num(r.floor_us, ".1f"),
            *[num(getattr(r, f"clad_vs_{b}"), ".2f") for b in CUDA_BASELINES],
            num(r.clad_vs_floor, ".2f"),
            num(r.grad_max_rel_err, ".1e"),
        ]
        for r in table.itertuples(index=False)
    ]
    return tabular(
        header,
        rows,
        "llll" + "r" * (len(header) - 4),
        "CUDA: median step time per engine (median over repetitions), the cuBLAS-only floor, clad's "
        "ratios t_baseline / t_clad and t_clad / t_floor within each repetition (median over "
        "repetitions), the largest gradient error vs autograd; GPU and date of the recorded runs",
        empty=tex(NO_RUNS).replace("`", ""),
    )


def build(tables_dir: str | Path, out_dir: str | Path, only: str | None = None) -> list[Path]:
    """cuda_step_time (PDF, PNG), cuda.tex and cuda.csv from runs.csv and archive_runs.csv (either
    may be missing: no runs of that kind). only: cuda_step_time or tables."""
    import matplotlib.pyplot as plt

    if only not in (None, "tables", *CUDA_FIGURES):
        raise ValueError(f"no CUDA report output named {only}; expected tables or one of {', '.join(CUDA_FIGURES)}")
    tables_dir, out_dir = Path(tables_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    live, archive = read_table(tables_dir, "runs"), read_table(tables_dir, "runs", stem="archive_runs")
    for frame in (live, archive):
        for column in [*ARCHIVE, "gpu_model", "hostname", "started_utc", "purpose", "gemm_floor_median_s"]:
            if column not in frame:
                frame[column] = pd.Series(dtype=float if column == "gemm_floor_median_s" else str)
    data = cuda_runs(live, archive)
    written = []
    if only in (None, "cuda_step_time"):
        with plt.rc_context(RC):
            written += save(fig_cuda_step_time(data), out_dir, "cuda_step_time")
    if only in (None, "tables"):
        (out_dir / "cuda.tex").write_text(cuda_tex(data))
        cuda_table(data).to_csv(out_dir / "cuda.csv", index=False)
        written += [out_dir / "cuda.tex", out_dir / "cuda.csv"]
    return written


def main(argv: list[str] | None = None) -> int:
    return section_main(
        build, "python -m cladbench.report.cuda", __doc__.split("\n\n")[0],
        "cuda_step_time, or 'tables' (cuda.tex, cuda.csv)", argv,
    )  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
