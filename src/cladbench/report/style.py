"""The report's look: the matplotlib/seaborn setup (RC, the Agg backend), one colour per engine and
one dash per layout-alloc, panel sizes, and the helpers every figure is drawn with (facets, legends,
points with error bars, log axes, the batch axis), the placeholder figure and saving a figure."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: the report is built on cluster nodes and in tests

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from ..bench.timing import NOISY_SPREAD  # noqa: E402
from ..matrix import ENGINES, LAYOUT_ALLOCS  # noqa: E402

DATASETS = ["mnist", "gw-sim"]
# One colour per engine, the same in every figure.
COLORS = dict(zip(ENGINES, sns.color_palette("colorblind", len(ENGINES))))
DASHES = dict(zip(LAYOUT_ALLOCS, ["-", "--", ":", "-."]))
# Paper context: every font >= 8 pt when a figure is included at its natural size (panels 2.4 in
# wide, at most 3 a row: text width of a two-column paper). TrueType fonts in the PDF.
RC = {
    **sns.axes_style("whitegrid"),
    **sns.plotting_context("paper"),
    "pdf.fonttype": 42,
    "font.size": 9,
    "axes.titlesize": 8.5,
    "legend.fontsize": 8,
    "legend.title_fontsize": 8,
}
PANEL_W, PANEL_H = 2.4, 2.0


def engine_order(engines) -> list[str]:
    present = set(engines)
    return [e for e in ENGINES if e in present]


def panel_order(keys: list[str], values) -> tuple:
    """Sort key of a panel: datasets and engines in their fixed order, the rest as they sort."""
    values = values if isinstance(values, tuple) else (values,)
    key = []
    for name, value in zip(keys, values):
        fixed = {"dataset": DATASETS, "engine": ENGINES}.get(name, [])
        key.append((fixed.index(value) if value in fixed else len(fixed), value))
    return tuple(key)


def panel_title(keys: list[str], values, width: int = 34) -> str:
    """Two short lines; long model names wrap at their hyphens."""
    v = dict(zip(keys, values if isinstance(values, tuple) else (values,)))
    first = " · ".join(str(v[k]) for k in ("dataset", "model") if k in v)
    first = textwrap.fill(first, width)
    second = []
    if "device" in v:
        second.append(str(v["device"]))
    if "threads" in v:
        second.append(f"{v['threads']} thread" + ("s" if v["threads"] != 1 else ""))
    if "batch" in v:
        second.append(f"batch {v['batch']}")
    if "engine" in v:
        second.append(str(v["engine"]))
    return "\n".join(part for part in (first, " · ".join(second)) if part)


def facets(
    data: pd.DataFrame,
    keys: list[str],
    draw,
    *,
    col_wrap: int = 3,
    panel=(PANEL_W, PANEL_H),
    sharey: bool = False,
    margin: float = 0.0,
) -> Figure:
    """One panel per group of `keys`, at most col_wrap a row; draw(ax, group) fills each. margin:
    inches beside the panels for long tick labels."""
    groups = sorted(data.groupby(keys, dropna=False), key=lambda group: panel_order(keys, group[0]))
    ncols = min(col_wrap, len(groups))
    nrows = math.ceil(len(groups) / ncols)
    width = max(panel[0] * ncols + margin, 3.4)
    fig = Figure(figsize=(width, panel[1] * nrows + 0.5), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, sharey=sharey)
    for ax, (key, group) in zip(axes.flat, groups):
        draw(ax, group)
        ax.set_title(panel_title(keys, key, width=int(panel[0] * 14)))
    for ax in axes.flat[len(groups) :]:
        ax.remove()
    return fig


def engine_legend(fig: Figure, engines, extra: list[Line2D] = ()) -> None:
    """One legend for the figure, above the panels: engines in their fixed order, then `extra`."""
    handles = [Line2D([], [], color=COLORS[e], marker="o", label=e) for e in engine_order(engines)] + list(extra)
    legend(fig, handles)


def legend(fig: Figure, handles: list) -> None:
    """Above the panels, in as many columns as the figure's width holds (8 pt: ~0.06 in a character)."""
    widest = max(0.4 + 0.06 * len(h.get_label()) for h in handles)
    ncols = max(1, min(len(handles), int(fig.get_figwidth() / widest)))
    fig.legend(handles=handles, loc="outside upper center", ncols=ncols, frameon=False)


