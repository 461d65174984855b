"""The search's statistics (cladbench.data.search): ranking statistic, clustering, FAR, time slides."""

from __future__ import annotations

import numpy as np
import pytest

from cladbench.data.search import cluster, false_alarm_rate, ranking_statistic, slide_windows, threshold_at_far

RATE = 2048


def test_the_logit_difference_orders_triggers_that_the_softmax_saturates():
    logits = np.array([[-20.0, 20.0], [-30.0, 30.0], [1.0, 0.0]])
    softmax = np.exp(logits[:, 1]) / np.exp(logits).sum(axis=1)
    assert softmax.astype(np.float32)[0] == softmax.astype(np.float32)[1] == 1.0  # saturated in float
    np.testing.assert_array_equal(ranking_statistic(logits), [40.0, 60.0, -1.0])
    with pytest.raises(ValueError, match="expected"):
        ranking_statistic(np.zeros((3, 3)))


def test_clustering_merges_triggers_closer_than_the_window_into_their_loudest():
    times = np.array([10.3, 10.0, 10.1, 12.0, 12.05, 20.0])
    stats = np.array([5.0, 1.0, 3.0, 2.0, 7.0, 0.5])
    t, s = cluster(times, stats, window=0.25)  # 10.0-10.1-10.3 chain into one event
    np.testing.assert_array_equal(t, [10.3, 12.05, 20.0])
    np.testing.assert_array_equal(s, [5.0, 7.0, 0.5])
    t, s = cluster(times, stats, window=0.01)  # nothing is that close
    assert len(t) == 6
    assert len(cluster(np.array([]), np.array([]), 1.0)[0]) == 0


def test_far_on_a_synthetic_trigger_list_has_its_known_answer():
    background = np.arange(1, 101, dtype=float)  # 100 events, statistics 1..100, in 3600 s
    assert false_alarm_rate(background, 3600.0, 91.0) == pytest.approx(10 / 3600)
    assert false_alarm_rate(background, 3600.0, 100.5) == 0.0
    np.testing.assert_allclose(false_alarm_rate(background, 3600.0, [0.0, 50.5]), [100 / 3600, 50 / 3600])
    # FAR 1 per hour in one hour of background: at most one event at or above the threshold.
    threshold = threshold_at_far(background, 3600.0, 1 / 3600)
    assert 99.0 < threshold <= 100.0
    assert false_alarm_rate(background, 3600.0, threshold) <= 1 / 3600
    assert threshold_at_far(background, 3600.0, 0.0) > 100.0  # louder than all of it
    assert threshold_at_far(background, 3600.0, 1.0) == -np.inf
    with pytest.raises(ValueError, match="livetime"):
        false_alarm_rate(background, 0.0, 1.0)


def test_time_slides_never_pair_a_detector_with_itself_nor_include_the_event():
    n, edge = 32 * RATE, 4 * RATE
    event = 16 * RATE + RATE // 5
    windows = slide_windows(n, RATE, 1.0, 0.125, 0.5, 40, event_sample=event, exclude_s=1.0, edge_samples=edge)
    k, h1, l1 = windows.T
    assert set(k) == set(range(1, 41))
    lag = (l1 - h1) % (n - 2 * edge)
    assert np.all(np.minimum(lag, n - 2 * edge - lag) >= 0.5 * RATE)  # never zero lag, never the same data
    for starts in (h1, l1):
        assert np.all((starts + RATE <= event - RATE) | (starts >= event + RATE))  # both detectors' windows
        assert np.all((starts >= edge) & (starts + RATE <= n - edge))
    # every slide of H1 windows away from the event is there: (24 s - 1 s) / 0.125 s + 1 = 185 starts per slide
    assert 0 < len(windows) < 40 * 185
    with pytest.raises(ValueError, match="light-travel"):
        slide_windows(n, RATE, 1.0, 0.125, 0.05, 4)
    with pytest.raises(ValueError, match="zero lag"):
        slide_windows(n, RATE, 1.0, 0.125, 0.5, 48, edge_samples=edge)  # 48 x 0.5 s = the 24 s span


# --- the search's jobs (cladbench.gw_search) and its simulated data (cladbench.data.gw.simulate_stream)


