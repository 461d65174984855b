"""The paper-ready report, built from the aggregated tables only (runs.csv, epochs.csv, gw_scores.csv,
gw150914_trace.csv, not_run.csv; see cladbench.aggregate), never from the JSON run records.

Writes figures (PDF and PNG), LaTeX tables (booktabs) and a provenance page:

    python -m cladbench.report TABLES_DIR OUT_DIR

A missing or empty optional table gives a placeholder figure that says why, never a crash.
"""

from __future__ import annotations

import argparse
import math
import sys
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: the report is built on cluster nodes and in tests

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.colors import Normalize  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.transforms import blended_transform_factory  # noqa: E402

from .matrix import BASELINES, ENGINES, KERNEL_ENGINES, LAYOUT_ALLOCS  # noqa: E402
from .timing import NOISY_SPREAD, failure_reason, noisy, ok_runs, spread  # noqa: E402

DATASETS = ["mnist", "gw-sim"]
# One colour per engine, the same in every figure.
COLORS = dict(zip(ENGINES, sns.color_palette("colorblind", len(ENGINES))))
DASHES = dict(zip(LAYOUT_ALLOCS, ["-", "--", ":", "-."]))
PANEL = ["dataset", "model", "device", "threads"]  # one panel of the timing figures
MIN_SNR = 10  # ROC: signals with SNR >= 10 against all noise, as the records' roc_auc
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
NO_BENCH_RUNS = "no successful bench runs in this study (training runs are not timed)"

TABLES = {  # name: (columns, numeric columns); text columns stay text ("3.10" is not 3.1)
    "runs": (
        [
            "variant",
            "purpose",
            "input",
            "engine",
            "device",
            "layout",
            "alloc",
            "dataset",
            "model",
            "batch",
            "threads",
            "repetition",
            "status",
        ],
        [
            "batch",
            "threads",
            "repetition",
            "seed",
            "lr",
            "epochs",
            "step_time_median_s",
            "step_time_q1_s",
            "step_time_q3_s",
            "samples_per_s",
            "final_loss",
            "test_accuracy",
            "grad_max_rel_err",
            "allocs_per_step",
            "peak_rss_mb",
            "roc_auc",
            "roc_auc_all_snr",
            "gw150914_peak_offset_s",
            "wall_time_s",
            "gemm_floor_median_s",
        ],
    ),
    "epochs": (
        [
            "variant",
            "purpose",
            "input",
            "engine",
            "layout",
            "alloc",
            "dataset",
            "model",
            "batch",
            "threads",
            "repetition",
            "epoch",
            "train_loss",
            "test_loss",
            "test_accuracy",
        ],
        ["batch", "threads", "repetition", "epoch", "train_loss", "test_loss", "test_accuracy"],
    ),
    "gw_scores": (
        ["variant", "purpose", "engine", "layout", "alloc", "model", "batch", "repetition", "score", "label", "snr"],
        ["batch", "repetition", "score", "label", "snr"],
    ),
    "gw150914_trace": (
        ["variant", "purpose", "engine", "layout", "alloc", "model", "batch", "repetition", "t_rel_s", "score"],
        ["batch", "repetition", "t_rel_s", "score"],
    ),
    "not_run": (["variant", "reason"], []),
}
INTEGERS = ["batch", "threads", "repetition", "epoch", "label"]


# ---------------------------------------------------------------------------------------------
# Reading the tables


def read_table(tables_dir: Path, name: str, stem: str | None = None) -> pd.DataFrame:
    """A table as a DataFrame with at least its documented columns; a missing or empty file is an
    empty table. Text stays text; numbers are coerced (empty cells: NaN). stem: the file's name
    when it is not the table's (archive_runs.csv holds a runs table)."""
    columns, numeric = TABLES[name]
    path = Path(tables_dir) / f"{stem or name}.csv"
    try:
        frame = pd.read_csv(path, dtype=str)
    except (FileNotFoundError, pd.errors.EmptyDataError):
        frame = pd.DataFrame(columns=columns, dtype=str)
    for column in columns:
        if column not in frame:
            frame[column] = pd.Series(dtype=str)
    for column in numeric:
        frame[column] = pd.to_numeric(frame[column], errors="coerce") if column in frame else np.nan
        if column in INTEGERS:
            frame[column] = frame[column].round().astype("Int64")
    return frame


def with_layout_alloc(frame: pd.DataFrame) -> pd.DataFrame:
    """Adds layout_alloc, e.g. "rowmajor-arena": the variant within its engine."""
    return frame.assign(layout_alloc=frame["layout"].astype(str) + "-" + frame["alloc"].astype(str))


