"""`culturellm serve`: an OpenAI-compatible HTTP server for local models and culture adapters.

Endpoints (OpenAI API plus the vLLM extensions that evaluation clients use):

- GET /v1/models, GET /health
- POST /v1/chat/completions: `logprobs`/`top_logprobs`, `n`, `seed`, `stop`; vLLM's
  `add_generation_prompt` / `continue_final_message`.
- POST /v1/completions: `prompt` as text or token ids (one or a list), `logprobs`, and `echo` (the
  prompt's tokens and their log-probabilities in the legacy format: tokens, token_logprobs,
  top_logprobs, text_offset), as lm-evaluation-harness's `local-completions` sends for log-likelihoods.
- POST /tokenize, POST /detokenize, GET /tokenizer_info (vLLM's shapes): exact label scoring over HTTP
  and lm-eval's remote tokenizer use them.

Errors are OpenAI-style JSON (`{"error": {"message", "type", "param", "code"}}`): invalid bodies 400,
a wrong API key 401, an unknown model 404, a body over the size limit 413; never a traceback.

Several models, one base: `serve --model A --model B` with PEFT adapters of one base keeps the base in
memory once, each adapter loaded under its own name, and routes each request by its `model` field
(a full model among the specs is served with the adapters disabled).

One worker thread runs the model. Queued requests of the same model and parameters are micro-batched;
the next batch is the cheapest waiting one (log-prob requests, then fewest new tokens), so short
requests do not wait behind long ones, and a request waiting longer than `max_wait_s` goes first so
long ones are not starved either. Generation stops when its client disconnects or its time limit
passes. Streaming is not supported (400).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import itertools
import logging
import os
import queue
import secrets
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Literal

from fastapi import Request
from pydantic import BaseModel, ConfigDict, Field

from culturellm.llm.base import SamplingParams
from culturellm.llm.local import LocalChatModel
from culturellm.llm.records import Completion

DEFAULT_MAX_TOKENS = 256
SEED_MAX = 2**63 - 1
LOG = logging.getLogger("culturellm.serve")


@dataclass(frozen=True)
class Limits:
    """Per-server limits: request body bytes, new tokens per request, seconds of generation per
    request (the reply so far is returned with finish_reason "length" when it passes)."""

    max_body_bytes: int = 1 << 20
    max_tokens: int = 4096
    request_seconds: float = 300.0


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


def _messages(msgs: Sequence[ChatMessageIn]) -> list[dict[str, str]]:
    return [{"role": "system" if m.role == "developer" else m.role, "content": m.text()} for m in msgs]


class _Sampling(BaseModel):
    model_config = ConfigDict(extra="ignore")
    model: str
    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float = Field(default=1.0, ge=0.0, le=2.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    n: int = Field(default=1, ge=1, le=16)
    seed: int | None = Field(default=None, ge=-SEED_MAX, le=SEED_MAX)
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
    add_generation_prompt: bool = True  # vLLM extension
    continue_final_message: bool = False  # vLLM extension


class CompletionRequestIn(_Sampling):
    prompt: str | list[str] | list[int] | list[list[int]]
    max_tokens: int | None = Field(default=16, ge=0)
    logprobs: int | None = Field(default=None, ge=0, le=20)
    echo: bool = False


class TokenizeIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    model: str | None = None
    prompt: str | None = None
    messages: list[ChatMessageIn] | None = None
    add_special_tokens: bool | None = None
    add_generation_prompt: bool = True
    continue_final_message: bool = False
    return_token_strs: bool = False


class DetokenizeIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    model: str | None = None
    tokens: list[int]


class APIError(Exception):
    def __init__(
        self, status: int, message: str, type_: str, param: str | None = None, code: str | None = None
    ):
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type_, param, code


def error_body(message: str, type_: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def invalid(message: str, param: str | None = None, code: str | None = None) -> APIError:
    return APIError(400, message, "invalid_request_error", param, code)


# --------------------------------------------------------------------------------------------------
# The served models: one base in memory, adapters by name


class ModelHost:
    """A LocalChatModel and the model names it answers to: name -> PEFT adapter name, or None for
    the model itself (adapters disabled when it has any)."""

    def __init__(self, chat: LocalChatModel, routes: dict[str, str | None], base: str | None = None) -> None:
        self.chat = chat
        self.base = base or chat.name  # what is in memory: the base model's spec or directory
        self.routes = dict(routes)
        self.peft = any(a is not None for a in routes.values())

    @property
    def names(self) -> list[str]:
        return list(self.routes)

    @contextlib.contextmanager
    def use(self, name: str) -> Iterator[LocalChatModel]:
        """The chat model with `name`'s adapter active (call from the worker thread only)."""
        adapter = self.routes[name]
        if not self.peft:
            yield self.chat
        elif adapter is None:
            with self.chat.model.disable_adapter():
                yield self.chat
        else:
            self.chat.model.set_adapter(adapter)
            yield self.chat


