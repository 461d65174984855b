"""The GW classifier as a search: a ranking statistic that does not saturate, triggers clustered in
time, background from time slides of the two detectors, and the false-alarm rate (FAR) of a trigger.

The conventions follow MLGWSC-1 (Schäfer et al. 2023):
- A network's output over a stretch of data, windows at a stride, is a list of triggers (time,
  statistic); triggers closer than the cluster window are one event, ranked by its loudest.
- The statistic is the logit difference z_signal - z_noise (Schäfer et al. 2021): the softmax of
  two logits is 1.000 in float both for a loud signal and for a loud glitch, the difference is not.
- FAR at a threshold = background events at or above it / the background's analysed time.
- Real-noise background: L1 shifted against H1 by multiples of a slide step well beyond the 10 ms
  light-travel time, circularly inside the analysed span, so that no astrophysical signal stays
  coincident; windows within `exclude_s` of the event in either detector's time are dropped.
"""

from __future__ import annotations

import numpy as np

LIGHT_TRAVEL_S = 0.010  # H1-L1 light-travel time; a slide must move L1 well beyond it


def ranking_statistic(logits: np.ndarray) -> np.ndarray:
    """The logit difference z[:, 1] - z[:, 0] of [n, 2] logits (class 1: signal): monotonic in the
    softmax output, but unbounded, so loud triggers stay ordered."""
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 2 or logits.shape[1] != 2:
        raise ValueError(f"logits of shape {logits.shape}: expected [n, 2] (noise, signal)")
    return logits[:, 1] - logits[:, 0]


def cluster(times: np.ndarray, stats: np.ndarray, window: float) -> tuple[np.ndarray, np.ndarray]:
    """Triggers merged into events: a trigger within `window` s of the previous one (in time order)
    joins its event, so a chain of close triggers is one event; each event is its loudest trigger.
    Returns (times, stats) of the events in time order."""
    times, stats = np.asarray(times, dtype=np.float64), np.asarray(stats, dtype=np.float64)
    if times.shape != stats.shape or times.ndim != 1:
        raise ValueError(f"times {times.shape} and stats {stats.shape} must be equal 1-d arrays")
    if window < 0:
        raise ValueError(f"cluster window {window} s < 0")
    order = np.argsort(times, kind="stable")
    times, stats = times[order], stats[order]
    starts = np.flatnonzero(np.r_[True, np.diff(times) >= window]) if len(times) else np.array([], int)
    loudest = [start + int(np.argmax(stats[start:end])) for start, end in zip(starts, np.r_[starts[1:], len(times)])]
    return times[loudest], stats[loudest]


def false_alarm_rate(background: np.ndarray, livetime_s: float, threshold) -> np.ndarray:
    """Background events at or above each threshold per second of background."""
    if livetime_s <= 0:
        raise ValueError(f"background livetime {livetime_s} s must be > 0")
    ordered = np.sort(np.asarray(background, dtype=np.float64))
    louder = len(ordered) - np.searchsorted(ordered, np.asarray(threshold, dtype=np.float64), side="left")
    return louder / livetime_s


def threshold_at_far(background: np.ndarray, livetime_s: float, far_per_s: float) -> float:
    """The lowest threshold whose FAR is at most `far_per_s`: just above the (k+1)-th loudest
    background event, k = floor(far * livetime) events allowed louder; -inf when k covers them all."""
    ordered = np.sort(np.asarray(background, dtype=np.float64))[::-1]
    allowed = int(np.floor(far_per_s * livetime_s))
    if allowed >= len(ordered):
        return -np.inf
    return float(np.nextafter(ordered[allowed], np.inf))


def slide_windows(
    n_samples: int,
    sample_rate: float,
    window_s: float,
    stride_s: float,
    slide_step_s: float,
    n_slides: int,
    event_sample: int | None = None,
    exclude_s: float = 1.0,
    edge_samples: int = 0,
) -> np.ndarray:
    """The time-slide windows over a two-detector series of `n_samples` samples: an [m, 3] int array
    of (slide k, H1 start, L1 start), k = 1..n_slides, L1 shifted by k * slide_step_s, circularly
    inside [edge_samples, n_samples - edge_samples), H1 windows at the stride. A window is left out
    when either detector's samples come within exclude_s of the event, or wrap round the span.
    Zero lag (k = 0) is the search itself, never background; a shift that comes back to zero lag
    modulo the span is refused."""
    if slide_step_s < 10 * LIGHT_TRAVEL_S:
        raise ValueError(f"slide step {slide_step_s} s is not well beyond the {LIGHT_TRAVEL_S} s light-travel time")
    lo, hi = edge_samples, n_samples - edge_samples
    span, n_win = hi - lo, round(window_s * sample_rate)
    hop, step = round(stride_s * sample_rate), round(slide_step_s * sample_rate)
    if span < n_win or hop < 1:
        raise ValueError(f"{span} samples cannot hold a {window_s} s window at a {stride_s} s stride")
    shifts = step * np.arange(1, n_slides + 1)
    lag = np.minimum(shifts % span, span - shifts % span)  # the circular shift's distance from zero lag
    if np.any(lag < 10 * LIGHT_TRAVEL_S * sample_rate):
        raise ValueError(
            f"{n_slides} slides of {slide_step_s} s in a {span / sample_rate:.1f} s span bring L1 back to zero lag: "
            "fewer slides or another step"
        )
    h1 = np.arange(lo, hi - n_win + 1, hop)
    margin = round(exclude_s * sample_rate)
    rows = []
    for k, shift in enumerate(shifts, start=1):
        l1 = lo + (h1 - lo + shift) % span
        keep = l1 + n_win <= hi  # no wrap-round inside a window
        if event_sample is not None:
            for starts in (h1, l1):
                keep &= (starts + n_win <= event_sample - margin) | (starts >= event_sample + margin)
        rows.append(np.column_stack([np.full(keep.sum(), k), h1[keep], l1[keep]]))
    return np.concatenate(rows) if rows else np.zeros((0, 3), dtype=int)