# A noisy cell's point is hollow: the repetitions disagree, so the point is no firm number.
NOISY_HANDLE = Line2D(
    [],
    [],
    color="0.3",
    marker="o",
    mfc="white",
    ls="none",
    label=f"hollow: noisy (repetitions spread > {NOISY_SPREAD:.0%})",
)


def points(ax, x, y, err, is_noisy, color, **line) -> None:
    """A line with error bars through (x, y); filled markers, hollow where the cell is noisy."""
    ax.errorbar(x, y, yerr=err, color=color, lw=1.2, capsize=2, **line)
    is_noisy = np.asarray(is_noisy, dtype=bool)
    ax.plot(x[~is_noisy], y[~is_noisy], "o", color=color, ms=3.5)
    ax.plot(x[is_noisy], y[is_noisy], "o", color=color, ms=4, mfc="white", mew=1.2)


def dodge(x: np.ndarray, i: int, n: int) -> np.ndarray:
    """Shift the i-th of n series a little along a log axis so that error bars do not overlap."""
    return x * 2 ** ((i - (n - 1) / 2) * 0.06)


def log_y_axis(ax) -> None:
    """Log y with plain-number ticks at 1, 2, 3, 5 x 10^k (no 6x10^3 clutter)."""
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1, 2, 3, 5)))
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: _short(v)))
    ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())


def _short(value: float) -> str:
    """500000 -> 500k: tick labels that fit a narrow panel."""
    if value >= 1e6:
        return f"{value / 1e6:g}M"
    if value >= 1e4:
        return f"{value / 1e3:g}k"
    return f"{value:g}"


def batch_axis(ax, batches) -> None:
    batches = sorted({int(b) for b in batches})
    ax.set_xscale("log", base=2)
    ax.set_xticks(batches, labels=[str(b) for b in batches])
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.set_xlabel("batch size (samples)")
    if len(batches) == 1:  # a single point: keep it off the frame
        ax.set_xlim(batches[0] / 2, batches[0] * 2)


def placeholder(note: str) -> Figure:
    """A figure that says why it is empty, in place of the figure."""
    fig = Figure(figsize=(3.4, 1.6))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.axis("off")
    ax.text(0.5, 0.5, textwrap.fill(note, 48), ha="center", va="center", fontsize=9, transform=ax.transAxes)
    fig.note = note  # build_report lists placeholders on the provenance page
    return fig


def save(fig: Figure, out_dir: Path, name: str) -> list[Path]:
    """<name>.pdf and <name>.png; no creation date in the PDF, so rebuilding changes nothing."""
    paths = [out_dir / f"{name}.pdf", out_dir / f"{name}.png"]
    fig.savefig(paths[0], metadata={"CreationDate": None}, bbox_inches="tight", pad_inches=0.03)
    fig.savefig(paths[1], dpi=200, bbox_inches="tight", pad_inches=0.03)
    return paths


def draw_figures(figures: dict, out_dir: Path, only: str | None) -> list[Path]:
    """Draws and saves each figure of {name: make} (all, or the one named `only`) in the report's look."""
    import matplotlib.pyplot as plt

    written = []
    with plt.rc_context(RC):
        for name, make in figures.items():
            if only in (None, name):
                written += save(make(), out_dir, name)
    return written


def section_main(build, prog: str, description: str, only_help: str, argv: list[str] | None = None) -> int:
    """The command line of a report section: TABLES_DIR OUT_DIR [--only NAME]; prints what it wrote."""
    import argparse

    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("tables_dir", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--only", help=only_help)
    args = parser.parse_args(argv)
    for path in build(args.tables_dir, args.out_dir, args.only):
        print(path)
    return 0


def read_table(tables_dir: Path, name: str) -> pd.DataFrame:
    """tables_dir/<name>.csv, or an empty frame when it is missing or empty (the figure says so)."""
    try:
        return pd.read_csv(Path(tables_dir) / f"{name}.csv")
    except (FileNotFoundError, pd.errors.EmptyDataError):
        return pd.DataFrame()


def legend_below(fig: Figure, ax, max_columns: int = 4) -> None:
    """One legend for all panels, under them (the panels are too small to hold one)."""
    by_label = dict(zip(*reversed(ax.get_legend_handles_labels())))  # one entry per label (several runs share one)
    fig.legend(
        by_label.values(),
        by_label.keys(),
        loc="outside lower center",
        ncols=min(len(by_label), max_columns),
        frameon=False,
    )