def load_host(
    models: Sequence[tuple[str, str]], *, dtype: str | None = None, device: str | None = None
) -> ModelHost:
    """Load `(name, spec)` pairs: one spec as it is (adapter merged); several must be PEFT adapters of
    one base model (or that base itself), loaded once with every adapter by name."""
    from culturellm.errors import CultureLLMError
    from culturellm.llm.local import LocalChatModel, load_local, load_local_chat, resolve_local_dir
    from culturellm.llm.spec import parse_spec

    options = {k: v for k, v in (("dtype", dtype), ("device", device)) if v}
    if len(models) == 1:
        name, spec = models[0]
        return ModelHost(load_local_chat(spec, **options), {name: None})
    parts = [(name, parse_spec(spec)) for name, spec in models]
    bases = {str(resolve_local_dir(p).resolve()): p for _, p in parts}
    if len(bases) > 1:
        listed = "; ".join(f"{p.text} -> {d}" for d, p in ((resolve_local_dir(p), p) for _, p in parts))
        raise CultureLLMError(f"serving several models needs adapters of one base model, got: {listed}")
    base_dir, first = next(iter(bases.items()))
    base_spec = first.base if first.adapter is not None and first.base is not None else first
    model, tokenizer = load_local(base_spec, **options)
    routes: dict[str, str | None] = {}
    for i, (name, p) in enumerate(parts):
        if p.adapter is None:
            routes[name] = None
            continue
        key = f"adapter{i}"
        if not hasattr(model, "peft_config"):
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, str(p.adapter), adapter_name=key)
        else:
            model.load_adapter(str(p.adapter), adapter_name=key)
        routes[name] = key
    model.eval()
    return ModelHost(LocalChatModel(model, tokenizer, name=base_spec.text), routes, base=base_dir)


# --------------------------------------------------------------------------------------------------
# The worker: one thread, cheapest batch first, cancellable generation


class Cancelled(Exception):
    """The client went away before its request ran."""


_SEQ = itertools.count()


@dataclass
class _Job:
    route: str
    kind: Literal["generate", "logprobs"]
    prompt: Any  # generate: token ids; logprobs: a list of token-id sequences (one request)
    params: SamplingParams
    logprobs: int | None  # generate: top-k per new token; logprobs: top-k per prompt token
    time_limit: float
    future: Future = field(default_factory=Future)
    cancel: threading.Event = field(default_factory=threading.Event)
    queued: float = field(default_factory=time.monotonic)
    seq: int = field(default_factory=lambda: next(_SEQ))
    deadline: float = float("inf")
    timed_out: bool = False

    @property
    def group(self) -> tuple[Any, ...]:
        return (self.route, self.kind, self.params, self.logprobs)

    @property
    def cost(self) -> int:
        return 0 if self.kind == "logprobs" else int(self.params.max_tokens)

    def should_stop(self) -> bool:
        if time.monotonic() > self.deadline:
            self.timed_out = True
            return True
        return self.cancel.is_set()


