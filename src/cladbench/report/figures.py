"""The report's figures, one function each: fig_<name>(table) returns a Figure drawn from the
tables (cladbench.report.tables) in the report's style (cladbench.report.style), or a placeholder
that says what is missing. FIGURES names them, in the order build_report writes them."""

from __future__ import annotations

import math

import matplotlib
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.transforms import blended_transform_factory

from ..matrix import BASELINES, ENGINES, LAYOUT_ALLOCS
from .style import (
    COLORS,
    DASHES,
    NOISY_HANDLE,
    PANEL_W,
    batch_axis,
    dodge,
    engine_legend,
    engine_order,
    facets,
    legend,
    log_y_axis,
    panel_order,
    panel_title,
    placeholder,
    points,
)
from .tables import (
    MIN_SNR,
    NO_BENCH_RUNS,
    NO_OP_COST,
    NO_ROOT_FEED,
    PANEL,
    ablation_table,
    allocation_table,
    floor_table,
    headline_runs,
    op_cost_table,
    roc_table,
    speedup_table,
    step_time_table,
    with_layout_alloc,
)

FIGURES = [
    "step_time",
    "throughput",
    "speedup",
    "floor",
    "loss_curves",
    "allocations",
    "ablation",
    "gw_roc",
    "gw150914_trace",
    "op_cost",
    "root_feed",
]
TIMING_FIGURES = ["step_time", "throughput", "speedup", "floor", "ablation"]  # drawn from bench runs only


def _not_run_note(not_run: pd.DataFrame, engine: str) -> str | None:
    """The not-run reason of a pattern naming this engine (e.g. cpu-clad-*), if any."""
    for r in not_run.itertuples(index=False):
        if f"-{engine}-" in f"{r.variant}-":
            return f"not run: {r.reason}"
    return None


def _engine_lines(
    table: pd.DataFrame, value, low, high, ylabel: str, *, log_y: bool = True, reference: float | None = None
) -> Figure:
    """One line per engine against batch with an interval, a panel per PANEL key. value, low and
    high map one engine's rows of a panel (sorted by batch) to arrays; reference: a dashed line."""

    def draw(ax, panel):
        for engine in engine_order(panel["engine"]):
            r = panel[panel["engine"].eq(engine)].sort_values("batch")
            x, y = r["batch"].to_numpy(float), value(r)
            err = np.clip([y - low(r), high(r) - y], 0, None)
            points(ax, dodge(x, ENGINES.index(engine), len(ENGINES)), y, err, r["noisy"], COLORS[engine])
        if reference is not None:
            ax.axhline(reference, color="0.3", ls="--", lw=1)
        if log_y:
            log_y_axis(ax)
        batch_axis(ax, panel["batch"])
        ax.set_ylabel(ylabel)

    fig = facets(table, PANEL, draw)
    engine_legend(fig, table["engine"], [NOISY_HANDLE] if table["noisy"].any() else [])
    return fig


def fig_step_time(runs: pd.DataFrame) -> Figure:
    table = step_time_table(runs)
    if table.empty:
        return placeholder(NO_BENCH_RUNS)
    us = lambda column: lambda r: r[column].to_numpy(float) * 1e6  # noqa: E731
    return _engine_lines(table, us("median_s"), us("q1_s"), us("q3_s"), "median step time (µs)")


def fig_floor(runs: pd.DataFrame) -> Figure:
    table = floor_table(runs)
    if table.empty:
        return placeholder("no GEMM-floor measurements in this study")
    col = lambda column: lambda r: r[column].to_numpy(float)  # noqa: E731
    # The dashed line at 1 is the floor: the step's GEMMs alone.
    return _engine_lines(
        table, col("ratio"), col("low"), col("high"), "step time / GEMM-only time", log_y=False, reference=1.0
    )


def fig_throughput(runs: pd.DataFrame) -> Figure:
    table = step_time_table(runs).dropna(subset=["samples_per_s"])
    if table.empty:
        return placeholder(NO_BENCH_RUNS)
    # samples/s = batch / step time, so the step-time quartiles map to its interval.
    return _engine_lines(
        table,
        lambda r: r["samples_per_s"].to_numpy(float),
        lambda r: r["batch"].to_numpy(float) / r["q3_s"].to_numpy(float),
        lambda r: r["batch"].to_numpy(float) / r["q1_s"].to_numpy(float),
        "throughput (samples/s)",
    )


