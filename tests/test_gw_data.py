"""The gravitational-wave dataset builder (cladbench.data.gw): simulated and real (GW150914) windows."""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import lal
import lalsimulation as lalsim
import numpy as np
import pytest

from cladbench.data import gw

N = 200
SEED = 7
SNR_RANGE = (8.0, 20.0)
FS = 2048
GWOSC = ("H-H1_LOSC_4_V2-1126259446-32.hdf5", "L-L1_LOSC_4_V2-1126259446-32.hdf5")


def read(path) -> tuple[dict[str, np.ndarray], dict]:
    with h5py.File(path, "r") as f:
        arrays = {}
        f.visititems(lambda name, obj: arrays.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
        return arrays, dict(f.attrs)


def band_keep() -> float:
    """The share of unit white noise that whiten's band-pass keeps on the simulation's segment grid."""
    n_seg = round(gw.SEGMENT_S * FS)
    return 2 * np.sum(gw.band_mask(np.fft.rfftfreq(n_seg, 1 / FS), (20.0, 500.0)) ** 2) / n_seg


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    path = tmp_path_factory.mktemp("gw") / "sim.h5"
    gw.simulate(path, N, SEED, snr_range=SNR_RANGE)
    return read(path)


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """The same injections as `sim`, without noise."""
    path = tmp_path_factory.mktemp("gw") / "clean.h5"
    gw.simulate(path, N, SEED, snr_range=SNR_RANGE, noise=False)
    return read(path)


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    mirror = Path(os.environ.get("DATA_MIRROR") or Path(__file__).resolve().parents[2] / "shared" / "data")
    h1, l1 = (mirror / "gwosc" / name for name in GWOSC)
    if not (h1.is_file() and l1.is_file()):
        pytest.skip(f"GW150914 GWOSC files not in the data mirror {mirror}")
    path = tmp_path_factory.mktemp("gw") / "real.h5"
    gw.real_windows(h1, l1, path)
    return read(path)


def test_reproducible_by_seed(tmp_path):
    runs = {}
    for name, seed in [("a", 3), ("b", 3), ("c", 4)]:
        gw.simulate(tmp_path / f"{name}.h5", 40, seed)
        runs[name] = read(tmp_path / f"{name}.h5")[0]
    assert runs["a"].keys() == runs["b"].keys()
    for key, value in runs["a"].items():
        assert value.tobytes() == runs["b"][key].tobytes(), key
    assert not np.array_equal(runs["a"]["windows/strain"], runs["c"]["windows/strain"])
    assert not np.array_equal(runs["a"]["injections/mass1"], runs["c"]["injections/mass1"], equal_nan=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.h5", "b.h5", "c.h5"]  # no temporaries left


def test_layout(sim):
    arrays, attrs = sim
    params = [
        "mass1",
        "mass2",
        "ra",
        "dec",
        "inclination",
        "polarization",
        "coa_phase",
        "merger_offset_s",
        "snr_H1",
        "snr_L1",
        "distance",
    ]  # distance (Mpc) beyond the specification: re-simulation needs it
    expected = {
        "windows/strain": (np.float32, (N, 2, FS)),
        "windows/label": (np.uint8, (N,)),
        "windows/snr": (np.float32, (N,)),
    }
    expected |= {f"injections/{p}": (np.float64, (N,)) for p in params}
    expected |= {f"glitches/{p}": (np.float64, (N,)) for p in gw.GLITCH_PARAMS if p not in ("detector", "kind")}
    expected |= {"glitches/detector": (np.int8, (N,)), "glitches/kind": (np.int8, (N,))}  # -1: none
    assert set(arrays) == set(expected)
    for name, (dtype, shape) in expected.items():
        assert arrays[name].dtype == dtype and arrays[name].shape == shape, name
    required = {
        "seed": SEED,
        "sample_rate": FS,
        "duration": 1.0,
        "f_low": 20.0,
        "band_low": 20.0,
        "band_high": 500.0,
        "psd": "aLIGOZeroDetHighPower",
        "approximant": "IMRPhenomD",
        "snr_low": 8.0,
        "snr_high": 20.0,
        "glitch_fraction": 0.0,
        "generator": "cladbench.data.gw.simulate",
        "lalsuite_version": gw.lalsuite_version(),
    }
    for key, value in required.items():
        assert attrs[key] == value, key
    assert list(attrs["merger_offset_range"]) == [0.6, 0.8]


def test_labels_snr_and_parameters_consistent(sim):
    arrays, _ = sim
    label, snr = arrays["windows/label"], arrays["windows/snr"].astype(float)
    sig = label == 1
    assert set(np.unique(label)) == {0, 1} and sig.sum() == N // 2
    assert np.all(snr[~sig] == 0)
    assert np.all((snr[sig] >= SNR_RANGE[0]) & (snr[sig] <= SNR_RANGE[1]))
    inj = {k.split("/")[1]: v for k, v in arrays.items() if k.startswith("injections/")}
    for name, values in inj.items():
        assert np.all(np.isnan(values[~sig])) and np.all(np.isfinite(values[sig])), name
    np.testing.assert_allclose(np.hypot(inj["snr_H1"][sig], inj["snr_L1"][sig]), snr[sig], rtol=1e-5)
    assert np.all((inj["mass2"][sig] >= 10) & (inj["mass2"][sig] <= inj["mass1"][sig]) & (inj["mass1"][sig] <= 50))
    lo, hi = gw.MERGER_OFFSET_RANGE
    assert np.all((inj["merger_offset_s"][sig] >= lo) & (inj["merger_offset_s"][sig] <= hi))
    assert np.all(np.abs(inj["dec"][sig]) <= np.pi / 2) and np.all(
        (inj["inclination"][sig] >= 0) & (inj["inclination"][sig] <= np.pi)
    )


def fd_snrs(p: dict[str, float], f_low: float = 20.0, df: float = 1 / 16) -> dict[str, float]:
    """Per-detector optimal SNR from the frequency-domain IMRPhenomD, independent of gw's time-domain path."""
    hp, hc = lalsim.SimInspiralChooseFDWaveform(
        p["mass1"] * lal.MSUN_SI,
        p["mass2"] * lal.MSUN_SI,
        0,
        0,
        0,
        0,
        0,
        0,
        p["distance"] * 1e6 * lal.PC_SI,
        p["inclination"],
        p["coa_phase"],
        0.0,
        0.0,
        0.0,
        df,
        f_low,
        FS / 2,
        f_low,
        None,
        lalsim.IMRPhenomD,
    )
    freqs = np.arange(hp.data.length) * df
    use = (freqs >= f_low) & (freqs <= FS / 2)
    psd = gw.design_psd(freqs[use])
    gmst = lal.GreenwichMeanSiderealTime(gw.REFERENCE_GPS)
    out = {}
    for name in ("H1", "L1"):
        det = lalsim.DetectorPrefixToLALDetector(name)
        fp, fc = lal.ComputeDetAMResponse(det.response, p["ra"], p["dec"], p["polarization"], gmst)
        h = fp * hp.data.data[use] + fc * hc.data.data[use]
        out[name] = float(np.sqrt(4 * np.sum(np.abs(h) ** 2 / psd) * df))
    return out


def test_injected_snr_recomputed_from_parameters(sim):
    arrays, _ = sim
    inj = {k.split("/")[1]: v for k, v in arrays.items() if k.startswith("injections/")}
    for i in np.flatnonzero(arrays["windows/label"]):
        recomputed = fd_snrs({k: float(v[i]) for k, v in inj.items()})
        for name in ("H1", "L1"):
            assert recomputed[name] == pytest.approx(inj[f"snr_{name}"][i], rel=0.05), (i, name)
        assert np.hypot(*recomputed.values()) == pytest.approx(float(arrays["windows/snr"][i]), rel=0.05)


def test_clean_injections_peak_at_offset_and_carry_their_snr(clean, sim):
    arrays, _ = clean
    label, x = arrays["windows/label"], arrays["windows/strain"].astype(float)
    assert np.array_equal(label, sim[0]["windows/label"])
    assert np.all(x[label == 0] == 0)
    # Whitened unit-variance noise: SNR^2 seen = sum(x^2) times the share of white noise the band keeps.
    keep = band_keep()
    for i in np.flatnonzero(label):
        inj = {k.split("/")[1]: float(v[i]) for k, v in arrays.items() if k.startswith("injections/")}
        # Only the last 0.6-0.8 s, in 20-500 Hz, fall in the window: a bit less than the optimal SNR.
        seen = np.sqrt(np.sum(x[i] ** 2) * keep)
        assert 0.75 * arrays["windows/snr"][i] <= seen <= 1.01 * arrays["windows/snr"][i], i
        for c, name in enumerate(("H1", "L1")):
            det = lalsim.DetectorPrefixToLALDetector(name)
            delay = lal.TimeDelayFromEarthCenter(det.location, inj["ra"], inj["dec"], gw.REFERENCE_GPS)
            peak = np.argmax(np.abs(x[i, c])) / FS
            assert abs(peak - (inj["merger_offset_s"] + delay)) < 0.01, (i, name)


def test_whitened_noise_has_flat_unit_spectrum(sim):
    arrays, _ = sim
    noise = arrays["windows/strain"][arrays["windows/label"] == 0].astype(float)  # [k, 2, FS]
    assert noise.var() == pytest.approx(1.0, rel=0.05)
    # Unit variance spread as whiten promises: E|rfft_k|^2 = n gain(f_k)^2 / keep, see band_keep.
    keep = band_keep()
    freqs = np.fft.rfftfreq(FS, 1 / FS)
    expected = FS * gw.band_mask(freqs, (20.0, 500.0)) ** 2 / keep
    measured = np.mean(np.abs(np.fft.rfft(noise, axis=-1)) ** 2, axis=(0, 1))
    for lo in (20, 140, 260, 380):
        band = (freqs >= lo) & (freqs < lo + 120)
        assert measured[band].sum() / expected[band].sum() == pytest.approx(1.0, abs=0.1), lo
    outside = (freqs < 19) | (freqs > 501)
    assert measured[outside].sum() < 1e-3 * measured.sum()


def test_real_windows(real):
    arrays, attrs = real
    x, t0 = arrays["windows/strain"], arrays["windows/t_start_gps"]
    assert set(arrays) == {"windows/strain", "windows/t_start_gps", "series/strain"}
    series = arrays["series/strain"]  # the whole whitened series the windows are cut from (time slides recut it)
    assert series.shape[0] == 2 and series.dtype == np.float32 and series.shape[1] / FS > 30
    for i in (0, len(x) // 2, len(x) - 1):
        start = round((t0[i] - attrs["gps_start"]) * FS)
        np.testing.assert_array_equal(series[:, start : start + FS], x[i])
    assert x.dtype == np.float32 and x.ndim == 3 and x.shape[1:] == (2, FS) and t0.dtype == np.float64
    assert len(t0) == len(x) > 100 and np.all(np.isfinite(x))
    np.testing.assert_allclose(np.diff(t0), 0.0625, atol=1e-9)
    assert t0[0] >= 1126259446 + gw.REAL_EDGE_S and t0[-1] + 1 <= 1126259446 + 32 - gw.REAL_EDGE_S
    assert attrs["event_gps"] == 1126259462.4 and attrs["generator"] == "cladbench.data.gw.real_windows"
    assert (attrs["h1_source"], attrs["l1_source"]) == GWOSC and attrs["sample_rate"] == FS
    # Away from the event, whitened data have unit variance (per detector on average; each window loosely).
    far = (t0 + 1 < gw.EVENT_GPS - 1) | (t0 > gw.EVENT_GPS + 1)
    var = x[far].astype(float).var(axis=2)
    np.testing.assert_allclose(var.mean(axis=0), 1.0, atol=0.1)
    assert np.all((var > 0.75) & (var < 1.25))
    # The largest whitened excursion anywhere is GW150914's, in a window that holds it.
    i, c, j = np.unravel_index(np.argmax(np.abs(x)), x.shape)
    assert abs(t0[i] + j / FS - gw.EVENT_GPS) < 0.1
    assert t0[i] <= gw.EVENT_GPS <= t0[i] + 1


def test_glitches_are_single_detector_seeded_and_stored(tmp_path):
    paths = [tmp_path / f"{name}.h5" for name in ("a", "b")]
    for path in paths:
        gw.simulate(path, 24, seed=7, noise=False, glitch_fraction=1.0)
    with h5py.File(paths[0]) as a, h5py.File(paths[1]) as b:
        np.testing.assert_array_equal(a["windows/strain"][()], b["windows/strain"][()])  # seeded
        label, strain = a["windows/label"][()], a["windows/strain"][()]
        g = {k: a[f"glitches/{k}"][()] for k in gw.GLITCH_PARAMS}
        assert a.attrs["glitch_fraction"] == 1.0
    noise = label == 0
    assert np.all(g["detector"][noise] >= 0) and np.all(g["detector"][~noise] == -1)  # noise windows only
    assert np.all(np.isnan(g["snr"][~noise])) and set(g["kind"][noise]) <= {0, 1}
    assert np.all((g["snr"][noise] >= gw.GLITCH_SNR_RANGE[0]) & (g["snr"][noise] <= gw.GLITCH_SNR_RANGE[1]))
    keep, ratios = band_keep(), []
    for i in np.flatnonzero(noise):
        energy = np.sum(strain[i].astype(float) ** 2, axis=1)
        det = g["detector"][i]
        assert energy[1 - det] < 1e-6 * energy[det]  # one detector only
        # As for the injections: SNR^2 seen = sum(x^2) times the band's share; a long low-frequency
        # sine-Gaussian near the window's edge loses part of itself to the cut.
        ratios.append(np.sqrt(energy[det] * keep) / g["snr"][i])
        peak = np.argmax(np.abs(strain[i, det])) / FS
        assert peak == pytest.approx(g["time_offset_s"][i], abs=0.03)
    assert 0.3 < min(ratios) and max(ratios) < 1.01
    assert 0.9 < np.median(ratios) < 1.01
    # The injections are those drawn without glitches: their own stream.
    gw.simulate(tmp_path / "c.h5", 24, seed=7, noise=False)
    with h5py.File(paths[0]) as a, h5py.File(tmp_path / "c.h5") as c:
        signal = c["windows/label"][()] == 1
        np.testing.assert_array_equal(a["windows/strain"][()][signal], c["windows/strain"][()][signal])
        assert np.all(c["glitches/detector"][()] == -1)


def test_glitch_snrs_are_heavy_tailed():
    draws = gw._draw_glitches(np.random.default_rng(0), 20000, 0.5)
    snr = draws["snr"]
    low, high = gw.GLITCH_SNR_RANGE
    assert snr.min() >= low and snr.max() <= high
    # Pareto(2) from 6: P(snr > 12) = 1/4 (less the cut), P(snr > 60) ~ 1 %: a tail a uniform draw lacks.
    assert np.mean(snr > 12) == pytest.approx(0.25, abs=0.02)
    assert 0.005 < np.mean(snr > 60) < 0.015
    assert np.mean(draws["present"]) == pytest.approx(0.5, abs=0.02)
