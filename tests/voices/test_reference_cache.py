"""The cache of reference encodings: the same clip with the same transcript skips the encoder (counted in
/metrics), a different clip or transcript does not, the oldest entry leaves first, and size 0 turns it off."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from app.main import Components
from app.service.references import EncodingCache, clip_key
from app.settings import Settings
from tests.voices.test_saved_voices import TEXT, TRANSCRIPT, save, wav_bytes
from tools.fake_vllm import FakeVLLM
from tools.harness import LocalCodec, PassthroughNormalizer, serve


class CountingCodec(LocalCodec):
    """LocalCodec that counts the clips its encoder is given."""

    def __init__(self) -> None:
        super().__init__()
        self.encoded = 0

    def encode(self, clips: list[np.ndarray]) -> list[np.ndarray]:
        self.encoded += len(clips)
        return super().encode(clips)


def vc(url: str, audio: bytes, transcript: str = TRANSCRIPT) -> str:
    data = {"reference_text": transcript, "generate_text": TEXT, "stream": "false"}
    resp = httpx.post(f"{url}/v1/audio/vc", data=data, files={"reference_audio": ("c.wav", audio)}, timeout=30)
    assert resp.status_code == 200, resp.text
    return resp.headers["x-request-id"]


def cache_counts(url: str) -> dict[str, float]:
    counts = {"hit": 0.0, "miss": 0.0}
    for family in text_string_to_metric_families(httpx.get(f"{url}/metrics").text):
        for s in family.samples:
            if s.name == "tts_reference_cache_total":
                counts[s.labels["result"]] = s.value
    return counts


def test_the_same_clip_again_skips_the_encoder(settings_for: Callable[..., Settings], fake: FakeVLLM) -> None:
    codec = CountingCodec()
    with serve(settings_for(), Components(codec=codec, normalizer=PassthroughNormalizer())) as url:
        clip = wav_bytes()
        vc(url, clip)
        first = fake.requests[-1].body["prompt"]
        assert codec.encoded == 1 and cache_counts(url) == {"hit": 0, "miss": 1}
        vc(url, clip)
        assert codec.encoded == 1, "the second upload of the clip ran the encoder"
        assert fake.requests[-1].body["prompt"] == first  # the same reference tokens
        assert cache_counts(url) == {"hit": 1, "miss": 1}
        vc(url, clip, transcript="Another transcript of it.")  # the key holds the transcript too
        vc(url, wav_bytes(freq=330))  # another clip
        assert codec.encoded == 3 and cache_counts(url) == {"hit": 1, "miss": 3}
        # saving a voice from a clip already encoded runs no encoder either
        assert save(url, audio=clip).status_code == 201
        assert codec.encoded == 3 and cache_counts(url) == {"hit": 2, "miss": 3}
        # a taken name is refused before the encoder runs
        assert save(url, audio=wav_bytes(freq=700)).status_code == 409
        assert codec.encoded == 3


def test_size_zero_turns_the_cache_off(settings_for: Callable[..., Settings], fake: FakeVLLM) -> None:
    codec = CountingCodec()
    settings = settings_for(reference_cache_size=0)
    with serve(settings, Components(codec=codec, normalizer=PassthroughNormalizer())) as url:
        clip = wav_bytes()
        vc(url, clip)
        vc(url, clip)
        assert codec.encoded == 2 and cache_counts(url) == {"hit": 0, "miss": 2}


def test_the_least_recently_used_entry_leaves_first() -> None:
    cache = EncodingCache(2)
    a, b, c = (clip_key(bytes([n]) * 100, "t") for n in (1, 2, 3))
    cache.put(a, (1,))
    cache.put(b, (2,))
    assert cache.get(a) == (1,)  # a is now the most recent
    cache.put(c, (3,))
    assert cache.get(b) is None and cache.get(a) == (1,) and cache.get(c) == (3,) and len(cache) == 2
    assert clip_key(b"x", "one") != clip_key(b"x", "two") != clip_key(b"y", "two")
    off = EncodingCache(0)
    off.put(a, (1,))
    assert off.get(a) is None and len(off) == 0