def timing_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs every timing figure and table uses: bench runs (purpose=bench), which run with no
    other job beside them, a cell's engines in turn. Training runs share the machine with other
    jobs, so they are never timed; a model with no bench runs has no timing panel (untimed_note)."""
    return runs[runs["purpose"].eq("bench")]


def untimed_note(runs: pd.DataFrame) -> str | None:
    """The note under a timing figure naming the models that ran but have no bench runs."""
    models = sorted(set(runs["model"].dropna()) - set(timing_runs(runs)["model"].dropna()))
    if not models:
        return None
    return f"no timing panel for {', '.join(models)}: no bench runs (training runs are not timed)"


def headline_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """The run of each engine the headline compares: rowmajor-arena for the kernel engines, the
    one variant libtorch and pytorch have (they own their layout and memory)."""
    kernel = runs["engine"].isin(KERNEL_ENGINES)
    chosen = ~kernel | (runs["layout"].eq("rowmajor") & runs["alloc"].eq("arena"))
    return ok_runs(runs[chosen & runs["engine"].isin(ENGINES)])


# ---------------------------------------------------------------------------------------------
# The data behind the figures and tables (tested on their own)


def step_time_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per panel, engine and batch: median over repetitions of the runs' median step time, of
    their q1 and q3, and of samples/s; n = repetitions; spread of the repetitions' step times and
    whether that makes the cell noisy (cladbench.timing)."""
    data = headline_runs(runs).dropna(subset=["step_time_median_s"])
    keys = [*PANEL, "engine", "batch"]
    table = (
        data.groupby(keys, dropna=False)
        .agg(
            median_s=("step_time_median_s", "median"),
            q1_s=("step_time_q1_s", "median"),
            q3_s=("step_time_q3_s", "median"),
            samples_per_s=("samples_per_s", "median"),
            n=("step_time_median_s", "size"),
            spread=("step_time_median_s", spread),
        )
        .reset_index()
    )
    return table.assign(noisy=noisy(table["spread"]))


def floor_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per panel, engine and batch: each run's median step time over the median time of the same
    step's GEMM calls alone, measured in the same process (median over repetitions, range, and
    whether the ratios' spread makes the cell noisy)."""
    if "gemm_floor_median_s" not in runs:
        return pd.DataFrame(columns=[*PANEL, "engine", "batch", "ratio", "low", "high", "spread", "noisy"])
    data = headline_runs(runs).dropna(subset=["step_time_median_s", "gemm_floor_median_s"])
    data = data.assign(ratio=data["step_time_median_s"] / data["gemm_floor_median_s"])
    table = (
        data.groupby([*PANEL, "engine", "batch"], dropna=False)
        .agg(ratio=("ratio", "median"), low=("ratio", "min"), high=("ratio", "max"), spread=("ratio", spread))
        .reset_index()
    )
    return table.assign(noisy=noisy(table["spread"]))