class Worker:
    """Runs every model call on one thread. Jobs wait in a queue; each round takes the waiting jobs of
    the cheapest group (fewest new tokens; log-prob jobs cost 0) into one batch, except that a job
    waiting longer than `max_wait_s` goes first."""

    def __init__(
        self, host: ModelHost, batch_size: int = 8, wait_s: float = 0.005, max_wait_s: float = 30.0
    ) -> None:
        self.host = host
        self.batch_size = batch_size
        self.wait_s = wait_s
        self.max_wait_s = max_wait_s
        self.queue: queue.Queue[_Job | None] = queue.Queue()
        self.batches = 0  # batches run (for tests and logs)
        self.largest = 0
        self.cancelled = 0
        self.busy = False
        self._thread = threading.Thread(target=self._run, name="culturellm-serve-worker", daemon=True)
        self._thread.start()

    def submit(self, job: _Job) -> _Job:
        self.queue.put(job)
        return job

    def close(self) -> None:
        self.queue.put(None)

    def _pick(self, pending: list[_Job]) -> list[_Job]:
        now = time.monotonic()
        oldest = min(pending, key=lambda j: j.seq)
        head = (
            oldest if now - oldest.queued > self.max_wait_s else min(pending, key=lambda j: (j.cost, j.seq))
        )
        return [j for j in sorted(pending, key=lambda j: j.seq) if j.group == head.group][: self.batch_size]

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
            for j in [j for j in pending if j.cancel.is_set()]:
                self.cancelled += 1
                j.future.set_exception(Cancelled())
            pending = [j for j in pending if not j.cancel.is_set()]
            if not pending:
                continue
            batch = self._pick(pending)
            pending = [j for j in pending if all(j is not b for b in batch)]
            self.busy = True
            try:
                self._run_batch(batch)
            finally:
                self.busy = False

    def _run_batch(self, batch: list[_Job]) -> None:
        head = batch[0]
        start = time.monotonic()
        for j in batch:
            j.deadline = start + j.time_limit
        try:
            with self.host.use(head.route) as chat:
                if head.kind == "logprobs":  # a logprobs job's prompt holds a request's sequences
                    outs: list[Any] = prompt_logprobs(chat, [j.prompt for j in batch], head.logprobs or 0)
                else:
                    outs = chat.generate_ids(
                        [j.prompt for j in batch],
                        head.params,
                        logprobs=head.logprobs,
                        stop_checks=[j.should_stop for j in batch],
                    )
        except Exception as e:  # reported to every waiting request
            LOG.exception("model call failed")
            for j in batch:
                j.future.set_exception(e)
            return
        self.batches += 1
        self.largest = max(self.largest, len(batch))
        for j, o in zip(batch, outs, strict=True):
            if j.cancel.is_set():
                self.cancelled += 1
            if j.timed_out and isinstance(o, Completion):
                o = Completion(**{**o.__dict__, "finish_reason": "length"})
            j.future.set_result(o)


def prompt_logprobs(
    chat: LocalChatModel, groups: list[list[list[int]]], k: int
) -> list[list[dict[str, Any]]]:
    """Per group (one request's sequences), per sequence: the log-probability of every token after
    the first given the tokens before it, its top-k alternatives, and the greedy next token after the
    whole sequence. The prefix a group's sequences share (a scoring request's prompt) runs once; its
    KV cache is reused for every sequence's remaining tokens."""
    import torch

    with chat._lock, torch.inference_mode():
        return [_group_logprobs(chat, seqs, k) for seqs in groups]


def _rows_of(lp: Any, targets: list[int], k: int) -> tuple[list[float], list[list[tuple[int, float]]]]:
    """Log-probs of `targets` under the distributions `lp` (one row per target) and their top-k."""
    import torch

    if not targets:
        return [], []
    tgt = torch.tensor(targets, dtype=torch.long, device=lp.device)
    vals = lp[: len(targets)].gather(1, tgt[:, None])[:, 0].tolist()
    top: list[list[tuple[int, float]]] = []
    if k > 0:
        tv, ti = lp[: len(targets)].topk(k, dim=-1)
        top = [list(zip(i, v, strict=True)) for i, v in zip(ti.tolist(), tv.tolist(), strict=True)]
    return vals, top


