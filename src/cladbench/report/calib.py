"""The calibration section of the report, from the calib tables only (cladbench.calib.fit writes them):
calib.csv (fitted vs true gains), calib_cost.csv, calib_timing.csv, calib_trace.csv, calib_masses.csv.

    python -m cladbench.report.calib TABLES_DIR OUT_DIR [--only FIGURE|tables]

Same conventions as cladbench.report: one PDF and PNG per figure, a placeholder that says why
when a table is missing, a booktabs table (calib.tex).
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib.ticker
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from .latex import num, tabular, tex
from .style import COLORS, PANEL_H, PANEL_W, draw_figures, legend_below, placeholder, read_table, section_main

METHODS = ["grid", "adam", "lbfgs", "minuit2"]
METHOD_NAMES = {"grid": "grid scan", "adam": "Adam", "lbfgs": "L-BFGS-B", "minuit2": "Minuit2 (Migrad)"}
METHOD_COLORS = dict(zip(METHODS, sns.color_palette("dark", len(METHODS))))
STAGE_STYLE = {
    "generated": dict(color="0.6", linestyle=":"),
    "uncalibrated": dict(color="C3", linestyle="--"),
    "calibrated": dict(color="C0", linestyle="-"),
}
TABLES = ["calib", "calib_cost", "calib_timing", "calib_trace", "calib_masses", "calib_hessian"]
CALIB_FIGURES = ["calib_mass_peak", "calib_trajectories", "calib_loss_curves", "calib_gains", "calib_cost"]


def _label(method: str, engine: str) -> str:
    return METHOD_NAMES.get(method, method) + ("" if engine == "none" else f" ({engine})")


def _panels(n: int, width=PANEL_W, height=PANEL_H):
    fig = Figure(figsize=(width * n, height), layout="constrained")
    return fig, [fig.add_subplot(1, n, i + 1) for i in range(n)]


def fig_mass_peak(masses: pd.DataFrame) -> Figure:
    """The reconstructed Z peak with all gains 1 and with the fitted gains, per R."""
    if masses.empty:
        return placeholder("No calibration mass histograms (calib_masses.csv): run `cladbench calib run`.")
    regions = sorted(masses.regions.unique())
    fig, axes = _panels(len(regions))
    for ax, R in zip(axes, regions):
        for stage, style in STAGE_STYLE.items():
            h = masses[(masses.regions == R) & (masses.stage == stage)]
            ax.stairs(h["count"], np.append(h.bin_low.values, h.bin_high.values[-1:]), label=stage, **style)
        ax.axvline(91.1876, color="0.3", lw=0.6)
        ax.set_title(f"R = {R} regions")
        ax.set_xlabel(r"$m_{ee}$ (GeV)")
    axes[0].set_ylabel("events / 0.5 GeV")
    legend_below(fig, axes[0])
    return fig


def fig_trajectories(trace: pd.DataFrame, gains: pd.DataFrame) -> Figure:
    """Each optimiser's path: (gain - true) / sigma against loss evaluations, every region, per R."""
    if trace.empty or gains.empty:
        return placeholder("No optimiser traces (calib_trace.csv): run `cladbench calib run`.")
    sigma = gains.drop_duplicates(["regions", "region"]).set_index(["regions", "region"]).sigma
    regions = sorted(trace.regions.unique())
    fig, axes = _panels(len(regions))
    for ax, R in zip(axes, regions):
        t = trace[trace.regions == R]
        for (method, engine), path in t.groupby(["method", "engine"], sort=False):
            for i, (region, one) in enumerate(path.groupby("region")):
                pull = (one.gain - one.true_gain) / sigma[(R, region)]
                ax.plot(
                    one.evals,
                    pull,
                    color=METHOD_COLORS[method],
                    lw=0.7,
                    alpha=0.7,
                    label=_label(method, engine) if i == 0 else None,
                    marker="o" if method == "grid" else None,
                    ms=2,
                )
        ax.axhspan(-3, 3, color="0.9", zorder=0)
        ax.set_xscale("log")
        ax.set_yscale("symlog", linthresh=3)
        ax.set_yticks([-100, -10, -3, 0, 3, 10, 100], labels=["-100", "-10", "-3", "0", "3", "10", "100"])
        ax.yaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.set_title(f"R = {R} regions")
        ax.set_xlabel("loss evaluations")
    axes[0].set_ylabel(r"(gain $-$ true) / $\sigma$")
    legend_below(fig, axes[0])
    return fig


