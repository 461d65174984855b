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