def speedup_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Speedup of clad (rowmajor-arena) over each baseline = t_baseline / t_clad, computed within
    each repetition (same dataset, model, device, threads, batch, repetition), then summarised
    across repetitions: median, min, max, n, and the spread of the per-repetition ratios. Pooled
    medians would mix repetitions that ran under different machine conditions. A ratio cell is
    noisy when its per-repetition ratios spread more than NOISY_SPREAD: the engines of a cell take
    turns within a repetition, so a drift between repetitions that slows both cancels in the ratio,
    and only the ratio's own spread says whether it holds (each engine's step-time spread is marked
    on its own cell)."""
    per_rep = speedup_per_repetition(runs)
    keys = [*PANEL, "batch", "baseline"]
    if per_rep.empty:
        return pd.DataFrame(columns=[*keys, "speedup", "speedup_min", "speedup_max", "n", "spread", "noisy"])
    table = (
        per_rep.groupby(keys, dropna=False)
        .agg(
            speedup=("speedup", "median"),
            speedup_min=("speedup", "min"),
            speedup_max=("speedup", "max"),
            n=("speedup", "size"),
            spread=("speedup", spread),
        )
        .reset_index()
    )
    return table.assign(noisy=noisy(table["spread"]))


def speedup_per_repetition(runs: pd.DataFrame, baselines=BASELINES) -> pd.DataFrame:
    """One row per (panel, batch, repetition, baseline) where clad and the baseline both ran."""
    data = headline_runs(runs).dropna(subset=["step_time_median_s"])
    keys = [*PANEL, "batch", "repetition"]
    times = data.pivot_table(index=keys, columns="engine", values="step_time_median_s", aggfunc="median")
    rows = []
    for baseline in baselines:
        if "clad" not in times or baseline not in times:
            continue
        ratio = (times[baseline] / times["clad"]).dropna().rename("speedup").reset_index()
        rows.append(ratio.assign(baseline=baseline))
    if not rows:
        return pd.DataFrame(columns=[*keys, "baseline", "speedup"])
    return pd.concat(rows, ignore_index=True)


# The performance targets (the performance issues), at 1 thread, fp32, clad's rowmajor-arena
# variant, per task: the headline MLP and the GW classifier (every gw-sim CNN). A goal "reported" has
# no threshold: the number is the result. (task, target, baseline or None for the floor, goal, batches)
TARGET_THREADS = 1
TARGET_TASKS = {
    "mlp-784-128-10": lambda runs: runs["model"].eq("mlp-784-128-10"),
    "gw-cnn": lambda runs: runs["dataset"].eq("gw-sim") & runs["model"].astype(str).str.startswith("cnn"),
}
TARGETS = [
    ("mlp-784-128-10", "clad / GEMM floor", None, "<= 1.1", lambda b: b in (32, 64, 256)),
    ("mlp-784-128-10", "clad vs pytorch", "pytorch", ">= 2.5", lambda b: b == 32),
    ("mlp-784-128-10", "clad vs pytorch", "pytorch", ">= 2", lambda b: b == 64),
    ("mlp-784-128-10", "clad vs pytorch", "pytorch", ">= 1.3", lambda b: b == 256),
    ("mlp-784-128-10", "clad vs libtorch", "libtorch", ">= 1.3", lambda b: b <= 256),
    ("mlp-784-128-10", "clad vs pytorch-compile", "pytorch-compile", ">= 1.2 (aim)", lambda b: b <= 64),
    ("mlp-784-128-10", "clad vs jax", "jax", ">= 1.2 (aim)", lambda b: b <= 64),
    ("mlp-784-128-10", "clad vs manual", "manual", "0.95 to 1.05", lambda b: True),
    ("gw-cnn", "clad / GEMM floor", None, "<= 1.5", lambda b: b == 32),
    ("gw-cnn", "clad vs libtorch", "libtorch", ">= 2", lambda b: b == 32),
    ("gw-cnn", "clad vs pytorch", "pytorch", ">= 2", lambda b: b == 32),
    ("gw-cnn", "clad vs manual", "manual", ">= 0.95", lambda b: b == 32),
    ("gw-cnn", "clad vs pytorch-compile", "pytorch-compile", "reported", lambda b: b == 32),
    ("gw-cnn", "clad vs jax", "jax", "reported", lambda b: b == 32),
]


def _meets(value: float, goal: str) -> bool | None:
    if goal == "reported":
        return None
    if goal.startswith(">="):
        return value >= float(goal.split()[1])
    if goal.startswith("<="):
        return value <= float(goal.split()[1])
    low, _, high = goal.partition(" to ")
    return float(low) <= value <= float(high)


def targets_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Every target at every batch the bench ran: the measured ratio per repetition (speedups
    t_baseline / t_clad; the floor ratio t_clad / t_gemm), its median and quartiles, whether it
    meets the goal, and its bound: the speedup clad would have at its own GEMM floor (t_baseline /
    t_gemm), which no engine on the same BLAS beats."""
    columns = ["task", "target", "batch", "goal", "ratio", "q1", "q3", "n", "spread", "noisy", "met", "bound"]
    timed = headline_runs(runs)
    timed = timed[timed["threads"].eq(TARGET_THREADS) & timed["device"].fillna("cpu").eq("cpu")].dropna(
        subset=["step_time_median_s"]
    )
    rows = []
    for task, select in TARGET_TASKS.items():
        data = timed[select(timed)]
        if data.empty or "clad" not in set(data["engine"]):
            continue
        times = data.pivot_table(index=["batch", "repetition"], columns="engine", values="step_time_median_s")
        floor = data[data["engine"].eq("clad")].set_index(["batch", "repetition"])["gemm_floor_median_s"]
        for target_task, name, baseline, goal, applies in TARGETS:
            if target_task != task:
                continue
            if baseline is None:
                per_rep, bound = times["clad"] / floor, pd.Series(1.0, index=floor.index)
            elif baseline in times:
                per_rep, bound = times[baseline] / times["clad"], times[baseline] / floor
            else:
                continue
            for batch, ratios in per_rep.dropna().groupby(level="batch"):
                if not applies(batch):
                    continue
                median, cell_spread = float(ratios.median()), spread(ratios)
                rows.append(
                    [
                        task,
                        name,
                        int(batch),
                        goal,
                        median,
                        float(ratios.quantile(0.25)),
                        float(ratios.quantile(0.75)),
                        len(ratios),
                        cell_spread,
                        bool(noisy(cell_spread)),
                        _meets(median, goal),
                        float(bound.loc[batch].median()),
                    ]
                )
    return pd.DataFrame(rows, columns=columns)


def ablation_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Kernel engines: step time of each layout-alloc over rowmajor-arena of the same engine, within
    each repetition (as the speedup), then the median across repetitions."""
    data = ok_runs(runs[runs["engine"].isin(KERNEL_ENGINES)]).dropna(subset=["step_time_median_s"])
    data = with_layout_alloc(data)
    keys = [*PANEL, "engine", "batch", "repetition"]
    times = data.pivot_table(index=keys, columns="layout_alloc", values="step_time_median_s", aggfunc="median")
    if times.empty or "rowmajor-arena" not in times:
        return pd.DataFrame(columns=[*PANEL, "engine", "batch", "layout_alloc", "relative"])
    relative = times.div(times["rowmajor-arena"], axis=0).stack().rename("relative").reset_index()
    return (
        relative.groupby([*PANEL, "engine", "batch", "layout_alloc"], dropna=False)["relative"].median().reset_index()
    )


def allocation_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset, model) and variant: allocations per step, median and range over its runs
    (batches, threads, repetitions). NaN: the engine's allocations were not counted."""
    data = ok_runs(runs)
    keys = ["dataset", "model", "engine", "variant"]
    return (
        data.groupby(keys, dropna=False)
        .agg(
            allocs=("allocs_per_step", "median"),
            allocs_min=("allocs_per_step", "min"),
            allocs_max=("allocs_per_step", "max"),
        )
        .reset_index()
    )