def fig_loss_curves(trace: pd.DataFrame) -> Figure:
    """Loss above the best loss found for that R, against loss evaluations, per optimiser."""
    if trace.empty:
        return placeholder("No optimiser traces (calib_trace.csv): run `cladbench calib run`.")
    curves = trace.drop_duplicates(["regions", "method", "engine", "evals"])
    regions = sorted(curves.regions.unique())
    fig, axes = _panels(len(regions))
    for ax, R in zip(axes, regions):
        c = curves[curves.regions == R]
        floor = c.loss.min()
        for (method, engine), curve in c.groupby(["method", "engine"], sort=False):
            ax.plot(
                curve.evals,
                (curve.loss - floor).clip(lower=1e-16),
                color=METHOD_COLORS[method],
                lw=0.9,
                label=_label(method, engine),
                marker="o" if method == "grid" else None,
                ms=2,
            )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(f"R = {R} regions")
        ax.set_xlabel("loss evaluations")
    axes[0].set_ylabel("loss $-$ best loss (per event)")
    legend_below(fig, axes[0])
    return fig


def fig_gains(gains: pd.DataFrame) -> Figure:
    """Fitted minus true gain with its statistical uncertainty, per region, method and R."""
    if gains.empty:
        return placeholder("No fitted gains (calib.csv): run `cladbench calib run`.")
    regions = sorted(gains.regions.unique())
    fig, axes = _panels(len(regions), width=PANEL_W * 1.1)
    for ax, R in zip(axes, regions):
        g = gains[gains.regions == R]
        fits = list(g.groupby(["method", "engine"], sort=False))
        for i, ((method, engine), fit) in enumerate(fits):
            x = fit.region + (i - (len(fits) - 1) / 2) * 0.8 / max(len(fits), 2)
            ax.errorbar(
                x,
                fit.fitted_gain - fit.true_gain,
                yerr=fit.sigma,
                fmt="o",
                ms=2,
                lw=0.7,
                color=METHOD_COLORS[method],
                label=_label(method, engine),
            )
        ax.axhline(0, color="0.3", lw=0.6)
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.set_title(f"R = {R} regions")
        ax.set_xlabel(r"region ($\eta$ bin)")
    axes[0].set_ylabel(r"fitted $-$ true gain ($\pm 1\sigma$)")
    legend_below(fig, axes[0])
    return fig


def fig_cost(cost: pd.DataFrame, timing: pd.DataFrame) -> Figure:
    """Left: one loss+gradient evaluation per engine (median, quartiles). Right: each optimiser's
    wall time against R; a grid scan past its limit is shown hollow, at its estimated cost."""
    if cost.empty and timing.empty:
        return placeholder("No calibration cost or timing tables: run `cladbench calib run`.")
    fig, (left, right) = _panels(2, width=PANEL_W * 1.2)
    if not timing.empty:
        engines = [e for e in ["clad", "manual", "libtorch", "forward"] if e in set(timing.engine)]
        for i, engine in enumerate(engines):
            t = timing[timing.engine == engine].sort_values("regions")
            color = COLORS.get(engine, "0.5")
            left.errorbar(
                t.regions * (1 + 0.06 * (i - 1.5)),
                t.median_s * 1e3,
                yerr=[(t.median_s - t.q1_s) * 1e3, (t.q3_s - t.median_s) * 1e3],
                fmt="o-",
                ms=3,
                lw=0.8,
                color=color,
                label=engine if engine != "forward" else "loss only",
            )
        left.set_xscale("log", base=2)
        left.set_xticks(sorted(timing.regions.unique()), labels=[str(r) for r in sorted(timing.regions.unique())])
        left.set_xlabel("regions R")
        left.set_ylabel("ms per loss (+ gradient)")
        left.set_title(f"{int(timing.events.iloc[0]):,} events")
        left.set_ylim(bottom=0)
        left.legend(frameon=False, loc="lower right", fontsize=7)
    if not cost.empty:
        for (method, engine), c in cost.groupby(["method", "engine"], sort=False):
            c = c.sort_values("regions")
            done, est = c[c.feasible.astype(bool)], c[~c.feasible.astype(bool)]
            right.plot(
                done.regions,
                done.seconds,
                "o-",
                ms=3,
                lw=0.8,
                color=METHOD_COLORS[method],
                label=_label(method, engine),
            )
            if len(est):
                right.plot(
                    est.regions,
                    est.seconds,
                    "o",
                    ms=4,
                    mfc="none",
                    color=METHOD_COLORS[method],
                    label="grid scan (estimated, not run)",
                )
        right.set_xscale("log", base=2)
        right.set_yscale("log")
        right.set_xticks(sorted(cost.regions.unique()), labels=[str(r) for r in sorted(cost.regions.unique())])
        right.set_xlabel("regions R")
        right.set_ylabel("optimiser wall time (s)")
        right.set_title("fit")
        right.legend(frameon=False, loc="upper left", fontsize=7)
    return fig


