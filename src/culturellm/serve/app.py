"""The app: routes of the endpoint families, OpenAI-style error responses, the API-key and body-size
guard, and `serve` (load, then run uvicorn)."""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import os
from collections.abc import AsyncIterator, Sequence
from typing import Any

from culturellm.errors import CultureLLMError
from culturellm.listen import BodyTooLarge, read_body, replaying
from culturellm.llm.local import LocalChatModel
from culturellm.serve.chat import ServingChat
from culturellm.serve.completions import ServingCompletions
from culturellm.serve.host import ModelHost, load_host
from culturellm.serve.models import ServingModels
from culturellm.serve.protocol import APIError, Limits, error_body
from culturellm.serve.tokenize import ServingTokenization
from culturellm.serve.worker import STUCK_GRACE_S, Cancelled, Worker

LOG = logging.getLogger("culturellm.serve")

# --------------------------------------------------------------------------------------------------
# ASGI guard: API key, body size


class Guard:
    """ASGI middleware: a bearer API key on every route but /health (constant-time compare, 401
    otherwise) and a request body size limit (413)."""

    def __init__(self, app: Any, api_key: str | None, max_body: int) -> None:
        self.app = app
        self.key = api_key.encode() if api_key else None
        self.max_body = max_body

    async def _reply(self, send: Any, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
        if status == 401:
            headers.append((b"www-authenticate", b"Bearer"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": data})

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        if self.key is not None and scope.get("path") != "/health":
            given = headers.get(b"authorization", b"")
            token = given[7:].strip() if given[:7].lower() == b"bearer " else b""
            if not hmac.compare_digest(token, self.key):
                msg = (
                    "Incorrect API key provided"
                    if token
                    else "Missing API key: send 'Authorization: Bearer KEY'"
                )
                return await self._reply(
                    send, 401, error_body(msg, "invalid_request_error", None, "invalid_api_key")
                )
        too_big = error_body(
            f"request body exceeds the server's limit of {self.max_body} bytes",
            "invalid_request_error",
            None,
            "request_too_large",
        )
        try:
            declared = int(headers.get(b"content-length", b"0") or 0)
        except ValueError:
            declared = 0
        if declared > self.max_body:
            return await self._reply(send, 413, too_big)
        try:  # the whole body first (at most max_body): a chunked one over the limit is 413, not 400
            body = await read_body(receive, self.max_body)
        except BodyTooLarge:
            return await self._reply(send, 413, too_big)
        if body is None:  # the client went away
            return None
        await self.app(scope, replaying(body, receive), send)


# --------------------------------------------------------------------------------------------------
# Error responses (OpenAI-style JSON)


async def _on_api_error(_: Any, e: APIError) -> Any:
    from fastapi.responses import JSONResponse

    return JSONResponse(error_body(e.message, e.type, e.param, e.code), status_code=e.status)


async def _on_invalid(_: Any, e: Any) -> Any:
    from fastapi.responses import JSONResponse

    first = e.errors()[0] if e.errors() else {}
    loc = [str(x) for x in first.get("loc", ()) if x != "body"]
    param = ".".join(loc) or None
    msg = f"{param}: {first.get('msg', 'invalid request')}" if param else str(first.get("msg", e))
    return JSONResponse(error_body(msg, "invalid_request_error", param, None), status_code=400)


async def _on_http(_: Any, e: Any) -> Any:
    from fastapi.responses import JSONResponse

    kind = "invalid_request_error" if e.status_code < 500 else "server_error"
    code = "not_found" if e.status_code == 404 else None
    return JSONResponse(error_body(str(e.detail), kind, None, code), status_code=e.status_code)


async def _on_cancelled(_: Any, e: Cancelled) -> Any:
    """The client went away: its request was cancelled; nothing to log beyond one line (a traceback
    per disconnect would flood the log, and a server whose output is not read would block on it)."""
    from fastapi.responses import JSONResponse

    LOG.info("request cancelled: the client disconnected")
    return JSONResponse(error_body("the client closed the request", "invalid_request_error"), status_code=499)


async def _on_crash(_: Any, e: Exception) -> Any:
    from fastapi.responses import JSONResponse

    LOG.error("internal error: %s: %s", type(e).__name__, e)
    return JSONResponse(
        error_body(f"internal server error ({type(e).__name__}); see the server log", "server_error"),
        status_code=500,
    )


def _add_error_handlers(app: Any) -> None:
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException as StarletteHTTPException

    app.add_exception_handler(APIError, _on_api_error)
    app.add_exception_handler(Cancelled, _on_cancelled)
    app.add_exception_handler(RequestValidationError, _on_invalid)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(Exception, _on_crash)


# --------------------------------------------------------------------------------------------------
# The app


def _add_routes(app: Any, host: ModelHost, limits: Limits, worker: Worker) -> None:
    models = ServingModels(host, limits, worker)
    chat = ServingChat(host, limits, worker, models.created)
    completions = ServingCompletions(host, limits, worker, models.created)
    tokens = ServingTokenization(host, limits, worker, models.created)
    app.add_api_route("/health", models.health, methods=["GET"])
    app.add_api_route("/v1/models", models.models, methods=["GET"])
    app.add_api_route("/v1/models/{name:path}", models.model_info, methods=["GET"])
    app.add_api_route("/v1/chat/completions", chat.chat_completions, methods=["POST"])
    app.add_api_route("/v1/completions", completions.completions, methods=["POST"])
    app.add_api_route("/tokenize", tokens.tokenize, methods=["POST"])
    app.add_api_route("/detokenize", tokens.detokenize, methods=["POST"])
    app.add_api_route("/tokenizer_info", tokens.tokenizer_info, methods=["GET"])


def make_app(
    chat_or_host: LocalChatModel | ModelHost,
    model_id: str | None = None,
    *,
    batch_size: int = 8,
    api_key: str | None = None,
    limits: Limits | None = None,
) -> Any:
    """An ASGI app serving a LocalChatModel under `model_id`, or a ModelHost under its names (the
    FastAPI app inside the guard is `.app`; its state holds the `worker` and the `host`)."""
    from fastapi import FastAPI

    host = (
        chat_or_host
        if isinstance(chat_or_host, ModelHost)
        else ModelHost(chat_or_host, {model_id or "model": None})
    )
    limits = limits or Limits()
    worker = Worker(host, batch_size=batch_size, stuck_after_s=limits.request_seconds + STUCK_GRACE_S)

    @contextlib.asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        yield
        worker.close()

    app = FastAPI(title="culturellm OpenAI-compatible server", version="1", lifespan=lifespan)
    app.state.worker = worker
    app.state.host = host
    _add_error_handlers(app)
    _add_routes(app, host, limits, worker)
    return Guard(app, api_key, limits.max_body_bytes)


def parse_models(models: Sequence[str], names: Sequence[str] = ()) -> list[tuple[str, str]]:
    """`--model` values (`SPEC` or `NAME=SPEC`) and optional `--name`s as (name, spec) pairs."""
    if len(names) > len(models):
        raise CultureLLMError(f"{len(names)} --name for {len(models)} --model")
    out: list[tuple[str, str]] = []
    for i, m in enumerate(models):
        name, sep, spec = m.partition("=")
        if not sep or not name or "/" in name or os.sep in name:
            name, spec = m, m
        if i < len(names):
            name = names[i]
        out.append((name, spec))
    seen = [n for n, _ in out]
    if len(set(seen)) != len(seen):
        raise CultureLLMError(f"two served models have the same name: {seen} (use NAME=SPEC)")
    return out


def serve(
    specs: str | Sequence[str],
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    name: str | Sequence[str] | None = None,
    batch_size: int = 8,
    dtype: str | None = None,
    device: str | None = None,
    api_key: str | None = None,
    limits: Limits | None = None,
) -> None:
    """Load local models (one, or adapters of one base) and serve them until interrupted."""
    from rich.console import Console

    from culturellm.listen import bind, run_server
    from culturellm.llm.registry import parse_spec

    specs = [specs] if isinstance(specs, str) else list(specs)
    names = [name] if isinstance(name, str) else list(name or [])
    pairs = parse_models(specs, names)
    for _, spec in pairs:
        if not parse_spec(spec).local:
            raise CultureLLMError(f"'{spec}' is a remote model; culturellm serve serves local models only")
    if not 0 < port < 65536:
        raise CultureLLMError(f"--port must be between 1 and 65535, got {port}")
    sock = bind(host, port)  # a port in use is one error line, before minutes of loading
    console = Console(stderr=True)
    try:
        with console.status(f"loading {', '.join(s for _, s in pairs)}"):
            model_host = load_host(pairs, dtype=dtype, device=device)
        app = make_app(model_host, batch_size=batch_size, api_key=api_key, limits=limits)
    except BaseException:
        sock.close()
        raise
    served = ", ".join(f"'{n}'" for n in model_host.names)
    auth = " (API key required)" if api_key else ""
    console.print(
        f"serving {served} on http://{host}:{port}/v1{auth} (OpenAI-compatible; Ctrl-C stops)", markup=False
    )
    run_server(app, sock)
