"""The aligner benchmark (and so gpu_check.py's aligner step) runs without network on random weights."""

from __future__ import annotations

from benchmarks import gpu_check
from benchmarks.aligner import measure


def test_the_benchmark_measures_each_batch() -> None:
    rows = measure("tiny", 1.0, [1, 2], "cpu", reps=1)
    assert [r["batch"] for r in rows] == [1, 2]
    assert all(r["forward_s_per_audio_s"] > 0 and r["viterbi_s_per_audio_s"] > 0 for r in rows)
    assert rows[0]["letters"] == 14


def test_gpu_check_measures_the_real_size_on_a_gpu() -> None:
    assert gpu_check.aligner_command(cuda=True)[2:] == [
        "benchmarks.aligner", "--size", "mms-300m", "--seconds", "10", "--batches", "1,4,16",
    ]  # fmt: skip