def cost_tex(cost: pd.DataFrame) -> str:
    """The cost table: loss evaluations and seconds per optimiser and R, and how far the fit is
    from the truth (largest |fitted - true| / sigma over the regions)."""
    if cost.empty:
        return "% no calib_cost.csv: run `cladbench calib run`\n"
    rows = []
    for row in cost.sort_values(["regions", "method"]).itertuples():
        feasible = bool(row.feasible)
        rows.append(
            [
                str(row.regions),
                tex(_label(row.method, row.engine)),
                f"{row.loss_evals:.0f}" if feasible else f"$\\sim${row.loss_evals:.1e} (not run)",
                f"{row.seconds:.2f}" if feasible else f"$\\sim${row.seconds:.1e}",
                f"{row.max_abs_pull:.2f}" if feasible else "--",
            ]
        )
    return tabular(
        ["$R$", "method", "loss evaluations", "seconds", r"max $|\Delta g|/\sigma$"],
        rows,
        "rlrrr",
        "cladbench calib: optimiser cost per number of regions (calib_cost.csv)",
    )


HESSIAN_LABELS = {  # calib_hessian.csv's methods, as the table names them
    "clad": "Clad (clad::hessian)",
    "finite-differences": "differences of the gradient",
    "minuit2-hesse-clad": "Minuit2 HESSE fed Clad's",
    "minuit2-hesse": "Minuit2 HESSE, own differences",
}


def hessian_tex(hessian: pd.DataFrame) -> str:
    """The Hessian behind the uncertainties: Clad's and the finite-difference one, their cost, how far
    apart they are; Minuit2's HESSE fed Clad's and by its own differences, and how far its errors are
    from those of the Hessian used."""
    if hessian.empty:
        return "% no calib_hessian.csv: run `cladbench calib run`\n"
    rows = [
        [
            str(row.regions),
            tex(HESSIAN_LABELS.get(row.method, row.method)),
            f"{row.seconds * 1e3:.1f}",
            str(int(row.evaluations)),
            num(row.rel_diff, ".1e"),
            num(row.sigma_rel_diff, ".1e"),
            "yes" if row.used else "no",
            num(row.hesse_rel_diff, ".1e"),
        ]
        for row in hessian.sort_values(["regions", "method"]).itertuples()
    ]
    return tabular(
        ["$R$", "Hessian", "ms", "evaluations", "rel. diff.", "$\\sigma$ rel. diff.", "used", "HESSE rel. diff."],
        rows,
        "rlrrrrlr",
        "cladbench calib: the Hessian by Clad and by finite differences of the gradient (calib_hessian.csv)",
    )


def build(tables_dir: str | Path, out_dir: str | Path, only: str | None = None) -> list[Path]:
    tables_dir, out_dir = Path(tables_dir), Path(out_dir)
    gains, cost, timing, trace, masses, hessian = (read_table(tables_dir, name) for name in TABLES)
    out_dir.mkdir(parents=True, exist_ok=True)
    figures = {
        "calib_mass_peak": lambda: fig_mass_peak(masses),
        "calib_trajectories": lambda: fig_trajectories(trace, gains),
        "calib_loss_curves": lambda: fig_loss_curves(trace),
        "calib_gains": lambda: fig_gains(gains),
        "calib_cost": lambda: fig_cost(cost, timing),
    }
    assert list(figures) == CALIB_FIGURES
    if only not in (None, "tables", *figures):
        raise ValueError(
            f"no calibration report output named {only}; expected tables or one of {', '.join(CALIB_FIGURES)}"
        )
    written = draw_figures(figures, out_dir, only)
    if only in (None, "tables"):
        (out_dir / "calib.tex").write_text(cost_tex(cost) + "\n" + hessian_tex(hessian))
        written.append(out_dir / "calib.tex")
    return written


def main(argv: list[str] | None = None) -> int:
    return section_main(
        build, "python -m cladbench.report.calib", __doc__.split("\n\n")[0],
        "one figure's name, or 'tables' (calib.tex)", argv,
    )  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
