"""The data behind the report's figures and tables, from the aggregated CSV tables only (see
cladbench.records.aggregate) and the op bench's table (op_cost.csv, cladbench.bench.op_bench): reading
them (TABLES, read_table), which runs each figure uses (timing_runs, headline_runs, file_fed), and each
computed table: step time, GEMM floor, speedup (within each repetition), the performance targets,
ablation, allocations, ROC, the headline, the ROOT-fed comparison, ROOT feeding and what composability costs.
Pure pandas; no drawing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..bench.timing import OP_COST_COLUMNS, noisy, ok_runs, spread
from ..matrix import BASELINES, ENGINES, KERNEL_ENGINES
from ..records.aggregate import TABLE_COLUMNS
from ..root import FEED_COLUMNS

PANEL = ["dataset", "model", "device", "threads"]  # one panel of the timing figures
MIN_SNR = 10  # ROC: signals with SNR >= 10 against all noise, as the records' roc_auc
NO_BENCH_RUNS = "no successful bench runs in this study (training runs are not timed)"
NO_OP_COST = "no op bench table in this study (op_cost.csv: the workflow's rule op_bench)"
NO_ROOT_FEED = "no feeding table in this study (root_feed.csv: the workflow's rule root_feed, where ROOT is installed)"

# The numeric columns of each table (cladbench.records.aggregate.TABLE_COLUMNS has them all); the rest
# stay text ("3.10" is not 3.1).
NUMERIC = {
    "runs": [
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
    "epochs": ["batch", "threads", "repetition", "epoch", "train_loss", "test_loss", "test_accuracy"],
    "gw_scores": ["batch", "repetition", "score", "label", "snr"],
    "gw150914_trace": ["batch", "repetition", "t_rel_s", "score"],
    "not_run": [],
    "op_cost": ["batch", "threads", "warmup", "steps", "repetition", "fused_s", "composable_s"],
    "root_feed": [c for c in FEED_COLUMNS if c not in ("dataset", "format", "reader")],
}
# The aggregated tables, the op bench's and the feeding table (cladbench.root)
COLUMNS = {**TABLE_COLUMNS, "op_cost": OP_COST_COLUMNS, "root_feed": FEED_COLUMNS}
TABLES = {name: (COLUMNS[name], NUMERIC[name]) for name in COLUMNS}  # name: (columns, numeric columns)
INTEGERS = ["batch", "threads", "repetition", "epoch", "label", "warmup", "steps"]


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


def file_fed(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows of runs whose batches came from the data files (the figures' runs; ROOT-fed runs are
    compared with them in root_fed.tex). Tables from before the input column count as file-fed."""
    return frame[frame["input"].fillna("file").eq("file")]


# ---------------------------------------------------------------------------------------------
# The data behind the figures and tables (tested on their own)


def step_time_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per panel, engine and batch: median over repetitions of the runs' median step time, of
    their q1 and q3, and of samples/s; n = repetitions; spread of the repetitions' step times and
    whether that makes the cell noisy (cladbench.bench.timing)."""
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


ROOT_FED_MATCH = ["variant", "dataset", "model", "batch", "threads", "repetition", "purpose"]


def root_fed_table(runs: pd.DataFrame, epochs: pd.DataFrame) -> pd.DataFrame:
    """Each TTree- or RNTuple-fed run beside its file-fed twin (same variant, data, model, batch, threads,
    repetition): the largest relative difference of their per-epoch training losses. (No step-time
    ratio: these are training runs, which share the machine with other jobs and are not timed.)"""
    runs = ok_runs(runs)
    fed, files = runs[~runs.index.isin(file_fed(runs).index)], file_fed(runs)
    rows = []
    for r in fed.itertuples(index=False):
        r = r._asdict()
        twin = files[np.logical_and.reduce([files[k].eq(r[k]) for k in [*ROOT_FED_MATCH, "seed"]])]
        row = {k: r[k] for k in ["input", "engine", "layout", "alloc", "batch", "threads", "repetition"]}
        row.update(epochs=np.nan, loss_max_rel_diff=np.nan, final_loss=r["final_loss"])
        if len(twin):
            keys = {k: r[k] for k in ROOT_FED_MATCH if k in epochs}
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


OP_CELL = ["model", "engine", "layout", "threads", "batch"]  # one row of op_cost.tex
OP_PATHS = {"fused": "fused_s", "composable": "composable_s", "ratio": "ratio"}


def op_cost_table(op_cost: pd.DataFrame) -> pd.DataFrame:
    """What composability costs, per model, engine, layout, threads and batch (models in the table's
    order): the fused and the composable step time, median over repetitions of each repetition's
    median step, with quartiles, spread and noisy (cladbench.bench.timing); the ratio composable /
    fused taken within each repetition (both paths ran in turn in it), then its median, quartiles,
    spread and noisy; n = repetitions."""
    columns = [*OP_CELL, "n", *[f"{p}_{s}" for p in OP_PATHS for s in ("median", "q1", "q3", "spread", "noisy")]]
    data = op_cost.dropna(subset=["fused_s", "composable_s"])
    data = data.assign(ratio=data["composable_s"] / data["fused_s"])
    rows = []
    for key, cell in data.groupby(OP_CELL, dropna=False, sort=False):
        row = dict(zip(OP_CELL, key), n=len(cell))
        for name, column in OP_PATHS.items():
            values = cell[column]
            row.update(
                {
                    f"{name}_median": float(values.median()),
                    f"{name}_q1": float(values.quantile(0.25)),
                    f"{name}_q3": float(values.quantile(0.75)),
                    f"{name}_spread": spread(values),
                    f"{name}_noisy": bool(noisy(spread(values))),
                }
            )
        rows.append(row)
    table = pd.DataFrame(rows, columns=columns)
    order = {model: i for i, model in enumerate(dict.fromkeys(table["model"]))}
    return table.sort_values(["model", "batch"], key=lambda c: c.map(order) if c.name == "model" else c).reset_index(
        drop=True
    )
