"""Gravitational-wave windows for a two-detector (H1, L1) classifier.

`simulate` writes labelled 1 s windows of aLIGO design-sensitivity Gaussian noise, half of them with
an IMRPhenomD binary-black-hole signal at a chosen network SNR; `real_windows` cuts sliding windows
from the GWOSC GW150914 strain. Both whiten and band-pass with the same `whiten`, so a window of
noise has unit variance per sample either way.

Conventions (the docstring of each function says the rest):
- PSDs are one-sided, strain^2/Hz. h~(f) = dt * rfft(h). Optimal SNR^2 = 4 sum |h~|^2 / S df over
  [f_low, Nyquist]; the network SNR is the root sum of squares over H1 and L1.
- Antenna patterns and light-travel delays are evaluated at the fixed geocentric merger time
  REFERENCE_GPS. With the right ascension uniform this still gives an isotropic sky relative to the
  Earth, so nothing is lost by fixing the time.
- `merger_offset_s` is the geocentric peak time (the maximum of hp^2 + hc^2, LAL's t = 0) minus the
  window start; each detector sees its peak shifted by its delay from the Earth's centre (|delay|
  <= 21 ms).
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import tempfile
from fractions import Fraction
from importlib import metadata
from pathlib import Path

import h5py
import lal
import lalsimulation as lalsim
import numpy as np
from scipy import signal as sps

DETECTORS = ("H1", "L1")
SEGMENT_S = 8.0  # simulated stretch per window; the window is cut from its middle, far from the ends
NOISE_F_MIN = 10.0  # Hz; the design curve is quoted from 10 Hz, and the band-pass removes less anyway
TAPER_S = 0.5  # Tukey taper at each end before the FFT: real data are not periodic
ROLLOFF_HZ = 4.0  # raised-cosine edges of the band-pass, inside the band (no long sinc ringing)
MERGER_OFFSET_RANGE = (0.6, 0.8)  # s after the window start; a downstream classifier relies on it
REFERENCE_GPS = 1126259462.0  # geocentric merger time used for every injection's antenna response
REFERENCE_DISTANCE_MPC = 100.0  # waveforms are made here, then rescaled to the drawn SNR
MASS_RANGE = (10.0, 50.0)  # Msun, each component
EVENT_GPS = 1126259462.4  # GW150914
WELCH_SEGMENT_S = 4.0
REAL_EDGE_S = 4.0  # s dropped at each end of the real data (taper, resampling, whitening filter)
INJECTION_PARAMS = (
    "mass1",
    "mass2",
    "ra",
    "dec",
    "inclination",
    "polarization",
    "coa_phase",
    "merger_offset_s",
    "distance",
    "snr_H1",
    "snr_L1",
)
# Glitches: transients in one detector of a noise window (labelled noise), so that the network learns
# that a signal is coincident in H1 and L1. Sine-Gaussians (the standard burst/glitch model) and
# blips (short, broadband: low-Q sine-Gaussians of 30-250 Hz, as LIGO's blip glitches are), with a
# heavy-tailed SNR: Pareto (alpha = GLITCH_SNR_ALPHA) from GLITCH_SNR_RANGE[0], cut at its top.
GLITCH_KINDS = ("sine-gaussian", "blip")
GLITCH_FREQUENCY = {"sine-gaussian": (30.0, 400.0), "blip": (60.0, 250.0)}  # Hz, log-uniform
GLITCH_QUALITY = {"sine-gaussian": (4.0, 30.0), "blip": (1.0, 3.0)}  # Q = sqrt(2) pi f tau, uniform
GLITCH_SNR_RANGE = (6.0, 100.0)
GLITCH_SNR_ALPHA = 2.0
GLITCH_OFFSET_RANGE = (0.05, 0.95)  # s after the window start: the glitch's peak
GLITCH_PARAMS = ("detector", "kind", "time_offset_s", "frequency", "quality", "phase", "snr")


def lalsuite_version() -> str:
    return metadata.version("lalsuite")


def design_psd(freqs: np.ndarray) -> np.ndarray:
    """The aLIGO zero-detuned high-power design PSD at `freqs` (inf at f <= 0, so it whitens to 0)."""
    freqs = np.asarray(freqs, dtype=float)
    out = np.full(freqs.shape, np.inf)
    pos = freqs > 0
    out[pos] = [lalsim.SimNoisePSDaLIGOZeroDetHighPower(f) for f in freqs[pos]]
    return out


@functools.lru_cache(maxsize=16)
def _design_psd_grid(n: int, sample_rate: float) -> tuple[np.ndarray, np.ndarray]:
    """(rfft frequencies, design PSD) for n samples; read-only because it is shared."""
    freqs = np.fft.rfftfreq(n, 1.0 / sample_rate)
    psd = design_psd(freqs)
    freqs.flags.writeable = psd.flags.writeable = False
    return freqs, psd


@functools.lru_cache(maxsize=16)
def _tukey(n: int, taper: int) -> np.ndarray:
    return sps.windows.tukey(n, min(1.0, 2.0 * taper / n))


def band_mask(freqs: np.ndarray, band: tuple[float, float], rolloff: float = ROLLOFF_HZ) -> np.ndarray:
    """Zero-phase band-pass gain: 1 inside `band`, raised-cosine edges `rolloff` Hz wide just inside
    it, 0 outside."""
    lo, hi = band
    f = np.asarray(freqs, dtype=float)
    gain = ((f >= lo) & (f <= hi)).astype(float)
    rise = (f >= lo) & (f < lo + rolloff)
    fall = (f > hi - rolloff) & (f <= hi)
    gain[rise] = 0.5 * (1 - np.cos(np.pi * (f[rise] - lo) / rolloff))
    gain[fall] = 0.5 * (1 - np.cos(np.pi * (hi - f[fall]) / rolloff))
    return gain


def whiten(
    strain: np.ndarray,
    psd_freqs: np.ndarray,
    psd: np.ndarray,
    sample_rate: float,
    band: tuple[float, float],
    taper_s: float = TAPER_S,
) -> np.ndarray:
    """Whiten `strain` (last axis is time) by `psd`, band-pass with `band_mask`, and scale so that
    noise with that PSD comes out with unit variance per sample (flat one-sided PSD inside the band,
    shaped by the mask). Taper the ends first; the first and last few taper_s are not trustworthy."""
    x = np.asarray(strain, dtype=float)
    n = x.shape[-1]
    freqs = np.fft.rfftfreq(n, 1.0 / sample_rate)
    if len(psd_freqs) == len(freqs) and np.array_equal(psd_freqs, freqs):
        s = np.asarray(psd)
    else:
        s = np.interp(freqs, psd_freqs, psd)
    gain = band_mask(freqs, band)
    use = (gain > 0) & np.isfinite(s) & (s > 0)
    spectrum = np.fft.rfft(x * _tukey(n, round(taper_s * sample_rate)), axis=-1)
    white = np.zeros_like(spectrum)
    # E|rfft(noise)_k|^2 = n * fs * S_k / 2, so dividing by sqrt(fs S / 2) gives unit-variance white noise.
    white[..., use] = spectrum[..., use] * (gain[use] / np.sqrt(s[use] * sample_rate / 2.0))
    # The mask keeps a fraction 2 sum(gain^2) / n of that unit variance; undo it.
    norm = np.sqrt(2.0 * np.sum(gain[use] ** 2) / n)
    return np.fft.irfft(white, n=n, axis=-1) / norm


def optimal_snr(h: np.ndarray, sample_rate: float, f_low: float) -> float:
    """sqrt(4 sum |h~(f)|^2 / S(f) df) over [f_low, Nyquist] against the design PSD."""
    h = np.asarray(h, dtype=float)
    freqs, psd = _design_psd_grid(len(h), float(sample_rate))
    htilde = np.fft.rfft(h) / sample_rate
    use = freqs >= f_low
    return float(np.sqrt(4.0 * np.sum(np.abs(htilde[use]) ** 2 / psd[use]) * sample_rate / len(h)))


def detector_strains(
    mass1,
    mass2,
    ra,
    dec,
    inclination,
    polarization,
    coa_phase,
    distance,
    sample_rate: float = 2048,
    f_low: float = 20.0,
    gps: float = REFERENCE_GPS,
) -> dict[str, tuple[float, np.ndarray]]:
    """IMRPhenomD (zero spins; masses in Msun, distance in Mpc, angles in rad) projected onto H1
    and L1: {det: (time of the first sample relative to the geocentric peak, strain)}."""
    hp, hc = lalsim.SimInspiralChooseTDWaveform(
        mass1 * lal.MSUN_SI,
        mass2 * lal.MSUN_SI,
        0,
        0,
        0,
        0,
        0,
        0,
        distance * 1e6 * lal.PC_SI,
        inclination,
        coa_phase,
        0.0,
        0.0,
        0.0,
        1.0 / sample_rate,
        f_low,
        f_low,
        None,
        lalsim.IMRPhenomD,
    )
    epoch = float(hp.epoch)  # t = 0 is the peak of hp^2 + hc^2
    gmst = lal.GreenwichMeanSiderealTime(gps)
    out = {}
    for name in DETECTORS:
        det = lalsim.DetectorPrefixToLALDetector(name)
        fplus, fcross = lal.ComputeDetAMResponse(det.response, ra, dec, polarization, gmst)
        delay = lal.TimeDelayFromEarthCenter(det.location, ra, dec, gps)
        out[name] = (epoch + delay, fplus * hp.data.data + fcross * hc.data.data)
    return out


def _place(segment: np.ndarray, h: np.ndarray, t_first: float, sample_rate: float) -> None:
    """Add h to segment with its first sample at time t_first (s, from the segment start): whole
    samples by indexing, the fraction by an FFT phase shift on a zero-padded copy. Parts that fall
    outside the segment are dropped."""
    start = int(np.floor(t_first * sample_rate))
    frac = t_first * sample_rate - start
    n_pad = 1 << int(np.ceil(np.log2(len(h) + 256)))
    freqs = np.fft.rfftfreq(n_pad, 1.0)  # cycles per sample
    shifted = np.fft.irfft(np.fft.rfft(h, n_pad) * np.exp(-2j * np.pi * freqs * frac), n_pad)
    lo, hi = max(start, 0), min(start + n_pad, len(segment))
    if hi > lo:
        segment[lo:hi] += shifted[lo - start : hi - start]


def _draw_injections(rng: np.random.Generator, n: int, snr_range) -> dict[str, np.ndarray]:
    masses = np.sort(rng.uniform(*MASS_RANGE, size=(n, 2)), axis=1)
    return {
        "mass1": masses[:, 1],
        "mass2": masses[:, 0],  # mass1 >= mass2
        "ra": rng.uniform(0, 2 * np.pi, n),
        "dec": np.arcsin(rng.uniform(-1, 1, n)),
        "inclination": np.arccos(rng.uniform(-1, 1, n)),
        "polarization": rng.uniform(0, np.pi, n),  # the response has period pi in psi
        "coa_phase": rng.uniform(0, 2 * np.pi, n),
        "merger_offset_s": rng.uniform(*MERGER_OFFSET_RANGE, n),
        "snr": rng.uniform(*snr_range, n),
    }


def sine_gaussian(frequency: float, quality: float, phase: float, sample_rate: float) -> np.ndarray:
    """A unit-amplitude sine-Gaussian exp(-(t/tau)^2) sin(2 pi f t + phase), tau = Q / (sqrt(2) pi f),
    peaking at the middle sample, cut at +-4 tau: every glitch kind (a blip is a short, low-Q one)."""
    tau = quality / (np.sqrt(2.0) * np.pi * frequency)
    half = int(np.ceil(4 * tau * sample_rate))
    t = np.arange(-half, half + 1) / sample_rate
    return np.exp(-((t / tau) ** 2)) * np.sin(2 * np.pi * frequency * t + phase)


def _draw_glitches(rng: np.random.Generator, n: int, fraction: float) -> dict[str, np.ndarray]:
    """Glitch parameters for n windows (every window drawn, so the stream does not depend on the
    labels) and whether each gets one (with probability `fraction`; only noise windows use it)."""
    kind = rng.integers(0, len(GLITCH_KINDS), n)
    unit = rng.uniform(size=(n, 2))
    f_lo, f_hi = np.array([GLITCH_FREQUENCY[k] for k in GLITCH_KINDS])[kind].T  # each window's kind's range
    q_lo, q_hi = np.array([GLITCH_QUALITY[k] for k in GLITCH_KINDS])[kind].T
    low, high = GLITCH_SNR_RANGE
    tail = 1 - (low / high) ** GLITCH_SNR_ALPHA  # inverse CDF of the Pareto cut at `high`
    return {
        "present": rng.uniform(size=n) < fraction,
        "detector": rng.integers(0, len(DETECTORS), n),
        "kind": kind,
        "time_offset_s": rng.uniform(*GLITCH_OFFSET_RANGE, n),
        "frequency": np.exp(np.log(f_lo) + unit[:, 0] * np.log(f_hi / f_lo)),
        "quality": q_lo + unit[:, 1] * (q_hi - q_lo),
        "phase": rng.uniform(0, 2 * np.pi, n),
        "snr": low * (1 - rng.uniform(size=n) * tail) ** (-1 / GLITCH_SNR_ALPHA),
    }


@contextlib.contextmanager
def _atomic_h5(path):
    """An h5py.File on a temporary name beside `path`, renamed onto it only when the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it 0600; give it an ordinary file's mode
    try:
        with h5py.File(tmp, "w") as f:
            yield f
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def simulate(
    path,
    n_windows: int,
    seed: int,
    snr_range=(8.0, 20.0),
    sample_rate: int = 2048,
    duration: float = 1.0,
    f_low: float = 20.0,
    band=(20.0, 500.0),
    *,
    noise: bool = True,
    glitch_fraction: float = 0.0,
) -> None:
    """Write `n_windows` labelled windows (see the module docstring) to HDF5 at `path`.

    Per window: SEGMENT_S of Gaussian noise coloured by the design PSD, made in the frequency domain
    (independently for H1 and L1); for signal windows an injection placed so that its geocentric peak
    lies merger_offset_s after the window start, scaled to the drawn network SNR; then `whiten` and
    the middle `duration` s. A fraction `glitch_fraction` of the noise windows gets one glitch in one
    detector (GLITCH_KINDS, scaled to its drawn SNR against the design PSD), stored under glitches/
    (NaN, detector -1, where none). noise=False leaves the noise out (diagnostics, tests); the
    injections and glitches drawn for a seed stay the same. Same seed, same arrays."""
    if not 0.0 <= glitch_fraction <= 1.0:
        raise ValueError(f"glitch fraction {glitch_fraction} is not in [0, 1]")
    if duration - MERGER_OFFSET_RANGE[1] < 0.05:
        raise ValueError(f"duration {duration} s leaves no room after the merger offsets {MERGER_OFFSET_RANGE}")
    rng = np.random.default_rng(seed)
    n_seg, n_win = round(SEGMENT_S * sample_rate), round(duration * sample_rate)
    w0 = (n_seg - n_win) // 2
    labels = np.zeros(n_windows, dtype=np.uint8)
    labels[rng.permutation(n_windows)[: n_windows // 2]] = 1
    draws = _draw_injections(rng, n_windows, snr_range)  # drawn for all windows: same stream either way
    glitch_draws = _draw_glitches(np.random.default_rng([seed, 1]), n_windows, glitch_fraction)  # own stream
    glitches = {k: np.full(n_windows, np.nan) for k in GLITCH_PARAMS}
    glitches["detector"] = np.full(n_windows, -1, dtype=np.int8)
    glitches["kind"] = np.full(n_windows, -1, dtype=np.int8)

    freqs, psd = _design_psd_grid(n_seg, float(sample_rate))
    noise_amp = np.where(freqs >= NOISE_F_MIN, np.sqrt(n_seg * sample_rate * np.where(np.isfinite(psd), psd, 0) / 4), 0)
    strain = np.empty((n_windows, len(DETECTORS), n_win), dtype=np.float32)
    inj = {k: np.full(n_windows, np.nan) for k in INJECTION_PARAMS}
    snr = np.zeros(n_windows, dtype=np.float32)
    step = max(1, n_windows // 10)
    for i in range(n_windows):
        data = np.zeros((len(DETECTORS), n_seg))
        if noise:
            # Real and imaginary parts each with variance n fs S / 4, so E|X_k|^2 = n fs S_k / 2.
            shape = (len(DETECTORS), len(freqs))
            data += np.fft.irfft(noise_amp * (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)), n_seg)
        if labels[i]:
            p = {k: float(draws[k][i]) for k in INJECTION_PARAMS[:7]}
            signals = detector_strains(**p, distance=REFERENCE_DISTANCE_MPC, sample_rate=sample_rate, f_low=f_low)
            rho = {d: optimal_snr(h, sample_rate, f_low) for d, (_, h) in signals.items()}
            scale = draws["snr"][i] / np.sqrt(sum(r**2 for r in rho.values()))
            t_peak = (w0 / sample_rate) + draws["merger_offset_s"][i]
            for c, (t_first, h) in enumerate(signals.values()):
                _place(data[c], scale * h, t_peak + t_first, sample_rate)
            for k in INJECTION_PARAMS[:8]:
                inj[k][i] = draws[k][i]
            inj["distance"][i] = REFERENCE_DISTANCE_MPC / scale
            inj["snr_H1"][i], inj["snr_L1"][i] = scale * rho["H1"], scale * rho["L1"]
            snr[i] = draws["snr"][i]
        elif glitch_draws["present"][i]:
            g = {k: glitch_draws[k][i] for k in GLITCH_PARAMS}
            h = sine_gaussian(g["frequency"], g["quality"], g["phase"], sample_rate)
            h *= g["snr"] / optimal_snr(np.pad(h, (0, n_seg - len(h))), sample_rate, f_low)
            t_first = w0 / sample_rate + g["time_offset_s"] - (len(h) // 2) / sample_rate
            _place(data[g["detector"]], h, t_first, sample_rate)
            for k in GLITCH_PARAMS:
                glitches[k][i] = g[k]
        strain[i] = whiten(data, freqs, psd, sample_rate, band)[:, w0 : w0 + n_win]
        if n_windows >= 100 and ((i + 1) % step == 0 or i + 1 == n_windows):
            print(f"cladbench.data.gw.simulate: {i + 1}/{n_windows} windows", file=sys.stderr, flush=True)

    with _atomic_h5(path) as f:
        f["windows/strain"] = strain
        f["windows/label"] = labels
        f["windows/snr"] = snr
        for k, v in inj.items():
            f[f"injections/{k}"] = v
        for k, v in glitches.items():
            f[f"glitches/{k}"] = v
        f.attrs.update(
            {
                "seed": seed,
                "sample_rate": sample_rate,
                "duration": duration,
                "f_low": f_low,
                "band_low": band[0],
                "band_high": band[1],
                "psd": "aLIGOZeroDetHighPower",
                "approximant": "IMRPhenomD",
                "snr_low": snr_range[0],
                "snr_high": snr_range[1],
                "glitch_fraction": glitch_fraction,
                "glitch_kinds": ",".join(GLITCH_KINDS),
                "merger_offset_range": np.array(MERGER_OFFSET_RANGE),
                "reference_gps": REFERENCE_GPS,
                "detectors": ",".join(DETECTORS),
                "noise": noise,
                "generator": "cladbench.data.gw.simulate",
                "lalsuite_version": lalsuite_version(),
            }
        )


def _read_gwosc(path) -> tuple[np.ndarray, float, float]:
    """(strain, sample rate, GPS start) of a GWOSC HDF5 file."""
    with h5py.File(path, "r") as f:
        ds = f["strain/Strain"]
        return ds[()].astype(float), 1.0 / float(ds.attrs["Xspacing"]), float(ds.attrs["Xstart"])


def real_windows(
    h1_path,
    l1_path,
    out_path,
    sample_rate: int = 2048,
    duration: float = 1.0,
    stride: float = 0.0625,
    band=(20.0, 500.0),
) -> None:
    """Sliding windows of whitened GWOSC strain (H1, L1) to HDF5 at `out_path`.

    Each detector is resampled to `sample_rate` (polyphase FIR, anti-aliased), its PSD estimated
    from the data themselves (Welch, WELCH_SEGMENT_S Hann segments, 50% overlap, median average so
    the event and glitches barely count), whitened by `whiten`, and REAL_EDGE_S dropped at each end.
    The whole whitened series (edges included) is stored too, as series/strain [2, n]."""
    series, gps0 = [], None
    for path in (h1_path, l1_path):
        x, rate, start = _read_gwosc(path)
        if gps0 is not None and start != gps0:
            raise ValueError(f"{path} starts at GPS {start}, not {gps0}")
        gps0 = start
        ratio = Fraction(sample_rate) / Fraction(rate).limit_denominator(1000)
        x = sps.resample_poly(x, ratio.numerator, ratio.denominator)
        nper = round(WELCH_SEGMENT_S * sample_rate)
        f, p = sps.welch(x, fs=sample_rate, nperseg=nper, noverlap=nper // 2, average="median")
        series.append(whiten(x, f, p, sample_rate, band))
    n = min(len(s) for s in series)
    data = np.stack([s[:n] for s in series])
    n_win, hop, edge = round(duration * sample_rate), round(stride * sample_rate), round(REAL_EDGE_S * sample_rate)
    starts = np.arange(edge, n - edge - n_win + 1, hop)
    if len(starts) == 0:
        raise ValueError(
            f"{n / sample_rate:.1f} s of data is too short for {REAL_EDGE_S} s edges and a {duration} s window"
        )
    strain = np.stack([data[:, s : s + n_win] for s in starts]).astype(np.float32)

    with _atomic_h5(out_path) as f:
        f["windows/strain"] = strain
        f["windows/t_start_gps"] = gps0 + starts / sample_rate
        f["series/strain"] = data.astype(np.float32)  # the whole whitened series: time slides cut it anew
        f.attrs.update(
            {
                "sample_rate": sample_rate,
                "duration": duration,
                "stride": stride,
                "band_low": band[0],
                "band_high": band[1],
                "psd": "welch-median",
                "psd_segment_s": WELCH_SEGMENT_S,
                "edge_s": REAL_EDGE_S,
                "detectors": ",".join(DETECTORS),
                "h1_source": Path(h1_path).name,
                "l1_source": Path(l1_path).name,
                "gps_start": gps0,
                "event_gps": EVENT_GPS,
                "generator": "cladbench.data.gw.real_windows",
                "lalsuite_version": lalsuite_version(),
            }
        )


STREAM_PIECE_S = 64.0  # a simulated stream is made in pieces of this length...
STREAM_EDGE_S = 2.0  # ...of which the middle is kept: the ends are tapered before whitening


def _uniform_in_volume(rng: np.random.Generator, n: int, distance_max: float) -> np.ndarray:
    return distance_max * rng.uniform(size=n) ** (1.0 / 3.0)


def simulate_stream(
    seed,
    duration_s: float,
    glitch_rate_hz: float,
    injection_spacing_s: float | None = None,
    distance_max_mpc: float = 4000.0,
    sample_rate: int = 2048,
    f_low: float = 20.0,
    band=(20.0, 500.0),
):
    """A long stretch of simulated two-detector data, whitened, in pieces: yields one dict per piece
    with `strain` [2, n] (float32, whitened as `simulate` does), `t0` (its first sample's time in s
    from the stream's start), `glitches` and `injections` (dicts of arrays: their parameters, times
    from the stream's start). Pieces are STREAM_PIECE_S of Gaussian design-PSD noise of which the
    middle (STREAM_EDGE_S off each end) is kept, so the stream is continuous in time though not in
    phase at the joins (a window never spans one). Glitches (GLITCH_KINDS, SNRs as in `simulate`)
    arrive as a Poisson process of `glitch_rate_hz` in the two detectors together, each in one.
    With injection_spacing_s, IMRPhenomD injections (masses, sky and orientation as in `simulate`)
    are placed that far apart (geocentric peak times, +-10% jitter), uniform in volume out to
    distance_max_mpc (Euclidean, no redshift); their optimal SNRs against the design PSD at their
    distance are stored (snr_H1, snr_L1, snr). `seed` may be an int or a sequence (numpy's
    SeedSequence entropy); same seed, same pieces."""
    rng = np.random.default_rng(seed)
    n_piece, edge = round(STREAM_PIECE_S * sample_rate), round(STREAM_EDGE_S * sample_rate)
    keep_s = (n_piece - 2 * edge) / sample_rate
    freqs, psd = _design_psd_grid(n_piece, float(sample_rate))
    noise_amp = np.where(
        freqs >= NOISE_F_MIN, np.sqrt(n_piece * sample_rate * np.where(np.isfinite(psd), psd, 0) / 4), 0
    )
    n_pieces = int(np.ceil(duration_s / keep_s - 1e-9))
    for piece in range(n_pieces):
        t0 = piece * keep_s  # stream time of the kept part's first sample
        shape = (len(DETECTORS), len(freqs))
        data = np.fft.irfft(noise_amp * (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)), n_piece)
        n_glitch = rng.poisson(glitch_rate_hz * keep_s)
        glitches = _draw_glitches(rng, n_glitch, 1.0)
        del glitches["present"]
        glitches["time_s"] = t0 + rng.uniform(0, keep_s, n_glitch)
        for i in range(n_glitch):
            h = sine_gaussian(glitches["frequency"][i], glitches["quality"][i], glitches["phase"][i], sample_rate)
            h *= glitches["snr"][i] / optimal_snr(np.pad(h, (0, n_piece - len(h))), sample_rate, f_low)
            t_first = glitches["time_s"][i] - t0 + STREAM_EDGE_S - (len(h) // 2) / sample_rate
            _place(data[glitches["detector"][i]], h, t_first, sample_rate)
        injections = {}
        if injection_spacing_s:
            slots = np.arange(t0 + injection_spacing_s / 2, t0 + keep_s - 1.0, injection_spacing_s)
            n_inj = len(slots)
            injections = _draw_injections(rng, n_inj, (0.0, 0.0))
            del injections["snr"], injections["merger_offset_s"]
            injections["time_s"] = slots + rng.uniform(-0.1, 0.1, n_inj) * injection_spacing_s
            injections["distance"] = _uniform_in_volume(rng, n_inj, distance_max_mpc)
            injections["snr_H1"], injections["snr_L1"] = np.zeros(n_inj), np.zeros(n_inj)
            for i in range(n_inj):
                p = {k: float(injections[k][i]) for k in INJECTION_PARAMS[:7]}
                signals = detector_strains(
                    **p, distance=float(injections["distance"][i]), sample_rate=sample_rate, f_low=f_low
                )
                for c, (name, (t_first, h)) in enumerate(signals.items()):
                    padded = np.pad(h, (0, (1 << int(np.ceil(np.log2(len(h))))) - len(h)))  # few lengths: PSDs cached
                    injections[f"snr_{name}"][i] = optimal_snr(padded, sample_rate, f_low)
                    _place(data[c], h, injections["time_s"][i] - t0 + STREAM_EDGE_S + t_first, sample_rate)
            injections["snr"] = np.hypot(injections["snr_H1"], injections["snr_L1"])
        strain = whiten(data, freqs, psd, sample_rate, band)[:, edge : n_piece - edge].astype(np.float32)
        yield {"strain": strain, "t0": t0, "glitches": glitches, "injections": injections}
