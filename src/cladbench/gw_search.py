"""The GW classifier as a search (MLGWSC-1's method, Schäfer et al. 2023): every engine's trained
network scanned over long data, its triggers clustered, the background's false-alarm rate (FAR),
and the sensitive distance of distance-drawn injections at each FAR.

Three kinds of job, each writing CSV tables that `summary` joins (workflow/rules/search.smk):
- `scan_real`: the real GW150914 strain at zero lag (the search itself) and in every time slide
  of L1 against H1 (real-noise background, the event excluded);
- `scan_simulated`: a stretch of simulated noise with glitches (`gw.simulate_stream`): background,
  or with injections every few seconds (foreground);
- `summary`: FAR, thresholds, GW150914's significance, sensitive distance vs FAR, and the
  1-per-month point extrapolated from the background's tail.

Every network is evaluated by the same forward kernel (the manual engine's, which every engine's
gradients are checked against), on its own trained parameters (the trainers' --params-out): the
engines differ in how they computed gradients, not in how they are scored. The ranking statistic
is the logit difference (cladbench.data.search).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import torch

from .core import core  # noqa: F401  (loads the torch.ops.cladbench library)
from .data import gw
from .data.search import cluster, false_alarm_rate, slide_windows, threshold_at_far

SECONDS_PER_MONTH = 30 * 86400.0
SCORING_ENGINE = "manual"  # whose forward kernel scores every network (the same function as every engine's)
BATCH = 1024  # windows per forward call
TAIL_EVENTS = 25  # the loudest background events the exponential tail is fitted to


@dataclass
class Network:
    """One training run's trained network, as its record and --params-out file describe it."""

    run: str  # the record's name, e.g. cpu-clad-rowmajor-arena-r0
    engine: str
    model: str
    dims: list[int]
    layout: str
    params: torch.Tensor

    @classmethod
    def from_record(cls, path) -> Network:
        path = Path(path)
        record = json.loads(path.read_text())
        if record.get("status") != "ok" or not record.get("params_file"):
            raise ValueError(f"{path}: not a finished training run with --params-out (status {record.get('status')})")
        params = torch.from_numpy(np.load(record["params_file"]).astype(np.float32))
        return cls(path.stem, record["engine"], record["model_kind"], record["model_dims"], record["layout"], params)

    def statistic(self, x: torch.Tensor) -> np.ndarray:
        """The logit difference (signal - noise) of windows x [n, 2 * length]."""
        with torch.no_grad():
            logits = torch.ops.cladbench.forward(self.params, x, self.model, self.dims, SCORING_ENGINE, self.layout)
        return (logits[:, 1] - logits[:, 0]).double().numpy()


def window_statistics(networks, strain: np.ndarray, h1_starts, l1_starts, n_win: int) -> dict[str, np.ndarray]:
    """Each network's statistic on the windows whose H1 and L1 parts start at h1_starts, l1_starts
    (samples) in strain [2, n]."""
    views = [np.lib.stride_tricks.sliding_window_view(strain[c], n_win) for c in range(2)]
    out = {net.run: np.empty(len(h1_starts)) for net in networks}
    for i in range(0, len(h1_starts), BATCH):
        h1, l1 = h1_starts[i : i + BATCH], l1_starts[i : i + BATCH]
        x = torch.from_numpy(np.concatenate([views[0][h1], views[1][l1]], axis=1).astype(np.float32))
        for net in networks:
            out[net.run][i : i + len(h1)] = net.statistic(x)
    return out


