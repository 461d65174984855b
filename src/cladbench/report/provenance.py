"""The report's provenance page (provenance.md): versions, machine and build of every run, what ran,
what did not run or failed (and why), where the timing comes from and which figures are
placeholders."""

from __future__ import annotations

import pandas as pd

from ..bench.timing import NOISY_SPREAD, failure_reason, ok_runs
from .tables import speedup_table, step_time_table, timing_runs, untimed_note


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
