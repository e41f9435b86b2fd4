"""`culturellm serve`: an OpenAI-compatible HTTP server for any local model or culture adapter.

Endpoints: GET /v1/models, POST /v1/chat/completions (with `logprobs`/`top_logprobs`, `n`, `seed`,
`stop`), POST /v1/completions (raw text, `logprobs`), GET /health. Errors are OpenAI-style JSON
(`{"error": {"message", "type", "param", "code"}}`): validation errors are 400, an unknown model 404.

One model, one process. Requests are micro-batched: a single worker thread takes every queued request
with the same sampling parameters (up to `batch_size`) into one `generate` call, so concurrent clients
share forward passes. Streaming is not supported (400).
"""

from __future__ import annotations

import asyncio
import queue
import secrets
import threading
import time
import uuid
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from culturellm.llm.base import SamplingParams
from culturellm.llm.local import LocalChatModel
from culturellm.llm.records import Completion

DEFAULT_MAX_TOKENS = 256


# --------------------------------------------------------------------------------------------------
# Request bodies (unknown fields are ignored, as many clients send extras)


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: str = "text"
    text: str = ""


class ChatMessageIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(p.text for p in self.content if p.type == "text")


class _Sampling(BaseModel):
    model_config = ConfigDict(extra="ignore")
    model: str
    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float = Field(default=1.0, ge=0.0, le=2.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    n: int = Field(default=1, ge=1, le=16)
    seed: int | None = None
    stop: str | list[str] | None = None
    stream: bool = False

    def stops(self) -> tuple[str, ...]:
        if self.stop is None:
            return ()
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop[:4])