def events(times, stats, threshold: float, cluster_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Triggers (windows at or above the threshold) clustered in time: (times, stats) of the events."""
    times, stats = np.asarray(times), np.asarray(stats)
    keep = stats >= threshold
    return cluster(times[keep], stats[keep], cluster_s)


def predicted_merger(start_s):
    """Where a window puts the merger it fires on: training placed them MERGER_OFFSET_RANGE into it."""
    return start_s + float(np.mean(gw.MERGER_OFFSET_RANGE))


def scan_real(networks, windows_path, slide_step_s: float, n_slides: int | None, threshold: float, cluster_s: float):
    """Zero lag and time slides over the real series of `gw real`'s file: (events, segments, trace).
    events: network, kind (zero-lag, slide), segment (the slide), time_gps (H1), stat; segments:
    kind, segment, livetime_s (windows x stride); trace: the zero-lag statistic of every window.
    n_slides None: as many as the span allows."""
    with h5py.File(windows_path, "r") as f:
        if "series" not in f:
            raise ValueError(f"{windows_path} has no series/strain: remake it with this `cladbench gw real`")
        strain = f["series/strain"][()]
        a = dict(f.attrs)
    fs, stride, n_win = float(a["sample_rate"]), float(a["stride"]), round(a["duration"] * a["sample_rate"])
    edge = round(a["edge_s"] * fs)
    event_sample = round((a["event_gps"] - a["gps_start"]) * fs)
    if n_slides is None:
        n_slides = max_slides(strain.shape[1], fs, slide_step_s, edge)
    zero = np.arange(edge, strain.shape[1] - edge - n_win + 1, round(stride * fs))
    slides = slide_windows(strain.shape[1], fs, a["duration"], stride, slide_step_s, n_slides, event_sample, 1.0, edge)
    h1 = np.concatenate([zero, slides[:, 1]])
    l1 = np.concatenate([zero, slides[:, 2]])
    segment = np.concatenate([np.zeros(len(zero), int), slides[:, 0]])
    stats = window_statistics(networks, strain, h1, l1, n_win)
    times = a["gps_start"] + predicted_merger(h1 / fs)
    rows, trace = [], []
    for net in networks:
        s = stats[net.run]
        trace.append(
            pd.DataFrame(
                {"network": net.run, "engine": net.engine, "time_gps": times[: len(zero)], "stat": s[: len(zero)]}
            )
        )
        for k in np.unique(segment):
            t, v = events(times[segment == k], s[segment == k], threshold, cluster_s)
            rows.append(
                pd.DataFrame(
                    {
                        "network": net.run,
                        "engine": net.engine,
                        "kind": "zero-lag" if k == 0 else "slide",
                        "segment": k,
                        "time_gps": t,
                        "stat": v,
                    }
                )
            )
    counts = np.bincount(segment)
    segments = pd.DataFrame(
        {
            "kind": ["zero-lag"] + ["slide"] * (len(counts) - 1),
            "segment": np.arange(len(counts)),
            "livetime_s": counts * stride,
        }
    )
    segments.attrs["slides"] = n_slides
    return pd.concat(rows, ignore_index=True), segments, pd.concat(trace, ignore_index=True)


def max_slides(n_samples: int, sample_rate: float, slide_step_s: float, edge_samples: int) -> int:
    """The most slides of slide_step_s whose circular shift stays a step away from zero lag."""
    span, step = n_samples - 2 * edge_samples, round(slide_step_s * sample_rate)
    return int((span - step) // step)


def scan_simulated(
    networks,
    seed,
    hours: float,
    glitch_rate_hz: float,
    stride_s: float,
    threshold: float,
    cluster_s: float,
    injection_spacing_s=None,
    distance_max_mpc=4000.0,
    found_window_s=0.3,
    label="simulated",
):
    """A simulated stretch (gw.simulate_stream) scanned by every network: (events, segments,
    injections). With injection_spacing_s (foreground), injections gets one row per network and
    injection: its parameters and the loudest statistic of the windows that put the merger within
    found_window_s of it; events are then of no use and left empty."""
    sample_rate = 2048
    n_win, hop = sample_rate, round(stride_s * sample_rate)
    rows, segments, found = [], [], []
    pieces = gw.simulate_stream(seed, hours * 3600, glitch_rate_hz, injection_spacing_s, distance_max_mpc, sample_rate)
    for p, piece in enumerate(pieces):
        starts = np.arange(0, piece["strain"].shape[1] - n_win + 1, hop)
        stats = window_statistics(networks, piece["strain"], starts, starts, n_win)
        times = piece["t0"] + predicted_merger(starts / sample_rate)
        segments.append(
            {
                "kind": label,
                "segment": p,
                "livetime_s": len(starts) * stride_s,
                "glitches": len(piece["glitches"]["snr"]),
            }
        )
        inj = pd.DataFrame(piece["injections"])
        for net in networks:
            s = stats[net.run]
            if injection_spacing_s:
                lo = np.searchsorted(times, inj["time_s"] - found_window_s)
                hi = np.searchsorted(times, inj["time_s"] + found_window_s, side="right")
                found.append(
                    inj.assign(
                        network=net.run,
                        engine=net.engine,
                        segment=p,
                        stat=[s[a:b].max() if b > a else -np.inf for a, b in zip(lo, hi)],
                    )
                )
            else:
                t, v = events(times, s, threshold, cluster_s)
                rows.append(
                    pd.DataFrame(
                        {"network": net.run, "engine": net.engine, "kind": label, "segment": p, "time_s": t, "stat": v}
                    )
                )
        if (p + 1) % 10 == 0:
            print(
                f"cladbench.gw_search: {label} piece {p + 1}, {piece['t0'] / 3600 + 1 / 60:.2f} h",
                file=sys.stderr,
                flush=True,
            )
    empty = pd.DataFrame(columns=["network", "engine", "kind", "segment", "time_s", "stat"])
    return (
        pd.concat(rows, ignore_index=True) if rows else empty,
        pd.DataFrame(segments),
        pd.concat(found, ignore_index=True) if found else pd.DataFrame(),
    )


def sensitive_distance(stats: np.ndarray, distance_max: float, threshold: float) -> tuple[float, float, int]:
    """(distance, its binomial standard error, found) of injections uniform in volume out to
    distance_max: V = found / N of the sphere's volume, distance = (3 V / 4 pi)^(1/3)."""
    n, found = len(stats), int(np.sum(stats >= threshold))
    f = found / n
    d = distance_max * f ** (1 / 3)
    return d, (d / 3 * np.sqrt((1 - f) / (f * n)) if found else 0.0), found


def tail_threshold(background: np.ndarray, livetime_s: float, far_per_s: float) -> tuple[float, float]:
    """The threshold at `far_per_s` below the background's reach, and its standard error, from an
    exponential fitted (maximum likelihood) to the TAIL_EVENTS loudest background events: their
    rate above s is K / T exp(-lambda (s - s_K)), lambda known to 1 / sqrt(K - 1)."""
    loud = np.sort(np.asarray(background))[::-1][:TAIL_EVENTS]
    k = len(loud)
    if k < 3:
        return np.nan, np.nan
    rate = k / livetime_s
    lam = (k - 1) / np.sum(loud[:-1] - loud[-1])
    reach = np.log(rate / far_per_s) / lam
    return float(loud[-1] + reach), float(reach / np.sqrt(k - 1))


def summary(real_dir, background_dirs, foreground_dirs, distance_max_mpc: float, far_grid_per_month) -> dict:
    """The search's tables from the scan jobs' CSVs (see the module docstring)."""
    real_dir = Path(real_dir)
    real_events = pd.read_csv(real_dir / "events.csv")
    real_segments = pd.read_csv(real_dir / "segments.csv")
    trace = pd.read_csv(real_dir / "trace.csv")

    def joined(dirs, name):
        frames = [pd.read_csv(Path(d) / name).assign(chunk=i) for i, d in enumerate(dirs)]
        frames = [f for f in frames if len(f)]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    sim_events, sim_segments = joined(background_dirs, "events.csv"), joined(background_dirs, "segments.csv")
    injections = joined(foreground_dirs, "injections.csv")
    slides = real_events[real_events.kind == "slide"].rename(columns={"time_gps": "time_s"})
    background = pd.concat([slides.assign(chunk=0), sim_events], ignore_index=True)
    segments = pd.concat([real_segments.assign(chunk=0), sim_segments], ignore_index=True)
    slide_livetime = real_segments.loc[real_segments.kind == "slide", "livetime_s"].sum()
    sim_livetime = sim_segments["livetime_s"].sum() if len(sim_segments) else 0.0

    significance, sensitivity = [], []
    for (network, engine), zero in real_events[real_events.kind == "zero-lag"].groupby(["network", "engine"]):
        near = (zero.time_gps - gw.EVENT_GPS).abs() < 1.0
        event = zero[near].stat.max() if near.any() else np.nan
        bg = slides[slides.network == network].stat.to_numpy()
        threshold = threshold_at_far(bg, slide_livetime, 1 / 3600)
        others = zero[~near].stat
        significance.append(
            {
                "network": network,
                "engine": engine,
                "gw150914_stat": event,
                "slides": int((real_segments.kind == "slide").sum()),
                "slide_livetime_h": slide_livetime / 3600,
                "slide_events": len(bg),
                "slide_events_louder": int(np.sum(bg >= event)),
                "loudest_slide_stat": bg.max() if len(bg) else np.nan,
                "far_per_h": float(false_alarm_rate(bg, slide_livetime, event)) * 3600,
                "far_bound_per_h": 3600 / slide_livetime,  # when none is louder: below one in the livetime
                "threshold_1_per_h": threshold,
                "loudest_other_zero_lag_stat": others.max() if len(others) else np.nan,
                "other_zero_lag_above_threshold": int(np.sum(others >= threshold)),
            }
        )
        if not sim_livetime or not len(injections):
            continue
        sim_bg = sim_events.loc[sim_events.network == network, "stat"].to_numpy()
        inj = injections.loc[injections.network == network, "stat"].to_numpy()
        for far in far_grid_per_month:
            far_s = far / SECONDS_PER_MONTH
            if far_s * sim_livetime < 1 or far_s * sim_livetime > len(sim_bg):
                continue  # below the background's reach, or above its trigger threshold's rate
            t = threshold_at_far(sim_bg, sim_livetime, far_s)
            d, err, found = sensitive_distance(inj, distance_max_mpc, t)
            sensitivity.append(
                {
                    "network": network,
                    "engine": engine,
                    "far_per_month": far,
                    "threshold": t,
                    "method": "measured",
                    "injections": len(inj),
                    "found": found,
                    "distance_mpc": d,
                    "distance_low_mpc": d - err,
                    "distance_high_mpc": d + err,
                    "background_h": sim_livetime / 3600,
                }
            )
        t, t_err = tail_threshold(sim_bg, sim_livetime, 1 / SECONDS_PER_MONTH)
        if np.isfinite(t):
            d, err, found = sensitive_distance(inj, distance_max_mpc, t)
            d_low = sensitive_distance(inj, distance_max_mpc, t + t_err)
            d_high = sensitive_distance(inj, distance_max_mpc, t - t_err)
            sensitivity.append(
                {
                    "network": network,
                    "engine": engine,
                    "far_per_month": 1.0,
                    "threshold": t,
                    "method": "extrapolated",
                    "injections": len(inj),
                    "found": found,
                    "distance_mpc": d,
                    "distance_low_mpc": d_low[0] - np.hypot(err, d_low[1]),
                    "distance_high_mpc": d_high[0] + np.hypot(err, d_high[1]),
                    "threshold_err": t_err,
                    "background_h": sim_livetime / 3600,
                }
            )
    return {
        "gw_background": background,
        "gw_search_segments": segments,
        "gw_significance": pd.DataFrame(significance),
        "gw_sensitivity": pd.DataFrame(sensitivity),
        "gw_search_trace": trace,
        "gw_injections": injections,
    }


def _write(tables: dict, out_dir) -> None:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        frame.to_csv(out_dir / f"{name}.csv", index=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cladbench search", description="The GW classifier as a search.")
    sub = parser.add_subparsers(dest="what", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--records", nargs="+", required=True, help="the GW training runs' records (with --params-out)")
    common.add_argument("--out", required=True, help="directory for the job's CSV tables")
    common.add_argument("--threshold", type=float, default=0.0, help="trigger threshold on the logit difference")
    common.add_argument("--cluster-s", type=float, default=1.0)
    common.add_argument("--threads", type=int, default=1)
    real = sub.add_parser("real", parents=[common], help="zero lag and time slides of the real GW150914 windows")
    real.add_argument("--windows", required=True, help="`cladbench gw real`'s HDF5 (with series/strain)")
    real.add_argument("--slide-step-s", type=float, default=0.1)
    real.add_argument("--slides", type=int, default=None, help="default: as many as the span allows")
    sim = sub.add_parser("simulated", parents=[common], help="a stretch of simulated noise (and injections)")
    sim.add_argument("--seed", type=int, nargs="+", required=True, help="the stream's seed (a sequence is allowed)")
    sim.add_argument("--hours", type=float, required=True)
    sim.add_argument("--glitch-rate-hz", type=float, required=True)
    sim.add_argument("--stride-s", type=float, default=0.1)
    sim.add_argument("--injection-spacing-s", type=float, default=None, help="foreground: injections this far apart")
    sim.add_argument("--distance-max-mpc", type=float, default=4000.0)
    summ = sub.add_parser("summary", help="FAR, significance and sensitivity from the scan jobs' tables")
    summ.add_argument("--real", required=True, help="the real scan's directory")
    summ.add_argument("--background", nargs="*", default=[], help="the simulated background scans' directories")
    summ.add_argument("--foreground", nargs="*", default=[], help="the simulated foreground scans' directories")
    summ.add_argument("--distance-max-mpc", type=float, default=4000.0)
    summ.add_argument("--far-per-month", type=float, nargs="+", default=list(np.logspace(0, 5, 21)))
    summ.add_argument("--out", required=True, help="directory for the summary tables")
    args = parser.parse_args(argv)

    if args.what == "summary":
        _write(
            summary(args.real, args.background, args.foreground, args.distance_max_mpc, args.far_per_month), args.out
        )
        return 0
    torch.set_num_threads(args.threads)
    try:
        networks = [Network.from_record(r) for r in args.records]
        if args.what == "real":
            found, segments, trace = scan_real(
                networks, args.windows, args.slide_step_s, args.slides, args.threshold, args.cluster_s
            )
            _write({"events": found, "segments": segments, "trace": trace}, args.out)
        else:
            found, segments, injections = scan_simulated(
                networks,
                args.seed,
                args.hours,
                args.glitch_rate_hz,
                args.stride_s,
                args.threshold,
                args.cluster_s,
                args.injection_spacing_s,
                args.distance_max_mpc,
                label="foreground" if args.injection_spacing_s else "simulated",
            )
            _write({"events": found, "segments": segments, "injections": injections}, args.out)
    except (ValueError, KeyError, OSError) as error:  # a record without parameters, an old windows file
        print(f"cladbench search: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