def fig_speedup(runs: pd.DataFrame, not_run: pd.DataFrame) -> Figure:
    table = speedup_table(runs)
    if table.empty:
        why = _not_run_note(not_run, "clad") or "clad and a baseline (libtorch, pytorch) did not both run"
        return placeholder(f"no speedup of clad: {why}")

    def draw(ax, panel):
        for baseline in BASELINES:
            r = panel[panel["baseline"].eq(baseline)].sort_values("batch")
            if r.empty:
                continue
            x, y = (
                dodge(r["batch"].to_numpy(float), BASELINES.index(baseline), len(BASELINES)),
                r["speedup"].to_numpy(float),
            )
            # min-max across repetitions; a single repetition has no interval.
            err = np.clip([y - r["speedup_min"].to_numpy(float), r["speedup_max"].to_numpy(float) - y], 0, None)
            points(ax, x, y, np.where(r["n"].to_numpy() > 1, err, 0), r["noisy"], COLORS[baseline])
        ax.axhline(1, color="0.3", ls="--", lw=0.8)
        log_y_axis(ax)
        batch_axis(ax, panel["batch"])
        ax.set_ylabel("speedup of clad (×)")

    fig = facets(table, PANEL, draw)
    handles = [
        Line2D([], [], color=COLORS[b], marker="o", label=f"clad over {b}")
        for b in BASELINES
        if b in set(table["baseline"])
    ]
    handles.append(Line2D([], [], color="0.3", ls="--", label="no speedup"))
    legend(fig, handles + ([NOISY_HANDLE] if table["noisy"].any() else []))
    return fig


def fig_loss_curves(epochs: pd.DataFrame) -> Figure:
    data = with_layout_alloc(epochs.dropna(subset=["train_loss", "epoch"]))
    if data.empty:
        return placeholder("no per-epoch losses in this study (epochs.csv missing or empty)")
    # Repetitions and thread counts train the same model: their median is one curve per variant.
    curves = (
        data.groupby(["dataset", "model", "batch", "engine", "layout_alloc", "epoch"], dropna=False)["train_loss"]
        .median()
        .reset_index()
    )

    def draw(ax, panel):
        for engine in engine_order(panel["engine"]):
            for layout_alloc, r in panel[panel["engine"].eq(engine)].groupby("layout_alloc"):
                r = r.sort_values("epoch")
                ax.plot(
                    r["epoch"].to_numpy(float),
                    r["train_loss"].to_numpy(float),
                    color=COLORS[engine],
                    ls=DASHES.get(layout_alloc, "-"),
                    marker="o",
                    ms=3,
                    lw=1.2,
                )
        ax.set_xlabel("epoch")
        ax.set_ylabel("training loss")
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))

    fig = facets(curves, ["dataset", "model", "batch"], draw)
    styles = [
        Line2D([], [], color="0.3", ls=DASHES[la], label=la)
        for la in LAYOUT_ALLOCS
        if la in set(curves["layout_alloc"])
    ]
    engine_legend(fig, curves["engine"], styles)
    return fig


def fig_allocations(runs: pd.DataFrame) -> Figure:
    table = allocation_table(runs)
    if table.empty:
        return placeholder("no successful runs in this study")
    # The same variants, in the same rows, in every panel: the labels are written once, on the left.
    variants = table.assign(rank=table["engine"].map(ENGINES.index)).sort_values(["rank", "variant"])
    row_of = {v: i for i, v in enumerate(reversed(variants["variant"].unique()))}
    positive = table["allocs"][table["allocs"] > 0]
    left = positive.min() / 3 if len(positive) else 0.5
    right = max(positive.max() * 3 if len(positive) else 10, left * 10)

    def draw(ax, panel):
        y = panel["variant"].map(row_of).to_numpy()
        values = panel["allocs"].to_numpy(float)
        ax.barh(y, np.where(values > 0, values, np.nan), color=[COLORS[e] for e in panel["engine"]], height=0.7)
        low, high = panel["allocs_min"].to_numpy(float), panel["allocs_max"].to_numpy(float)
        spread = (high > low) & (low > 0)  # runs of one variant that allocated differently
        ax.hlines(y[spread], low[spread], high[spread], color="black", lw=1)
        # Zero (the arena's point) cannot sit on a log axis: it is written, as is "not counted".
        at_left = blended_transform_factory(ax.transAxes, ax.transData)
        for yi, v in zip(y, values):
            if np.isnan(v) or v == 0:
                ax.text(0.03, yi, "not counted" if np.isnan(v) else "0", transform=at_left, va="center", fontsize=8)
        ax.set_xscale("log")
        ax.set_xlim(left, right)
        ax.xaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1, 2, 5) if right / left < 100 else (1,)))
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_yticks(list(row_of.values()), labels=list(row_of))
        ax.set_ylim(-0.6, len(row_of) - 0.4)
        ax.set_xlabel("heap allocations per step")
        ax.grid(axis="y", visible=False)

    fig = facets(
        table, ["dataset", "model"], draw, col_wrap=2, panel=(2.2, 0.2 * len(row_of) + 1.1), sharey=True, margin=2.0
    )
    engine_legend(fig, table["engine"])
    return fig