def _group_logprobs(chat: LocalChatModel, seqs: list[list[int]], k: int) -> list[dict[str, Any]]:
    import torch

    from culturellm.llm.local import _cache_kwarg, _cache_of, _select_cache

    first, n = seqs[0], min(len(s) for s in seqs) - 1  # every sequence keeps >= 1 token of its own
    plen = 0
    while plen < n and all(s[plen] == first[plen] for s in seqs):
        plen += 1
    dev = chat.device
    kw: dict[str, Any] = {}
    pre_lp = None
    if plen:
        out = chat.model(input_ids=torch.tensor([first[:plen]], device=dev), use_cache=True)
        pre_lp = torch.log_softmax(out.logits[0].float(), dim=-1)  # (plen, V): row t predicts t+1
        cache = _cache_of(out)
    vocab = int(chat.model.get_output_embeddings().weight.shape[0])
    step = max(1, (32 << 20) // (vocab * max(len(s) - plen for s in seqs)))  # logits under ~128 MB
    results: list[dict[str, Any]] = []
    for start in range(0, len(seqs), step):
        part = [s[plen:] for s in seqs[start : start + step]]
        width = max(len(x) for x in part)
        ids = torch.full((len(part), width), chat.pad_id, dtype=torch.long)
        mask = torch.zeros((len(part), plen + width), dtype=torch.long)
        mask[:, :plen] = 1
        for r, x in enumerate(part):  # right-padded: pads after a row's tokens cannot affect them
            ids[r, : len(x)] = torch.tensor(x)
            mask[r, plen : plen + len(x)] = 1
        if plen:
            kw = {
                _cache_kwarg(): _select_cache(cache, torch.zeros(len(part), dtype=torch.long, device=dev)),
                "cache_position": torch.arange(plen, plen + width, device=dev),
            }
        pos = torch.arange(plen, plen + width, device=dev)[None, :].expand(len(part), -1)
        out = chat.model(input_ids=ids.to(dev), attention_mask=mask.to(dev), position_ids=pos, **kw)
        lp = torch.log_softmax(out.logits.float(), dim=-1)  # (rows, width, V)
        for r, x in enumerate(part):
            seq = seqs[start + r]
            # distributions predicting tokens 1..len-1, then the one after the sequence
            dists = torch.cat([pre_lp, lp[r, : len(x)]]) if pre_lp is not None else lp[r, : len(x)]
            vals, top = _rows_of(dists, seq[1:], k)
            nv, ni = dists[-1].max(-1)
            _, next_top = _rows_of(dists[-1:], [int(ni)], k)
            results.append(
                {
                    "token_logprobs": vals,
                    "top": top,
                    "next": (int(ni), float(nv)),
                    "next_top": next_top[0] if next_top else [],
                }
            )
    return results


# --------------------------------------------------------------------------------------------------
# ASGI guards: API key, body size


class Guard:
    """ASGI middleware: a bearer API key on every route but /health (constant-time compare, 401
    otherwise) and a request body size limit (413)."""

    def __init__(self, app: Any, api_key: str | None, max_body: int) -> None:
        self.app = app
        self.key = api_key.encode() if api_key else None
        self.max_body = max_body

    async def _reply(self, send: Any, status: int, body: dict[str, Any]) -> None:
        import json

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
        seen = 0

        async def limited() -> Any:
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.max_body:
                    raise _TooLarge()
            return msg

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await self._reply(send, 413, too_big)


class _TooLarge(Exception):
    pass


# --------------------------------------------------------------------------------------------------
# The app


def _token_str(tokenizer: Any, ids: Sequence[int]) -> list[str]:
    return [tokenizer.decode([int(i)]) for i in ids]


def _usage(prompts: list[list[int]], completion_tokens: int) -> dict[str, int]:
    p = sum(len(x) for x in prompts)
    return {"prompt_tokens": p, "completion_tokens": completion_tokens, "total_tokens": p + completion_tokens}


def _params_for(body: _Sampling, max_tokens: int, index: int) -> SamplingParams:
    """Sampling parameters of the `index`-th choice of a request (a random seed when none is given)."""
    seed = body.seed if body.seed is not None else secrets.randbits(31)
    return SamplingParams(
        max_tokens=max_tokens,
        temperature=body.temperature,
        top_p=body.top_p if body.temperature > 0 else 1.0,
        seed=(seed % (1 << 31)) if body.temperature > 0 else 0,
        sample_index=index,
        stop=body.stops(),
    )


def _chat_logprobs(o: Completion) -> dict[str, Any]:
    """A generated completion's token log-probs in the chat format (`logprobs.content`)."""
    return {
        "content": [
            {
                "token": t["token"],
                "logprob": t["logprob"],
                "bytes": list(t["token"].encode("utf-8")),
                "top_logprobs": [
                    {"token": a["token"], "logprob": a["logprob"], "bytes": list(a["token"].encode())}
                    for a in t["top_logprobs"]
                ],
            }
            for t in (o.token_logprobs or [])
        ]
    }


def _generated_legacy_logprobs(o: Completion) -> dict[str, Any]:
    """A generated completion's token log-probs in the legacy completions format."""
    toks = o.token_logprobs or []
    return {
        "tokens": [t["token"] for t in toks],
        "token_logprobs": [t["logprob"] for t in toks],
        "top_logprobs": [{a["token"]: a["logprob"] for a in t["top_logprobs"]} for t in toks],
        "text_offset": list(itertools.accumulate([0] + [len(t["token"]) for t in toks[:-1]])) if toks else [],
    }


def _prompt_items(prompt: Any) -> list[Any]:
    """A completions `prompt` (text, token ids, or a list of either) as a list of prompts."""
    if isinstance(prompt, str):
        return [prompt]
    if prompt and all(isinstance(x, int) for x in prompt):
        return [prompt]
    return list(prompt)


async def _wait(worker: Worker, request: Request, jobs: list[_Job]) -> list[Any]:
    """The jobs' results; cancels them all when the client disconnects first."""
    for j in jobs:
        worker.submit(j)
    gathered = asyncio.gather(*[asyncio.wrap_future(j.future) for j in jobs])
    try:
        while True:
            done, _ = await asyncio.wait({gathered}, timeout=0.05)
            if done:
                return gathered.result()
            if await request.is_disconnected():
                raise Cancelled()
    except BaseException:
        for j in jobs:
            j.cancel.set()
        gathered.cancel()
        with contextlib.suppress(BaseException):
            await gathered
        raise


# --------------------------------------------------------------------------------------------------
# Error responses (OpenAI-style JSON)


async def _on_api_error(_: Request, e: APIError) -> Any:
    from fastapi.responses import JSONResponse

    return JSONResponse(error_body(e.message, e.type, e.param, e.code), status_code=e.status)


async def _on_invalid(_: Request, e: Any) -> Any:
    from fastapi.responses import JSONResponse

    first = e.errors()[0] if e.errors() else {}
    loc = [str(x) for x in first.get("loc", ()) if x != "body"]
    param = ".".join(loc) or None
    msg = f"{param}: {first.get('msg', 'invalid request')}" if param else str(first.get("msg", e))
    return JSONResponse(error_body(msg, "invalid_request_error", param, None), status_code=400)


async def _on_http(_: Request, e: Any) -> Any:
    from fastapi.responses import JSONResponse

    kind = "invalid_request_error" if e.status_code < 500 else "server_error"
    code = "not_found" if e.status_code == 404 else None
    return JSONResponse(error_body(str(e.detail), kind, None, code), status_code=e.status_code)


async def _on_crash(_: Request, e: Exception) -> Any:
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
    app.add_exception_handler(RequestValidationError, _on_invalid)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(Exception, _on_crash)


# --------------------------------------------------------------------------------------------------
# The app


class _Service:
    """The served models, the server's limits and the worker queue; one method per endpoint."""

    def __init__(self, host: ModelHost, limits: Limits, batch_size: int) -> None:
        self.host, self.limits = host, limits
        self.chat = host.chat
        self.tok = self.chat.tokenizer
        self.worker = Worker(host, batch_size=batch_size)
        self.created = int(time.time())
        self.context = int(getattr(self.chat.model.config, "max_position_embeddings", 0) or 0)
        self.vocab = len(self.tok)

    # ---- request checks

    def route(self, name: str | None) -> str:
        host = self.host
        if name is None and len(host.names) == 1:
            return host.names[0]
        if name not in host.routes:
            served = ", ".join(f"'{n}'" for n in host.names)
            raise APIError(
                404,
                f"The model '{name}' does not exist; this server serves {served}",
                "invalid_request_error",
                "model",
                "model_not_found",
            )
        return name

    def check(self, body: _Sampling) -> str:
        name = self.route(body.model)
        if body.stream:
            raise invalid("stream=true is not supported by culturellm serve", "stream")
        return name

    def budget(self, prompt: list[int], asked: int | None, param: str) -> int:
        context, limits = self.context, self.limits
        room = context - len(prompt) if context else DEFAULT_MAX_TOKENS
        if (context and room < 1) or (asked is not None and context and asked > room):
            raise invalid(
                f"This model's maximum context length is {context} tokens; the prompt has {len(prompt)} "
                f"and {asked or 1} completion tokens were asked for",
                "messages" if param != "max_tokens" else "prompt",
                "context_length_exceeded",
            )
        if asked is not None and asked > limits.max_tokens:
            raise invalid(f"{param}: at most {limits.max_tokens} tokens per request on this server", param)
        return asked if asked is not None else min(DEFAULT_MAX_TOKENS, room, limits.max_tokens)

    def render(
        self, messages: list[dict[str, str]], gen: bool, cont: bool, param: str = "messages"
    ) -> list[int]:
        if gen and cont:
            raise invalid("add_generation_prompt and continue_final_message cannot both be true", param)
        if cont and messages[-1]["role"] != "assistant":
            raise invalid("continue_final_message needs a final assistant message", param)
        try:
            ids = self.tok.apply_chat_template(
                messages,
                add_generation_prompt=gen,
                continue_final_message=cont,
                tokenize=True,
                return_dict=False,
            )
        except Exception as e:  # e.g. a template that rejects the role order
            raise invalid(f"cannot apply the chat template: {e}", param) from None
        if isinstance(ids, dict) or hasattr(ids, "keys"):
            ids = ids["input_ids"]
        return [int(i) for i in ids]

    def prompts_of(self, body: CompletionRequestIn) -> list[list[int]]:
        texts = _prompt_items(body.prompt)
        if not texts:
            raise invalid("prompt: must not be empty", "prompt")
        out = []
        for t in texts:
            ids = [int(i) for i in t] if isinstance(t, list) else self.tok(t)["input_ids"]
            if not ids:
                raise invalid("prompt: must not be empty", "prompt")
            if any(i < 0 or i >= self.vocab for i in ids):
                raise invalid(f"prompt: token ids must be in [0, {self.vocab})", "prompt")
            out.append(list(ids))
        return out

    # ---- jobs and formatting

    def job(self, name: str, kind: Any, prompt: Any, params: SamplingParams, k: int | None) -> _Job:
        return _Job(name, kind, prompt, params, k, self.limits.request_seconds)

    async def wait(self, request: Request, jobs: list[_Job]) -> list[Any]:
        return await _wait(self.worker, request, jobs)

    def legacy_logprobs(
        self, ids: list[int], lps: list[float | None], tops: list[dict[str, float] | None]
    ) -> dict[str, Any]:
        toks = _token_str(self.tok, ids)
        offsets = list(itertools.accumulate([0] + [len(t) for t in toks[:-1]])) if toks else []
        return {"tokens": toks, "token_logprobs": lps, "top_logprobs": tops, "text_offset": offsets}

    def top_dict(self, pairs: Sequence[tuple[int, float]]) -> dict[str, float]:
        d: dict[str, float] = {}
        for i, v in pairs:
            d.setdefault(self.tok.decode([int(i)]), float(v))
        return d

    def card(self, name: str) -> dict[str, Any]:
        return {
            "id": name,
            "object": "model",
            "created": self.created,
            "owned_by": "culturellm",
            "max_model_len": self.context or None,
        }

    # ---- GET endpoints

    async def health(self) -> dict[str, Any]:
        host, worker = self.host, self.worker
        return {
            "status": "ok",
            "models": host.names,
            "model": host.names[0],
            "base": host.base,
            "busy": worker.busy,
            "queued": worker.queue.qsize(),
            "batches": worker.batches,
            "largest_batch": worker.largest,
            "cancelled": worker.cancelled,
        }

    async def models(self) -> dict[str, Any]:
        return {"object": "list", "data": [self.card(n) for n in self.host.names]}

    async def model_info(self, name: str) -> dict[str, Any]:
        return self.card(self.route(name))

    async def tokenizer_info(self) -> dict[str, Any]:
        tok = self.tok
        return {
            "tokenizer_class": type(tok).__name__,
            "eos_token": tok.eos_token,
            "bos_token": tok.bos_token,
            "pad_token": tok.pad_token,
            "unk_token": tok.unk_token,
            "chat_template": tok.chat_template,
            "model_max_length": self.context or None,
        }

    # ---- chat completions

    async def chat_completions(self, body: ChatRequestIn, request: Request) -> dict[str, Any]:
        name = self.check(body)
        if body.top_logprobs is not None and not body.logprobs:
            raise invalid("top_logprobs requires logprobs=true", "top_logprobs")
        prompt = self.render(
            _messages(body.messages), body.add_generation_prompt, body.continue_final_message
        )
        k = (body.top_logprobs or 0) if body.logprobs else None
        asked = body.max_completion_tokens or body.max_tokens
        limit = self.budget(prompt, asked, "max_tokens")
        jobs = [self.job(name, "generate", prompt, _params_for(body, limit, i), k) for i in range(body.n)]
        outs = await self.wait(request, jobs)
        choices = [
            {
                "index": i,
                "message": {"role": "assistant", "content": o.text},
                "logprobs": _chat_logprobs(o) if k is not None else None,
                "finish_reason": o.finish_reason,
            }
            for i, o in enumerate(outs)
        ]
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": name,
            "choices": choices,
            "usage": _usage([prompt], sum(o.completion_tokens for o in outs)),
        }

    # ---- completions

    async def completions(self, body: CompletionRequestIn, request: Request) -> dict[str, Any]:
        name = self.check(body)
        prompts = self.prompts_of(body)
        if body.echo:
            choices, ctoks = await self.echo_choices(request, name, body, prompts)
        else:
            choices, ctoks = await self.plain_choices(request, name, body, prompts)
        return {
            "id": f"cmpl-{uuid.uuid4().hex}",
            "object": "text_completion",
            "created": int(time.time()),
            "model": name,
            "choices": choices,
            "usage": _usage(prompts, ctoks),
        }

    async def plain_choices(
        self, request: Request, name: str, body: CompletionRequestIn, prompts: list[list[int]]
    ) -> tuple[list[dict[str, Any]], int]:
        """Completions without echo: generated text (and its log-probs when asked for)."""
        if not body.max_tokens:
            raise invalid("max_tokens: must be at least 1 without echo", "max_tokens")
        jobs = [
            self.job(
                name,
                "generate",
                p,
                _params_for(body, self.budget(p, body.max_tokens, "max_tokens"), i),
                body.logprobs,
            )
            for p in prompts
            for i in range(body.n)
        ]
        outs = await self.wait(request, jobs)
        choices = [
            {
                "index": i,
                "text": o.text,
                "logprobs": _generated_legacy_logprobs(o) if body.logprobs is not None else None,
                "finish_reason": o.finish_reason,
            }
            for i, o in enumerate(outs)
        ]
        return choices, sum(o.completion_tokens for o in outs)

    async def echo_choices(
        self, request: Request, name: str, body: CompletionRequestIn, prompts: list[list[int]]
    ) -> tuple[list[dict[str, Any]], int]:
        """Completions with echo: prompt log-probs from one forward pass; greedy 0-1 new tokens come
        from the same pass, anything else is generated afterwards."""
        k = body.logprobs
        for p in prompts:
            self.budget(p, body.max_tokens or None, "max_tokens")
        fast = not body.max_tokens or (body.max_tokens == 1 and body.temperature == 0)
        (scored,) = await self.wait(request, [self.job(name, "logprobs", prompts, SamplingParams(), k or 0)])
        gens: list[Completion | None] = [None] * (len(prompts) * body.n)
        if not fast:
            jobs = [
                self.job(name, "generate", p, _params_for(body, int(body.max_tokens or 1), i), k)
                for p in prompts
                for i in range(body.n)
            ]
            gens = list(await self.wait(request, jobs))
        rows = [(p, s) for p, s in zip(prompts, scored, strict=True) for _ in range(body.n)]
        choices, completion_tokens = [], 0
        for idx, (p, s) in enumerate(rows):
            choice, ntoks = self.echo_choice(idx, p, s, gens[idx], fast and bool(body.max_tokens), k)
            choices.append(choice)
            completion_tokens += ntoks
        return choices, completion_tokens

    def echo_choice(
        self, idx: int, p: list[int], s: dict[str, Any], g: Completion | None, one_more: bool, k: int | None
    ) -> tuple[dict[str, Any], int]:
        """One echo choice: the prompt's scored tokens, then the next token of the same pass
        (`one_more`) or the generated completion `g`; and its number of completion tokens."""
        tok, stop_ids = self.tok, self.chat.stop_ids
        ids, lps = list(p), [None, *s["token_logprobs"]]
        tops: list[dict[str, float] | None] = [None, *(self.top_dict(t) for t in s["top"])]
        text, finish, ntoks = tok.decode(p), "length", 0
        if one_more:
            nxt, nlp = s["next"]
            ids.append(nxt)
            lps.append(nlp)
            tops.append(self.top_dict(s["next_top"]))
            finish = "stop" if nxt in stop_ids else "length"
            text += "" if nxt in stop_ids else tok.decode([nxt])
            ntoks = 1
        elif g is not None:
            for t in g.token_logprobs or []:
                ids.append(t["id"])
                lps.append(t["logprob"])
                tops.append({a["token"]: a["logprob"] for a in t["top_logprobs"]})
            text += g.text
            finish, ntoks = g.finish_reason, g.completion_tokens
        lp = self.legacy_logprobs(ids, lps, tops if k else [None] * len(ids)) if k is not None else None
        return {"index": idx, "text": text, "logprobs": lp, "finish_reason": finish}, ntoks

    # ---- tokenizer endpoints

    async def tokenize(self, body: TokenizeIn) -> dict[str, Any]:
        tok = self.tok
        if body.model is not None:
            self.route(body.model)
        if (body.prompt is None) == (body.messages is None):
            raise invalid("give either prompt or messages", "prompt")
        if body.messages is not None:
            if not body.messages:
                raise invalid("messages: must not be empty", "messages")
            ids = self.render(
                _messages(body.messages), body.add_generation_prompt, body.continue_final_message
            )
            if body.add_special_tokens:  # as vLLM: BOS etc. on top of the template's own
                ids = (
                    tok.build_inputs_with_special_tokens(ids)
                    if hasattr(tok, "build_inputs_with_special_tokens")
                    else ids
                )
        else:
            special = True if body.add_special_tokens is None else body.add_special_tokens
            ids = [int(i) for i in tok(body.prompt, add_special_tokens=special)["input_ids"]]
        out: dict[str, Any] = {"count": len(ids), "max_model_len": self.context or None, "tokens": ids}
        if body.return_token_strs:
            out["token_strs"] = tok.convert_ids_to_tokens(ids)
        return out

    async def detokenize(self, body: DetokenizeIn) -> dict[str, Any]:
        if body.model is not None:
            self.route(body.model)
        if any(i < 0 or i >= self.vocab for i in body.tokens):
            raise invalid(f"tokens: ids must be in [0, {self.vocab})", "tokens")
        return {"prompt": self.tok.decode(body.tokens)}

    def close(self) -> None:
        self.worker.close()


