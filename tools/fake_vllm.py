"""A fake vLLM OpenAI-compatible server for the tests and benchmarks.

It speaks what the service asks of vLLM: streaming `/v1/completions` (SSE, `stream_options.include_usage`,
`return_token_ids`), `/v1/models`, `/tokenize` and `/health`; it emits deterministic speech tokens `<|s_N|>`,
paces them at a configurable rate, and can misbehave on demand (HTTP errors, garbage events, stalls, dropped
connections, mid-stream error events, a slow first token, the whole server dying mid-stream). Every completions
request is recorded (body, headers, tokens sent, cancelled by the client, the speech tokens it resumed from).

In-process use (real sockets, uvicorn in a background thread on a free port)::

    with FakeVLLM(n_tokens=120, rate=400) as fake:
        url = fake.url                                 # "http://127.0.0.1:<port>"
        fake.set_mode("stall", count=1, after=10)      # the next request stalls after 10 tokens
        ...
        assert fake.wait_for(lambda: fake.requests[-1].cancelled, timeout=2)

``fake.hold()`` / ``fake.release()`` park every request before its next token, to get N in flight at once.

Standalone (the benchmarks): ``python -m tools.fake_vllm --port 9093 --rate 400 --n-tokens 300``;
``GET /_fake/stats`` gives the request count and the streams open.

Token semantics: a request generates ``n_tokens`` speech tokens then the EOS token. The speech tokens are
``expected_tokens(prompt, n_tokens, request_seed=body["seed"])``. When ``max_tokens <= n_tokens`` only
``max_tokens`` speech tokens are sent and the last event has finish_reason "length"; otherwise the last event
has finish_reason "stop" and, like vLLM, the EOS text is not included (``text: ""``).
``usage.completion_tokens`` counts the EOS token. ``temperature``, ``repetition_penalty`` and ``seed`` are
validated; ``temperature`` and ``repetition_penalty`` do not change the output.

Resumed generations (the service's backend failover): a prompt whose answer already starts with speech tokens
(``<|s_N|>`` after its last ``<|speech_start|>``) goes on with the same sequence, so that the tokens of both
requests together are the tokens of one. The speech tokens it carries must be exactly the first ones of that
sequence, the ones a fake sent before it died: anything else (one lost, repeated or changed) is a 400, and the
record's ``resumed`` lists what it carried.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import logging
import random
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from app.prompts import SPEECH_START, SPEECH_TOKEN_RE, speech_token, speech_tokens_text

MODEL_NAME = "TTS-model"
# Token ids as in a Qwen3 vocabulary extended with the speech tokens: `<|s_N|>` is SPEECH_TOKEN_ID_BASE + N.
SPEECH_TOKEN_ID_BASE = 151_669
EOS_TOKEN_ID = 151_645
N_CODES = 65536
DONE_EVENT = b"data: [DONE]\n\n"
GARBAGE = "this is not json {"
ENGINE_ERROR_MESSAGE = "EngineCore encountered an issue. See stack trace (above) for the root cause."

# Failure modes and their parameters with defaults. `after` = speech tokens sent before the failure fires: it
# fires as soon as that many are out (after=0: right after the headers; after=n_tokens: before the EOS/"stop"
# event), or just before `[DONE]` when the response has fewer.
MODES: dict[str, dict[str, Any]] = {
    # Reply with an HTTP error and a vLLM error body (400: vLLM's "maximum context length" message).
    "http_error": {"status": 500},
    # Send one non-JSON `data:` event after `after` tokens, then continue normally.
    "garbage": {"after": 0},
    # Stop sending after `after` tokens but keep the connection open until the client leaves or the server stops.
    "stall": {"after": 0},
    # Close the socket after `after` tokens, mid-response, without `[DONE]` (the client sees an incomplete body).
    "early_close": {"after": 0},
    # After `after` tokens send `data: {"error": {...}}` (vLLM's streaming error, a 400), then `[DONE]`.
    "error_event": {"after": 0},
    # Wait `delay` seconds before the first token (the headers are sent at once, like vLLM).
    "slow_first": {"delay": 1.0},
    # After `after` tokens the whole server dies, like a SIGKILLed vLLM: every stream cut, connections refused
    # (`stop()` then `start()` brings it back on its port).
    "die": {"after": 0},
}

_ERROR_TYPES = {
    400: "BadRequestError",
    401: "UnauthorizedError",
    404: "NotFoundError",
    429: "TooManyRequestsError",
    500: "InternalServerError",
    501: "NotImplementedError",
    503: "ServiceUnavailableError",
}

# ---------------------------------------------------------------------------------------------------------------
# Deterministic tokens


def _rng(prompt: str, request_seed: int | None, salt: str) -> random.Random:
    key = json.dumps([0, request_seed, prompt, salt], ensure_ascii=False).encode()
    return random.Random(int.from_bytes(hashlib.sha256(key).digest()[:8], "big"))


def expected_tokens(
    prompt: str,
    n_tokens: int,
    *,
    request_seed: int | None = None,
    max_tokens: int | None = None,
) -> list[int]:
    """Speech token ids the fake sends for `prompt`: the first min(n_tokens, max_tokens) of a sequence that is a
    pure function of (prompt, request seed). Prefixes are stable: a longer n_tokens extends it."""
    n = n_tokens if max_tokens is None else min(n_tokens, max_tokens)
    rng = _rng(prompt, request_seed, "tokens")
    return [rng.randrange(N_CODES) for _ in range(max(0, n))]


def expected_text(tokens: Iterable[int]) -> str:
    return speech_tokens_text(tokens)


def speech_tokens(text: str) -> list[int]:
    """The speech token ids in `text` (everything else ignored)."""
    return [int(m) for m in SPEECH_TOKEN_RE.findall(text)]


def split_resumed(prompt: str) -> tuple[str, list[int]]:
    """(the prompt as first sent, the speech tokens a resumed prompt carries after its last `<|speech_start|>`)."""
    at = prompt.rfind(SPEECH_START)
    if at < 0:
        return prompt, []
    end = at + len(SPEECH_START)
    tail = prompt[end:]
    if not tail or SPEECH_TOKEN_RE.sub("", tail):
        return prompt, []
    return prompt[:end], speech_tokens(tail)


def count_prompt_tokens(prompt: str) -> int:
    """A crude, deterministic stand-in for the tokenizer (special tokens, words and punctuation count 1 each)."""
    return max(1, len(re.findall(r"<\|[^|]*\|>|\w+|[^\w\s]", prompt)))


def error_body(message: str, err_type: str = "BadRequestError", code: int = 400) -> dict:
    """vLLM's error body."""
    return {"error": {"message": message, "type": err_type, "param": None, "code": code}}