def test_distance_injections_recompute_to_their_stored_snr():
    """Each stored injection, rebuilt by LAL's own detector projection and SNR (not ours), gives
    the stored SNR within 1%: the stored parameters and distance are those injected."""
    import lal
    import lalsimulation as lalsim

    from cladbench.data import gw

    inj = next(gw.simulate_stream([7], 60, 0.0, injection_spacing_s=6.0))["injections"]
    assert len(inj["distance"]) >= 8 and np.all((inj["distance"] > 0) & (inj["distance"] <= 4000))
    for i in range(len(inj["distance"])):
        hp, hc = lalsim.SimInspiralChooseTDWaveform(
            *(inj[m][i] * lal.MSUN_SI for m in ("mass1", "mass2")), 0, 0, 0, 0, 0, 0,
            inj["distance"][i] * 1e6 * lal.PC_SI, inj["inclination"][i], inj["coa_phase"][i], 0.0, 0.0, 0.0,
            1 / RATE, 20.0, 20.0, None, lalsim.IMRPhenomD,
        )  # fmt: skip
        hp.epoch += gw.REFERENCE_GPS
        hc.epoch += gw.REFERENCE_GPS
        for det in gw.DETECTORS:
            h = lalsim.SimDetectorStrainREAL8TimeSeries(
                hp, hc, inj["ra"][i], inj["dec"][i], inj["polarization"][i], lalsim.DetectorPrefixToLALDetector(det)
            )
            n = 1 << int(np.ceil(np.log2(h.data.length)))
            h = lal.ResizeREAL8TimeSeries(h, 0, n)
            psd = lal.CreateREAL8FrequencySeries("psd", h.epoch, 0.0, RATE / n, lal.DimensionlessUnit, n // 2 + 1)
            lalsim.SimNoisePSD(psd, 10.0, lalsim.SimNoisePSDaLIGOZeroDetHighPowerPtr)
            assert lalsim.MeasureSNR(h, psd, 20.0, -1.0) == pytest.approx(inj[f"snr_{det}"][i], rel=0.01)
    np.testing.assert_allclose(inj["snr"], np.hypot(inj["snr_H1"], inj["snr_L1"]))


def test_injections_are_uniform_in_volume_and_the_stream_is_seeded():
    from scipy import stats

    from cladbench.data import gw

    d = gw._uniform_in_volume(np.random.default_rng(1), 4000, 4000.0)
    assert stats.kstest((d / 4000.0) ** 3, "uniform").pvalue > 1e-3
    a, b = (list(gw.simulate_stream([3, 1], 100, 0.2, injection_spacing_s=6.0)) for _ in range(2))
    assert len(a) == 2 and [p["t0"] for p in a] == [0.0, gw.STREAM_PIECE_S - 2 * gw.STREAM_EDGE_S]
    for p, q in zip(a, b):
        np.testing.assert_array_equal(p["strain"], q["strain"])
        keep = p["strain"].shape[1] / RATE
        assert np.all((p["glitches"]["time_s"] >= p["t0"]) & (p["glitches"]["time_s"] < p["t0"] + keep))
        assert np.all((p["injections"]["time_s"] > p["t0"] + 1) & (p["injections"]["time_s"] < p["t0"] + keep - 0.5))
    assert sum(len(p["glitches"]["snr"]) for p in a) > 5  # 0.2 Hz over 120 s


def _random_network(tmp_path, scale=1.0, name="r0"):
    """A (randomly initialised) GW CNN as the search reads a training run: a record and its params."""
    import json

    from cladbench import nn

    model = nn.CNN(2, RATE, conv="4k16p4,8k8p4", hidden=16, engine="manual", seed=2)
    model.params.data.mul_(scale)  # larger weights: logits far from zero
    np.save(tmp_path / f"{name}.npy", model.params.detach().numpy())
    record = {"status": "ok", "params_file": str(tmp_path / f"{name}.npy"), "engine": "manual"}
    record.update(model_kind="cnn", model_dims=model.dims, layout="rowmajor")
    (tmp_path / f"{name}.json").write_text(json.dumps(record))
    return model, tmp_path / f"{name}.json"


def test_window_statistics_cut_each_detector_at_its_own_start(tmp_path):
    import torch

    from cladbench.gw_search import Network, window_statistics

    model, path = _random_network(tmp_path, scale=3.0)
    net = Network.from_record(path)
    strain = np.random.default_rng(0).standard_normal((2, 6 * RATE)).astype(np.float32)
    h1, l1 = np.array([0, 100, 2000, 3 * RATE]), np.array([5 * RATE - 7, 100, 0, 1234])
    got = window_statistics([net], strain, h1, l1, RATE)[net.run]
    x = torch.from_numpy(
        np.stack([np.concatenate([strain[0, a : a + RATE], strain[1, b : b + RATE]]) for a, b in zip(h1, l1)])
    )
    with torch.no_grad():
        logits = model(x)
    np.testing.assert_allclose(got, (logits[:, 1] - logits[:, 0]).numpy(), rtol=1e-5, atol=1e-6)
    swapped = window_statistics([net], strain, l1, h1, RATE)[net.run]
    assert not np.allclose(swapped[[0, 2, 3]], got[[0, 2, 3]])  # the detectors' starts are not interchangeable


def test_a_record_without_params_is_refused_with_a_reason(tmp_path, capsys):
    import json

    from cladbench.gw_search import main

    (tmp_path / "r.json").write_text(json.dumps({"status": "ok", "engine": "manual"}))
    assert main(["simulated", "--records", str(tmp_path / "r.json"), "--out", str(tmp_path), "--seed", "1",
                 "--hours", "0.01", "--glitch-rate-hz", "0"]) == 2  # fmt: skip
    assert "--params-out" in capsys.readouterr().err


def test_tail_threshold_recovers_an_exponential_background():
    from cladbench.gw_search import tail_threshold

    rng = np.random.default_rng(4)
    livetime, rate0 = 3600.0, 0.5  # events per s above 0, exponential with unit slope
    background = rng.exponential(1.0, rng.poisson(rate0 * livetime))
    far = 1 / (30 * 86400.0)
    t, err = tail_threshold(background, livetime, far)
    assert abs(t - np.log(rate0 / far)) < 3 * err and 0 < err < 0.5 * t


def test_summary_of_synthetic_scans(tmp_path):
    """Known background and injections give the known significance, thresholds and distances."""
    import pandas as pd

    from cladbench.data.gw import EVENT_GPS
    from cladbench.gw_search import SECONDS_PER_MONTH, summary

    real, bg, fg = (tmp_path / d for d in ("real", "bg", "fg"))
    for d in (real, bg, fg):
        d.mkdir()
    slides = pd.DataFrame({"kind": "slide", "segment": 1 + np.arange(100) % 10, "stat": np.linspace(0, 5, 100)})
    zero = pd.DataFrame({"kind": "zero-lag", "segment": 0, "stat": [12.0, 4.0, 6.0]})
    events = pd.concat(
        [zero.assign(time_gps=[EVENT_GPS + 0.02, EVENT_GPS - 5, EVENT_GPS + 3]), slides.assign(time_gps=0.0)]
    )
    events.assign(network="n", engine="manual").to_csv(real / "events.csv", index=False)
    pd.DataFrame(
        {"kind": ["zero-lag"] + ["slide"] * 10, "segment": range(11), "livetime_s": [24.0] + [360.0] * 10}
    ).to_csv(real / "segments.csv", index=False)
    pd.DataFrame({"network": ["n"], "engine": ["manual"], "time_gps": [EVENT_GPS], "stat": [12.0]}).to_csv(
        real / "trace.csv", index=False
    )
    sim = (
        np.arange(1000) / 100.0
    )  # 1000 events over one month of background: FAR f per month <-> threshold 10 - f / 100
    pd.DataFrame(
        {"network": "n", "engine": "manual", "kind": "simulated", "segment": 0, "time_s": 0.0, "stat": sim}
    ).to_csv(bg / "events.csv", index=False)
    pd.DataFrame({"kind": ["simulated"], "segment": [0], "livetime_s": [SECONDS_PER_MONTH]}).to_csv(
        bg / "segments.csv", index=False
    )
    inj = np.linspace(0, 10, 801)[:-1]  # stats 0 .. 9.9875: a fraction (10 - t) / 10 found at threshold t
    pd.DataFrame({"network": "n", "engine": "manual", "distance": 1.0, "stat": inj}).to_csv(
        fg / "injections.csv", index=False
    )
    tables = summary(real, [bg], [fg], 1000.0, [10.0, 100.0])

    sig = tables["gw_significance"].iloc[0]
    assert sig.gw150914_stat == 12.0 and sig.slide_events_louder == 0 and sig.slide_livetime_h == 1.0
    assert sig.far_bound_per_h == 1.0 and sig.loudest_slide_stat == 5.0
    assert 4.949 < sig.threshold_1_per_h < 4.95  # just above the second loudest of 100 in 1 h: one allowed louder
    assert sig.loudest_other_zero_lag_stat == 6.0 and sig.other_zero_lag_above_threshold == 1
    measured = tables["gw_sensitivity"].query("method == 'measured'").set_index("far_per_month")
    for far in (10.0, 100.0):
        threshold = measured.loc[far, "threshold"]
        assert threshold == pytest.approx(10 - far / 100, abs=0.011)
        found = np.sum(inj >= threshold)
        assert measured.loc[far, "found"] == found
        assert measured.loc[far, "distance_mpc"] == pytest.approx(1000.0 * (found / 800) ** (1 / 3))
    assert set(tables["gw_background"].kind) == {"slide", "simulated"}
