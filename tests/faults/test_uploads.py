"""Reference uploads: refused while they stream in, measured from the header before decoding, bounded."""

from __future__ import annotations

import io
import threading

import httpx
import numpy as np
import soundfile as sf

from tests.faults.conftest import in_flight, open_request, read_all, rss_bytes, wait_until

FIELDS = {"reference_text": "a reference", "generate_text": "hello there", "response_format": "pcm", "stream": "false"}


def multipart(audio: bytes, name: str = "ref.wav") -> tuple[bytes, dict[str, str]]:
    request = httpx.Request("POST", "http://x/v1/audio/vc", data=FIELDS, files={"reference_audio": (name, audio)})
    body = request.read()
    return body, {k: v for k, v in request.headers.items() if k.lower() in ("content-type", "content-length")}


def status_and_error(raw: bytes) -> tuple[int, str]:
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), body.decode(errors="replace")


def silent_flac(seconds: int, rate: int = 8000) -> bytes:
    buf = io.BytesIO()
    with sf.SoundFile(buf, "w", samplerate=rate, channels=1, format="FLAC", subtype="PCM_16") as f:
        block = np.zeros(rate * 60, np.int16)
        for _ in range(seconds // 60):
            f.write(block)
    return buf.getvalue()


def test_a_declared_oversize_upload_is_refused_before_its_body(service, fake) -> None:
    with service(max_reference_bytes=64 * 1024) as url:
        headers = {"Content-Type": "multipart/form-data; boundary=xyz", "Content-Length": str(50 * 1024 * 1024)}
        sock = open_request(url, "/v1/audio/vc", b"", headers, send_body=False)  # headers only, no body
        status, body = status_and_error(read_all(sock))
        assert status == 413 and "payload_too_large" in body


def test_an_undeclared_oversize_upload_is_refused_while_it_streams_in(service, fake) -> None:
    with service(max_reference_bytes=64 * 1024) as url:
        sent = 0

        def chunks():  # chunked transfer encoding: no Content-Length to check
            nonlocal sent
            yield b"--xyz\r\nContent-Disposition: form-data; name=\"reference_audio\"; filename=\"a.wav\"\r\n\r\n"
            for _ in range(2000):
                sent += 16384
                yield b"\0" * 16384

        resp = httpx.post(
            f"{url}/v1/audio/vc",
            content=chunks(),
            headers={"Content-Type": "multipart/form-data; boundary=xyz"},
            timeout=30,
        )
        assert resp.status_code == 413 and resp.json()["error"]["param"] == "reference_audio"
        assert in_flight(url) == 0


def test_an_hour_of_silence_is_refused_from_its_header_without_decoding(service, fake) -> None:
    body, headers = multipart(silent_flac(3600), "silence.flac")
    assert len(body) < 2 * 1024 * 1024  # small on the wire, an hour long
    with service() as url:
        before = rss_bytes()
        results: list[tuple[int, str]] = []

        def post() -> None:
            results.append(status_and_error(read_all(open_request(url, "/v1/audio/vc", body, headers))))

        threads = [threading.Thread(target=post) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        growth = rss_bytes() - before
        for status, text in results:
            assert status == 400 and "3600.0 s" in text
        # decoding one of them would take 115 MB (an hour of float32 at 8 kHz); four at once 460 MB
        assert growth < 60 * 1024 * 1024, growth


def test_sample_rates_outside_8_to_192_khz_are_a_400(service, fake) -> None:
    with service() as url:
        for rate in (1_000_003, 4000):
            buf = io.BytesIO()
            sf.write(buf, np.zeros(rate // 2, np.float32), rate, format="WAV", subtype="PCM_16")
            body, headers = multipart(buf.getvalue())
            status, text = status_and_error(read_all(open_request(url, "/v1/audio/vc", body, headers)))
            assert status == 400 and f"{rate} Hz" in text


def test_concurrent_references_have_their_own_bounded_lane(service, fake) -> None:
    buf = io.BytesIO()
    sf.write(buf, np.zeros(16000, np.float32), 16000, format="WAV", subtype="PCM_16")
    body, headers = multipart(buf.getvalue())
    with service(max_concurrent_references=2, max_concurrent_requests=16) as url:
        # two uploads that stop half-way hold the lane
        holders = [open_request(url, "/v1/audio/vc", body[: len(body) // 2], headers) for _ in range(2)]
        assert wait_until(lambda: in_flight(url) == 2, 5)
        status, text = status_and_error(read_all(open_request(url, "/v1/audio/vc", body, headers)))
        assert status == 429 and "voice-cloning" in text
        # plain speech is not in that lane
        assert httpx.post(f"{url}/v1/audio/speech", json={"input": "hi there"}, timeout=30).status_code == 200
        for s in holders:
            s.close()
        assert wait_until(lambda: in_flight(url) == 0, 5)
        status, _ = status_and_error(read_all(open_request(url, "/v1/audio/vc", body, headers)))
        assert status == 200