class ChatRequestIn(_Sampling):
    messages: list[ChatMessageIn] = Field(min_length=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    logprobs: bool = False
    top_logprobs: int | None = Field(default=None, ge=0, le=20)


class CompletionRequestIn(_Sampling):
    prompt: str | list[str]
    max_tokens: int | None = Field(default=16, ge=1)
    logprobs: int | None = Field(default=None, ge=0, le=20)
    echo: bool = False


class APIError(Exception):
    def __init__(
        self, status: int, message: str, type_: str, param: str | None = None, code: str | None = None
    ):
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type_, param, code


def error_body(message: str, type_: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


# --------------------------------------------------------------------------------------------------
# Micro-batching worker


@dataclass
class _Job:
    prompt: list[int]
    params: SamplingParams
    logprobs: int | None
    future: Future = field(default_factory=Future)

    @property
    def group(self) -> tuple[Any, ...]:
        return (self.params, self.logprobs)


class MicroBatcher:
    """One worker thread runs all generation; queued jobs with equal parameters run as one batch."""

    def __init__(self, chat: LocalChatModel, batch_size: int = 8, wait_s: float = 0.005) -> None:
        self.chat = chat
        self.batch_size = batch_size
        self.wait_s = wait_s
        self.queue: queue.Queue[_Job | None] = queue.Queue()
        self.batches = 0  # batches run (for tests and logs)
        self.largest = 0
        self._thread = threading.Thread(target=self._run, name="culturellm-serve-worker", daemon=True)
        self._thread.start()

    def submit(self, prompt: list[int], params: SamplingParams, logprobs: int | None) -> Future:
        job = _Job(prompt, params, logprobs)
        self.queue.put(job)
        return job.future

    def close(self) -> None:
        self.queue.put(None)

    def _run(self) -> None:
        pending: list[_Job] = []
        while True:
            if not pending:
                job = self.queue.get()
                if job is None:
                    return
                pending.append(job)
            time.sleep(self.wait_s)  # let concurrent requests arrive
            while True:
                try:
                    job = self.queue.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    return
                pending.append(job)
            head = pending[0].group
            batch = [j for j in pending if j.group == head][: self.batch_size]
            pending = [j for j in pending if all(j is not b for b in batch)]
            try:
                outs = self.chat.generate_ids(
                    [j.prompt for j in batch], batch[0].params, logprobs=batch[0].logprobs
                )
            except Exception as e:  # reported to every waiting request
                for j in batch:
                    j.future.set_exception(e)
                continue
            self.batches += 1
            self.largest = max(self.largest, len(batch))
            for j, o in zip(batch, outs, strict=True):
                j.future.set_result(o)


# --------------------------------------------------------------------------------------------------
# The app


class _Served:
    """What the routes of one server share: the model, its id, the micro-batcher, the context size."""

    def __init__(self, chat: LocalChatModel, model_id: str, batch_size: int) -> None:
        self.chat = chat
        self.model_id = model_id
        self.batcher = MicroBatcher(chat, batch_size=batch_size)
        self.created = int(time.time())
        self.context = int(getattr(chat.model.config, "max_position_embeddings", 0) or 0)

    def card(self) -> dict[str, Any]:
        return {"id": self.model_id, "object": "model", "created": self.created, "owned_by": "culturellm"}

    def check(self, body: _Sampling) -> None:
        if body.model != self.model_id:
            raise APIError(
                404,
                f"The model '{body.model}' does not exist; this server serves '{self.model_id}'",
                "invalid_request_error",
                "model",
                "model_not_found",
            )
        if body.stream:
            raise APIError(
                400, "stream=true is not supported by culturellm serve", "invalid_request_error", "stream"
            )

    def budget(self, prompt: list[int], asked: int | None) -> int:
        context = self.context
        room = context - len(prompt) if context else DEFAULT_MAX_TOKENS
        if (context and room < 1) or (asked is not None and context and asked > room):
            raise APIError(
                400,
                f"This model's maximum context length is {context} tokens; the prompt has {len(prompt)} "
                f"and {asked or 1} completion tokens were asked for",
                "invalid_request_error",
                "messages",
                "context_length_exceeded",
            )
        return asked if asked is not None else min(DEFAULT_MAX_TOKENS, room)

    async def run(
        self, prompts: list[list[int]], body: _Sampling, asked: int | None, logprobs: int | None
    ) -> list[Completion]:
        futures = []
        for prompt in prompts:
            limit = self.budget(prompt, asked)
            for k in range(body.n):
                futures.append(self.batcher.submit(prompt, _params_for(body, limit, k), logprobs))
        return [await asyncio.wrap_future(f) for f in futures]

    def response(
        self, kind: str, choices: list[dict[str, Any]], prompts: list[list[int]], outs: list[Completion]
    ) -> dict[str, Any]:
        p = sum(len(x) for x in prompts)
        c = sum(o.completion_tokens for o in outs)
        prefix = "chatcmpl" if kind == "chat.completion" else "cmpl"
        return {
            "id": f"{prefix}-{uuid.uuid4().hex}",
            "object": kind,
            "created": int(time.time()),
            "model": self.model_id,
            "choices": choices,
            "usage": {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c},
        }

    async def chat_completions(self, body: ChatRequestIn) -> dict[str, Any]:
        self.check(body)
        if body.top_logprobs is not None and not body.logprobs:
            raise APIError(
                400, "top_logprobs requires logprobs=true", "invalid_request_error", "top_logprobs"
            )
        messages = [
            {"role": "system" if m.role == "developer" else m.role, "content": m.text()}
            for m in body.messages
        ]
        try:
            prompt = self.chat.prompt_ids(messages)
        except Exception as e:  # e.g. a template that rejects the role order
            raise APIError(
                400, f"cannot apply the chat template: {e}", "invalid_request_error", "messages"
            ) from None
        k = (body.top_logprobs or 0) if body.logprobs else None
        outs = await self.run([prompt], body, body.max_completion_tokens or body.max_tokens, k)
        choices = [
            {
                "index": i,
                "message": {"role": "assistant", "content": o.text},
                "logprobs": _chat_logprobs(o) if k is not None else None,
                "finish_reason": o.finish_reason,
            }
            for i, o in enumerate(outs)
        ]
        return self.response("chat.completion", choices, [prompt], outs)

    async def completions(self, body: CompletionRequestIn) -> dict[str, Any]:
        self.check(body)
        if body.echo:
            raise APIError(400, "echo=true is not supported", "invalid_request_error", "echo")
        texts = [body.prompt] if isinstance(body.prompt, str) else list(body.prompt)
        prompts = [self.chat.tokenizer(t)["input_ids"] for t in texts]
        if not prompts or any(len(p) == 0 for p in prompts):
            raise APIError(400, "prompt: must not be empty", "invalid_request_error", "prompt")
        outs = await self.run(prompts, body, body.max_tokens, body.logprobs)
        choices = [
            {
                "index": i,
                "text": o.text,
                "logprobs": _completion_logprobs(o) if body.logprobs is not None else None,
                "finish_reason": o.finish_reason,
            }
            for i, o in enumerate(outs)
        ]
        return self.response("text_completion", choices, prompts, outs)


def _params_for(body: _Sampling, max_tokens: int, index: int) -> SamplingParams:
    seed = body.seed if body.seed is not None else secrets.randbits(31)
    return SamplingParams(
        max_tokens=max_tokens,
        temperature=body.temperature,
        top_p=body.top_p if body.temperature > 0 else 1.0,
        seed=seed if body.temperature > 0 else 0,
        sample_index=index,
        stop=body.stops(),
    )


def _chat_logprobs(o: Completion) -> dict[str, Any]:
    """OpenAI chat `logprobs`: per generated token its log-probability, bytes and top alternatives."""

    def entry(t: dict[str, Any]) -> dict[str, Any]:
        return {"token": t["token"], "logprob": t["logprob"], "bytes": list(t["token"].encode("utf-8"))}

    return {
        "content": [
            {**entry(t), "top_logprobs": [entry(a) for a in t["top_logprobs"]]}
            for t in (o.token_logprobs or [])
        ]
    }


def _completion_logprobs(o: Completion) -> dict[str, Any]:
    """OpenAI (legacy) completions `logprobs`: tokens, their log-probabilities, top alternatives, offsets."""
    toks = o.token_logprobs or []
    offsets, pos = [], 0
    for t in toks:
        offsets.append(pos)
        pos += len(t["token"])
    return {
        "tokens": [t["token"] for t in toks],
        "token_logprobs": [t["logprob"] for t in toks],
        "top_logprobs": [{a["token"]: a["logprob"] for a in t["top_logprobs"]} for t in toks],
        "text_offset": offsets,
    }


def _add_error_handlers(app: Any) -> None:
    """Every error as OpenAI's `{"error": {...}}` body: ours, validation (400), HTTP, and crashes (500)."""
    from fastapi import Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException

    @app.exception_handler(APIError)
    async def _api_error(_: Request, e: APIError) -> JSONResponse:
        return JSONResponse(error_body(e.message, e.type, e.param, e.code), status_code=e.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, e: RequestValidationError) -> JSONResponse:
        first = e.errors()[0] if e.errors() else {}
        loc = [str(x) for x in first.get("loc", ()) if x != "body"]
        param = ".".join(loc) or None
        msg = f"{param}: {first.get('msg', 'invalid request')}" if param else str(first.get("msg", e))
        return JSONResponse(error_body(msg, "invalid_request_error", param, None), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, e: StarletteHTTPException) -> JSONResponse:
        kind = "invalid_request_error" if e.status_code < 500 else "server_error"
        code = "not_found" if e.status_code == 404 else None
        return JSONResponse(error_body(str(e.detail), kind, None, code), status_code=e.status_code)

    @app.exception_handler(Exception)
    async def _crash(_: Request, e: Exception) -> JSONResponse:
        return JSONResponse(error_body(f"{type(e).__name__}: {e}", "server_error"), status_code=500)


def make_app(chat: LocalChatModel, model_id: str, *, batch_size: int = 8) -> Any:
    """A FastAPI app serving `chat` under the model id `model_id`."""
    from fastapi import FastAPI

    app = FastAPI(title="culturellm OpenAI-compatible server", version="1")
    served = _Served(chat, model_id, batch_size)
    app.state.batcher = served.batcher
    app.state.chat = chat
    _add_error_handlers(app)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        b = served.batcher
        return {"status": "ok", "model": model_id, "batches": b.batches, "largest_batch": b.largest}

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [served.card()]}

    @app.get("/v1/models/{name:path}")
    async def model_info(name: str) -> dict[str, Any]:
        if name != model_id:
            raise APIError(
                404, f"The model '{name}' does not exist", "invalid_request_error", "model", "model_not_found"
            )
        return served.card()

    @app.post("/v1/chat/completions")
    async def chat_completions(body: ChatRequestIn) -> dict[str, Any]:
        return await served.chat_completions(body)

    @app.post("/v1/completions")
    async def completions(body: CompletionRequestIn) -> dict[str, Any]:
        return await served.completions(body)

    @app.on_event("shutdown")
    def _stop() -> None:
        served.batcher.close()

    return app


def serve(
    spec: str,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    name: str | None = None,
    batch_size: int = 8,
    dtype: str | None = None,
    device: str | None = None,
) -> None:
    """Load a local model (on `device`, in `dtype`; see culturellm.llm.local) and serve it until
    interrupted."""
    import uvicorn
    from rich.console import Console

    from culturellm.errors import CultureLLMError
    from culturellm.llm.local import load_local_chat
    from culturellm.llm.spec import parse_spec

    if not parse_spec(spec).local:
        raise CultureLLMError(f"'{spec}' is a remote model; culturellm serve serves local models only")
    console = Console(stderr=True)
    with console.status(f"loading {spec}"):
        chat = load_local_chat(spec, dtype=dtype, device=device)
    model_id = name or spec
    app = make_app(chat, model_id, batch_size=batch_size)
    console.print(f"serving '{model_id}' on http://{host}:{port}/v1 (OpenAI-compatible; Ctrl-C stops)")
    uvicorn.run(app, host=host, port=port, log_level="warning")
