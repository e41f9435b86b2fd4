"""The served API's request and response shapes, the server's limits, and OpenAI-style errors.

Request bodies ignore unknown fields (many clients send extras). Errors are OpenAI-style JSON
(`{"error": {"message", "type", "param", "code"}}`).
"""

from __future__ import annotations

import itertools
import secrets
import time
import uuid
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from culturellm.llm.base import SamplingParams
from culturellm.llm.records import Completion
from culturellm.settings import Flag, StageConfig

DEFAULT_MAX_TOKENS = 256
SEED_MAX = 2**63 - 1


class Limits(StageConfig):
    """Per-server limits, each for one request across all of its prompts and choices: request body
    bytes; new tokens (max_tokens x prompts x n); seconds from the start of its first model call (a
    generation running when they pass returns its reply so far with finish_reason "length"; a request
    with prompts that had not run by then fails with code "request_timeout"); prompts x n; prompt
    tokens scored by log-prob (echo) requests. Each field is a `culturellm serve` flag."""

    model_config = ConfigDict(frozen=True)

    max_body_bytes: int = Field(1 << 20, ge=1, description="Largest request body.")
    max_tokens: Annotated[int, Flag("--max-request-tokens")] = Field(
        4096,
        ge=1,
        description="Most new tokens one request may ask for, all its prompts and choices together.",
    )
    request_seconds: Annotated[float, Flag("--request-timeout")] = Field(
        300.0,
        ge=0.1,
        description="Time limit per request: seconds from its first model call, all its prompts together "
        "(then cut: finish_reason 'length', or 'request_timeout' for prompts not yet run).",
    )
    max_prompts: Annotated[int, Flag("--max-request-prompts")] = Field(
        256, ge=1, description="Most prompts x n one request may send."
    )
    max_logprob_tokens: Annotated[int, Flag("--max-prompt-tokens")] = Field(
        32768,
        ge=1,
        description="Most prompt tokens one log-prob (echo) request may have scored, "
        "all its prompts together.",
    )


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


def messages_of(msgs: Sequence[ChatMessageIn]) -> list[dict[str, str]]:
    return [{"role": "system" if m.role == "developer" else m.role, "content": m.text()} for m in msgs]


class SamplingIn(BaseModel):
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

    def params(self, max_tokens: int, index: int) -> SamplingParams:
        """Sampling parameters of the `index`-th choice (a random seed when none is given)."""
        seed = self.seed if self.seed is not None else secrets.randbits(31)
        return SamplingParams(
            max_tokens=max_tokens,
            temperature=self.temperature,
            top_p=self.top_p if self.temperature > 0 else 1.0,
            seed=(seed % (1 << 31)) if self.temperature > 0 else 0,
            sample_index=index,
            stop=self.stops(),
        )


class ChatRequestIn(SamplingIn):
    messages: list[ChatMessageIn] = Field(min_length=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    logprobs: bool = False
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    add_generation_prompt: bool = True  # vLLM extension
    continue_final_message: bool = False  # vLLM extension


class CompletionRequestIn(SamplingIn):
    prompt: str | list[str] | list[int] | list[list[int]]
    max_tokens: int | None = Field(default=16, ge=0)
    logprobs: int | None = Field(default=None, ge=0, le=20)
    echo: bool = False

    def prompt_items(self) -> list[Any]:
        """The `prompt` (text, token ids, or a list of either) as a list of prompts."""
        prompt = self.prompt
        if isinstance(prompt, str):
            return [prompt]
        if prompt and all(isinstance(x, int) for x in prompt):
            return [prompt]
        return list(prompt)


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


# --------------------------------------------------------------------------------------------------
# Response pieces


def usage_of(prompts: list[list[int]], completion_tokens: int) -> dict[str, int]:
    p = sum(len(x) for x in prompts)
    return {"prompt_tokens": p, "completion_tokens": completion_tokens, "total_tokens": p + completion_tokens}


_ID_PREFIX = {"chat.completion": "chatcmpl", "text_completion": "cmpl"}


def completion_response(
    obj: Literal["chat.completion", "text_completion"],
    name: str,
    choices: list[dict[str, Any]],
    prompts: list[list[int]],
    completion_tokens: int,
) -> dict[str, Any]:
    """The body of a chat or text completion response: a new id, the choices and the token usage."""
    return {
        "id": f"{_ID_PREFIX[obj]}-{uuid.uuid4().hex}",
        "object": obj,
        "created": int(time.time()),
        "model": name,
        "choices": choices,
        "usage": usage_of(prompts, completion_tokens),
    }


def chat_logprobs(o: Completion) -> dict[str, Any]:
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


def generated_legacy_logprobs(o: Completion) -> dict[str, Any]:
    """A generated completion's token log-probs in the legacy completions format."""
    toks = o.token_logprobs or []
    return {
        "tokens": [t["token"] for t in toks],
        "token_logprobs": [t["logprob"] for t in toks],
        "top_logprobs": [{a["token"]: a["logprob"] for a in t["top_logprobs"]} for t in toks],
        "text_offset": list(itertools.accumulate([0] + [len(t["token"]) for t in toks[:-1]])) if toks else [],
    }


# --------------------------------------------------------------------------------------------------
# Errors


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