def roc_curve(scores, labels) -> tuple[np.ndarray, np.ndarray, float]:
    """(false-positive rate, true-positive rate, AUC); tied scores make one step (AUC 0.5 for ties)."""
    scores, labels = np.asarray(scores, float), np.asarray(labels, float)
    order = np.argsort(-scores, kind="stable")
    scores, labels = scores[order], labels[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]
    tps, fps = np.cumsum(labels)[last_of_tie], np.cumsum(1 - labels)[last_of_tie]
    tpr = np.r_[0.0, tps / max(labels.sum(), 1)]
    fpr = np.r_[0.0, fps / max((1 - labels).sum(), 1)]
    return fpr, tpr, float(np.trapezoid(tpr, fpr))


def roc_table(scores: pd.DataFrame) -> pd.DataFrame:
    """Per GW run (variant, model, batch, repetition): its ROC curve and AUC, signals with
    SNR >= 10 against all noise."""
    usable = with_layout_alloc(scores.dropna(subset=["score", "label"]))
    usable = usable[usable["label"].eq(0) | (usable["label"].eq(1) & usable["snr"].ge(MIN_SNR))]
    rows = []
    for key, run in usable.groupby(["model", "engine", "variant", "layout_alloc", "batch", "repetition"]):
        if run["label"].nunique() < 2:  # a curve needs signals and noise
            continue
        fpr, tpr, auc = roc_curve(run["score"], run["label"])
        rows.append(
            dict(
                zip(["model", "engine", "variant", "layout_alloc", "batch", "repetition"], key),
                fpr=fpr,
                tpr=tpr,
                auc=auc,
            )
        )
    return pd.DataFrame(
        rows, columns=["model", "engine", "variant", "layout_alloc", "batch", "repetition", "fpr", "tpr", "auc"]
    )


def headline_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset, model, device, batch, threads): each engine's median step time (us) and clad's
    per-repetition speedups over libtorch and pytorch (median across repetitions); <column>_noisy
    for each, and spread: the largest step-time spread of the row's engines."""
    steps = step_time_table(runs)
    keys = ["dataset", "model", "device", "batch", "threads"]
    values = [*ENGINES, *[f"speedup_{b}" for b in BASELINES]]
    if steps.empty:
        return pd.DataFrame(columns=[*keys, *values, *[f"{v}_noisy" for v in values], "spread"])
    speeds = speedup_table(runs).assign(engine=lambda t: "speedup_" + t["baseline"])
    cells = pd.concat([steps.assign(value=steps["median_s"] * 1e6), speeds.assign(value=speeds["speedup"])])
    table = cells.pivot_table(index=keys, columns="engine", values="value", aggfunc="median").reindex(columns=values)
    flags = cells.pivot_table(index=keys, columns="engine", values="noisy", aggfunc="max").reindex(columns=values)
    table = table.join(flags.eq(True).add_suffix("_noisy"))  # no cell: not noisy
    table["spread"] = steps.groupby(keys, dropna=False)["spread"].max()
    return table.reset_index()


# ---------------------------------------------------------------------------------------------
# Figure helpers


def _engine_order(engines) -> list[str]:
    present = set(engines)
    return [e for e in ENGINES if e in present]


def _order(keys: list[str], values) -> tuple:
    """Sort key of a panel: datasets and engines in their fixed order, the rest as they sort."""
    values = values if isinstance(values, tuple) else (values,)
    key = []
    for name, value in zip(keys, values):
        fixed = {"dataset": DATASETS, "engine": ENGINES}.get(name, [])
        key.append((fixed.index(value) if value in fixed else len(fixed), value))
    return tuple(key)


def _title(keys: list[str], values, width: int = 34) -> str:
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