def _error_type(status: int) -> str:
    if status in _ERROR_TYPES:
        return _ERROR_TYPES[status]
    try:
        return HTTPStatus(status).phrase.replace(" ", "").replace("-", "") + "Error"
    except ValueError:
        return "Error"


def _context_message(max_model_len: int, prompt_tokens: int, max_tokens: int) -> str:
    return (
        f"This model's maximum context length is {max_model_len} tokens. However, you requested "
        f"{prompt_tokens + max_tokens} tokens ({prompt_tokens} in the messages, {max_tokens} in the completion). "
        "Please reduce the length of the messages or completion."
    )


# ---------------------------------------------------------------------------------------------------------------
# Records


@dataclass
class RequestRecord:
    """One `/v1/completions` request as the fake saw it. Times are `time.monotonic()` values.

    Fields are updated live by the server thread, each just *before* the matching bytes are sent, so a client
    never sees more than its record says. `end` is set when the last byte is handed over, the client is seen to
    go away, or the handler exits (socket dropped); `active` is `end is None`. Requests rejected with 401 by
    the API key check are not recorded."""

    id: str
    start: float
    body: dict | None = None
    headers: dict[str, str] = field(default_factory=dict)
    end: float | None = None
    tokens_sent: int = 0  # speech tokens in the events sent so far
    cancelled: bool = False  # the client went away before the response was complete
    resumed: list[int] = field(default_factory=list)  # the speech tokens a resumed prompt carried

    @property
    def prompt(self) -> str | None:
        return None if self.body is None else _single_prompt(self.body.get("prompt"))

    @property
    def active(self) -> bool:
        return self.end is None


