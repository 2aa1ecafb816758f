"""`/metrics` through prometheus_client after real requests, and the Grafana dashboard against them."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile as sf
from prometheus_client.parser import text_string_to_metric_families

from app.main import Components
from app.prompts import speech_prompt
from app.settings import Settings
from tools.alert_rules import VLLM_METRICS, promql_metric_names
from tools.fake_vllm import FakeVLLM
from tools.harness import LocalCodec, PassthroughNormalizer, serve

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "deploy" / "grafana" / "tts-dashboard.json"
TEXT = "Selamat pagi, the meeting is at three."
SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created"), "gauge": ("",)}


def parse(text: str) -> tuple[dict[tuple[str, tuple], float], dict[str, str]]:
    """`/metrics` -> ({(sample, sorted labels): value}, {family: type})."""
    values, types = {}, {}
    for family in text_string_to_metric_families(text):
        types[family.name] = family.type
        for s in family.samples:
            values[s.name, tuple(sorted(s.labels.items()))] = s.value
    return values, types


def total(values: dict, name: str, **labels: str) -> float:
    return sum(v for (n, ls), v in values.items() if n == name and set(labels.items()) <= set(ls))


def scrape(url: str) -> tuple[dict, dict]:
    resp = httpx.get(f"{url}/metrics")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain")
    return parse(resp.text)


def wav_clip(seconds: float = 1.0) -> bytes:
    import io

    t = np.arange(int(16000 * seconds)) / 16000
    buf = io.BytesIO()
    sf.write(buf, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 16000, format="WAV")
    return buf.getvalue()


# -- after real requests -------------------------------------------------------------------------------------


def test_metrics_after_speech_and_voice_clone(app_url: str, fake: FakeVLLM) -> None:
    before, _ = scrape(app_url)
    assert total(before, "tts_requests_in_flight") == 0
    resp = httpx.post(f"{app_url}/v1/audio/speech", json={"input": TEXT, "response_format": "wav"}, timeout=30)
    assert resp.status_code == 200
    vc = httpx.post(
        f"{app_url}/v1/audio/vc",
        files={"reference_audio": ("ref.wav", wav_clip(), "audio/wav")},
        data={"reference_text": "hello there", "generate_text": TEXT},
        timeout=30,
    )
    assert vc.status_code == 200
    assert httpx.post(f"{app_url}/v1/audio/speech", json={"input": ""}).status_code == 400
    values, types = scrape(app_url)

    speech = {"endpoint": "speech"}
    assert total(values, "tts_requests_total", endpoint="speech", format="wav", outcome="completed") == 1
    assert total(values, "tts_requests_total", endpoint="vc", outcome="completed") == 1
    assert total(values, "tts_requests_in_flight") == 0
    for name in ("tts_time_to_first_audio_seconds", "tts_request_duration_seconds", "tts_real_time_factor"):
        assert types[name] == "histogram"
        assert total(values, f"{name}_count", **speech) == 1, name
        assert total(values, f"{name}_bucket", le="+Inf", **speech) == 1, name
    n_tokens = len(fake.expected_tokens(speech_prompt("husein", TEXT)))
    assert total(values, "tts_audio_seconds_total", **speech) == pytest.approx(n_tokens / 50)
    # 120 tokens in 0.2 s + 0.5 s chunks: several chunks, so gaps between them
    assert total(values, "tts_inter_chunk_gap_seconds_count") >= 2
    assert types["tts_underrun_seconds"] == "histogram"

    decode_jobs = total(values, "tts_codec_jobs_total", kind="decode")
    assert decode_jobs >= 4 and total(values, "tts_codec_jobs_total", kind="encode") == 1
    assert total(values, "tts_codec_queue_wait_seconds_count", kind="decode") == decode_jobs
    assert total(values, "tts_codec_batch_size_sum", kind="decode") == decode_jobs
    assert total(values, "tts_codec_batch_seconds_count", kind="encode") == 1
    assert total(values, "tts_codec_padding_ratio_count") == total(values, "tts_codec_batch_size_count", kind="decode")
    assert total(values, "tts_codec_tokens_decoded_total") >= 2 * n_tokens
    assert total(values, "tts_codec_queue_depth", kind="decode") == 0
    assert ("tts_codec_recompiles_total", ()) in values


def test_a_backend_slower_than_real_time_shows_underruns(settings_for: Callable[..., Settings], fake: FakeVLLM) -> None:
    fake.rate = 20  # tokens/s: 0.4 s of audio per second, so the player must starve between chunks
    fake.n_tokens = 60
    with serve(settings_for(), Components(codec=LocalCodec(), normalizer=PassthroughNormalizer())) as url:
        assert httpx.post(f"{url}/v1/audio/speech", json={"input": TEXT}, timeout=60).status_code == 200
        values, _ = scrape(url)
    assert total(values, "tts_underrun_seconds_count") >= 1
    assert total(values, "tts_underrun_seconds_sum") > 0


def test_rejected_and_failed_requests_are_counted(settings_for: Callable[..., Settings], fake: FakeVLLM) -> None:
    fake.set_mode("http_error", count=1, status=500)
    with serve(settings_for(backend_retries=0), Components(codec=LocalCodec(), normalizer=PassthroughNormalizer())) as url:
        assert httpx.post(f"{url}/v1/audio/speech", json={"input": TEXT}, timeout=30).status_code >= 500
        values, _ = scrape(url)
    assert total(values, "tts_requests_total", outcome="failed") == 1
    assert total(values, "tts_requests_total", outcome="completed") == 0


# -- the Grafana dashboard ------------------------------------------------------------------------------------


def dashboard_exprs() -> list[str]:
    dash = json.loads(DASHBOARD.read_text())

    def walk(panels: list[dict]) -> list[dict]:
        return [q for p in panels for q in p.get("targets", []) + walk(p.get("panels", []))]

    return [t["expr"] for t in walk(dash["panels"])]


def test_promql_name_extraction() -> None:
    expr = 'histogram_quantile(0.95, sum by (le, kind) (rate(tts_x_bucket{kind="decode"}[$__rate_interval]))) / b'
    assert promql_metric_names(expr) == {"tts_x_bucket", "b"}


def test_dashboard_shows_only_metrics_that_exist_and_all_of_them(app_url: str) -> None:
    assert httpx.post(f"{app_url}/v1/audio/speech", json={"input": TEXT}, timeout=30).status_code == 200
    _, types = scrape(app_url)
    # the text parser reports each `_created` timestamp as a family of its own: they belong to their metric
    ours = {name: kind for name, kind in types.items() if name.startswith("tts_") and not name.endswith("_created")}
    exist = {name + suffix for name, kind in ours.items() for suffix in SUFFIXES[kind]}
    exprs = dashboard_exprs()
    assert len(exprs) >= 15
    used = set().union(*(promql_metric_names(e) for e in exprs))
    # besides ours, only the vLLM metrics that tools/alert_rules.py lists (tests/deploy/test_alerts.py checks them)
    assert used - VLLM_METRICS <= exist, f"the dashboard reads metrics that do not exist: {sorted(used - exist)}"
    shown = {name for name in ours if any(u == name or u.startswith(name + "_") for u in used)}
    assert shown == set(ours), f"metrics the dashboard does not show: {sorted(set(ours) - shown)}"
