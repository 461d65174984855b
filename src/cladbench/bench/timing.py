"""What counts as a timing measurement, defined once for the report, the CUDA section and the bench
summary: which runs may be timed at all (ok_runs), and when a timing cell's repetitions disagree
too much for a firm number (noisy).

A timing cell is one engine (or one ratio of two engines) at one dataset, model, device, threads
and batch; its values are one per repetition. Its spread is IQR / median across those values: a
cell spread more than NOISY_SPREAD is marked noisy in the tables (a dagger) and figures (hollow
markers) instead of being drawn as a firm number."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..options import GRADIENT_TOLERANCE

NOISY_SPREAD = 0.10
# The op bench's table (python -m cladbench.bench.op_bench --out X.csv; the workflow's
# results/tables/op_cost.csv): one row per model, batch and repetition, each path's median step (s)
# of that repetition. The report's op_cost section (cladbench.report.tables.op_cost_table) reads it.
OP_COST_COLUMNS = [
    "model",
    "batch",
    "engine",
    "layout",
    "threads",
    "warmup",
    "steps",
    "repetition",
    "fused_s",
    "composable_s",
]


def gradient_disagrees(runs: pd.DataFrame) -> pd.Series:
    """Runs whose first-step gradient differs from autograd's beyond GRADIENT_TOLERANCE (a run that
    recorded no error is not held against)."""
    error = pd.to_numeric(runs["grad_max_rel_err"], errors="coerce") if "grad_max_rel_err" in runs else None
    return error.gt(GRADIENT_TOLERANCE) if error is not None else pd.Series(False, index=runs.index)


def ok_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """Runs that finished with a gradient that agrees with autograd, whatever their record's status
    says (records from before the trainers checked it say "ok"); the others are listed on the
    provenance page instead (failure_reason)."""
    return runs[runs["status"].fillna("ok").eq("ok") & ~gradient_disagrees(runs)]


def failure_reason(run: dict) -> str:
    """Why a run (a row of the runs table) is not among ok_runs, in a few words."""
    status, error = run.get("status"), run.get("error")
    if isinstance(status, str) and status != "ok":
        return error if isinstance(error, str) and error else f"status {status}"
    return (
        f"gradient disagrees with autograd: grad_max_rel_err {float(run['grad_max_rel_err']):.1e} > "
        f"{GRADIENT_TOLERANCE:g}"
    )


def spread(values) -> float:
    """IQR / median of one cell's values across repetitions; NaN with fewer than two."""
    values = pd.Series(values, dtype=float).dropna()
    if len(values) < 2:
        return np.nan
    return float((values.quantile(0.75) - values.quantile(0.25)) / values.median())


def noisy(spreads) -> np.ndarray | bool:
    """Whether cells of these spreads are noisy; a cell of one repetition (NaN) has no spread to judge."""
    return np.asarray(spreads, dtype=float) > NOISY_SPREAD
