"""What every endpoint family shares: the served models, the limits, the worker, and the checks of a
request (model name, context length, per-request limits, chat template, prompts)."""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from typing import Any

from culturellm.llm.base import SamplingParams
from culturellm.serve.host import ModelHost
from culturellm.serve.protocol import (
    DEFAULT_MAX_TOKENS,
    APIError,
    CompletionRequestIn,
    Limits,
    SamplingIn,
    invalid,
)
from culturellm.serve.worker import Budget, Job, TimedOut, Worker, WorkerDown, wait_for


class Serving:
    """The base of the endpoint families (chat, completions, tokenization, models)."""

    def __init__(self, host: ModelHost, limits: Limits, worker: Worker, created: int | None = None) -> None:
        self.host, self.limits, self.worker = host, limits, worker
        self.chat = host.chat
        self.tok = self.chat.tokenizer
        self.created = created or int(time.time())
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

    def check(self, body: SamplingIn) -> str:
        name = self.route(body.model)
        if body.stream:
            raise invalid("stream=true is not supported by culturellm serve", "stream")
        return name

    def budget(self, prompt: list[int], asked: int | None, param: str, copies: int = 1) -> int:
        """New tokens for one prompt: `asked` (checked against the context and, times `copies`, the
        prompts and choices of the request, against the per-request limit) or the default."""
        context, limits = self.context, self.limits
        room = context - len(prompt) if context else DEFAULT_MAX_TOKENS
        if (context and room < 1) or (asked is not None and context and asked > room):
            raise invalid(
                f"This model's maximum context length is {context} tokens; the prompt has {len(prompt)} "
                f"and {asked or 1} completion tokens were asked for",
                "messages" if param != "max_tokens" else "prompt",
                "context_length_exceeded",
            )
        if asked is not None and asked * copies > limits.max_tokens:
            per = f" ({copies} prompts and choices x {asked})" if copies > 1 else ""
            raise invalid(
                f"{param}: at most {limits.max_tokens} new tokens per request on this server{per}", param
            )
        if asked is not None:
            return asked
        return min(DEFAULT_MAX_TOKENS, room, max(1, limits.max_tokens // copies))

    def check_count(self, count: int, param: str) -> None:
        if count > self.limits.max_prompts:
            raise invalid(
                f"{param}: at most {self.limits.max_prompts} prompts x n per request on this server "
                f"(this one has {count})",
                param,
            )

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
        texts = body.prompt_items()
        if not texts:
            raise invalid("prompt: must not be empty", "prompt")
        self.check_count(len(texts) * body.n, "prompt")
        out = []
        for t in texts:
            ids = [int(i) for i in t] if isinstance(t, list) else self.tok(t)["input_ids"]
            if not ids:
                raise invalid("prompt: must not be empty", "prompt")
            if any(i < 0 or i >= self.vocab for i in ids):
                raise invalid(f"prompt: token ids must be in [0, {self.vocab})", "prompt")
            out.append(list(ids))
        return out

    # ---- jobs

    def new_budget(self) -> Budget:
        """What one request may spend (every job of the request shares it)."""
        return Budget(self.limits.request_seconds)

    def job(
        self, budget: Budget, name: str, kind: Any, prompt: Any, params: SamplingParams, k: int | None
    ) -> Job:
        return Job(name, kind, prompt, params, k, budget)

    async def wait(self, request: Any, jobs: list[Job]) -> list[Any]:
        """The jobs' results; a request out of time or a dead worker is an API error."""
        try:
            return await wait_for(self.worker, request, jobs)
        except TimedOut:
            raise APIError(
                400,
                f"the request did not finish within the server's limit of {self.limits.request_seconds:g} "
                "seconds (--request-timeout); send fewer prompts or fewer tokens per request",
                "invalid_request_error",
                None,
                "request_timeout",
            ) from None
        except WorkerDown:
            raise APIError(
                503, "the model worker is not running; restart the server", "server_error"
            ) from None

    # ---- response pieces

    def legacy_logprobs(
        self, ids: list[int], lps: list[float | None], tops: list[dict[str, float] | None]
    ) -> dict[str, Any]:
        toks = [self.tok.decode([int(i)]) for i in ids]
        offsets = list(itertools.accumulate([0] + [len(t) for t in toks[:-1]])) if toks else []
        return {"tokens": toks, "token_logprobs": lps, "top_logprobs": tops, "text_offset": offsets}

    def top_dict(self, pairs: Sequence[tuple[int, float]]) -> dict[str, float]:
        d: dict[str, float] = {}
        for i, v in pairs:
            d.setdefault(self.tok.decode([int(i)]), float(v))
        return d