def _single_prompt(prompt: Any) -> str | None:
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        return prompt[0]
    return None


@dataclass
class _Rule:
    mode: str
    params: dict[str, Any]
    count: int | None
    match: str | None


@dataclass
class _Event:
    text: str
    tokens: int  # speech tokens generated in this event
    step: int  # generation steps done when this event is ready (paced at step / rate)
    finish_reason: str | None = None
    ids: list[int] = field(default_factory=list)  # token ids generated in this event (`return_token_ids`)


@dataclass
class _Ctx:
    rec: RequestRecord
    cmpl_id: str
    created: int
    model: str
    prompt: str
    prompt_tokens: int
    max_tokens: int
    include_usage: bool
    rate: float
    mode: str | None
    params: dict[str, Any]
    events: list[_Event]
    completion_tokens: int
    return_token_ids: bool = False


class _Abort(Exception):
    """Raised out of the ASGI app to make uvicorn close the socket mid-response (logged nowhere)."""


class _BadRequest(Exception):
    def __init__(self, message: str, status: int = 400, err_type: str | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.err_type = err_type or _error_type(status)


class _QuietAbortFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], _Abort))


def _install_log_filter() -> None:
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _QuietAbortFilter) for f in logger.filters):
        logger.addFilter(_QuietAbortFilter())


def _resolve_params(mode: str, params: dict[str, Any]) -> dict[str, Any]:
    if mode not in MODES:
        raise ValueError(f"unknown fake mode {mode!r}; known: {sorted(MODES)}")
    unknown = set(params) - set(MODES[mode])
    if unknown:
        raise ValueError(f"unknown parameters for mode {mode!r}: {sorted(unknown)}; known: {sorted(MODES[mode])}")
    return {**MODES[mode], **params}


# ---------------------------------------------------------------------------------------------------------------
# The server


# What `restore()` puts back: the constructor's values that tests change while the server runs.
_TUNABLE = ("rate", "n_tokens", "tokens_per_event", "split_tokens", "max_model_len", "api_key", "token_ids")