def _add_routes(app: Any, svc: _Service) -> None:
    app.add_api_route("/health", svc.health, methods=["GET"])
    app.add_api_route("/v1/models", svc.models, methods=["GET"])
    app.add_api_route("/v1/models/{name:path}", svc.model_info, methods=["GET"])
    app.add_api_route("/v1/chat/completions", svc.chat_completions, methods=["POST"])
    app.add_api_route("/v1/completions", svc.completions, methods=["POST"])
    app.add_api_route("/tokenize", svc.tokenize, methods=["POST"])
    app.add_api_route("/detokenize", svc.detokenize, methods=["POST"])
    app.add_api_route("/tokenizer_info", svc.tokenizer_info, methods=["GET"])


def make_app(
    chat_or_host: LocalChatModel | ModelHost,
    model_id: str | None = None,
    *,
    batch_size: int = 8,
    api_key: str | None = None,
    limits: Limits | None = None,
) -> Any:
    """A FastAPI app serving a LocalChatModel under `model_id`, or a ModelHost under its names."""
    from fastapi import FastAPI

    host = (
        chat_or_host
        if isinstance(chat_or_host, ModelHost)
        else ModelHost(chat_or_host, {model_id or "model": None})
    )
    limits = limits or Limits()
    app = FastAPI(title="culturellm OpenAI-compatible server", version="1")
    svc = _Service(host, limits, batch_size)
    app.state.worker = app.state.batcher = svc.worker
    app.state.host = host
    _add_error_handlers(app)
    _add_routes(app, svc)
    app.on_event("shutdown")(svc.close)
    return Guard(app, api_key, limits.max_body_bytes)


