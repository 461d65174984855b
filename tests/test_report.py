"""The report (cladbench.report) from small, realistic tables written here: every file is written
and readable, the headline numbers are right, the speedup is taken within each repetition, and
missing optional tables give placeholders instead of a crash."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import matplotlib.image
import numpy as np
import pandas as pd
import pytest

from cladbench.report import build_report, latex
from cladbench.report.figures import fig_op_cost, fig_root_feed, fig_step_time
from cladbench.report.style import COLORS
from cladbench.report.tables import (
    NO_BENCH_RUNS,
    TABLES,
    ablation_table,
    headline_table,
    op_cost_table,
    read_table,
    roc_curve,
    speedup_per_repetition,
    speedup_table,
    step_time_table,
    targets_table,
    timing_runs,
    untimed_note,
)

MLP, CNN = "mlp-784-128-10", "cnn-gw-2x2048-8k16p4-16k8p4-16k8p4-32-2"
CLAD_REASON = "Clad not available: clang 18 has no matching Clad plugin"
CUDA_REASON = "no CUDA variants in this version of cladbench"
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
KEY = ["variant", "engine", "layout", "alloc", "dataset", "model", "batch", "threads", "repetition"]
# Step times (s) at batch 32 that the headline test controls: clad twice as fast as libtorch.
CONTROLLED = {"clad": 100e-6, "manual": 120e-6, "libtorch": 200e-6, "pytorch": 400e-6}


def variants(engines=("clad", "manual", "libtorch", "pytorch")):
    """(variant, engine, layout, alloc) as the workflow builds them."""
    out = []
    for engine in engines:
        if engine in ("libtorch", "pytorch"):
            out.append((f"cpu-{engine}-rowmajor-dynamic", engine, "rowmajor", "dynamic"))
        else:
            out += [
                (f"cpu-{engine}-{lay}-{alloc}", engine, lay, alloc)
                for lay in ("rowmajor", "colmajor")
                for alloc in ("arena", "dynamic")
            ]
    return out


def step_time(engine, layout, alloc, batch, model, rep, rng):
    """A plausible median step time (s); the controlled MLP batch-32 row is exact."""
    if model == MLP and batch == 32 and (layout, alloc) in (("rowmajor", "arena"), ("rowmajor", "dynamic")):
        if engine in ("libtorch", "pytorch") or alloc == "arena":
            return CONTROLLED[engine]
    base = {"clad": 1.0, "manual": 1.2, "libtorch": 2.0, "pytorch": 4.0}[engine] * (2e-3 if model == CNN else 1e-4)
    factor = (batch / 32) ** 0.8 * (1.3 if layout == "colmajor" else 1) * (1.1 if alloc == "dynamic" else 1)
    return base * factor * (1 + 0.05 * rep) * rng.uniform(0.98, 1.02)


# The op bench's table (op_cost.csv) as python -m cladbench.bench.op_bench writes it: {(model, batch):
# (fused, composable) step times (ms), one per repetition. The GW CNN's composable path at batch 256
# spreads 18% (noisy), and so does its ratio (15%); the other cells are firm.
OP_COST = {
    ("mlp-784-128-10", 32): ([0.24, 0.25, 0.26], [0.27, 0.28, 0.29]),
    ("mlp-784-128-10", 256): ([1.03, 1.04, 1.05], [1.10, 1.12, 1.14]),
    ("gw-cnn", 32): ([4.4, 4.5, 4.6], [3.9, 4.0, 4.1]),
    ("gw-cnn", 256): ([33.0, 34.0, 35.0], [28.0, 34.0, 40.0]),
}


def op_cost_rows(cells=OP_COST) -> pd.DataFrame:
    return pd.DataFrame(
        [
            dict(
                model=model,
                batch=batch,
                engine="clad",
                layout="rowmajor",
                threads=1,
                warmup=20,
                steps=300,
                repetition=rep,
                fused_s=fused * 1e-3,
                composable_s=composable * 1e-3,
            )
            for (model, batch), times in cells.items()
            for rep, (fused, composable) in enumerate(zip(*times))
        ]
    )


def feed_rows() -> pd.DataFrame:
    """The feeding table as cladbench root feed writes it: (dataset, format, reader, samples/s)."""
    rates = [
        ("mnist", "idx", "cladbench loader", 10000, 175e3),
        ("mnist", "ttree", "RDataFrame", 8000, 94e3),
        ("mnist", "rntuple", "RNTupleReader", 8000, 194e3),
        ("gw", "hdf5", "cladbench loader", 6000, 96e3),
        ("gw", "rntuple", "RDataFrame.AsNumpy", 6000, 13e3),
    ]
    rows = []
    for dataset, fmt, reader, samples, rate in rates:
        median = samples / rate
        features = 784 if dataset == "mnist" else 4096
        rows.append(
            dict(dataset=dataset, format=fmt, reader=reader, samples=samples, features=features)
            | dict(file_bytes=samples * features, repetitions=5, seconds_median=median)
            | dict(seconds_q1=median * 0.95, seconds_q3=median * 1.1, samples_per_s=rate)
        )
    return pd.DataFrame(rows)


def write_tables(directory: Path, *, gw=True, epochs=True, engines=None, op_cost=True) -> Path:
    """Tables as the aggregator writes them: 2 repetitions, batches 32/256 on MNIST (bench runs), one GW
    model (training runs); and the op bench's table."""
    rng = np.random.default_rng(0)
    runs, epoch_rows, scores, trace = [], [], [], []
    engines = engines or ("clad", "manual", "libtorch", "pytorch")
    configs = [("mnist", MLP, b) for b in (32, 256)] + ([("gw-sim", CNN, 32)] if gw else [])
    for dataset, model, batch in configs:
        for variant, engine, layout, alloc in variants(engines):
            for rep in (0, 1):
                t = step_time(engine, layout, alloc, batch, model, rep, rng)
                key = dict(zip(KEY, [variant, engine, layout, alloc, dataset, model, batch, 1, rep]))
                row = {
                    **key,
                    "purpose": "bench" if dataset == "mnist" else "train",
                    "device": "cpu",
                    "seed": 1,
                    "optimizer": "sgd",
                    "lr": 0.1,
                    "epochs": 3,
                    "status": "ok",
                    "step_time_median_s": t,
                    "step_time_q1_s": t * 0.95,
                    "step_time_q3_s": t * 1.08,
                    "samples_per_s": batch / t,
                    "final_loss": 0.3,
                    "gemm_floor_median_s": 0.8 * t,
                    "test_accuracy": 0.9,
                    "grad_max_rel_err": 1e-6,
                    "allocs_per_step": 0.0 if alloc == "arena" else (None if engine == "pytorch" else 42.0),
                    "peak_rss_mb": 300.0,
                    "torch_version": "2.13.0",
                    "clad_version": "2.0",
                    "compiler": "clang 18.1.8",
                    "cuda_version": None,
                    "python_version": "3.10",
                    "cpu_model": "AMD EPYC 7B13",
                    "git_commit": "920871a",
                    "compile_flags": "-O3 -march=native",
                    "gradient_generator": "clad" if engine == "clad" else engine,
                    "hostname": "node1",
                    "started_utc": f"2026-11-1{rep}T12:00:00Z",
                    "wall_time_s": 30.0,
                    "record": f"results/runs/{variant}-b{batch}-r{rep}.json",
                }
                if dataset == "gw-sim":
                    row.update(roc_auc=0.95 + 0.01 * rep, roc_auc_all_snr=0.9, gw150914_peak_offset_s=0.125)
                    n = 60
                    label = np.r_[np.ones(n // 2), np.zeros(n // 2)]
                    snr = np.where(label == 1, rng.uniform(8, 20, n), 0)
                    score = np.clip(0.5 * label + rng.uniform(0, 0.6, n), 0, 1)
                    scores += [{**key, "score": s, "label": int(lab), "snr": q} for s, lab, q in zip(score, label, snr)]
                    width = 0.2 + 0.05 * len(engine)  # engines differ a little, as trained networks do
                    trace += [
                        {**key, "t_rel_s": t_rel, "score": float(np.exp(-(((t_rel - 0.125) / width) ** 2)))}
                        for t_rel in np.arange(-2, 2.01, 0.125)
                    ]
                runs.append(row)
                epoch_rows += [
                    {
                        **key,
                        "epoch": e,
                        "train_loss": 1.0 / e + 0.01 * rep + 0.02 * len(engine) / e,
                        "test_loss": 1.1 / e,
                        "test_accuracy": 0.8 + 0.03 * e,
                    }
                    for e in (1, 2, 3)
                ]
    failed = {**runs[0], "status": "failed", "step_time_median_s": None, "repetition": 2}
    runs.append(failed)
    directory.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(runs).to_csv(directory / "runs.csv", index=False)
    if epochs:
        pd.DataFrame(epoch_rows).to_csv(directory / "epochs.csv", index=False)
    if gw:
        pd.DataFrame(scores).to_csv(directory / "gw_scores.csv", index=False)
        pd.DataFrame(trace).to_csv(directory / "gw150914_trace.csv", index=False)
    rows = [] if "clad" in engines else [{"variant": "cpu-clad-*", "reason": CLAD_REASON}]
    rows.append({"variant": "cuda-*", "reason": CUDA_REASON})
    pd.DataFrame(rows, columns=["variant", "reason"]).to_csv(directory / "not_run.csv", index=False)
    if op_cost:
        op_cost_rows().to_csv(directory / "op_cost.csv", index=False)
        feed_rows().to_csv(directory / "root_feed.csv", index=False)
    return directory


def expected_files(out: Path) -> set[Path]:
    return {out / f"{f}.{ext}" for f in FIGURES for ext in ("pdf", "png")} | {
        out / "headline.tex",
        out / "targets.tex",
        out / "targets.csv",
        out / "gw.tex",
        out / "root_fed.tex",
        out / "op_cost.tex",
        out / "provenance.md",
    }


@pytest.fixture(scope="module")
def full_report(tmp_path_factory):
    tables = write_tables(tmp_path_factory.mktemp("tables"))
    out = tmp_path_factory.mktemp("report")
    return build_report(tables, out), out


def test_every_file_is_written_and_readable(full_report):
    written, out = full_report
    assert set(written) == expected_files(out)
    for path in written:
        assert path.stat().st_size > 0, path
        if path.suffix == ".pdf":
            assert path.read_bytes()[:4] == b"%PDF", path
        if path.suffix == ".png":
            height, width = matplotlib.image.imread(path).shape[:2]
            assert 300 <= width <= 3000 and 200 <= height <= 4000, (path, width, height)
    notes = (out / "provenance.md").read_text().split("## Figures shown as placeholders")[1]
    assert "None: every figure has data." in notes


def test_headline_table_has_booktabs_and_the_controlled_numbers(full_report):
    _, out = full_report
    tex = (out / "headline.tex").read_text()
    for rule in (r"\toprule", r"\midrule", r"\bottomrule"):
        assert tex.count(rule) == 1
    row = next(line for line in tex.splitlines() if line.startswith(f"mnist & {MLP} & 32 & 1 &"))
    cells = [c.strip() for c in row.rstrip("\\ ").split("&")]
    # no pytorch-compile or jax runs here
    assert cells[4:] == ["100.0", "120.0", "200.0", "400.0", "--", "--", "2.00", "4.00", "--", "--", "0"]


def test_gw_table_lists_every_gw_run(full_report):
    _, out = full_report
    tex = (out / "gw.tex").read_text()
    body = tex.split(r"\midrule")[1].split(r"\bottomrule")[0].strip().splitlines()
    assert len(body) == 2 * len(variants())  # 2 repetitions of every variant
    assert r"clad & rowmajor & arena & 1 & 0.960 & +0.125 \\" in tex


def test_provenance_lists_versions_and_what_did_not_run(full_report):
    _, out = full_report
    md = (out / "provenance.md").read_text()
    assert f"- not run: {CUDA_REASON} (variants `cuda-*`)" in md
    assert "`3.10`" in md  # a version stays text, not the number 3.1
    assert "`2.13.0`" in md and "`AMD EPYC 7B13`" in md and "`920871a`" in md
    assert "(60 ok, 1 failed)" in md and "failed: `cpu-clad-rowmajor-arena`" in md
    assert "2026-11-10T12:00:00Z to 2026-11-11T12:00:00Z" in md


def test_speedup_is_taken_within_each_repetition():
    # clad 1 and 4, libtorch 2 and 2: per repetition 2.0 and 0.5; pooled medians would say 2/2.5 = 0.8.
    rows = [
        dict(
            variant=f"cpu-{e}-rowmajor-{a}",
            engine=e,
            device="cpu",
            layout="rowmajor",
            alloc=a,
            dataset="mnist",
            model=MLP,
            batch=32,
            threads=1,
            repetition=rep,
            status="ok",
            step_time_median_s=t,
            step_time_q1_s=t,
            step_time_q3_s=t,
            samples_per_s=32 / t,
        )
        for e, a, times in (("clad", "arena", (1.0, 4.0)), ("libtorch", "dynamic", (2.0, 2.0)))
        for rep, t in enumerate(times)
    ]
    runs = pd.DataFrame(rows)
    per_rep = speedup_per_repetition(runs).sort_values("repetition")
    assert per_rep["speedup"].tolist() == [2.0, 0.5]
    summary = speedup_table(runs)
    assert len(summary) == 1 and summary["baseline"].item() == "libtorch"
    assert summary[["speedup", "speedup_min", "speedup_max", "n"]].iloc[0].tolist() == [1.25, 0.5, 2.0, 2]
    assert headline_table(runs)["speedup_libtorch"].item() == 1.25


def test_speedup_ignores_other_variants_and_unmatched_repetitions():
    rows = [
        dict(
            variant=f"cpu-{e}-{lay}-{a}",
            engine=e,
            device="cpu",
            layout=lay,
            alloc=a,
            dataset="mnist",
            model=MLP,
            batch=32,
            threads=1,
            repetition=rep,
            status="ok",
            step_time_median_s=t,
        )
        for e, lay, a, rep, t in (
            ("clad", "rowmajor", "arena", 0, 1.0),
            ("clad", "colmajor", "dynamic", 0, 9.0),
            ("pytorch", "rowmajor", "dynamic", 0, 3.0),
            ("pytorch", "rowmajor", "dynamic", 1, 5.0),
        )
    ]
    table = speedup_table(pd.DataFrame(rows))
    assert table[["baseline", "speedup", "n"]].values.tolist() == [["pytorch", 3.0, 1]]


def test_ablation_is_relative_to_rowmajor_arena_of_the_same_engine():
    rows = [
        dict(
            variant=f"cpu-manual-{lay}-{a}",
            engine="manual",
            device="cpu",
            layout=lay,
            alloc=a,
            dataset="mnist",
            model=MLP,
            batch=32,
            threads=1,
            repetition=0,
            status="ok",
            step_time_median_s=t,
        )
        for lay, a, t in (("rowmajor", "arena", 2.0), ("colmajor", "arena", 3.0), ("rowmajor", "dynamic", 4.0))
    ]
    table = ablation_table(pd.DataFrame(rows)).set_index("layout_alloc")["relative"]
    assert table.to_dict() == {"colmajor-arena": 1.5, "rowmajor-arena": 1.0, "rowmajor-dynamic": 2.0}


def test_roc_curve_auc():
    assert roc_curve([0.9, 0.8, 0.2, 0.1], [1, 1, 0, 0])[2] == 1.0
    assert roc_curve([0.5, 0.5, 0.5, 0.5], [1, 0, 1, 0])[2] == 0.5
    assert roc_curve([0.9, 0.4, 0.6, 0.1], [1, 1, 0, 0])[2] == 0.75


def test_missing_optional_tables_give_placeholders(tmp_path):
    tables = write_tables(
        tmp_path / "tables", gw=False, epochs=False, engines=("manual", "libtorch", "pytorch"), op_cost=False
    )
    (tables / "gw150914_trace.csv").write_text("")  # present but empty: same as missing
    out = tmp_path / "report"
    written = build_report(tables, out)
    assert set(written) == expected_files(out)
    assert all(p.stat().st_size > 0 for p in written)
    md = (out / "provenance.md").read_text()
    placeholders = md.split("## Figures shown as placeholders")[1]
    for name in ("loss_curves", "gw_roc", "gw150914_trace", "speedup", "op_cost", "root_feed"):
        assert f"`{name}`" in placeholders
    assert "no op bench table in this study (op\\_cost.csv" in (out / "op_cost.tex").read_text()
    assert "no GW runs in this study" in placeholders
    assert f"`speedup`: no speedup of clad: not run: {CLAD_REASON}" in placeholders
    assert f"- not run: {CLAD_REASON} (variants `cpu-clad-*`)" in md
    assert "no GW runs in this study" in (out / "gw.tex").read_text()
    assert r"\toprule" in (out / "gw.tex").read_text()
    assert "-- & 120.0 & 200.0 & 400.0 & -- & --" in (out / "headline.tex").read_text()


def test_header_only_tables_and_the_command_line(tmp_path):
    tables, out = tmp_path / "tables", tmp_path / "report"
    tables.mkdir()
    for name, (columns, _) in TABLES.items():
        (tables / f"{name}.csv").write_text(",".join(columns) + "\n")
    done = subprocess.run(
        [sys.executable, "-m", "cladbench.report", str(tables), str(out)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert {Path(line) for line in done.stdout.split()} == expected_files(out)
    assert NO_BENCH_RUNS in (out / "headline.tex").read_text()
    md = (out / "provenance.md").read_text()
    assert "- runs: 0 (0 ok, 0 failed)" in md and "Every configured variant ran." in md


def test_every_figure_has_a_caption_for_the_snakemake_report():
    captions = Path(__file__).resolve().parents[1] / "workflow" / "report"
    for name in FIGURES:
        text = (captions / f"{name}.rst").read_text()
        assert 100 < len(text) < 1000, name  # a few sentences


def test_latex_special_characters_are_escaped():
    assert latex.tex(r"-O3 -D_GLIBCXX & 50% {x}") == r"-O3 -D\_GLIBCXX \& 50\% \{x\}"


def test_floor_is_each_run_over_its_own_gemm_time():
    from cladbench.report.tables import floor_table

    runs = pd.DataFrame(
        [
            dict(
                variant="cpu-clad-rowmajor-arena",
                engine="clad",
                device="cpu",
                layout="rowmajor",
                alloc="arena",
                dataset="mnist",
                model=MLP,
                batch=64,
                threads=1,
                repetition=rep,
                status="ok",
                step_time_median_s=t,
                gemm_floor_median_s=f,
            )
            for rep, (t, f) in enumerate([(110e-6, 100e-6), (150e-6, 100e-6), (120e-6, 100e-6)])
        ]
    )
    row = floor_table(runs).iloc[0]
    assert row["ratio"] == pytest.approx(1.2) and row["low"] == pytest.approx(1.1) and row["high"] == pytest.approx(1.5)


def test_timing_uses_bench_runs_only_and_says_which_models_have_none():
    runs = pd.DataFrame({"purpose": ["train", "bench", "bench", "train"], "model": [MLP, MLP, MLP, CNN]})
    assert list(timing_runs(runs).index) == [1, 2]  # the CNN's training run is not timed
    assert untimed_note(runs) == f"no timing panel for {CNN}: no bench runs (training runs are not timed)"


def test_a_timing_figure_notes_the_models_without_bench_runs(full_report):
    _, out = full_report  # the GW model has training runs only
    assert f"no timing panel for {CNN}" in (out / "provenance.md").read_text()


def test_targets_table_measures_each_target_per_repetition(tmp_path):
    runs = read_table(write_tables(tmp_path / "tables", gw=False, epochs=False), "runs")
    table = targets_table(timing_runs(runs))
    assert set(table["task"]) == {"mlp-784-128-10"}  # the controlled tables time the MLP only
    table = table.set_index(["target", "batch"])
    at32 = lambda target: table.loc[(target, 32)]  # noqa: E731  (the controlled row)
    assert at32("clad vs pytorch")["ratio"] == pytest.approx(4.0) and at32("clad vs pytorch")["met"]
    assert at32("clad vs libtorch")["ratio"] == pytest.approx(2.0) and at32("clad vs libtorch")["n"] == 2
    # manual is 1.2x clad's time: outside "within 5%", so reported as missed
    assert at32("clad vs manual")["ratio"] == pytest.approx(1.2) and not at32("clad vs manual")["met"]
    # bound: the baseline over clad's GEMM floor (0.8 x clad's time here)
    assert at32("clad vs pytorch")["bound"] == pytest.approx(400 / 80)
    # the floor target applies at 32, 64 and 256: the controlled rows have 32 and 256, at 1/0.8
    floor = table.xs("clad / GEMM floor", level="target")
    assert (
        list(floor.index) == [32, 256] and floor.loc[256, "ratio"] == pytest.approx(1.25) and not floor.loc[256, "met"]
    )
    assert ("clad vs pytorch", 256) in table.index and ("clad vs jax", 32) not in table.index  # no jax runs
    tex = latex.targets_tex(timing_runs(runs))
    assert "clad vs pytorch" in tex and "4.00" in tex


def test_targets_table_is_empty_without_clad(tmp_path):
    runs = read_table(
        write_tables(tmp_path / "tables", gw=False, epochs=False, engines=("manual", "libtorch", "pytorch")), "runs"
    )
    assert targets_table(runs).empty
    assert "no bench runs" in latex.targets_tex(runs)


def controlled_cell(times: dict[str, list[float]], batch: int = 32) -> list[dict]:
    """Bench runs of one cell: {engine: its step times (s), one per repetition}."""
    return [
        dict(
            variant=f"cpu-{e}-rowmajor-{'arena' if e == 'clad' else 'dynamic'}",
            purpose="bench",
            engine=e,
            device="cpu",
            layout="rowmajor",
            alloc="arena" if e == "clad" else "dynamic",
            dataset="mnist",
            model=MLP,
            batch=batch,
            threads=1,
            repetition=rep,
            status="ok",
            step_time_median_s=t,
            step_time_q1_s=t,
            step_time_q3_s=t,
            samples_per_s=batch / t,
            gemm_floor_median_s=t / 2,
            grad_max_rel_err=1e-7,
        )
        for e, ts in times.items()
        for rep, t in enumerate(ts)
    ]


# One engine whose repetitions spread 2% (IQR/median), one spread 20%: only the second is noisy.
STEADY, SPREAD = [99e-6, 99e-6, 100e-6, 101e-6, 102e-6], [90e-6, 95e-6, 100e-6, 115e-6, 120e-6]


def test_a_cell_spread_over_ten_percent_is_marked_noisy():
    runs = pd.DataFrame(controlled_cell({"clad": STEADY, "libtorch": SPREAD}))
    steps = step_time_table(runs).set_index("engine")
    assert steps.loc["clad", "spread"] == pytest.approx(0.02) and not steps.loc["clad", "noisy"]
    assert steps.loc["libtorch", "spread"] == pytest.approx(0.20) and steps.loc["libtorch", "noisy"]
    # clad's per-repetition ratios over libtorch inherit libtorch's spread (18%): a noisy ratio.
    assert speedup_table(runs).set_index("baseline").loc["libtorch", "noisy"]
    row = next(line for line in latex.headline_tex(runs).splitlines() if line.startswith(f"mnist & {MLP} & 32"))
    cells = [c.strip() for c in row.rstrip("\\ ").split("&")]
    assert cells[4] == "100.0" and cells[6] == "100.0$^\\dagger$"  # clad firm, libtorch noisy
    assert cells[10] == "1.00$^\\dagger$" and cells[-1] == "20"  # the ratio noisy; the row's largest spread
    assert "noisy: its repetitions spread more than 10\\%" in latex.headline_tex(runs)
    # In the figure the noisy engine's point is hollow, the steady one's filled.
    fig = fig_step_time(runs)
    faces = {
        tuple(line.get_color())
        if not isinstance(line.get_color(), str)
        else line.get_color(): line.get_markerfacecolor()
        for ax in fig.axes
        for line in ax.get_lines()
        if len(line.get_xdata())
    }
    hollow = [color for color, face in faces.items() if face == "white"]
    assert hollow == [COLORS["libtorch"]], faces


def test_a_steady_ratio_of_two_drifting_engines_is_firm():
    """Both engines drift together across repetitions (a busy machine): the ratio within each
    repetition is steady, so the ratio cell is firm while both step-time cells are noisy."""
    runs = pd.DataFrame(controlled_cell({"clad": SPREAD, "pytorch": [2 * t for t in SPREAD]}))
    assert step_time_table(runs)["noisy"].all()
    speed = speedup_table(runs).iloc[0]
    assert speed["speedup"] == pytest.approx(2.0) and speed["spread"] == pytest.approx(0) and not speed["noisy"]


def test_a_run_whose_gradient_disagrees_is_kept_out_of_every_timing_table(tmp_path):
    """A records set in which one bench run (status "ok", as older records say) has a gradient 3e-3
    away from autograd's: it would make clad look 100x faster."""
    from cladbench.records import aggregate

    rows = controlled_cell({"clad": [100e-6, 100e-6], "libtorch": [200e-6, 200e-6]})
    rows[0].update(step_time_median_s=1e-6, grad_max_rel_err=3e-3)
    records = tmp_path / "records"
    records.mkdir()
    for i, row in enumerate(rows):
        (records / f"{i}.json").write_text(pd.Series(row).to_json())
    aggregate.write_tables(sorted(records.glob("*.json")), tmp_path / "tables", {})
    build_report(tmp_path / "tables", tmp_path / "report", only="tables")
    row = next(
        line
        for line in (tmp_path / "report" / "headline.tex").read_text().splitlines()
        if line.startswith(f"mnist & {MLP} & 32")
    )
    assert [c.strip() for c in row.rstrip("\\ ").split("&")][4:7] == ["100.0", "--", "200.0"]
    targets = pd.read_csv(tmp_path / "report" / "targets.csv").set_index("target")
    assert targets.loc["clad vs libtorch", "ratio"] == pytest.approx(2.0) and targets.loc["clad vs libtorch", "n"] == 1
    md = (tmp_path / "report" / "provenance.md").read_text()
    assert "(3 ok, 1 failed)" in md
    assert (
        "failed: `cpu-clad-rowmajor-arena` mnist mlp-784-128-10 batch 32 threads 1 repetition 0: gradient "
        "disagrees with autograd: grad_max_rel_err 3.0e-03 > 0.0001"
    ) in md


def op_cost_cells(tex: str) -> dict[tuple[str, str], list[str]]:
    """op_cost.tex's rows: {(model, batch): the other cells}."""
    body = tex.split(r"\midrule")[1].split(r"\bottomrule")[0].strip().splitlines()
    rows = [[c.strip() for c in line.rstrip("\\ ").split("&")] for line in body]
    return {(row[0], row[1]): row[2:] for row in rows}


def test_what_composability_costs_per_model_and_batch(full_report):
    """op_cost.tex from the op bench's table: fused and composable step time (ms: median, IQR over the
    repetitions), composable / fused (median, IQR), a dagger where a cell is noisy; and its figure."""
    _, out = full_report
    tex = (out / "op_cost.tex").read_text()
    cells = op_cost_cells(tex)
    assert list(cells) == [("mlp-784-128-10", "32"), ("mlp-784-128-10", "256"), ("gw-cnn", "32"), ("gw-cnn", "256")]
    assert cells[("mlp-784-128-10", "32")] == [
        "0.250",
        "0.245--0.255",
        "0.280",
        "0.275--0.285",
        "1.12",
        "1.12--1.12",
        "3",
    ]
    assert cells[("gw-cnn", "32")][:5] == ["4.50", "4.45--4.55", "4.00", "3.95--4.05", "0.89"]
    # the noisy cell: the composable path spreads 6/34 = 18%, its per-repetition ratios 15%
    assert cells[("gw-cnn", "256")] == [
        "34.0",
        "33.5--34.5",
        "34.0$^\\dagger$",
        "31.0--37.0",
        "1.00$^\\dagger$",
        "0.92--1.07",
        "3",
    ]
    assert "noisy: its repetitions spread more than 10\\%" in tex and "(clad rowmajor, 1 thread)" in tex
    table = op_cost_table(op_cost_rows()).set_index(["model", "batch"])
    assert table.loc[("gw-cnn", 256), "composable_spread"] == pytest.approx(6 / 34)
    assert table.loc[("gw-cnn", 256), ["composable_noisy", "ratio_noisy", "fused_noisy"]].tolist() == [
        True,
        True,
        False,
    ]
    assert not table.loc["mlp-784-128-10", "ratio_noisy"].any()
    # In the figure (a panel per model) the noisy ratio's point is hollow, the others filled.
    fig = fig_op_cost(op_cost_rows())
    hollow = {
        ax.get_title().split("\n")[0]: [
            list(line.get_xdata()) for line in ax.get_lines() if line.get_markerfacecolor() == "white"
        ]
        for ax in fig.axes
    }
    assert {title: [x for x in xs if len(x)] for title, xs in hollow.items()} == {
        "gw-cnn": [[256.0]],
        "mlp-784-128-10": [],
    }


def test_composable_over_fused_is_taken_within_each_repetition():
    """Per repetition 3, 1, 1 (median 1); the paths' own medians would say 3 / 2 = 1.5."""
    table = op_cost_table(op_cost_rows({("mlp-784-128-10", 32): ([1.0, 3.0, 2.0], [3.0, 3.0, 2.0])}))
    row = table.iloc[0]
    assert row["ratio_median"] == pytest.approx(1.0) and row["n"] == 3
    assert row["fused_median"] == pytest.approx(2e-3) and row["composable_median"] == pytest.approx(3e-3)


def test_feeding_figure_draws_a_bar_per_format_and_reader_or_says_why_not():
    fig = fig_root_feed(feed_rows(), pd.DataFrame(columns=["variant", "reason"]))
    axes = fig.get_axes()
    assert [ax.get_title() for ax in axes] == ["mnist: 784 floats a sample", "gw: 4096 floats a sample"]
    widths = [sorted(round(p.get_width()) for p in ax.patches) for ax in axes]
    assert widths == [[94000, 175000, 194000], [13000, 96000]]  # samples/s from the median read
    labels = [t.get_text() for t in axes[0].get_yticklabels()]
    assert "rntuple · RNTupleReader" in labels and "idx · cladbench loader" in labels
    not_run = pd.DataFrame([{"variant": "ttree-*", "reason": "ROOT not installed"}])
    empty = fig_root_feed(pd.DataFrame(columns=feed_rows().columns), not_run)
    assert empty.note.startswith("no feeding table") and empty.note.endswith(": ROOT not installed")
