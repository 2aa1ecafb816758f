"""The metrics' pure helpers: the playback clock a listener hears, padding ratio."""

from __future__ import annotations

import pytest

from app.observability.metrics import PlaybackClock, padding_ratio


def test_playback_clock_counts_the_silence_a_player_hears() -> None:
    clock = PlaybackClock(100)  # 100 samples per second
    assert clock.add(10.0, 50) == (None, 0.0)  # plays 10.0 .. 10.5
    assert clock.add(10.2, 100) == (pytest.approx(0.2), 0.0)  # queued: plays until 11.5
    gap, underrun = clock.add(12.0, 100)  # 0.5 s after the audio ran out
    assert gap == pytest.approx(1.8) and underrun == pytest.approx(0.5)
    assert clock.add(12.5, 100)[1] == 0.0  # plays 12.0 .. 13.0, so 12.5 is in time


def test_playback_clock_slack_is_the_time_until_the_listener_runs_out() -> None:
    clock = PlaybackClock(100)
    assert clock.slack(10.5, started=10.0) == pytest.approx(-0.5)  # waiting 0.5 s for its first audio
    assert clock.slack(10.5, started=10.0, ahead_samples=50) == pytest.approx(0.0)  # a first window on its way
    clock.add(11.0, 300)  # plays 11.0 .. 14.0
    assert clock.slack(12.0, started=10.0) == pytest.approx(2.0)
    assert clock.slack(12.0, started=10.0, ahead_samples=100) == pytest.approx(3.0)
    assert clock.slack(15.0, started=10.0) == pytest.approx(-1.0)  # starving for a second: more urgent still


def test_padding_ratio() -> None:
    assert padding_ratio([10, 10]) == 0.0
    assert padding_ratio([10, 5]) == pytest.approx(0.25)
    assert padding_ratio([10, 5], padded_len=20) == pytest.approx(0.625)
    assert padding_ratio([]) == 0.0