def _facets(
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
    groups = sorted(data.groupby(keys, dropna=False), key=lambda group: _order(keys, group[0]))
    ncols = min(col_wrap, len(groups))
    nrows = math.ceil(len(groups) / ncols)
    width = max(panel[0] * ncols + margin, 3.4)
    fig = Figure(figsize=(width, panel[1] * nrows + 0.5), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, sharey=sharey)
    for ax, (key, group) in zip(axes.flat, groups):
        draw(ax, group)
        ax.set_title(_title(keys, key, width=int(panel[0] * 14)))
    for ax in axes.flat[len(groups) :]:
        ax.remove()
    return fig


def _engine_legend(fig: Figure, engines, extra: list[Line2D] = ()) -> None:
    """One legend for the figure, above the panels: engines in their fixed order, then `extra`."""
    handles = [Line2D([], [], color=COLORS[e], marker="o", label=e) for e in _engine_order(engines)] + list(extra)
    _legend(fig, handles)


def _legend(fig: Figure, handles: list) -> None:
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


def _points(ax, x, y, err, is_noisy, color, **line) -> None:
    """A line with error bars through (x, y); filled markers, hollow where the cell is noisy."""
    ax.errorbar(x, y, yerr=err, color=color, lw=1.2, capsize=2, **line)
    is_noisy = np.asarray(is_noisy, dtype=bool)
    ax.plot(x[~is_noisy], y[~is_noisy], "o", color=color, ms=3.5)
    ax.plot(x[is_noisy], y[is_noisy], "o", color=color, ms=4, mfc="white", mew=1.2)


def _dodge(x: np.ndarray, i: int, n: int) -> np.ndarray:
    """Shift the i-th of n series a little along a log axis so that error bars do not overlap."""
    return x * 2 ** ((i - (n - 1) / 2) * 0.06)


def _log_y(ax) -> None:
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


def _batch_axis(ax, batches) -> None:
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


# ---------------------------------------------------------------------------------------------
# Figures: each returns a Figure (or a placeholder that says what is missing)


def _engine_lines(
    table: pd.DataFrame, value, low, high, ylabel: str, *, log_y: bool = True, reference: float | None = None
) -> Figure:
    """One line per engine against batch with an interval, a panel per PANEL key. value, low and
    high map one engine's rows of a panel (sorted by batch) to arrays; reference: a dashed line."""

    def draw(ax, panel):
        for engine in _engine_order(panel["engine"]):
            r = panel[panel["engine"].eq(engine)].sort_values("batch")
            x, y = r["batch"].to_numpy(float), value(r)
            err = np.clip([y - low(r), high(r) - y], 0, None)
            _points(ax, _dodge(x, ENGINES.index(engine), len(ENGINES)), y, err, r["noisy"], COLORS[engine])
        if reference is not None:
            ax.axhline(reference, color="0.3", ls="--", lw=1)
        if log_y:
            _log_y(ax)
        _batch_axis(ax, panel["batch"])
        ax.set_ylabel(ylabel)

    fig = _facets(table, PANEL, draw)
    _engine_legend(fig, table["engine"], [NOISY_HANDLE] if table["noisy"].any() else [])
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
                _dodge(r["batch"].to_numpy(float), BASELINES.index(baseline), len(BASELINES)),
                r["speedup"].to_numpy(float),
            )
            # min-max across repetitions; a single repetition has no interval.
            err = np.clip([y - r["speedup_min"].to_numpy(float), r["speedup_max"].to_numpy(float) - y], 0, None)
            _points(ax, x, y, np.where(r["n"].to_numpy() > 1, err, 0), r["noisy"], COLORS[baseline])
        ax.axhline(1, color="0.3", ls="--", lw=0.8)
        _log_y(ax)
        _batch_axis(ax, panel["batch"])
        ax.set_ylabel("speedup of clad (×)")

    fig = _facets(table, PANEL, draw)
    handles = [
        Line2D([], [], color=COLORS[b], marker="o", label=f"clad over {b}")
        for b in BASELINES
        if b in set(table["baseline"])
    ]
    handles.append(Line2D([], [], color="0.3", ls="--", label="no speedup"))
    _legend(fig, handles + ([NOISY_HANDLE] if table["noisy"].any() else []))
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
        for engine in _engine_order(panel["engine"]):
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

    fig = _facets(curves, ["dataset", "model", "batch"], draw)
    styles = [
        Line2D([], [], color="0.3", ls=DASHES[la], label=la)
        for la in LAYOUT_ALLOCS
        if la in set(curves["layout_alloc"])
    ]
    _engine_legend(fig, curves["engine"], styles)
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

    fig = _facets(
        table, ["dataset", "model"], draw, col_wrap=2, panel=(2.2, 0.2 * len(row_of) + 1.1), sharey=True, margin=2.0
    )
    _engine_legend(fig, table["engine"])
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
        key=lambda group: _order(["dataset", "model", "device"], group[0]),
    )
    engines = _engine_order(table["engine"])
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
            ax.set_title(_title(["dataset", "model", "device", "engine"], (*key, engine)))
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

    return _facets(table, ["model", "engine"], draw, col_wrap=2, panel=(3.5, 2.9))


def fig_gw150914_trace(trace: pd.DataFrame) -> Figure:
    data = headline_runs(trace.assign(status="ok")).dropna(subset=["t_rel_s", "score"])
    if data.empty:
        return placeholder("no GW150914 trace in this study (no GW runs on the real GW150914 data)")
    # Repetitions share the windows: round away float noise in t, then the median per engine.
    data = data.assign(t=data["t_rel_s"].round(6))
    curves = data.groupby(["model", "engine", "t"])["score"].median().reset_index()

    def draw(ax, panel):
        for engine in _engine_order(panel["engine"]):
            r = panel[panel["engine"].eq(engine)].sort_values("t")
            dense = len(r) > 80  # hundreds of windows: markers would hide the line
            ax.plot(r["t"], r["score"], color=COLORS[engine], marker=None if dense else "o", ms=2.5, lw=1.0)
        ax.axvline(0, color="0.3", ls="--", lw=0.8)
        ax.set_xlabel("time relative to GW150914 merger (s)")
        ax.set_ylabel("classifier output")
        ax.set_ylim(-0.02, 1.02)

    fig = _facets(curves, ["model"], draw, col_wrap=2, panel=(3.5, 2.4))
    _engine_legend(fig, curves["engine"], [Line2D([], [], color="0.3", ls="--", label="merger")])
    return fig


