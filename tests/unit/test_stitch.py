"""Stitching maths: exact sample accounting, crossfade gains, fade-in only at the start."""

import numpy as np
import pytest

from app.audio.stitch import (
    StitchPlan,
    StreamStitcher,
    apply_fade_in,
    crossfade,
    decoded_to_emitted_ratio,
    fade_gains,
)

SPT = 480
rng = np.random.default_rng(0)
TABLE = (rng.standard_normal((1000, SPT)) * 0.1).astype(np.float32)


def local_decode(tokens: np.ndarray) -> np.ndarray:
    """A context-free stand-in codec: each token is its own fixed 480 samples."""
    return TABLE[tokens].reshape(-1)


def stitch(plan: StitchPlan, tokens: np.ndarray, arrival_step: int = 1) -> tuple[np.ndarray, StreamStitcher]:
    st = StreamStitcher(plan)
    out = []
    n = len(tokens)
    for avail in list(range(0, n + 1, arrival_step)) + [n]:
        while (w := st.next_window(avail, False)) is not None:
            out.append(st.emit(w, local_decode(tokens[w.start : w.end])))
    while (w := st.next_window(n, True)) is not None:
        out.append(st.emit(w, local_decode(tokens[w.start : w.end])))
    assert st.done
    return (np.concatenate(out) if out else np.zeros(0, np.float32)), st


PLANS = [
    StitchPlan(75, 10, 20, 15),
    StitchPlan.from_seconds(1.5, 0.2, 0.4, 0.3),
    StitchPlan.from_seconds(0.5, 0.1, 0.1, 0.0),
    StitchPlan(5, 0, 1, 0),
    StitchPlan(3, 2, 1, 40, fade_in_samples=0),
]


@pytest.mark.parametrize("plan", PLANS, ids=lambda p: f"c{p.chunk_tokens}o{p.overlap_tokens}f{p.first_chunk_tokens}")
@pytest.mark.parametrize("n", [0, 1, 5, 19, 20, 29, 30, 31, 100, 107, 331])
@pytest.mark.parametrize("step", [1, 7])
def test_stitched_stream_equals_one_shot_decode(plan: StitchPlan, n: int, step: int) -> None:
    tokens = rng.integers(0, 1000, n)
    out, st = stitch(plan, tokens, step)
    ref = apply_fade_in(local_decode(tokens), plan.fade_in_samples)
    assert out.shape == (n * SPT,)  # exactly 480 samples per token, nothing dropped or repeated
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-6)
    assert st.emitted_tokens == n


def test_crossfade_gains_sum_to_one_and_never_fade_to_silence() -> None:
    for n in (1, 2, 480, 4800):
        g = fade_gains(n)
        np.testing.assert_allclose(g + g[::-1], 1.0, atol=1e-7)
        assert np.all(g > 0) and np.all(g < 1)
    a = np.full(1000, 0.5, np.float32)
    np.testing.assert_allclose(crossfade(a, a), a, atol=1e-7)  # equal signals stay at full level across a seam


def test_fade_in_only_at_the_start() -> None:
    plan = StitchPlan(10, 2, 4, 3, fade_in_samples=100)
    tokens = np.zeros(50, dtype=np.int64)
    out, _ = stitch(plan, tokens)
    ref = local_decode(tokens)
    assert np.all(np.abs(out[:100]) <= np.abs(ref[:100]) + 1e-7)
    np.testing.assert_allclose(out[100:], ref[100:], atol=1e-6)


def test_windows_keep_left_context_and_overlap() -> None:
    plan = StitchPlan(75, 10, 20, 15)
    st = StreamStitcher(plan)
    w0 = st.next_window(30, False)
    assert (w0.start, w0.end, w0.emit_start, w0.emit_end) == (0, 30, 0, 20)
    assert st.next_window(105, False) is not None  # windows may be planned ahead (pipelining)
    st2 = StreamStitcher(plan)
    w0 = st2.next_window(30, False)
    st2.emit(w0, local_decode(np.zeros(30, np.int64)))
    assert st2.next_window(104, False) is None  # needs emitted + chunk + overlap = 20 + 75 + 10
    w1 = st2.next_window(105, False)
    assert (w1.start, w1.end, w1.emit_start, w1.emit_end) == (5, 105, 20, 95)


def test_emit_out_of_order_is_refused() -> None:
    st = StreamStitcher(StitchPlan(5, 1, 2, 1))
    w0 = st.next_window(100, False)
    w1 = st.next_window(100, False)
    with pytest.raises(RuntimeError):
        st.emit(w1, np.zeros(w1.length * SPT, np.float32))
    with pytest.raises(ValueError):
        st.emit(w0, np.zeros(3, np.float32))


def test_decoded_to_emitted_ratio_is_below_the_original_scheme() -> None:
    plan = StitchPlan.from_seconds(1.5, 0.2, 0.4, 0.3)
    ratio = decoded_to_emitted_ratio(plan, 1000)
    assert 1.0 < ratio < 2.0


@pytest.mark.parametrize(
    "kwargs",
    [dict(chunk_tokens=0, overlap_tokens=0, first_chunk_tokens=1, left_context_tokens=0),
     dict(chunk_tokens=5, overlap_tokens=5, first_chunk_tokens=1, left_context_tokens=0),
     dict(chunk_tokens=5, overlap_tokens=1, first_chunk_tokens=1, left_context_tokens=-1)],
)
def test_invalid_plans(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        StitchPlan(**kwargs)


@pytest.mark.parametrize("plan", [StitchPlan(75, 10, 25, 15), StitchPlan(5, 0, 5, 0), StitchPlan(10, 9, 3, 4)])
def test_tokens_needed_is_exactly_when_the_next_window_is_ready(plan: StitchPlan) -> None:
    """The service wakes a waiting stream only at `tokens_needed()`: one token fewer must never be enough."""
    stitcher = StreamStitcher(plan)
    for planned in range(6):
        need = stitcher.tokens_needed()
        probe = StreamStitcher(plan)
        for _ in range(planned):  # the same state: regular windows do not depend on how many tokens wait
            probe.next_window(10**6, False)
        assert probe.next_window(need - 1, False) is None
        assert stitcher.next_window(need, False) is not None