def fig_ablation(runs: pd.DataFrame) -> Figure:
    table = ablation_table(runs)
    if table.empty:
        return placeholder(
            "no layout × alloc ablation: no kernel engine (clad, manual) ran in rowmajor-arena and another variant"
        )
    table = table.assign(row=[f"{b} · {t}" for b, t in zip(table["batch"], table["threads"])])
    panels = sorted(
        table.groupby(["dataset", "model", "device"], dropna=False),
        key=lambda group: panel_order(["dataset", "model", "device"], group[0]),
    )
    engines = engine_order(table["engine"])
    limit = max(float(np.nanmax(np.abs(np.log2(table["relative"].to_numpy(float))))), 1.0)
    rows_max = max(group["row"].nunique() for _, group in panels)
    fig = Figure(figsize=(3.1 * len(engines) + 0.8, (0.28 * rows_max + 1.4) * len(panels)), layout="constrained")
    axes = fig.subplots(len(panels), len(engines), squeeze=False)
    for i, (key, group) in enumerate(panels):
        rows = group.sort_values(["batch", "threads"])["row"].unique()
        for j, engine in enumerate(engines):
            ax = axes[i, j]
            grid = group[group["engine"].eq(engine)].pivot_table(
                index="row", columns="layout_alloc", values="relative", aggfunc="median"
            )
            grid = grid.reindex(index=rows, columns=LAYOUT_ALLOCS)
            # Colour on log2, symmetric: 2x slower and 2x faster are equally dark; cells say the ratio.
            sns.heatmap(
                np.log2(grid),
                ax=ax,
                cmap="RdBu_r",
                vmin=-limit,
                vmax=limit,
                cbar=False,
                annot=grid.to_numpy(),
                fmt=".2f",
                annot_kws={"size": 8},
                linewidths=0.5,
                linecolor="white",
            )
            ax.set_xticks(
                np.arange(len(LAYOUT_ALLOCS)) + 0.5,
                labels=[la.replace("major-", "\n") for la in LAYOUT_ALLOCS],
                rotation=0,
                fontsize=8,
            )
            ax.set_xlabel("layout / allocation")
            ax.set_ylabel("batch · threads" if j == 0 else "")
            ax.tick_params(axis="y", rotation=0, labelsize=8)
            ax.set_title(panel_title(["dataset", "model", "device", "engine"], (*key, engine)))
    bar = fig.colorbar(matplotlib.cm.ScalarMappable(norm=Normalize(-limit, limit), cmap="RdBu_r"), ax=axes, shrink=0.8)
    ticks = [t for t in range(-math.ceil(limit), math.ceil(limit) + 1) if abs(t) <= limit]
    bar.set_ticks(ticks, labels=[f"{2.0**t:g}" for t in ticks])
    bar.set_label("step time / rowmajor-arena")
    return fig


def fig_gw_roc(scores: pd.DataFrame) -> Figure:
    table = roc_table(scores)
    if table.empty:
        return placeholder("no GW runs in this study (gw_scores.csv missing or empty)")
    # Log false-positive rate: a search lives at low false-alarm rates, where the curves differ.
    n_noise = scores[scores["label"].eq(0)].groupby(["variant", "model", "batch", "repetition"]).size().max()
    floor = 0.5 / n_noise

    def draw(ax, panel):
        for layout_alloc, runs in panel.groupby("layout_alloc"):
            aucs = runs["auc"].to_numpy()
            # One legend entry per variant: its AUC, with the range when it has several runs.
            label = f"{layout_alloc}: {np.median(aucs):.3f}"
            if len(aucs) > 1:
                label += f" ({aucs.min():.3f}–{aucs.max():.3f}, {len(aucs)} runs)"
            for k, run in enumerate(runs.itertuples()):
                ax.plot(
                    np.maximum(run.fpr, floor),
                    run.tpr,
                    color=COLORS[run.engine],
                    ls=DASHES.get(layout_alloc, "-"),
                    lw=1.1,
                    alpha=0.85,
                    label=label if k == 0 else None,
                )
        chance = np.geomspace(floor, 1, 50)
        ax.plot(chance, chance, color="0.6", lw=0.8, ls=":")
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.set_xlim(floor, 1)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("false-positive rate (noise windows)")
        ax.set_ylabel(f"true-positive rate (SNR ≥ {MIN_SNR})")
        ax.legend(title="AUC", loc="lower right", fontsize=8, frameon=True)

    return facets(table, ["model", "engine"], draw, col_wrap=2, panel=(3.5, 2.9))


