"""A rolling restart of two real `tts-api` front-ends behind a real haproxy under light load (issue 32, item 2):
0 failed requests, 0 sockets cut mid-context.

haproxy (tools/proxy.py) checks `/ready` every 0.4 s and sends a request refused with 503 again elsewhere. Two
clients loop through it, one on streamed pcm requests, one on our WebSocket (config, a sentence, close); the
fake vLLM streams 60 tokens at 60 tokens/s. Each front-end in turn gets SIGTERM, drains, exits and is started
again on its port, and the next one goes only once haproxy serves through the first again.
"""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

from tests.process.test_drain import CODEC_DIR, drain_env
from tools.fake_vllm import FakeVLLM
from tools.harness import free_port, tts_api_process, wait_until
from tools.proxy import INSTALL_HINT, haproxy, haproxy_binary, servers_up

TOKENS = 60

pytestmark = [
    pytest.mark.skipif(not (CODEC_DIR / "pytorch_model.bin").exists(), reason=f"no tiny codec at {CODEC_DIR}"),
]


def speak_http(url: str, n: int) -> str:
    body = {"input": f"Rolling restart request {n}.", "response_format": "pcm"}
    try:
        with httpx.stream("POST", f"{url}/v1/audio/speech", json=body, timeout=60) as r:
            got = sum(len(piece) for piece in r.iter_bytes())
            if r.status_code != 200:
                return f"http {r.status_code}"
    except httpx.HTTPError as exc:
        return f"http cut: {exc!r}"
    return "complete" if got == TOKENS * 960 else f"http {got} bytes of {TOKENS * 960}"


def speak_ws(url: str, n: int) -> str:
    got, last, tokens = 0, "", 0
    try:
        with connect(url.replace("http://", "ws://") + "/v1/audio/speech/stream", open_timeout=30) as ws:
            ws.send(json.dumps({"type": "config", "response_format": "pcm"}))
            ws.send(json.dumps({"type": "text", "text": f"Rolling restart socket {n}."}))
            ws.send(json.dumps({"type": "close"}))
            for message in ws:
                if isinstance(message, bytes):
                    got += len(message)
                else:
                    event = json.loads(message)
                    last, tokens = event["type"], event.get("usage", {}).get("output_tokens", tokens)
            code = ws.close_code
    except Exception as exc:  # noqa: BLE001 - any failure of the socket is reported
        return f"ws cut: {exc!r}"
    if last == "done" and code == 1000 and tokens > 0 and got == tokens * 960:
        return "complete"
    return f"ws {last} {code}, {got} bytes for {tokens} tokens"


def test_rolling_restart_behind_haproxy_fails_nothing(tmp_path: Path) -> None:
    if haproxy_binary() is None:
        pytest.fail(INSTALL_HINT, pytrace=False)
    with FakeVLLM(n_tokens=TOKENS, rate=60) as fake, ExitStack() as cleanup:
        env = drain_env(fake, DRAIN_GRACE_SECONDS="3", SHUTDOWN_GRACE_SECONDS="20", LOG_LEVEL="warning")
        ports = [free_port(), free_port()]
        front_ends = [ExitStack(), ExitStack()]
        for stack in front_ends:
            cleanup.callback(lambda s=stack: s.close())

        def start(i: int) -> None:
            front_ends[i] = ExitStack()
            front_ends[i].enter_context(tts_api_process(env, cwd=tmp_path, port=ports[i]))

        with ThreadPoolExecutor(2) as pool:
            list(pool.map(start, range(2)))
        url = cleanup.enter_context(haproxy(free_port(), [f"127.0.0.1:{p}" for p in ports]))
        wait_until(lambda: servers_up(url) == 2, 30, "haproxy to send to both front-ends")
        outcomes: list[str] = []
        stop = threading.Event()

        def client(speak) -> None:  # noqa: ANN001
            n = 0
            while not stop.is_set():
                outcomes.append(speak(url, n))
                n += 1

        clients = [threading.Thread(target=client, args=(f,), daemon=True) for f in (speak_http, speak_ws)]
        for t in clients:
            t.start()
        try:
            wait_until(lambda: outcomes.count("complete") >= 4, 60, "requests through haproxy")
            for i in range(2):
                front_ends[i].close()  # SIGTERM: drained, exited (its status checked)
                start(i)  # on its port again, ready
                wait_until(lambda: servers_up(url) == 2, 30, "haproxy to send to it again")
                seen = len(outcomes)
                wait_until(lambda seen=seen: len(outcomes) >= seen + 4, 60, "requests after the restart")
        finally:
            stop.set()
            for t in clients:
                t.join(60)
        failed = [o for o in outcomes if o != "complete"]
        assert not failed, failed
        assert len(outcomes) >= 12
        assert fake.active_streams == 0
