"""A slow reader gets every byte, holds bounded memory, and starves nobody."""

from __future__ import annotations

import time

import httpx

from tests.faults.conftest import open_json, rss_bytes, speech
from tests.faults.test_backend_faults import dechunk, received_pcm


def test_a_slow_reader_gets_all_its_audio_and_does_not_delay_others(service, fake) -> None:
    fake.n_tokens = 1500  # 30 s of audio, 1.44 MB of PCM, generated as fast as the fake can
    with service() as url:
        before = rss_bytes()
        sock = open_json(url, "/v1/audio/speech", speech(response_format="pcm"))
        raw = sock.recv(4096)
        # while the slow reader has barely started, another client is served in full
        other = httpx.post(f"{url}/v1/audio/speech", json=speech(response_format="pcm", input="other"), timeout=30)
        assert other.status_code == 200 and len(other.content) == 1500 * 960
        while piece := sock.recv(8192):  # about 0.8 MB/s: slower than the audio is made
            raw += piece
            time.sleep(0.01)
        growth = rss_bytes() - before
        status, body, complete = dechunk(raw)
        assert status == 200 and complete
        assert body == received_pcm(fake, 1500)
        assert growth < 100 * 1024 * 1024, growth