# ---------------------------------------------------------------------------------------------
# LaTeX tables and the provenance page


TEX_ESCAPES = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def _tex(text) -> str:
    """Text as LaTeX prints it literally (compile flags, model names)."""
    return "".join(TEX_ESCAPES.get(char, char) for char in str(text))


def _num(value, fmt: str) -> str:
    return "--" if value is None or pd.isna(value) else format(value, fmt)


def _tabular(header: list[str], rows: list[list[str]], align: str, comment: str, note: str | None = None) -> str:
    """A booktabs tabular; note: a line under it (what a dagger means)."""
    lines = [
        f"% {comment}",
        "% generated by cladbench.report from the aggregated tables; needs \\usepackage{booktabs}",
        f"\\begin{{tabular}}{{{align}}}",
        "\\toprule",
        " & ".join(header) + r" \\",
        "\\midrule",
    ]
    lines += [" & ".join(row) + r" \\" for row in rows]
    lines += ["\\bottomrule"]
    if note:
        lines.append(f"\\multicolumn{{{len(header)}}}{{l}}{{\\footnotesize {note}}} \\\\")
    lines += ["\\end{tabular}", ""]
    return "\n".join(lines)


DAGGER = "$^\\dagger$"
NOISY_NOTE = (
    f"{DAGGER} noisy: its repetitions spread more than {NOISY_SPREAD:.0%} (IQR/median), so it is no firm number"
).replace("%", "\\%")


def _firm(value, fmt: str, is_noisy) -> str:
    """A number, with a dagger when its cell is noisy."""
    return _num(value, fmt) + (DAGGER if is_noisy and not pd.isna(value) else "")