def fig_gw150914_trace(trace: pd.DataFrame) -> Figure:
    data = headline_runs(trace.assign(status="ok")).dropna(subset=["t_rel_s", "score"])
    if data.empty:
        return placeholder("no GW150914 trace in this study (no GW runs on the real GW150914 data)")
    # Repetitions share the windows: round away float noise in t, then the median per engine.
    data = data.assign(t=data["t_rel_s"].round(6))
    curves = data.groupby(["model", "engine", "t"])["score"].median().reset_index()

    def draw(ax, panel):
        for engine in engine_order(panel["engine"]):
            r = panel[panel["engine"].eq(engine)].sort_values("t")
            dense = len(r) > 80  # hundreds of windows: markers would hide the line
            ax.plot(r["t"], r["score"], color=COLORS[engine], marker=None if dense else "o", ms=2.5, lw=1.0)
        ax.axvline(0, color="0.3", ls="--", lw=0.8)
        ax.set_xlabel("time relative to GW150914 merger (s)")
        ax.set_ylabel("classifier output")
        ax.set_ylim(-0.02, 1.02)

    fig = facets(curves, ["model"], draw, col_wrap=2, panel=(3.5, 2.4))
    engine_legend(fig, curves["engine"], [Line2D([], [], color="0.3", ls="--", label="merger")])
    return fig


def fig_op_cost(op_cost: pd.DataFrame) -> Figure:
    """What composability costs: composable / fused step time against batch, a panel per model
    (op_cost_table); the ratio within each repetition, median and IQR; hollow where noisy."""
    table = op_cost_table(op_cost)
    if table.empty:
        return placeholder(NO_OP_COST)

    def draw(ax, panel):
        for engine in engine_order(panel["engine"]):
            r = panel[panel["engine"].eq(engine)].sort_values("batch")
            x, y = r["batch"].to_numpy(float), r["ratio_median"].to_numpy(float)
            err = np.clip([y - r["ratio_q1"].to_numpy(float), r["ratio_q3"].to_numpy(float) - y], 0, None)
            points(ax, x, y, err, r["ratio_noisy"], COLORS[engine])
        ax.axhline(1, color="0.3", ls="--", lw=0.8)
        batch_axis(ax, panel["batch"])
        ax.set_ylabel("composable / fused")

    fig = facets(table, ["model", "threads"], draw)
    handles = [Line2D([], [], color="0.3", ls="--", label="as fast as the fused op")]
    engine_legend(fig, table["engine"], handles + ([NOISY_HANDLE] if table["ratio_noisy"].any() else []))
    return fig


FEED_COLORS = {"idx": "0.45", "hdf5": "0.45", "ttree": "#1f77b4", "rntuple": "#d62728"}


def fig_root_feed(feed: pd.DataFrame, not_run: pd.DataFrame) -> Figure:
    """How fast each format and reader brings a dataset's training samples into memory (cladbench
    root feed): samples/s from the median read, with the quartiles, a panel per dataset; each bar
    says the file's bytes per sample."""
    if feed.empty:
        why = [r.reason for r in not_run.itertuples(index=False) if str(r.variant).startswith(("ttree", "rntuple"))]
        return placeholder(NO_ROOT_FEED + (f": {why[0]}" if why else ""))
    datasets = list(dict.fromkeys(feed["dataset"]))
    bars = feed.groupby("dataset", sort=False).size()
    fig = Figure(figsize=(PANEL_W * 2.2, 0.9 + 0.28 * len(feed) + 0.5 * len(datasets)), layout="constrained")
    axes = fig.subplots(len(datasets), 1, squeeze=False, sharex=True, height_ratios=list(bars + 1))[:, 0]
    for ax, dataset in zip(axes, datasets):
        rows = feed[feed["dataset"].eq(dataset)].iloc[::-1]
        rate = rows["samples"] / rows["seconds_median"]
        low, high = rows["samples"] / rows["seconds_q3"], rows["samples"] / rows["seconds_q1"]
        y = np.arange(len(rows))
        ax.barh(y, rate, xerr=[rate - low, high - rate], color=[FEED_COLORS.get(f, "0.6") for f in rows["format"]])
        ax.set_yticks(y, [f"{f} · {r}" for f, r in zip(rows["format"], rows["reader"])])
        for yi, value, row in zip(y, rate, rows.itertuples(index=False)):
            ax.text(value, yi, f"  {row.file_bytes / row.samples / 1024:.1f} KiB/sample", va="center", fontsize=7)
        ax.set_xscale("log")
        ax.set_title(f"{dataset}: {int(rows['features'].iloc[0])} floats a sample", fontsize=9)
    axes[-1].set_xlim(right=axes[-1].get_xlim()[1] * 6)  # room for the labels
    axes[-1].set_xlabel("samples/s into memory (median read, quartiles)")
    return fig
