"""Overload at 4x the limit, admission before any work, and a normalizer nobody can monopolize."""

from __future__ import annotations

import asyncio
import threading
import time

import httpx

from tests.faults.conftest import GatedNormalizer, in_flight, speech, wait_until

LIMIT = 4


async def test_four_times_the_limit(service, fake) -> None:
    normalizer = GatedNormalizer()
    normalizer.gate.set()
    fake.hold()  # admitted requests park at the backend, so the limit is really full
    with service(normalizer=normalizer, max_concurrent_requests=LIMIT) as url:
        async with httpx.AsyncClient(timeout=30) as client:
            tasks = [
                asyncio.create_task(client.post(f"{url}/v1/audio/speech", json=speech(input=f"request {i}")))
                for i in range(4 * LIMIT)
            ]
            assert await fake.wait_for_async(lambda: fake.active_streams == LIMIT, timeout=10)
            assert await fake.wait_for_async(lambda: sum(t.done() for t in tasks) == 3 * LIMIT, timeout=10)
            rejected = [t.result() for t in tasks if t.done()]
            for resp in rejected:
                assert resp.status_code == 429 and resp.json()["error"]["code"] == "overloaded"
                assert int(resp.headers["retry-after"]) >= 1
            # admission came first: the rejected requests never reached the normalizer nor the backend
            assert len(normalizer.calls) == LIMIT and len(fake.requests) == LIMIT
            fake.release()
            done = await asyncio.gather(*tasks)
    assert sum(r.status_code == 200 for r in done) == LIMIT
    assert fake.max_concurrent == LIMIT


def test_speech_is_normalized_before_waiting_normalize_calls(service, fake) -> None:
    normalizer = GatedNormalizer()
    with service(normalizer=normalizer, max_concurrent_normalize=2) as url, httpx.Client(timeout=30) as client:
        results: dict[str, int] = {}

        def post(name: str, path: str, body: dict) -> None:
            results[name] = client.post(f"{url}{path}", json=body).status_code

        first = threading.Thread(target=post, args=("tool1", "/v1/audio/normalize", {"input": "tool one"}))
        first.start()
        assert normalizer.entered.wait(5)  # the normalizer thread is busy with "tool one"
        threads = [
            threading.Thread(target=post, args=("tool2", "/v1/audio/normalize", {"input": "tool two"})),
        ]
        threads[0].start()
        time.sleep(0.3)  # "tool two" queues behind "tool one" (if it came later, the order below holds anyway)
        threads.append(threading.Thread(target=post, args=("speech", "/v1/audio/speech", speech(input="speech"))))
        threads[1].start()
        assert wait_until(lambda: in_flight(url) == 1, 5)
        # a third normalize call while two are in flight: its own lane is full
        third = client.post(f"{url}/v1/audio/normalize", json={"input": "tool three"})
        assert third.status_code == 429 and third.headers["retry-after"]
        normalizer.gate.set()
        for t in [first, *threads]:
            t.join(30)
        assert normalizer.calls == ["tool one", "speech", "tool two"]
        assert results == {"tool1": 200, "tool2": 200, "speech": 200}


def test_normalize_has_the_input_limit(service, fake) -> None:
    with service(max_input_chars=1000) as url:
        resp = httpx.post(f"{url}/v1/audio/normalize", json={"input": "a " * 5000}, timeout=30)
        assert resp.status_code == 400 and resp.json()["error"]["param"] == "input"