def file_fed(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows of runs whose batches came from the data files (the figures' runs; TTree-fed runs are
    compared with them in ttree.tex). Tables from before the input column count as file-fed."""
    return frame[frame["input"].fillna("file").eq("file")]


TTREE_MATCH = ["variant", "dataset", "model", "batch", "threads", "repetition", "purpose"]


def ttree_table(runs: pd.DataFrame, epochs: pd.DataFrame) -> pd.DataFrame:
    """Each TTree-fed run beside its file-fed twin (same variant, data, model, batch, threads,
    repetition): the largest relative difference of their per-epoch training losses. (No step-time
    ratio: these are training runs, which share the machine with other jobs and are not timed.)"""
    runs = ok_runs(runs)
    fed, files = runs[~runs.index.isin(file_fed(runs).index)], file_fed(runs)
    rows = []
    for r in fed.itertuples(index=False):
        r = r._asdict()
        twin = files[np.logical_and.reduce([files[k].eq(r[k]) for k in [*TTREE_MATCH, "seed"]])]
        row = {k: r[k] for k in ["input", "engine", "layout", "alloc", "batch", "threads", "repetition"]}
        row.update(epochs=np.nan, loss_max_rel_diff=np.nan, final_loss=r["final_loss"])
        if len(twin):
            keys = {k: r[k] for k in TTREE_MATCH if k in epochs}
            mine, theirs = (
                epochs[
                    np.logical_and.reduce([epochs[k].eq(v) for k, v in keys.items()]) & epochs["input"].eq(i)
                ].set_index("epoch")["train_loss"]
                for i in (r["input"], "file")
            )
            both = pd.concat([mine, theirs], axis=1, keys=["fed", "file"]).dropna()
            row.update(
                epochs=len(both),
                loss_max_rel_diff=((both["fed"] - both["file"]).abs() / both["file"].abs()).max()
                if len(both)
                else np.nan,
            )
        rows.append(row)
    columns = [
        "input",
        "engine",
        "layout",
        "alloc",
        "batch",
        "threads",
        "repetition",
        "epochs",
        "final_loss",
        "loss_max_rel_diff",
    ]
    return pd.DataFrame(rows, columns=columns).sort_values(["input", "engine", "batch", "repetition"])


def ttree_tex(runs: pd.DataFrame, epochs: pd.DataFrame, not_run: pd.DataFrame) -> str:
    table = ttree_table(runs, epochs)
    header = ["input", "engine", "batch", "rep.", "epochs", "final loss", "max rel. loss diff."]
    rows = [
        [
            _tex(r.input),
            _tex(f"{r.engine}-{r.layout}-{r.alloc}"),
            str(r.batch),
            str(r.repetition),
            _num(r.epochs, ".0f"),
            _num(r.final_loss, ".4f"),
            _num(r.loss_max_rel_diff, ".1e"),
        ]
        for r in table.itertuples(index=False)
    ]
    if not rows:
        why = [r.reason for r in not_run.itertuples(index=False) if str(r.variant).startswith("ttree")]
        rows = [
            [
                f"\\multicolumn{{{len(header)}}}{{c}}{{no TTree-fed runs in this study"
                f"{': ' + _tex(why[0]) if why else ''}}}"
            ]
        ]
    return _tabular(
        header,
        rows,
        "llrrrrr",
        "TTree-fed runs (ROOT macro, PyROOT) against the file-fed run with the "
        "same variant, batch and seed: largest relative difference of the per-epoch training losses",
    )


def headline_tex(runs: pd.DataFrame) -> str:
    table = headline_table(runs)
    with_device = table["device"].nunique() > 1
    header = [
        "dataset",
        "model",
        *(["device"] if with_device else []),
        "batch",
        "threads",
        *[f"{e} ($\\mu$s)" for e in ENGINES],
        *[f"clad/{b}" for b in BASELINES],
        "spread (\\%)",
    ]
    align = "ll" + ("l" if with_device else "") + "rr" + "r" * len(ENGINES) + "r" * len(BASELINES) + "r"
    rows = []
    for r in table.to_dict("records"):  # not itertuples: an engine name may hold a hyphen (pytorch-compile)
        rows.append(
            [
                _tex(r["dataset"]),
                _tex(r["model"]),
                *([_tex(r["device"])] if with_device else []),
                str(r["batch"]),
                str(r["threads"]),
                *[_firm(r[e], ".1f", r[f"{e}_noisy"]) for e in ENGINES],
                *[_firm(r[f"speedup_{b}"], ".2f", r[f"speedup_{b}_noisy"]) for b in BASELINES],
                _num(r["spread"] * 100, ".0f"),
            ]
        )
    if not rows:
        rows = [[f"\\multicolumn{{{len(header)}}}{{c}}{{{NO_BENCH_RUNS}}}"]]
    return _tabular(
        header,
        rows,
        align,
        "median step time (median over repetitions) per engine; clad's speedup "
        "= t_baseline / t_clad within each repetition, median over repetitions; spread = the largest "
        "IQR/median of the engines' step times across repetitions",
        NOISY_NOTE,
    )


def targets_tex(runs: pd.DataFrame) -> str:
    table = targets_table(runs)
    header = ["task", "target", "batch", "goal", "measured", "IQR", "spread (\\%)", "reps", "met", "bound"]
    met = {True: "yes", False: "no", None: "--"}
    rows = [
        [
            _tex(r["task"]),
            _tex(r["target"]),
            str(r["batch"]),
            _tex(r["goal"]),
            _firm(r["ratio"], ".2f", r["noisy"]),
            f"{r['q1']:.2f}--{r['q3']:.2f}",
            _num(r["spread"] * 100, ".0f"),
            str(r["n"]),
            met[r["met"]] + (DAGGER if r["noisy"] else ""),
            "--" if r["target"].endswith("floor") else _num(r["bound"], ".2f"),
        ]
        for r in table.to_dict("records")
    ]
    if not rows:
        rows = [[f"\\multicolumn{{{len(header)}}}{{c}}{{no bench runs of clad at {TARGET_THREADS} thread}}"]]
    return _tabular(
        header,
        rows,
        "llrlrrrrlr",
        f"performance targets, {TARGET_THREADS} thread, fp32: "
        "per-repetition ratios, median, IQR and spread (IQR/median); bound = the speedup at clad's "
        "GEMM-only time",
        NOISY_NOTE,
    )


def gw_tex(runs: pd.DataFrame) -> str:
    gw = ok_runs(runs[runs["dataset"].eq("gw-sim") & ~runs["purpose"].eq("bench")])  # the classifier's training runs
    gw = gw.assign(order=gw["engine"].map(lambda e: ENGINES.index(e) if e in ENGINES else len(ENGINES)))
    gw = gw.sort_values(["model", "order", "layout", "alloc", "batch", "repetition"])
    with_model = gw["model"].nunique() > 1
    header = [
        *(["model"] if with_model else []),
        "engine",
        "layout",
        "alloc",
        "rep.",
        f"ROC AUC (SNR $\\geq$ {MIN_SNR})",
        "GW150914 peak offset (s)",
    ]
    rows = [
        [
            *([_tex(r.model)] if with_model else []),
            _tex(r.engine),
            _tex(r.layout),
            _tex(r.alloc),
            str(r.repetition),
            _num(r.roc_auc, ".3f"),
            _num(r.gw150914_peak_offset_s, "+.3f"),
        ]
        for r in gw.itertuples(index=False)
    ]
    if not rows:
        rows = [[f"\\multicolumn{{{len(header)}}}{{c}}{{no GW runs in this study}}"]]
    return _tabular(
        header,
        rows,
        "l" * (len(header) - 2) + "rr",
        "per GW run: held-out ROC AUC and the classifier's GW150914 peak time minus the merger time",
    )


def _not_run_note(not_run: pd.DataFrame, engine: str) -> str | None:
    """The not-run reason of a pattern naming this engine (e.g. cpu-clad-*), if any."""
    for r in not_run.itertuples(index=False):
        if f"-{engine}-" in f"{r.variant}-":
            return f"not run: {r.reason}"
    return None


def timing_summary(runs: pd.DataFrame) -> list[str]:
    """The provenance page's timing lines: where the timing comes from, how many cells are noisy."""
    timed = timing_runs(runs)
    steps, ratios = step_time_table(timed), speedup_table(timed)
    lines = [
        f"- timing figures and tables: the {len(ok_runs(timed))} ok bench runs only",
        f"- noisy cells (repetitions spread > {NOISY_SPREAD:.0%}, IQR/median): {int(steps['noisy'].sum())} of "
        f"{len(steps)} step-time cells, {int(ratios['noisy'].sum())} of {len(ratios)} speedup cells",
    ]
    return lines + ([f"- {untimed_note(runs)}"] if untimed_note(runs) else [])


def provenance_md(runs: pd.DataFrame, not_run: pd.DataFrame, notes: dict[str, str], timing: list[str] = ()) -> str:
    """Versions, machine and build of every run, how many ran, when, what did not run or failed
    (and why), and timing: the lines of timing_summary."""
    lines = ["# Provenance", ""]
    ok, failed = ok_runs(runs), runs[~runs.index.isin(ok_runs(runs).index)]
    started = runs.get("started_utc", pd.Series(dtype=str)).dropna().sort_values()
    lines.append(f"- runs: {len(runs)} ({len(ok)} ok, {len(failed)} failed)")
    if len(started):
        lines.append(f"- started (UTC): {started.iloc[0]} to {started.iloc[-1]}")
        dates = sorted({str(s)[:10] for s in started})
        lines.append(f"- dates: {', '.join(dates)}")
    lines.append("")
    fields = {
        "torch_version": "torch",
        "clad_version": "Clad",
        "compiler": "compiler",
        "cuda_version": "CUDA",
        "python_version": "Python",
        "root_version": "ROOT",
        "cpu_model": "CPU model",
        "gpu_model": "GPU model",
        "timer": "step timer",
        "hostname": "hostname",
        "git_commit": "git commit",
        "gradient_generator": "gradient generator",
        "compile_flags": "compile flags",
    }
    lines += ["## Versions, machine and build (distinct values over all runs)", ""]
    for column, name in fields.items():
        values = sorted({str(v) for v in runs.get(column, pd.Series(dtype=str)).dropna()})
        shown = "; ".join(f"`{v}`" for v in values) if values else "(not recorded)"
        lines.append(f"- {name}: {shown}")
    lines += ["", "## Not run", ""]
    if not_run.empty:
        lines.append("Every configured variant ran.")
    for r in not_run.itertuples(index=False):
        lines.append(f"- not run: {r.reason} (variants `{r.variant}`)")
    if len(failed):
        lines += ["", "## Failed runs (kept out of every table and figure)", ""]
        for r in failed.to_dict("records"):
            lines.append(
                f"- failed: `{r['variant']}` {r['dataset']} {r['model']} batch {r['batch']} threads "
                f"{r['threads']} repetition {r['repetition']}: {failure_reason(r)}"
            )
    lines += ["", "## Timing", "", *timing] if timing else []
    lines += ["", "## Figures shown as placeholders", ""]
    lines += [f"- `{name}`: {why}" for name, why in notes.items()] or ["None: every figure has data."]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------


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
]
TIMING_FIGURES = ["step_time", "throughput", "speedup", "floor", "ablation"]  # drawn from bench runs only


