"""Run records (one JSON per run: docs/architecture.md, "Run records and tables") -> the tidy
tables the report is built from: runs.csv/.parquet (one row per run), epochs.csv (per epoch),
gw_scores.csv (held-out GW scores), gw150914_trace.csv (classifier output over GW150914) and
not_run.csv (variants this machine could not run, with the reason)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

# Record fields copied to runs.csv as they are, then the provenance fields flattened.
RUN_COLUMNS = [
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
    "seed",
    "optimizer",
    "lr",
    "epochs",
    "status",
    "error",
    "step_time_median_s",
    "step_time_q1_s",
    "step_time_q3_s",
    "samples_per_s",
    "gemm_floor_median_s",
    "final_loss",
    "test_accuracy",
    "grad_max_rel_err",
    "allocs_per_step",
    "peak_rss_mb",
    "roc_auc",
    "roc_auc_all_snr",
    "gw150914_peak_offset_s",
    "cpu_model",
    "gpu_model",
    "timer",
    "git_commit",
    "compile_flags",
    "gradient_generator",
    "hostname",
    "started_utc",
    "wall_time_s",
    "compile_time_s",
]
VERSION_COLUMNS = {
    "torch": "torch_version",
    "clad": "clad_version",
    "compiler": "compiler",
    "cuda": "cuda_version",
    "python": "python_version",
    "root": "root_version",
}
KEY = ["variant", "purpose", "input", "engine", "layout", "alloc", "dataset", "model", "batch", "threads", "repetition"]
# Every table's columns, in order: what this module writes and what the report reads.
TABLE_COLUMNS = {
    "runs": ["variant", *RUN_COLUMNS, "record", *VERSION_COLUMNS.values(), "train_range", "test_range", "data_files"],
    "epochs": [*KEY, "epoch", "train_loss", "test_loss", "test_accuracy"],
    "gw_scores": [*KEY, "score", "label", "snr"],
    "gw150914_trace": [*KEY, "t_rel_s", "score"],
    "not_run": ["variant", "reason"],
}


def variant_of(record: dict) -> str:
    """The record's variant, as its trainer named it (cladbench.matrix)."""
    return "-".join(str(record[k]) for k in ("device", "engine", "layout", "alloc"))


def tables(records: dict[str, dict]) -> dict[str, pd.DataFrame]:
    """{path: record} -> {table name: DataFrame}."""
    runs, epochs, scores, trace = [], [], [], []
    for path, r in sorted(records.items()):
        # Records from before the TTree paths came from files; CPU records time with a monotonic clock.
        r = {"input": "file", "timer": "steady-clock", **r}
        key = {"variant": variant_of(r), **{k: r.get(k) for k in KEY[1:]}}
        row = {"variant": key["variant"], **{c: r.get(c) for c in RUN_COLUMNS}, "record": path}
        row.update({column: r.get("versions", {}).get(field) for field, column in VERSION_COLUMNS.items()})
        row["train_range"] = ":".join(map(str, r.get("train_range", [])))
        row["test_range"] = ":".join(map(str, r.get("test_range", [])))
        row["data_files"] = " ".join(f for f in r.get("data_files", []) if f)
        runs.append(row)
        for i, loss in enumerate(r.get("epoch_train_loss", [])):
            epochs.append(
                {
                    **key,
                    "epoch": i + 1,
                    "train_loss": loss,
                    "test_loss": r["epoch_test_loss"][i],
                    "test_accuracy": r["epoch_test_accuracy"][i],
                }
            )
        for score, label, snr in zip(
            r.get("gw_test_scores", []), r.get("gw_test_labels", []), r.get("gw_test_snr", [])
        ):
            scores.append({**key, "score": score, "label": int(label), "snr": snr})
        # A window's implied merger time: its start plus where training put the mergers, as the
        # record's gw150914_peak_offset_s is computed (the trace's peak is that offset).
        starts, values = r.get("gw150914_t_start_gps", []), r.get("gw150914_scores", [])
        if starts and r.get("gw150914_peak_offset_s") is not None:
            shift = r["gw150914_peak_offset_s"] - starts[max(range(len(values)), key=values.__getitem__)]
            trace += [{**key, "t_rel_s": t + shift, "score": v} for t, v in zip(starts, values)]
    # Explicit columns: a table with no rows (no GW runs, say) still has its header.
    rows = {"runs": runs, "epochs": epochs, "gw_scores": scores, "gw150914_trace": trace}
    return {name: pd.DataFrame(table, columns=TABLE_COLUMNS[name]) for name, table in rows.items()}


def write_tables(record_paths: list[str | Path], out_dir: Path, not_run: dict[str, str]) -> list[Path]:
    """Reads the records, writes every table (CSV; runs also as Parquet); returns the files."""
    records = {str(p): json.loads(Path(p).read_text()) for p in record_paths}
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, frame in tables(records).items():
        frame.to_csv(out_dir / f"{name}.csv", index=False)
        written.append(out_dir / f"{name}.csv")
    pd.read_csv(out_dir / "runs.csv").to_parquet(out_dir / "runs.parquet", index=False)
    pd.DataFrame(
        [{"variant": v, "reason": why} for v, why in not_run.items()], columns=TABLE_COLUMNS["not_run"]
    ).to_csv(out_dir / "not_run.csv", index=False)
    return written + [out_dir / "runs.parquet", out_dir / "not_run.csv"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cladbench.records.aggregate", description=__doc__)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("records", nargs="+")
    parser.add_argument("--not-run", default="{}", help="JSON {variant pattern: reason}")
    args = parser.parse_args(argv)
    for path in write_tables(args.records, args.out_dir, json.loads(args.not_run)):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
