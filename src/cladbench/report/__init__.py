"""The paper-ready report, built from the aggregated tables only (runs.csv, epochs.csv, gw_scores.csv,
gw150914_trace.csv, not_run.csv; see cladbench.records.aggregate) and the op bench's table
(op_cost.csv, cladbench.bench.op_bench), never from the JSON run records.

Writes figures (PDF and PNG), LaTeX tables (booktabs) and a provenance page:

    python -m cladbench.report TABLES_DIR OUT_DIR

A missing or empty optional table gives a placeholder figure that says why, never a crash.

The package, one concept a module: style (the look and the figure helpers), tables (reading the
tables and computing what the figures and tables show), figures, latex, provenance; the CUDA and
calibration sections (cuda, calib) have CLIs of their own. Here: build_report and the CLI.
"""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: the report is built on cluster nodes and in tests

import matplotlib.pyplot as plt  # noqa: E402

from ..matrix import ENGINES  # noqa: E402
from .figures import (  # noqa: E402
    FIGURES,
    TIMING_FIGURES,
    fig_ablation,
    fig_allocations,
    fig_floor,
    fig_gw150914_trace,
    fig_gw_roc,
    fig_loss_curves,
    fig_op_cost,
    fig_root_feed,
    fig_speedup,
    fig_step_time,
    fig_throughput,
)
from .latex import gw_tex, headline_tex, op_cost_tex, root_fed_tex, targets_tex  # noqa: E402
from .provenance import provenance_md, timing_summary  # noqa: E402
from .style import RC, save  # noqa: E402
from .tables import TABLES, file_fed, read_table, targets_table, timing_runs, untimed_note  # noqa: E402


def build_report(tables_dir: str | Path, out_dir: str | Path, only: str | None = None) -> list[Path]:
    """Every figure (PDF, PNG), headline.tex, targets.tex/.csv, gw.tex, root_fed.tex, op_cost.tex and
    provenance.md from the tables in tables_dir (runs.csv required); returns the files written.
    `only`: one figure's name, or "tables" for the LaTeX tables and the provenance page (so the
    workflow can remake one output alone)."""
    tables_dir, out_dir = Path(tables_dir), Path(out_dir)
    if not (tables_dir / "runs.csv").exists():
        raise FileNotFoundError(f"{tables_dir / 'runs.csv'}: the report needs at least the runs table")
    all_runs, epochs, scores, trace, not_run, op_cost, feed = (read_table(tables_dir, name) for name in TABLES)
    runs = file_fed(all_runs[all_runs["engine"].isin(ENGINES)])  # figures: an unknown engine would have no colour
    out_dir.mkdir(parents=True, exist_ok=True)
    timed = timing_runs(runs)
    # Learning curves and the classifier's scores come from training runs; a bench run trains only
    # as long as its timing needs.
    epochs, scores, trace = (table[~table["purpose"].eq("bench")] for table in (epochs, scores, trace))
    all_epochs, epochs = epochs, file_fed(epochs)
    figures = {
        "step_time": lambda: fig_step_time(timed),
        "throughput": lambda: fig_throughput(timed),
        "speedup": lambda: fig_speedup(timed, not_run),
        "floor": lambda: fig_floor(timed),
        "loss_curves": lambda: fig_loss_curves(epochs),
        "allocations": lambda: fig_allocations(timed),
        "ablation": lambda: fig_ablation(timed),
        "gw_roc": lambda: fig_gw_roc(scores),
        "gw150914_trace": lambda: fig_gw150914_trace(trace),
        "op_cost": lambda: fig_op_cost(op_cost),
        "root_feed": lambda: fig_root_feed(feed, not_run),
    }
    assert list(figures) == FIGURES
    if only is not None and only != "tables" and only not in figures:
        raise ValueError(f"no report output named {only}; expected tables or one of {', '.join(FIGURES)}")
    written, notes = [], {}
    with plt.rc_context(RC):
        for name, make in figures.items():
            if only not in (None, "tables", name):
                continue
            fig = make()
            if getattr(fig, "note", None):
                notes[name] = fig.note  # the provenance page lists figures left as placeholders
            elif name in TIMING_FIGURES and untimed_note(runs):
                fig.text(0.5, 0, textwrap.fill(untimed_note(runs), 90), ha="center", va="top", fontsize=8)
            if only in (None, name):
                written += save(fig, out_dir, name)
            plt.close(fig)
    if only not in (None, "tables"):
        return written
    (out_dir / "headline.tex").write_text(headline_tex(timed))
    (out_dir / "targets.tex").write_text(targets_tex(timed))
    targets_table(timed).to_csv(out_dir / "targets.csv", index=False)
    (out_dir / "gw.tex").write_text(gw_tex(runs))
    fed = all_runs[all_runs["engine"].isin(ENGINES)]
    (out_dir / "root_fed.tex").write_text(root_fed_tex(fed, all_epochs, not_run))
    (out_dir / "op_cost.tex").write_text(op_cost_tex(op_cost))
    (out_dir / "provenance.md").write_text(provenance_md(all_runs, not_run, notes, timing_summary(runs)))
    tables = ("headline.tex", "targets.tex", "targets.csv", "gw.tex", "root_fed.tex", "op_cost.tex", "provenance.md")
    return written + [out_dir / name for name in tables]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cladbench.report", description=__doc__.split("\n\n")[0])
    parser.add_argument("tables_dir", type=Path, help="directory with runs.csv and the other tables")
    parser.add_argument("out_dir", type=Path, help="where the figures, tables and provenance.md go")
    parser.add_argument("--only", help="one figure's name, or 'tables' (LaTeX tables and provenance page)")
    args = parser.parse_args(argv)
    for path in build_report(args.tables_dir, args.out_dir, args.only):
        print(path)
    return 0
