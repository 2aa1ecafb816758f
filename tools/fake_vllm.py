"""A fake vLLM OpenAI-compatible server for unit tests and benchmarks.

It speaks vLLM's `/v1/completions` (streaming SSE and non-streaming), `/v1/models`, `/health` and `/version`,
emits deterministic speech tokens `<|s_N|>`, paces them at a configurable rate, and can misbehave on demand
(HTTP errors, garbage events, stalls, dropped connections, mid-stream error events, slow first token).
Every completions request is recorded (body, timing, tokens sent, finished / cancelled by the client).

In-process use (real sockets, uvicorn in a background thread on a free port)::

    with FakeVLLM(n_tokens=120, rate=400) as fake:
        url = fake.url                                 # "http://127.0.0.1:<port>"
        fake.set_mode("stall", count=1, after=10)      # the next request stalls after 10 tokens
        ...
        assert fake.wait_for(lambda: fake.requests[-1].cancelled, timeout=2)

``fake.hold()`` / ``fake.release()`` park every request before its next token, to get N in flight at once.

Standalone: ``python -m tools.fake_vllm --port 9093 --rate 400 --n-tokens 300``.
A running server can be steered over HTTP: ``POST /_fake/mode`` with
``{"mode": "stall", "count": 1, "match": null, "params": {"after": 10}}``, ``GET /_fake/stats``,
``POST /_fake/reset``.

Token semantics: a request generates ``n_tokens`` speech tokens then the EOS token ``<|im_end|>``. The speech
tokens are ``expected_tokens(prompt, n_tokens, seed=server_seed, request_seed=body["seed"])``. When
``max_tokens <= n_tokens`` only ``max_tokens`` speech tokens are sent and the last event has finish_reason
"length"; otherwise the last event has finish_reason "stop" and, like vLLM, the EOS text is not included
(``text: ""``) unless the request sets ``include_stop_str_in_output``. ``usage.completion_tokens`` counts the
EOS token. Noise text never counts as a token and costs no time. ``temperature``, ``repetition_penalty``,
``stop`` and ``skip_special_tokens`` are validated or accepted but do not change the output.
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
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from http import HTTPStatus
from typing import Any

__all__ = [
    "EOS_TEXT",
    "MODES",
    "FakeVLLM",
    "RequestRecord",
    "error_body",
    "expected_text",
    "expected_tokens",
    "speech_tokens",
]

EOS_TEXT = "<|im_end|>"
# Token ids as in a Qwen3 vocabulary extended with the speech tokens: `<|s_N|>` is SPEECH_TOKEN_ID_BASE + N.
SPEECH_TOKEN_ID_BASE = 151_669
EOS_TOKEN_ID = 151_645
SPEECH_TOKEN_RE = re.compile(r"<\|s_(\d+)\|>")
N_CODES = 65536
DONE_EVENT = b"data: [DONE]\n\n"
NOISE_PIECES = ("<|speech_start|>", " the", "\n", "<|text_end|>", " hello", "<|speech_end|>", "s_12", " <|im_start|>")
ENGINE_ERROR_MESSAGE = "EngineCore encountered an issue. See stack trace (above) for the root cause."

# Failure modes and their parameters with defaults. `after` = speech tokens sent before the failure fires: it
# fires as soon as that many are out (after=0: right after the headers; after=n_tokens: before the EOS/"stop"
# event), or just before `[DONE]` when the response has fewer. Non-stream requests: garbage -> a non-JSON 200 body,
# stall/slow_first -> a delay, early_close -> half the body then a dropped socket (abrupt=False: an empty 200),
# error_event -> an HTTP error with that status.
MODES: dict[str, dict[str, Any]] = {
    # Reply with an HTTP error and a vLLM error body. message/type default from the status
    # (400 -> the vLLM "maximum context length" message). `delay` seconds before replying.
    "http_error": {"status": 500, "message": None, "type": None, "delay": 0.0},
    # Send `lines` non-JSON `data: <text>` events after `after` tokens, then continue normally.
    "garbage": {"after": 0, "text": "this is not json {", "lines": 1},
    # Stop sending after `after` tokens but keep the connection open; `duration` None = until the client
    # disconnects or the server stops, else resume normally after `duration` s. `before_headers` stalls
    # before the response headers are sent.
    "stall": {"after": 0, "duration": None, "before_headers": False},
    # Drop the connection after `after` tokens without `[DONE]`. abrupt=True closes the socket mid-response
    # (the client sees an incomplete chunked body); abrupt=False ends the HTTP response cleanly, no `[DONE]`.
    "early_close": {"after": 0, "abrupt": True},
    # After `after` tokens send `data: {"error": {...}}` (vLLM's streaming error), then `[DONE]` if `done`.
    "error_event": {
        "after": 0,
        "message": ENGINE_ERROR_MESSAGE,
        "type": "BadRequestError",
        "status": 400,
        "done": True,
    },
    # Wait `delay` seconds before the first token (headers are sent at once for streams, like vLLM).
    "slow_first": {"delay": 1.0},
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


def _rng(seed: int, prompt: str, request_seed: int | None, salt: str) -> random.Random:
    key = json.dumps([seed, request_seed, prompt, salt], ensure_ascii=False).encode()
    return random.Random(int.from_bytes(hashlib.sha256(key).digest()[:8], "big"))


def expected_tokens(
    prompt: str,
    n_tokens: int,
    *,
    seed: int = 0,
    request_seed: int | None = None,
    max_tokens: int | None = None,
) -> list[int]:
    """Speech token ids the fake sends for `prompt`: the first min(n_tokens, max_tokens) of a sequence that is a
    pure function of (server seed, prompt, request seed). Prefixes are stable: a longer n_tokens extends it."""
    n = n_tokens if max_tokens is None else min(n_tokens, max_tokens)
    rng = _rng(seed, prompt, request_seed, "tokens")
    return [rng.randrange(N_CODES) for _ in range(max(0, n))]


def expected_text(tokens: Iterable[int]) -> str:
    return "".join(f"<|s_{t}|>" for t in tokens)


def speech_tokens(text: str) -> list[int]:
    """The speech token ids in `text` (everything else ignored)."""
    return [int(m) for m in SPEECH_TOKEN_RE.findall(text)]


def count_prompt_tokens(prompt: str) -> int:
    """A crude, deterministic stand-in for the tokenizer (special tokens, words and punctuation count 1 each)."""
    return max(1, len(re.findall(r"<\|[^|]*\|>|\w+|[^\w\s]", prompt)))


def error_body(message: str, err_type: str = "BadRequestError", code: int = 400, style: str = "nested") -> dict:
    """vLLM error body. style "nested" (newer vLLM): {"error": {...}}; "flat" (older): {"object": "error", ...}."""
    if style == "flat":
        return {"object": "error", "message": message, "type": err_type, "param": None, "code": code}
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
    stream: bool = False
    mode: str | None = None
    mode_params: dict[str, Any] = field(default_factory=dict)
    status: int | None = None  # HTTP status sent (None if headers never went out)
    first_token_at: float | None = None
    end: float | None = None
    tokens_sent: int = 0  # speech tokens in the events sent so far
    events_sent: int = 0  # `data:` events sent, [DONE] excluded
    finish_reason: str | None = None  # the finish_reason that was sent, if any
    done_sent: bool = False  # `data: [DONE]` sent
    finished: bool = False  # the response was completed as planned (also true for a planned error reply)
    cancelled: bool = False  # the client went away before the response was complete
    error: str | None = None  # what went wrong: a validation message, a failure mode, "server stopped"

    @property
    def prompt(self) -> str | None:
        return None if self.body is None else _single_prompt(self.body.get("prompt"))

    @property
    def active(self) -> bool:
        return self.end is None

    @property
    def duration(self) -> float | None:
        return None if self.end is None else self.end - self.start

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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
    stream: bool
    include_usage: bool
    continuous_usage: bool
    rate: float
    mode: str | None
    params: dict[str, Any]
    events: list[_Event]
    completion_tokens: int
    finish_reason: str
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


def _prob(value: bool | float, default: float) -> float:
    if value is True:
        return default
    return float(value or 0.0)


# ---------------------------------------------------------------------------------------------------------------
# The server


class FakeVLLM:
    """Fake vLLM server. All constructor arguments are also plain attributes, read at the start of each request,
    so they can be changed while the server runs (e.g. `fake.rate = 0`)."""

    def __init__(
        self,
        *,
        model_name: str = "TTS-model",
        seed: int = 0,
        rate: float = 0.0,
        n_tokens: int | Callable[[str], int] = 100,
        tokens_per_event: int = 1,
        host: str = "127.0.0.1",
        port: int = 0,
        noise: bool | float = False,
        split_tokens: bool | float = False,
        error_style: str = "nested",
        max_model_len: int | None = None,
        api_key: str | None = None,
        max_records: int = 100_000,
        token_ids: bool = True,
    ) -> None:
        if error_style not in ("nested", "flat"):
            raise ValueError("error_style must be 'nested' or 'flat'")
        if tokens_per_event < 1:
            raise ValueError("tokens_per_event must be >= 1")
        self.model_name = model_name
        self.seed = seed
        self.rate = rate  # tokens/s per stream; 0 = as fast as possible
        self.n_tokens = n_tokens  # speech tokens per response (int, or a function of the prompt)
        self.tokens_per_event = tokens_per_event
        self.host = host
        self.port = port
        self.noise = noise  # True / probability per event of inserting non-speech text (+ a leading <|speech_start|>)
        self.split_tokens = split_tokens  # True / probability per event of cutting its last token across two events
        self.error_style = error_style
        self.max_model_len = max_model_len  # None: no context-length check
        self.api_key = api_key  # when set, /v1/* need `Authorization: Bearer <key>` (401 {"error": "Unauthorized"})
        self.healthy = True  # False: GET /health answers 503
        # True: like vLLM >= 0.11, `return_token_ids` adds each event's token ids, and `/tokenize` gives speech
        # tokens their real ids; False: an older backend (no token ids, crude `/tokenize` ids)
        self.token_ids = token_ids

        self._cond = threading.Condition(threading.RLock())
        self._records: deque[RequestRecord] = deque(maxlen=max_records)
        self._rules: list[_Rule] = []
        self._active = 0
        self._max_active = 0
        self.hits: Counter[str] = Counter()  # requests per path, all endpoints

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
        """Replace all failure rules: `mode` applies to the next `count` completions requests (None = every one)
        whose prompt contains `match` (None = any). `set_mode(None)` = behave normally. See MODES for params."""
        with self._cond:
            self._rules.clear()
            if mode is not None:
                self.add_mode(mode, count=count, match=match, **params)

    def add_mode(self, mode: str, *, count: int | None = None, match: str | None = None, **params: Any) -> None:
        """Add a failure rule after the existing ones; the first rule that matches a request (and has count left)
        is applied and consumed."""
        resolved = _resolve_params(mode, params)
        with self._cond:
            self._rules.append(_Rule(mode, resolved, count, match))

    def _take_mode(self, prompt: str) -> tuple[str | None, dict[str, Any]]:
        with self._cond:
            for rule in self._rules:
                if rule.count is not None and rule.count <= 0:
                    continue
                if rule.match is not None and rule.match not in prompt:
                    continue
                if rule.count is not None:
                    rule.count -= 1
                return rule.mode, dict(rule.params)
        return None, {}

    # --- observability -----------------------------------------------------------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        """Snapshot (a new list) of the completions request records, oldest first. The records are live."""
        with self._cond:
            return list(self._records)

    @property
    def last_request(self) -> RequestRecord | None:
        with self._cond:
            return self._records[-1] if self._records else None

    @property
    def active_streams(self) -> int:
        """Completions requests (streaming or not) in flight now."""
        return self._active

    @property
    def max_concurrent(self) -> int:
        return self._max_active

    def reset(self) -> None:
        """Forget records, hit counts and max_concurrent (keeps the in-flight count) and clear the failure rules."""
        with self._cond:
            self._records.clear()
            self._rules.clear()
            self.hits.clear()
            self._max_active = self._active

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
        """The speech tokens this server sends for `prompt` (with its seed and n_tokens)."""
        return expected_tokens(
            prompt, self._n_tokens_for(prompt), seed=self.seed, request_seed=request_seed, max_tokens=max_tokens
        )

    def stats(self) -> dict[str, Any]:
        with self._cond:
            return {
                "requests": len(self._records),
                "active_streams": self._active,
                "max_concurrent": self._max_active,
                "hits": dict(self.hits),
                "records": [r.to_dict() for r in self._records],
            }

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
        with self._cond:
            self.hits[path] += 1
        routes: dict[str, tuple[str, Callable]] = {
            "/health": ("GET", self._health),
            "/ping": ("GET", self._health),
            "/version": ("GET", self._version),
            "/v1/models": ("GET", self._models),
            "/v1/completions": ("POST", self._completions),
            "/tokenize": ("POST", self._tokenize),
            "/_fake/mode": ("POST", self._ctl_mode),
            "/_fake/stats": ("GET", self._ctl_stats),
            "/_fake/reset": ("POST", self._ctl_reset),
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
        if self.healthy:
            await _send_bytes(send, 200, b"", b"application/json")
        else:
            await _send_json(send, 503, error_body("Engine is dead", "ServiceUnavailableError", 503, self.error_style))

    async def _version(self, scope, receive, send, headers) -> None:
        await _send_json(send, 200, {"version": "0.0.0-fake"})

    async def _models(self, scope, receive, send, headers) -> None:
        created = int(time.time())
        card = {
            "id": self.model_name,
            "object": "model",
            "created": created,
            "owned_by": "vllm",
            "root": self.model_name,
            "parent": None,
            "max_model_len": self.max_model_len or 4096,
            "permission": [
                {
                    "id": f"modelperm-{uuid.uuid4().hex}",
                    "object": "model_permission",
                    "created": created,
                    "allow_create_engine": False,
                    "allow_sampling": True,
                    "allow_logprobs": True,
                    "allow_search_indices": False,
                    "allow_view": True,
                    "allow_fine_tuning": False,
                    "organization": "*",
                    "group": None,
                    "is_blocking": False,
                }
            ],
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
            await _send_json(send, 400, error_body(f"invalid tokenize request: {exc}", style=self.error_style))
            return
        n = count_prompt_tokens(prompt)
        max_len = self.max_model_len or 4096
        tokens = list(range(n))
        if self.token_ids:  # speech tokens get their real ids; other pieces keep the crude ones
            pieces = re.findall(r"<\|[^|]*\|>|\w+|[^\w\s]", prompt)
            tokens = [SPEECH_TOKEN_ID_BASE + int(m.group(1)) if (m := SPEECH_TOKEN_RE.fullmatch(p)) else i
                      for i, p in enumerate(pieces)] or tokens
        await _send_json(send, 200, {"count": n, "max_model_len": max_len, "tokens": tokens})

    async def _ctl_mode(self, scope, receive, send, headers) -> None:
        try:
            body = json.loads(await _read_body(receive) or b"{}")
            self.set_mode(body.get("mode"), count=body.get("count"), match=body.get("match"), **body.get("params", {}))
        except (ValueError, TypeError, AttributeError) as exc:
            await _send_json(send, 400, error_body(str(exc), style=self.error_style))
            return
        await _send_json(send, 200, {"ok": True})

    async def _ctl_stats(self, scope, receive, send, headers) -> None:
        await _send_json(send, 200, self.stats())

    async def _ctl_reset(self, scope, receive, send, headers) -> None:
        self.reset()
        await _send_json(send, 200, {"ok": True})

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
                rec.error = rec.error or "client disconnected"
                producer.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await producer
                return
            if producer.cancelled():  # stop() cancelled it
                rec.error = rec.error or "server stopped"
                raise _Abort("server stopped")
            producer.result()  # re-raises _Abort (early_close) and bugs
        finally:
            self._tasks.discard(producer)
            watcher.cancel()
            if not producer.done():
                producer.cancel()

    async def _respond(self, raw: bytes, rec: RequestRecord, send, headers) -> None:
        try:
            ctx = self._prepare(raw, rec, headers)
        except _BadRequest as exc:
            rec.error = exc.message
            rec.status = exc.status
            rec.finished = True
            rec.end = time.monotonic()
            await _send_json(send, exc.status, error_body(exc.message, exc.err_type, exc.status, self.error_style))
            return
        if not ctx.stream or ctx.mode == "http_error":
            await self._wait_if_held()
        if ctx.mode == "http_error":
            p = ctx.params
            status = int(p["status"])
            if p["message"]:
                message = str(p["message"])
            elif status == 400:  # a plausible context-length overflow
                limit = self.max_model_len or 4096
                message = _context_message(limit, ctx.prompt_tokens, max(ctx.max_tokens, limit + 1 - ctx.prompt_tokens))
            else:
                message = f"Fake vLLM error (HTTP {status})"
            if p["delay"]:
                await asyncio.sleep(float(p["delay"]))
            rec.error = f"http_error {status}"
            rec.status = status
            rec.finished = True
            rec.end = time.monotonic()
            await _send_json(
                send, status, error_body(message, p["type"] or _error_type(status), status, self.error_style)
            )
            return
        if ctx.stream:
            await self._stream(ctx, send)
        else:
            await self._complete(ctx, send)

    def _prepare(self, raw: bytes, rec: RequestRecord, headers: dict[str, str]) -> _Ctx:
        try:
            body = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise _BadRequest(f"JSON decode error: {exc}") from None
        if not isinstance(body, dict):
            raise _BadRequest("Request body must be a JSON object")
        rec.body = body
        rec.stream = bool(body.get("stream", False))

        model = body.get("model")
        if model is not None and model != self.model_name:
            raise _BadRequest(f"The model `{model}` does not exist.", 404, "NotFoundError")
        if "prompt" not in body or body["prompt"] in (None, "", []):
            raise _BadRequest("Either prompt or prompt_embeds must be provided and non-empty.")
        prompt = _single_prompt(body["prompt"])
        if prompt is None:
            raise _BadRequest("fake vLLM supports a single string prompt only")
        if body.get("n", 1) != 1:
            raise _BadRequest("fake vLLM supports n=1 only")
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

        # Per-request overrides by header, then the failure rules.
        try:
            n_tokens = int(headers["x-fake-n-tokens"]) if "x-fake-n-tokens" in headers else self._n_tokens_for(prompt)
            rate = float(headers.get("x-fake-rate", self.rate))
            if "x-fake-mode" in headers:
                mode: str | None = headers["x-fake-mode"].strip() or None
                params = json.loads(headers.get("x-fake-params") or "{}")
                params = _resolve_params(mode, params) if mode and mode != "none" else {}
                mode = None if mode == "none" else mode
            else:
                mode, params = self._take_mode(prompt)
        except (ValueError, TypeError) as exc:
            raise _BadRequest(f"bad x-fake-* header: {exc}") from None
        rec.mode, rec.mode_params = mode, params

        tokens = expected_tokens(prompt, n_tokens, seed=self.seed, request_seed=request_seed, max_tokens=max_tokens)
        finish_reason = "stop" if max_tokens > n_tokens else "length"
        eos_text = EOS_TEXT if body.get("include_stop_str_in_output") else ""
        events = self._plan_events(prompt, request_seed, tokens, finish_reason, eos_text)
        return _Ctx(
            rec=rec,
            cmpl_id=rec.id,
            created=int(time.time()),
            model=self.model_name,
            prompt=prompt,
            prompt_tokens=prompt_tokens,
            max_tokens=max_tokens,
            stream=rec.stream,
            include_usage=bool(stream_options.get("include_usage")),
            continuous_usage=bool(stream_options.get("continuous_usage_stats")),
            rate=max(0.0, rate),
            mode=mode,
            params=params,
            events=events,
            return_token_ids=bool(body.get("return_token_ids")) and self.token_ids,
            completion_tokens=len(tokens) + (1 if finish_reason == "stop" else 0),
            finish_reason=finish_reason,
        )

    def _plan_events(
        self, prompt: str, request_seed: int | None, tokens: list[int], finish_reason: str, eos_text: str
    ) -> list[_Event]:
        # One generation step per token (the EOS token included); `tokens_per_event` steps per event.
        steps: list[tuple[str, int, int]] = [(f"<|s_{t}|>", 1, SPEECH_TOKEN_ID_BASE + t) for t in tokens]
        if finish_reason == "stop":
            steps.append((eos_text, 0, EOS_TOKEN_ID))
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

        noise = _prob(self.noise, 0.2)
        if noise > 0:
            rng = _rng(self.seed, prompt, request_seed, "noise")
            noisy: list[_Event] = [_Event("<|speech_start|>", 0, 0)]
            for ev in events:
                if rng.random() < noise:
                    piece = rng.choice(NOISE_PIECES)
                    if rng.random() < 0.5:
                        noisy.append(_Event(piece, 0, ev.step))  # its own event, sent with the next one
                    else:
                        ev.text = piece + ev.text  # glued in front of the event's tokens
                noisy.append(ev)
            events = noisy

        split = _prob(self.split_tokens, 0.5)
        if split > 0:
            rng = _rng(self.seed, prompt, request_seed, "split")
            for ev, nxt in zip(events, events[1:], strict=False):
                m = re.search(r"<\|s_\d+\|>$", ev.text)
                if m and rng.random() < split:
                    cut = m.start() + rng.randrange(1, len(m.group()))
                    ev.text, nxt.text = ev.text[:cut], ev.text[cut:] + nxt.text
        return events

    def _chunk(
        self, ctx: _Ctx, text: str, finish_reason: str | None, completion_tokens: int, ids: list[int] | None = None
    ) -> dict:
        usage = None
        if ctx.include_usage and ctx.continuous_usage:
            usage = _usage(ctx.prompt_tokens, completion_tokens)
        choice: dict[str, Any] = {
            "index": 0, "text": text, "logprobs": None, "finish_reason": finish_reason, "stop_reason": None
        }
        if ctx.return_token_ids:
            choice["token_ids"] = list(ids or [])
        return {
            "id": ctx.cmpl_id,
            "object": "text_completion",
            "created": ctx.created,
            "model": ctx.model,
            "choices": [choice],
            "usage": usage,
        }

    async def _stream(self, ctx: _Ctx, send: Callable) -> None:
        # The record is updated just before each send, so a client never sees more than the record says.
        rec, mode, p = ctx.rec, ctx.mode, ctx.params
        loop = asyncio.get_running_loop()

        async def body(data: bytes, more: bool = True) -> None:
            await send({"type": "http.response.body", "body": data, "more_body": more})

        if mode == "stall" and p["before_headers"]:
            rec.error = "stall"
            await _sleep_or_forever(p["duration"])
        rec.status = 200
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
        point_mode = mode in ("garbage", "stall", "early_close", "error_event") and not (
            mode == "stall" and p["before_headers"]
        )
        triggered = not point_mode
        sent_tokens = 0
        events: list[_Event | None] = [*ctx.events, None]  # None: the end ([DONE])
        for ev in events:
            # A failure fires once `after` speech tokens are out, or before [DONE] if there are fewer.
            if not triggered and (sent_tokens >= int(p["after"]) or ev is None):
                triggered = True
                rec.error = mode
                if mode == "stall":
                    t_stall = loop.time()
                    self._notify()
                    await _sleep_or_forever(p["duration"])
                    t0 += loop.time() - t_stall
                elif mode == "garbage":
                    for _ in range(int(p["lines"])):
                        rec.events_sent += 1
                        await body(f"data: {p['text']}\n\n".encode())
                elif mode == "early_close":
                    self._notify()
                    if p["abrupt"]:
                        raise _Abort("early_close")
                    await body(b"", more=False)
                    return
                elif mode == "error_event":
                    status = int(p["status"])
                    err = error_body(str(p["message"]), str(p["type"]), status, self.error_style)
                    rec.events_sent += 1
                    rec.done_sent = bool(p["done"])
                    rec.finished = True
                    rec.end = time.monotonic()
                    self._notify()
                    await body(_sse(err) + (DONE_EVENT if p["done"] else b""), more=False)
                    return
            if ev is None:
                break
            if self._holding:
                t_hold = loop.time()
                await self._wait_if_held()
                t0 += loop.time() - t_hold
            delay = t0 + ev.step / ctx.rate - loop.time() if ctx.rate > 0 else 0.0
            await asyncio.sleep(max(0.0, delay))  # sleep(0) still yields between events
            chunk = self._chunk(ctx, ev.text, ev.finish_reason, sent_tokens + ev.tokens, ev.ids)
            sent_tokens += ev.tokens
            rec.tokens_sent = sent_tokens
            rec.events_sent += 1
            if ev.tokens and rec.first_token_at is None:
                rec.first_token_at = time.monotonic()
            if ev.finish_reason:
                rec.finish_reason = ev.finish_reason
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
            rec.events_sent += 1
        rec.done_sent = True
        rec.finished = True
        rec.end = time.monotonic()
        self._notify()
        await body(tail + DONE_EVENT, more=False)

    async def _complete(self, ctx: _Ctx, send: Callable) -> None:
        rec, mode, p = ctx.rec, ctx.mode, ctx.params
        if mode:
            rec.error = mode
        if mode == "slow_first":
            await asyncio.sleep(float(p["delay"]))
        if mode == "stall":
            await _sleep_or_forever(p["duration"])
        if ctx.rate > 0 and ctx.events:
            await asyncio.sleep(ctx.events[-1].step / ctx.rate)
        text = "".join(ev.text for ev in ctx.events)
        response = {
            "id": ctx.cmpl_id,
            "object": "text_completion",
            "created": ctx.created,
            "model": ctx.model,
            "choices": [
                {
                    "index": 0,
                    "text": text,
                    "logprobs": None,
                    "finish_reason": ctx.finish_reason,
                    "stop_reason": None,
                    "prompt_logprobs": None,
                }
            ],
            "usage": _usage(ctx.prompt_tokens, ctx.completion_tokens),
        }
        data = json.dumps(response, separators=(",", ":"), ensure_ascii=False).encode()
        if mode == "garbage":
            data = str(p["text"]).encode()
        elif mode == "error_event":
            status = int(p["status"])
            rec.status = status
            rec.finished = True
            rec.end = time.monotonic()
            await _send_json(send, status, error_body(str(p["message"]), str(p["type"]), status, self.error_style))
            return
        elif mode == "early_close":
            rec.status = 200
            if not p["abrupt"]:  # a clean but empty 200
                await _send_bytes(send, 200, b"", b"application/json")
                return
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": data[: len(data) // 2], "more_body": True})
            raise _Abort("early_close")
        rec.status = 200
        rec.tokens_sent = sum(ev.tokens for ev in ctx.events)
        rec.first_token_at = time.monotonic()
        rec.finish_reason = ctx.finish_reason
        rec.finished = True
        rec.end = time.monotonic()
        self._notify()
        await _send_bytes(send, 200, data, b"application/json")


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


async def _sleep_or_forever(duration: float | None) -> None:
    if duration is None:
        await asyncio.Event().wait()  # until cancelled (client disconnect or server stop)
    else:
        await asyncio.sleep(float(duration))


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
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9093)
    parser.add_argument("--model-name", default="TTS-model")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rate", type=float, default=0.0, help="tokens/s per stream (0 = as fast as possible)")
    parser.add_argument("--n-tokens", type=int, default=100, help="speech tokens per response")
    parser.add_argument("--tokens-per-event", type=int, default=1)
    parser.add_argument("--no-token-ids", action="store_true", help="act as a backend without return_token_ids")
    parser.add_argument("--noise", type=float, default=0.0, help="probability of non-speech text per event")
    parser.add_argument("--split", type=float, default=0.0, help="probability of splitting a token across events")
    parser.add_argument("--error-style", choices=["nested", "flat"], default="nested")
    parser.add_argument("--max-model-len", type=int, default=None)
    parser.add_argument("--api-key", default=None)
    parser.add_argument("--mode", choices=sorted(MODES), default=None, help="failure mode for every request")
    parser.add_argument("--mode-params", default="{}", help="JSON parameters of --mode, e.g. '{\"after\": 10}'")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    args = parser.parse_args(argv)
    fake = FakeVLLM(
        model_name=args.model_name,
        seed=args.seed,
        rate=args.rate,
        n_tokens=args.n_tokens,
        tokens_per_event=args.tokens_per_event,
        host=args.host,
        port=args.port,
        noise=args.noise,
        split_tokens=args.split,
        error_style=args.error_style,
        max_model_len=args.max_model_len,
        api_key=args.api_key,
        token_ids=not args.no_token_ids,
    )
    if args.mode:
        fake.set_mode(args.mode, **json.loads(args.mode_params))
    fake.serve_forever(log_level=args.log_level)


if __name__ == "__main__":
    main()
