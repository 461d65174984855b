"""The "GW search" section of the report, from the search tables only (cladbench.gw_search summary
writes them): gw_background.csv, gw_significance.csv, gw_sensitivity.csv, gw_search_trace.csv.

    python -m cladbench.report.gw_search TABLES_DIR OUT_DIR [--only FIGURE|tables]

Same conventions as cladbench.report: one PDF and PNG per figure, a placeholder that says why
when a table is missing, a booktabs table (gw_search.tex).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..data.gw import EVENT_GPS
from .latex import num, tabular, tex
from .style import (
    COLORS,
    PANEL_H,
    PANEL_W,
    draw_figures,
    engine_order,
    legend_below,
    placeholder,
    read_table,
    section_main,
)

TABLES = ["gw_background", "gw_significance", "gw_sensitivity", "gw_search_trace"]
SEARCH_FIGURES = ["gw_sensitivity", "gw_background", "gw_search_trace"]
MISSING = "no GW search tables: the gw.search section of the config is off, or no GW training run finished"


def _networks(table: pd.DataFrame) -> list[tuple[str, str]]:
    """(engine, network) of each trained network in the table, engines in their fixed order."""
    pairs = table[["engine", "network"]].drop_duplicates()
    return [(e, n) for e in engine_order(pairs.engine) for n in sorted(pairs.network[pairs.engine == e])]


def fig_sensitivity(sensitivity: pd.DataFrame) -> Figure:
    """Sensitive distance against FAR per engine (MLGWSC-1's figure): measured on the simulated
    background, with the 1-per-month point extrapolated from its tail."""
    if sensitivity.empty:
        return placeholder(MISSING)
    fig = Figure(figsize=(PANEL_W * 1.6, PANEL_H * 1.4), layout="constrained")
    ax = fig.add_subplot()
    for engine, network in _networks(sensitivity):
        rows = sensitivity[sensitivity.network == network]
        color = COLORS.get(engine)
        measured = rows[rows.method == "measured"].sort_values("far_per_month")
        ax.plot(measured.far_per_month, measured.distance_mpc, color=color, label=engine)
        ax.fill_between(
            measured.far_per_month, measured.distance_low_mpc, measured.distance_high_mpc, color=color, alpha=0.15
        )
        for row in rows[rows.method == "extrapolated"].itertuples():
            low, high = row.distance_mpc - row.distance_low_mpc, row.distance_high_mpc - row.distance_mpc
            ax.errorbar([row.far_per_month], [row.distance_mpc], yerr=[[low], [high]], color=color, fmt="o", ms=3)
    ax.set_xscale("log")
    ax.set_xlabel("false-alarm rate (per month)")
    ax.set_ylabel("sensitive distance (Mpc)")
    hours = sensitivity.background_h.max()
    ax.set_title(f"{hours:.3g} h of simulated background; points at 1/month: tail fit", fontsize=8)
    legend_below(fig, ax, 3)
    return fig


def fig_background(background: pd.DataFrame, significance: pd.DataFrame, segments: pd.DataFrame) -> Figure:
    """Cumulative rate of background events louder than a statistic: simulated noise (with
    glitches) and the real time slides, one panel each; GW150914's statistic per engine marked."""
    if background.empty or segments.empty:
        return placeholder(MISSING)
    kinds = [k for k in ("simulated", "slide") if (background.kind == k).any()]
    fig = Figure(figsize=(PANEL_W * len(kinds), PANEL_H * 1.2), layout="constrained")
    for i, kind in enumerate(kinds):
        ax = fig.add_subplot(1, len(kinds), i + 1)
        livetime = segments.loc[segments.kind == kind, "livetime_s"].sum()
        for engine, network in _networks(background):  # one curve per network: variants are not pooled
            rows = background[(background.kind == kind) & (background.network == network)]
            stats = np.sort(rows.stat)[::-1]
            rate = np.arange(1, len(stats) + 1) / livetime * 3600
            ax.step(stats, rate, where="post", color=COLORS.get(engine), label=engine)
            event = significance.loc[significance.network == network, "gw150914_stat"]
            if kind == "slide" and len(event):
                ax.axvline(event.iloc[0], color=COLORS.get(engine), linestyle=":", linewidth=1)
        ax.set_yscale("log")
        ax.set_xlabel("logit difference")
        ax.set_ylabel("events louder (per hour)" if i == 0 else "")
        title = "simulated, with glitches" if kind == "simulated" else "time slides; dotted: GW150914"
        ax.set_title(f"{title} ({livetime / 3600:.2g} h)", fontsize=8)
    legend_below(fig, ax, 3)
    return fig


def fig_trace(trace: pd.DataFrame, significance: pd.DataFrame) -> Figure:
    """The zero-lag statistic over the real 32 s, per engine, with that engine's threshold at a
    FAR of 1 per hour of the time-slide background."""
    if trace.empty:
        return placeholder(MISSING)
    fig = Figure(figsize=(PANEL_W * 2, PANEL_H * 1.2), layout="constrained")
    ax = fig.add_subplot()
    for engine, network in _networks(trace):
        rows = trace[trace.network == network]
        ax.plot(rows.time_gps - EVENT_GPS, rows.stat, color=COLORS.get(engine), linewidth=0.8, label=engine)
        threshold = significance.loc[significance.network == network, "threshold_1_per_h"]
        if len(threshold):
            ax.axhline(threshold.iloc[0], color=COLORS.get(engine), linestyle="--", linewidth=0.8)
    ax.set_xlabel("predicted merger time - GW150914 (s)")
    ax.set_ylabel("logit difference")
    ax.set_title("zero lag; dashed: FAR = 1/hour of the time-slide background", fontsize=8)
    legend_below(fig, ax, 3)
    return fig


def significance_tex(significance: pd.DataFrame) -> str:
    """GW150914 against the real time-slide background, per engine."""
    if significance.empty:
        return f"% {MISSING}\n"
    rows = []
    for row in significance.itertuples():
        louder = int(row.slide_events_louder)
        far = f"$<${row.far_bound_per_h:.2f}" if louder == 0 else f"{row.far_per_h:.2f}"
        rows.append(
            [
                tex(row.engine),
                num(row.gw150914_stat, ".2f"),
                num(row.loudest_slide_stat, ".2f"),
                f"{louder} of {int(row.slide_events)}",
                far,
                num(row.threshold_1_per_h, ".2f"),
                num(row.loudest_other_zero_lag_stat, ".2f"),
                str(int(row.other_zero_lag_above_threshold)),
            ]
        )
    hours = significance.slide_livetime_h.iloc[0]
    return tabular(
        [
            "engine",
            "GW150914",
            "loudest slide",
            "slides louder",
            "FAR (/h)",
            "thr. 1/h",
            "loudest other",
            "others $\\geq$ thr.",
        ],
        rows,
        "lrrrrrrr",
        "cladbench search: GW150914's logit difference against the time-slide background (gw_significance.csv)",
        note=f"{int(significance.slides.iloc[0])} time slides of L1 against H1, {hours:.2f} h of background; "
        "`others': zero-lag events more than 1 s from GW150914.",
    )


def build(tables_dir: str | Path, out_dir: str | Path, only: str | None = None) -> list[Path]:
    tables_dir, out_dir = Path(tables_dir), Path(out_dir)
    background, significance, sensitivity, trace = (read_table(tables_dir, name) for name in TABLES)
    segments = read_table(tables_dir, "gw_search_segments")
    out_dir.mkdir(parents=True, exist_ok=True)
    figures = {
        "gw_sensitivity": lambda: fig_sensitivity(sensitivity),
        "gw_background": lambda: fig_background(background, significance, segments),
        "gw_search_trace": lambda: fig_trace(trace, significance),
    }
    assert list(figures) == SEARCH_FIGURES
    if only not in (None, "tables", *figures):
        raise ValueError(f"no GW search report output named {only}; expected tables or one of {', '.join(figures)}")
    written = draw_figures(figures, out_dir, only)
    if only in (None, "tables"):
        (out_dir / "gw_search.tex").write_text(significance_tex(significance))
        written.append(out_dir / "gw_search.tex")
    return written


def main(argv: list[str] | None = None) -> int:
    return section_main(
        build, "python -m cladbench.report.gw_search", __doc__.split("\n\n")[0],
        "one figure's name, or 'tables' (gw_search.tex)", argv,
    )  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