def build_report(tables_dir: str | Path, out_dir: str | Path, only: str | None = None) -> list[Path]:
    """Every figure (PDF, PNG), headline.tex, gw.tex, ttree.tex and provenance.md from the tables in tables_dir
    (runs.csv required); returns the files written. `only`: one figure's name, or "tables" for the
    LaTeX tables and the provenance page (so the workflow can remake one output alone)."""
    tables_dir, out_dir = Path(tables_dir), Path(out_dir)
    if not (tables_dir / "runs.csv").exists():
        raise FileNotFoundError(f"{tables_dir / 'runs.csv'}: the report needs at least the runs table")
    all_runs, epochs, scores, trace, not_run = (read_table(tables_dir, name) for name in TABLES)
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
    (out_dir / "ttree.tex").write_text(ttree_tex(all_runs[all_runs["engine"].isin(ENGINES)], all_epochs, not_run))
    (out_dir / "provenance.md").write_text(provenance_md(all_runs, not_run, notes, timing_summary(runs)))
    return written + [
        out_dir / name
        for name in ("headline.tex", "targets.tex", "targets.csv", "gw.tex", "ttree.tex", "provenance.md")
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cladbench.report", description=__doc__.split("\n\n")[0])
    parser.add_argument("tables_dir", type=Path, help="directory with runs.csv and the other tables")
    parser.add_argument("out_dir", type=Path, help="where the figures, tables and provenance.md go")
    parser.add_argument("--only", help="one figure's name, or 'tables' (LaTeX tables and provenance page)")
    args = parser.parse_args(argv)
    for path in build_report(args.tables_dir, args.out_dir, args.only):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
