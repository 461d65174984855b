"""`cladbench run` (`make run`): the main job. Trains every available engine on MNIST as the config
says, writes one JSON record per run under results/runs/, and prints step times as ratios measured
in this one run. (The Snakemake workflow takes this over with the full variant matrix.)"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import yaml

from .cli import train_command, variant_name
from .data import MNIST_T10K, MNIST_TRAIN, DataError, stage_all
from .paths import REPO, build_manifest

SCHEMA = REPO / "config" / "schema.yaml"


class ConfigError(ValueError):
    pass


def load_config(path: str | Path) -> dict:
    config = yaml.safe_load(Path(path).read_text())
    try:
        jsonschema.validate(config, yaml.safe_load(SCHEMA.read_text()))
    except jsonschema.ValidationError as error:
        where = "/".join(map(str, error.absolute_path)) or "(top level)"
        raise ConfigError(f"{path}: invalid config at {where}: {error.message}") from None
    return config


def planned_variants(config: dict) -> tuple[list[str], dict[str, str]]:
    """Variants to run, and those that cannot run here with the reason."""
    manifest = build_manifest()
    run, skipped = [], {}
    for engine in config["engines"]:
        if engine == "pytorch":
            run.append(variant_name("pytorch", "", ""))
            continue
        built = [v for v in manifest["variants"] if v.split("-")[1] == engine]
        if built:
            run += built
        elif engine == "clad":
            skipped["cpu-clad-*"] = f"Clad not available: {manifest['clad_reason']}"
        else:
            skipped[f"cpu-{engine}-*"] = "not built"
    return run, skipped


def run(config_path: str) -> int:
    try:
        config = load_config(config_path)
        mirror = config.get("data", {}).get("mirror")
        test_images, test_labels = stage_all(MNIST_T10K, mirror=mirror)
        split = config["mnist"]["split"]
        images, labels = stage_all(MNIST_TRAIN, mirror=mirror) if split == "train" else (test_images, test_labels)
    except (ConfigError, DataError) as error:
        print(f"cladbench run: {error}", file=sys.stderr)
        return 2
    variants, skipped = planned_variants(config)
    for pattern, reason in skipped.items():
        print(f"cladbench run: WARNING: {pattern} not run: {reason}", file=sys.stderr)
    out_dir = REPO / config.get("results", "results") / "runs"
    out_dir.mkdir(parents=True, exist_ok=True)
    t = config["train"]
    jobs = [(v, b) for b in t["batch"] for v in variants]
    records = []
    for i, (variant, batch) in enumerate(jobs, 1):
        _, engine, layout, alloc = variant.split("-")
        out = out_dir / f"{variant}-mnist-b{batch}.json"
        argv = ["--images", str(images), "--labels", str(labels), "--out", str(out),
                *(["--test-images", str(test_images), "--test-labels", str(test_labels)] if split == "train" else []),
                "--train-range", "{}:{}".format(*config["mnist"]["train_range"]),
                "--test-range", "{}:{}".format(*config["mnist"]["test_range"]),
                "--hidden", ",".join(map(str, t["hidden"])), "--batch", str(batch), "--epochs", str(t["epochs"]),
                "--lr", str(t["lr"]), "--optimizer", t["optimizer"], "--seed", str(t["seed"]),
                "--threads", str(t["threads"]), "--warmup", str(t.get("warmup", 10)), "--dataset", "mnist"]
        command, env = train_command(engine, layout, alloc, argv)
        start = time.perf_counter()
        done = subprocess.run(command, env=env, stderr=subprocess.PIPE, text=True)
        if done.returncode not in (0, 3) or not out.exists():
            print(f"[{i}/{len(jobs)}] {variant} batch {batch}: FAILED\n{done.stderr}", file=sys.stderr)
            return 1
        record = json.loads(out.read_text())
        records.append(record)
        print(f"[{i}/{len(jobs)}] {variant} batch {batch}: {record['status']}, "
              f"step {record.get('step_time_median_s', float('nan')) * 1e6:.0f} µs, "
              f"test accuracy {record.get('test_accuracy', float('nan')):.4f} "
              f"({time.perf_counter() - start:.1f} s)", flush=True)
    summary = summarize(records, skipped)
    (out_dir.parent / "summary.md").write_text(summary)
    print(summary)
    return 0 if all(r["status"] == "ok" for r in records) else 3


def summarize(records: list[dict], skipped: dict[str, str]) -> str:
    """Markdown: per batch, every variant's median step time and its ratio to the clad engine."""
    lines = ["# cladbench run", ""]
    for batch in sorted({r["batch"] for r in records}):
        rows = [r for r in records if r["batch"] == batch]
        base = next((r for r in rows if r["engine"] == "clad" and r["layout"] == "rowmajor" and r["alloc"] == "arena"), None)
        base_name = "clad-rowmajor-arena" if base else "—"
        lines += [f"## batch {batch}, {rows[0]['threads']} thread(s), {rows[0]['model']}", "",
                  f"| variant | step median (µs) | q1–q3 (µs) | time / {base_name} | allocs/step | final loss | test acc |",
                  "|---|---|---|---|---|---|---|"]
        for r in rows:
            ratio = f"{r['step_time_median_s'] / base['step_time_median_s']:.2f}" if base else "—"
            allocs = "—" if r["allocs_per_step"] is None else f"{r['allocs_per_step']:.0f}"
            lines.append(f"| {r['engine']}-{r['layout']}-{r['alloc']} | {r['step_time_median_s'] * 1e6:.0f} | "
                         f"{r['step_time_q1_s'] * 1e6:.0f}–{r['step_time_q3_s'] * 1e6:.0f} | {ratio} | {allocs} | "
                         f"{r['final_loss']:.6f} | {r['test_accuracy']:.4f} |")
        lines.append("")
    for pattern, reason in skipped.items():
        lines.append(f"- {pattern}: not run: {reason}")
    return "\n".join(lines) + "\n"