class FakeVLLM:
    """Fake vLLM server. The constructor arguments (but the port) are also plain attributes, read at the start of
    each request, so they can be changed while the server runs (e.g. `fake.rate = 0`); `restore()` puts them back."""

    def __init__(
        self,
        *,
        rate: float = 0.0,
        n_tokens: int | Callable[[str], int] = 100,
        tokens_per_event: int = 1,
        port: int = 0,
        split_tokens: bool = False,
        max_model_len: int | None = None,
        api_key: str | None = None,
        token_ids: bool = True,
    ) -> None:
        if tokens_per_event < 1:
            raise ValueError("tokens_per_event must be >= 1")
        self.host = "127.0.0.1"
        self.port = port
        self.rate = rate  # tokens/s per stream; 0 = as fast as possible
        self.n_tokens = n_tokens  # speech tokens per response (int, or a function of the prompt)
        self.tokens_per_event = tokens_per_event
        self.split_tokens = split_tokens  # True: half the events cut their last token across two events
        self.max_model_len = max_model_len  # None: no context-length check
        self.api_key = api_key  # when set, /v1/* need `Authorization: Bearer <key>` (401 {"error": "Unauthorized"})
        # True: like vLLM >= 0.11, `return_token_ids` adds each event's token ids, and `/tokenize` gives speech
        # tokens their real ids; False: an older backend (no token ids, crude `/tokenize` ids)
        self.token_ids = token_ids
        self._defaults = {name: getattr(self, name) for name in _TUNABLE}

        self._cond = threading.Condition(threading.RLock())
        self._records: list[RequestRecord] = []
        self._rule: _Rule | None = None
        self._active = 0
        self._max_active = 0

        self._sock: socket.socket | None = None
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task] = set()
        self._holding = False
        self._hold_event: asyncio.Event | None = None
        self._start_error: BaseException | None = None
        _install_log_filter()

    # --- lifecycle ---------------------------------------------------------------------------------------------

    @property
    def alive(self) -> bool:
        """Serving (started, not stopped, not died)."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def url(self) -> str:
        if self._sock is None:
            raise RuntimeError("FakeVLLM is not started")
        return f"http://{self.host}:{self.port}"

    def _bind(self) -> socket.socket:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # proto=IPPROTO_TCP, or asyncio skips TCP_NODELAY on accepted sockets (40 ms Nagle stalls on small writes)
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(2048)
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        self._sock = sock
        return sock

    def _make_server(self, *, log_level: str | None = None, cli: bool = False) -> Any:
        import uvicorn

        kwargs: dict[str, Any] = {}
        if not cli:
            kwargs["log_config"] = None  # leave the test process's logging alone
        config = uvicorn.Config(
            self,
            lifespan="off",
            http="h11",
            log_level=log_level,
            access_log=cli,
            timeout_graceful_shutdown=2,
            timeout_keep_alive=30,
            **kwargs,
        )
        return uvicorn.Server(config)

    async def _serve(self, server: Any, sock: socket.socket) -> None:
        self._loop = asyncio.get_running_loop()
        self._hold_event = asyncio.Event()
        await server.serve(sockets=[sock])

    def start(self, timeout: float = 10.0) -> FakeVLLM:
        """Bind 127.0.0.1:<free port> (or the given port) and serve from a daemon thread. Returns self."""
        if self._thread is not None:
            return self
        sock = self._bind()
        self._server = self._make_server()

        def run() -> None:
            try:
                asyncio.run(self._serve(self._server, sock))
            except BaseException as exc:  # pragma: no cover - surfaced by start()
                self._start_error = exc

        self._thread = threading.Thread(target=run, name=f"fake-vllm-{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started and self._thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.005)
        if not self._server.started:
            self.stop()
            raise RuntimeError(f"fake vLLM failed to start: {self._start_error!r}")
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Abort running requests (recorded with error "server stopped") and shut the server down."""
        thread, loop, server = self._thread, self._loop, self._server
        if thread is None:
            return
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._shutdown_in_loop)
        elif server is not None:
            server.should_exit = True
        thread.join(timeout)
        self._thread = None
        self._loop = None
        self._server = None
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
            self._sock = None

    def _die_in_loop(self) -> None:
        """Stop listening at once and cut every other stream (the caller cuts its own)."""
        for srv in getattr(self._server, "servers", []):
            srv.close()
        current = asyncio.current_task()
        for task in list(self._tasks):
            if task is not current:
                task.cancel()
        if self._server is not None:
            self._server.should_exit = True
        self._notify()

    def _shutdown_in_loop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._server is not None:
            self._server.should_exit = True

    def __enter__(self) -> FakeVLLM:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def serve_forever(self, *, log_level: str = "info") -> None:
        """Run in the calling thread (the CLI); Ctrl-C stops it."""
        sock = self._bind()
        self._server = self._make_server(log_level=log_level, cli=True)
        asyncio.run(self._serve(self._server, sock))

    # --- holding requests ---------------------------------------------------------------------------------------

    def hold(self) -> None:
        """Park every completions request (running or new) before its next token until `release()`; streams get
        their headers first. Handy to get N requests in flight at once, deterministically."""
        self._holding = True

    def release(self) -> None:
        self._holding = False
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._wake_held)

    def _wake_held(self) -> None:
        old, self._hold_event = self._hold_event, asyncio.Event()
        if old is not None:
            old.set()

    async def _wait_if_held(self) -> None:
        while self._holding and self._hold_event is not None:
            await self._hold_event.wait()

    # --- failure modes -----------------------------------------------------------------------------------------

    def set_mode(self, mode: str | None, *, count: int | None = None, match: str | None = None, **params: Any) -> None:
        """`mode` applies to the next `count` completions requests (None = every one) whose prompt contains
        `match` (None = any). `set_mode(None)` = behave normally. See MODES for params."""
        rule = None if mode is None else _Rule(mode, _resolve_params(mode, params), count, match)
        with self._cond:
            self._rule = rule

    def _take_mode(self, prompt: str) -> tuple[str | None, dict[str, Any]]:
        with self._cond:
            rule = self._rule
            if rule is None or (rule.count is not None and rule.count <= 0):
                return None, {}
            if rule.match is not None and rule.match not in prompt:
                return None, {}
            if rule.count is not None:
                rule.count -= 1
            return rule.mode, dict(rule.params)

    # --- observability -----------------------------------------------------------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        """Snapshot (a new list) of the completions request records, oldest first. The records are live."""
        with self._cond:
            return list(self._records)

    @property
    def active_streams(self) -> int:
        """Completions requests in flight now."""
        return self._active

    @property
    def max_concurrent(self) -> int:
        return self._max_active

    def reset(self) -> None:
        """Forget records and max_concurrent (keeps the in-flight count) and clear the failure mode."""
        with self._cond:
            self._records.clear()
            self._rule = None
            self._max_active = self._active

    def restore(self, timeout: float = 5.0) -> None:
        """Back to the state of a new server, for the next test: wait (up to `timeout`) until no request is in
        flight, release held requests, put the constructor's values back and `reset()`."""
        self.release()
        self.wait_for(lambda: self._active == 0, timeout)
        for name, value in self._defaults.items():
            setattr(self, name, value)
        self.reset()

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 5.0) -> bool:
        """Block until `predicate()` is true (re-checked whenever a request record changes). Returns its final
        truth. Do not call it from an event loop the awaited clients run on: use `wait_for_async` there."""
        with self._cond:
            return bool(self._cond.wait_for(predicate, timeout))

    async def wait_for_async(self, predicate: Callable[[], Any], timeout: float = 5.0, poll: float = 0.01) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            if predicate():
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(poll)

    def expected_tokens(
        self, prompt: str, *, max_tokens: int | None = None, request_seed: int | None = None
    ) -> list[int]:
        """The speech tokens this server sends for `prompt` (with its n_tokens)."""
        return expected_tokens(
            prompt, self._n_tokens_for(prompt), request_seed=request_seed, max_tokens=max_tokens
        )

    def stats(self) -> dict[str, Any]:
        with self._cond:
            return {"requests": len(self._records), "active_streams": self._active, "max_concurrent": self._max_active}

    def _notify(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def _n_tokens_for(self, prompt: str) -> int:
        n = self.n_tokens(prompt) if callable(self.n_tokens) else self.n_tokens
        return max(0, int(n))

    # --- ASGI --------------------------------------------------------------------------------------------------

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        routes: dict[str, tuple[str, Callable]] = {
            "/health": ("GET", self._health),
            "/v1/models": ("GET", self._models),
            "/v1/completions": ("POST", self._completions),
            "/tokenize": ("POST", self._tokenize),
            "/_fake/stats": ("GET", self._ctl_stats),
        }
        if path not in routes:
            await _send_json(send, 404, {"detail": "Not Found"})
            return
        want, handler = routes[path]
        if method != want and not (want == "GET" and method == "HEAD"):
            await _send_json(send, 405, {"detail": "Method Not Allowed"})
            return
        if path.startswith("/v1/") and self.api_key and headers.get("authorization") != f"Bearer {self.api_key}":
            await _send_json(send, 401, {"error": "Unauthorized"})
            return
        await handler(scope, receive, send, headers)

    async def _health(self, scope, receive, send, headers) -> None:
        await _send_bytes(send, 200, b"", b"application/json")

    async def _models(self, scope, receive, send, headers) -> None:
        created = int(time.time())
        card = {
            "id": MODEL_NAME,
            "object": "model",
            "created": created,
            "owned_by": "vllm",
            "root": MODEL_NAME,
            "parent": None,
            "max_model_len": self.max_model_len or 4096,
        }
        await _send_json(send, 200, {"object": "list", "data": [card]})

    async def _tokenize(self, scope, receive, send, headers) -> None:
        """vLLM's `/tokenize`: `{"count", "max_model_len", "tokens"}` (tokens from the crude stand-in tokenizer)."""
        try:
            body = json.loads(await _read_body(receive) or b"{}")
            prompt = body["prompt"]
            if not isinstance(prompt, str):
                raise TypeError("prompt must be a string")
        except (ValueError, TypeError, KeyError) as exc:
            await _send_json(send, 400, error_body(f"invalid tokenize request: {exc}"))
            return
        n = count_prompt_tokens(prompt)
        max_len = self.max_model_len or 4096
        tokens = list(range(n))
        if self.token_ids:  # speech tokens get their real ids; other pieces keep the crude ones
            pieces = re.findall(r"<\|[^|]*\|>|\w+|[^\w\s]", prompt)
            tokens = [SPEECH_TOKEN_ID_BASE + int(m.group(1)) if (m := SPEECH_TOKEN_RE.fullmatch(p)) else i
                      for i, p in enumerate(pieces)] or tokens
        await _send_json(send, 200, {"count": n, "max_model_len": max_len, "tokens": tokens})

    async def _ctl_stats(self, scope, receive, send, headers) -> None:
        await _send_json(send, 200, self.stats())

    # --- /v1/completions ---------------------------------------------------------------------------------------

    async def _completions(self, scope, receive, send, headers) -> None:
        raw = await _read_body(receive)
        if raw is None:  # client gone while sending the body
            return
        request_id = headers.get("x-request-id") or uuid.uuid4().hex
        rec = RequestRecord(id=f"cmpl-{request_id}", start=time.monotonic(), headers=headers)
        with self._cond:
            self._records.append(rec)
            self._active += 1
            self._max_active = max(self._max_active, self._active)
            self._cond.notify_all()
        try:
            await self._run_request(raw, rec, receive, send, headers)
        finally:
            if rec.end is None:
                rec.end = time.monotonic()
            with self._cond:
                self._active -= 1
                self._cond.notify_all()

    async def _run_request(self, raw: bytes, rec: RequestRecord, receive, send, headers) -> None:
        """Run the response as a task raced against the client's disconnect message."""
        producer = asyncio.ensure_future(self._respond(raw, rec, send, headers))
        self._tasks.add(producer)

        async def watch() -> None:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return

        watcher = asyncio.ensure_future(watch())
        try:
            await asyncio.wait({producer, watcher}, return_when=asyncio.FIRST_COMPLETED)
            if not producer.done():
                rec.end = time.monotonic()
                rec.cancelled = True
                producer.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await producer
                return
            if producer.cancelled():  # stop() cancelled it
                raise _Abort("server stopped")
            producer.result()  # re-raises _Abort (early_close) and bugs
        finally:
            self._tasks.discard(producer)
            watcher.cancel()
            if not producer.done():
                producer.cancel()

    async def _respond(self, raw: bytes, rec: RequestRecord, send, headers) -> None:
        try:
            ctx = self._prepare(raw, rec)
        except _BadRequest as exc:
            rec.end = time.monotonic()
            await _send_json(send, exc.status, error_body(exc.message, exc.err_type, exc.status))
            return
        if ctx.mode == "http_error":
            await self._wait_if_held()
            status = int(ctx.params["status"])
            if status == 400:  # a plausible context-length overflow
                limit = self.max_model_len or 4096
                message = _context_message(limit, ctx.prompt_tokens, max(ctx.max_tokens, limit + 1 - ctx.prompt_tokens))
            else:
                message = f"Fake vLLM error (HTTP {status})"
            rec.end = time.monotonic()
            await _send_json(send, status, error_body(message, _error_type(status), status))
            return
        await self._stream(ctx, send)

    def _prepare(self, raw: bytes, rec: RequestRecord) -> _Ctx:
        try:
            body = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise _BadRequest(f"JSON decode error: {exc}") from None
        if not isinstance(body, dict):
            raise _BadRequest("Request body must be a JSON object")
        rec.body = body

        model = body.get("model")
        if model is not None and model != MODEL_NAME:
            raise _BadRequest(f"The model `{model}` does not exist.", 404, "NotFoundError")
        if "prompt" not in body or body["prompt"] in (None, "", []):
            raise _BadRequest("Either prompt or prompt_embeds must be provided and non-empty.")
        prompt = _single_prompt(body["prompt"])
        if prompt is None:
            raise _BadRequest("fake vLLM supports a single string prompt only")
        if body.get("n", 1) != 1:
            raise _BadRequest("fake vLLM supports n=1 only")
        if body.get("stream") is not True:
            raise _BadRequest("fake vLLM streams only (the service always streams)")
        prompt_tokens = count_prompt_tokens(prompt)

        max_tokens = body.get("max_tokens")
        if max_tokens is None:
            max_tokens = (self.max_model_len - prompt_tokens) if self.max_model_len else 16  # vLLM's default is 16
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
            raise _BadRequest(f"max_tokens must be at least 1, got {max_tokens}.")
        if self.max_model_len is not None and prompt_tokens + max_tokens > self.max_model_len:
            raise _BadRequest(_context_message(self.max_model_len, prompt_tokens, max_tokens))
        temperature = body.get("temperature", 1.0)
        if temperature is not None and (not isinstance(temperature, int | float) or temperature < 0):
            raise _BadRequest(f"temperature must be non-negative, got {temperature}.")
        rep = body.get("repetition_penalty", 1.0)
        if rep is not None and (not isinstance(rep, int | float) or not 0 < rep <= 2):
            raise _BadRequest(f"repetition_penalty must be in (0, 2], got {rep}.")
        request_seed = body.get("seed")
        if request_seed is not None and (not isinstance(request_seed, int) or isinstance(request_seed, bool)):
            raise _BadRequest(f"seed must be an integer, got {request_seed!r}.")
        stream_options = body.get("stream_options") or {}
        if not isinstance(stream_options, dict):
            raise _BadRequest("stream_options must be an object")

        first_prompt, resumed = split_resumed(prompt)
        n_tokens = self._n_tokens_for(first_prompt) - len(resumed)
        mode, params = self._take_mode(prompt)
        sequence = expected_tokens(first_prompt, self._n_tokens_for(first_prompt), request_seed=request_seed)
        if resumed != sequence[: len(resumed)]:
            raise _BadRequest(
                f"fake vLLM: the resumed prompt carries {len(resumed)} speech tokens that are not the first ones sent"
            )
        rec.resumed = resumed
        tokens = sequence[len(resumed) :][:max_tokens]
        finish_reason = "stop" if max_tokens > n_tokens else "length"
        return _Ctx(
            rec=rec,
            cmpl_id=rec.id,
            created=int(time.time()),
            model=MODEL_NAME,
            prompt=prompt,
            prompt_tokens=prompt_tokens,
            max_tokens=max_tokens,
            include_usage=bool(stream_options.get("include_usage")),
            rate=max(0.0, self.rate),
            mode=mode,
            params=params,
            events=self._plan_events(prompt, request_seed, tokens, finish_reason),
            return_token_ids=bool(body.get("return_token_ids")) and self.token_ids,
            completion_tokens=len(tokens) + (1 if finish_reason == "stop" else 0),
        )

    def _plan_events(self, prompt: str, request_seed: int | None, tokens: list[int], finish_reason: str) -> list[_Event]:
        # One generation step per token (the EOS token included); `tokens_per_event` steps per event.
        steps: list[tuple[str, int, int]] = [(speech_token(t), 1, SPEECH_TOKEN_ID_BASE + t) for t in tokens]
        if finish_reason == "stop":
            steps.append(("", 0, EOS_TOKEN_ID))  # like vLLM, the stop string is not in the text
        per = self.tokens_per_event
        events: list[_Event] = []
        for i in range(0, len(steps), per):
            group = steps[i : i + per]
            events.append(
                _Event("".join(t for t, _, _ in group), sum(n for _, n, _ in group), i + len(group),
                       ids=[tid for _, _, tid in group])
            )
        if events:
            events[-1].finish_reason = finish_reason
        if self.split_tokens:  # half the events hand the tail of their last token to the next event
            rng = _rng(prompt, request_seed, "split")
            for ev, nxt in zip(events, events[1:], strict=False):
                m = re.search(SPEECH_TOKEN_RE.pattern + "$", ev.text)
                if m and rng.random() < 0.5:
                    cut = m.start() + rng.randrange(1, len(m.group()))
                    ev.text, nxt.text = ev.text[:cut], ev.text[cut:] + nxt.text
        return events

    def _chunk(self, ctx: _Ctx, text: str, finish_reason: str | None, ids: list[int]) -> dict:
        choice: dict[str, Any] = {
            "index": 0, "text": text, "logprobs": None, "finish_reason": finish_reason, "stop_reason": None
        }
        if ctx.return_token_ids:
            choice["token_ids"] = list(ids)
        return {
            "id": ctx.cmpl_id,
            "object": "text_completion",
            "created": ctx.created,
            "model": ctx.model,
            "choices": [choice],
            "usage": None,
        }

    async def _stream(self, ctx: _Ctx, send: Callable) -> None:
        # The record is updated just before each send, so a client never sees more than the record says.
        rec, mode, p = ctx.rec, ctx.mode, ctx.params
        loop = asyncio.get_running_loop()

        async def body(data: bytes, more: bool = True) -> None:
            await send({"type": "http.response.body", "body": data, "more_body": more})

        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream; charset=utf-8")],
            }
        )
        await self._wait_if_held()
        if mode == "slow_first":
            await asyncio.sleep(float(p["delay"]))
        t0 = loop.time()
        triggered = mode not in ("garbage", "stall", "early_close", "error_event", "die")
        sent_tokens = 0
        events: list[_Event | None] = [*ctx.events, None]  # None: the end ([DONE])
        for ev in events:
            # A failure fires once `after` speech tokens are out, or before [DONE] if there are fewer.
            if not triggered and (sent_tokens >= int(p["after"]) or ev is None):
                triggered = True
                if mode == "stall":
                    self._notify()
                    await asyncio.Event().wait()  # until cancelled (client disconnect or server stop)
                elif mode == "garbage":
                    await body(f"data: {GARBAGE}\n\n".encode())
                elif mode == "early_close":
                    self._notify()
                    raise _Abort("early_close")
                elif mode == "die":
                    self._die_in_loop()
                    raise _Abort("died")
                elif mode == "error_event":
                    err = error_body(ENGINE_ERROR_MESSAGE, "BadRequestError", 400)
                    rec.end = time.monotonic()
                    self._notify()
                    await body(_sse(err) + DONE_EVENT, more=False)
                    return
            if ev is None:
                break
            if self._holding:
                t_hold = loop.time()
                await self._wait_if_held()
                t0 += loop.time() - t_hold
            delay = t0 + ev.step / ctx.rate - loop.time() if ctx.rate > 0 else 0.0
            await asyncio.sleep(max(0.0, delay))  # sleep(0) still yields between events
            chunk = self._chunk(ctx, ev.text, ev.finish_reason, ev.ids)
            sent_tokens += ev.tokens
            rec.tokens_sent = sent_tokens
            self._notify()
            await body(_sse(chunk))
        tail = b""
        if ctx.include_usage:
            final = {
                "id": ctx.cmpl_id,
                "object": "text_completion",
                "created": ctx.created,
                "model": ctx.model,
                "choices": [],
                "usage": _usage(ctx.prompt_tokens, ctx.completion_tokens),
            }
            tail = _sse(final)
        rec.end = time.monotonic()
        self._notify()
        await body(tail + DONE_EVENT, more=False)


