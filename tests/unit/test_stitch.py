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
from app.codec.interface import Geometry

SPT = 480
GEOMETRY = Geometry(24_000, SPT)
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
    StitchPlan.from_seconds(1.5, 0.2, 0.4, 0.3, geometry=GEOMETRY),
    StitchPlan.from_seconds(0.5, 0.1, 0.1, 0.0, geometry=GEOMETRY),
    StitchPlan(5, 0, 1, 0),
    StitchPlan(3, 2, 1, 40, fade_in_samples=0),
    StitchPlan(75, 10, 20, 15, max_chunk_tokens=150),  # windows catch up when tokens pile up
    StitchPlan.from_seconds(1.5, 0.2, 0.5, 0.3, max_chunk_seconds=3.0, geometry=GEOMETRY),
    StitchPlan(5, 2, 1, 3, max_chunk_tokens=12),
]


@pytest.mark.parametrize(
    "plan", PLANS, ids=lambda p: f"c{p.chunk_tokens}o{p.overlap_tokens}f{p.first_chunk_tokens}m{p.max_chunk_tokens}"
)
@pytest.mark.parametrize("n", [0, 1, 5, 19, 20, 29, 30, 31, 100, 107, 331])
@pytest.mark.parametrize("step", [1, 7, 120])
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


def test_a_stream_behind_its_tokens_gets_longer_windows_up_to_the_max_chunk() -> None:
    plan = StitchPlan(75, 10, 20, 15, max_chunk_tokens=150)
    st = StreamStitcher(plan)
    w0 = st.next_window(1000, False)
    assert (w0.start, w0.end, w0.emit_start, w0.emit_end) == (0, 30, 0, 20)  # the first window never grows
    assert st.tokens_needed() == 105  # what wakes a waiting stream is still the regular window
    # short of the longest window, a window stays regular: windows of one length batch without padding
    w1 = st.next_window(179, False)
    assert (w1.start, w1.end, w1.emit_start, w1.emit_end) == (5, 105, 20, 95)
    w2 = st.next_window(1000, False)  # far behind: the longest window, max_chunk_tokens of chunk
    assert (w2.start, w2.end, w2.emit_start, w2.emit_end) == (80, 255, 95, 245)
    w3 = st.next_window(400, True)  # the rest fits one window: it is the last
    assert (w3.start, w3.end, w3.emit_start, w3.emit_end, w3.final) == (230, 400, 245, 400, True)
    assert st.next_window(400, True) is None
    regular = StreamStitcher(StitchPlan(75, 10, 20, 15))  # without max_chunk_tokens: the same windows as always
    regular.next_window(1000, False)
    w = regular.next_window(1000, False)
    assert (w.start, w.end, w.emit_start, w.emit_end) == (5, 105, 20, 95)


def test_catching_up_decodes_less_per_emitted_token() -> None:
    regular = StitchPlan.from_seconds(1.5, 0.2, 0.5, 0.3, geometry=GEOMETRY)
    catch_up = StitchPlan.from_seconds(1.5, 0.2, 0.5, 0.3, max_chunk_seconds=3.0, geometry=GEOMETRY)
    assert catch_up.max_chunk_tokens == 150 and regular.max_chunk_tokens == regular.chunk_tokens == 75
    # every token already there (a codec far behind): 1.30 -> 1.18 tokens decoded per token emitted
    assert decoded_to_emitted_ratio(catch_up, 1000) < decoded_to_emitted_ratio(regular, 1000) - 0.1


def test_max_window_caps_catching_up_and_never_shrinks_the_chunk() -> None:
    # the largest CUDA graph bucket (150 tokens) caps a catching-up window, context and overlap included
    plan = StitchPlan.from_seconds(1.5, 0.2, 0.5, 0.3, max_chunk_seconds=5.0, max_window_tokens=150, geometry=GEOMETRY)
    assert plan.max_chunk_tokens == 150 - 10 - 15
    assert StitchPlan.from_seconds(1.5, 0.2, 0.5, 0.3, max_chunk_seconds=1.0, geometry=GEOMETRY).max_chunk_tokens == 75
    assert StitchPlan.from_seconds(1.5, 0.2, 0.5, 0.3, max_chunk_seconds=3, max_window_tokens=50, geometry=GEOMETRY).max_chunk_tokens == 75
    with pytest.raises(ValueError):
        StitchPlan(75, 10, 20, 15, max_chunk_tokens=-1)


def test_emit_out_of_order_is_refused() -> None:
    st = StreamStitcher(StitchPlan(5, 1, 2, 1))
    w0 = st.next_window(100, False)
    w1 = st.next_window(100, False)
    with pytest.raises(RuntimeError):
        st.emit(w1, np.zeros(w1.length * SPT, np.float32))
    with pytest.raises(ValueError):
        st.emit(w0, np.zeros(3, np.float32))


def test_decoded_to_emitted_ratio_is_below_the_original_scheme() -> None:
    plan = StitchPlan.from_seconds(1.5, 0.2, 0.4, 0.3, geometry=GEOMETRY)
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