def parse_models(models: Sequence[str], names: Sequence[str] = ()) -> list[tuple[str, str]]:
    """`--model` values (`SPEC` or `NAME=SPEC`) and optional `--name`s as (name, spec) pairs."""
    from culturellm.errors import CultureLLMError

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
    import uvicorn
    from rich.console import Console

    from culturellm.errors import CultureLLMError
    from culturellm.llm.spec import parse_spec

    specs = [specs] if isinstance(specs, str) else list(specs)
    names = [name] if isinstance(name, str) else list(name or [])
    pairs = parse_models(specs, names)
    for _, spec in pairs:
        if not parse_spec(spec).local:
            raise CultureLLMError(f"'{spec}' is a remote model; culturellm serve serves local models only")
    if not 0 < port < 65536:
        raise CultureLLMError(f"--port must be between 1 and 65535, got {port}")
    console = Console(stderr=True)
    with console.status(f"loading {', '.join(s for _, s in pairs)}"):
        model_host = load_host(pairs, dtype=dtype, device=device)
    app = make_app(model_host, batch_size=batch_size, api_key=api_key, limits=limits)
    served = ", ".join(f"'{n}'" for n in model_host.names)
    auth = " (API key required)" if api_key else ""
    console.print(
        f"serving {served} on http://{host}:{port}/v1{auth} (OpenAI-compatible; Ctrl-C stops)", markup=False
    )
    uvicorn.run(app, host=host, port=port, log_level="warning")