# ---------------------------------------------------------------------------------------------------------------
# ASGI helpers


def _usage(prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "completion_tokens": completion_tokens,
        "prompt_tokens_details": None,
    }


def _sse(obj: dict) -> bytes:
    return b"data: " + json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode() + b"\n\n"


async def _read_body(receive: Callable) -> bytes | None:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _send_bytes(send: Callable, status: int, data: bytes, content_type: bytes) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data, "more_body": False})


async def _send_json(send: Callable, status: int, obj: Any) -> None:
    await _send_bytes(send, status, json.dumps(obj, ensure_ascii=False).encode(), b"application/json")


# ---------------------------------------------------------------------------------------------------------------
# CLI


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.fake_vllm", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=9093)
    parser.add_argument("--rate", type=float, default=0.0, help="tokens/s per stream (0 = as fast as possible)")
    parser.add_argument("--n-tokens", type=int, default=100, help="speech tokens per response")
    parser.add_argument("--tokens-per-event", type=int, default=1)
    parser.add_argument("--no-token-ids", action="store_true", help="act as a backend without return_token_ids")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    args = parser.parse_args(argv)
    fake = FakeVLLM(
        port=args.port,
        rate=args.rate,
        n_tokens=args.n_tokens,
        tokens_per_event=args.tokens_per_event,
        token_ids=not args.no_token_ids,
    )
    fake.serve_forever(log_level=args.log_level)


if __name__ == "__main__":
    main()
