"""Chat-model backends behind one protocol (`ChatModel`), with a response cache.

    from culturellm.llm import load_model, SamplingParams, ScoreRequest
    llm = load_model("bundled")                      # SmolLM2-135M-Instruct, offline
    llm.generate([[{"role": "user", "content": "Hi"}]], SamplingParams(max_tokens=32))
    llm.score([ScoreRequest(messages, ("1", "2", "3", "4"))])

Specs (parsed once by `culturellm.llm.registry.parse_spec` into a `ModelSpec`, a plain value):
`bundled`, `gemma3-270m`, `hf:PATH`, `openai:MODEL`, `fake:NAME`, a HF model directory, a PEFT adapter
directory, or a directory/file holding culturellm.json; plugins add kinds through the
`culturellm.spec_kinds` entry point. Every backend is a `Backend` (`culturellm.llm.backend`): it
implements the detailed calls, the base does the rest; the response cache wraps one
(`culturellm.llm.cache.CachingBackend`).
"""

from __future__ import annotations

import dataclasses
import os
import threading
from typing import Any

from culturellm.llm.access import ModelAccess
from culturellm.llm.backend import Backend
from culturellm.llm.base import (
    Chat,
    ChatModel,
    Embedder,
    Message,
    SamplingParams,
    ScoreRequest,
    ScoreResult,
    Usage,
)
from culturellm.llm.registry import SpecKind, load_backend, parse_spec, register_kind
from culturellm.llm.spec import ModelSpec

__all__ = [
    "Backend",
    "Chat",
    "ChatModel",
    "Embedder",
    "Message",
    "ModelAccess",
    "ModelSpec",
    "SamplingParams",
    "ScoreRequest",
    "ScoreResult",
    "SpecKind",
    "Usage",
    "load_backend",
    "load_model",
    "parse_spec",
    "register_kind",
]

_MODELS: dict[tuple[Any, ...], Backend] = {}
_MODELS_LOCK = threading.Lock()


def load_model(
    spec: str | ModelSpec,
    access: ModelAccess | None = None,
    *,
    base_url: str | None = None,
    api_key: str | None = None,
    cache: bool = True,
    timeout: float | None = None,
    **options: Any,
) -> Backend:
    """Load a chat model once per process (memoised on all arguments).

    spec: a spec string (parsed once, see `parse_spec`) or a parsed `ModelSpec`.
    cache: answer repeated requests from the SQLite response cache (`culturellm cache stats`);
    the environment variable CULTURELLM_NO_CACHE=1 turns it off everywhere.
    options: local backends take `device` (auto|cpu|cuda|mps), `dtype` (auto|float32|bfloat16|float16),
    `device_map`, `batch_size`, `score_rows`, `progress`; the openai backend takes `concurrency`,
    `max_retries`, `prices`, `score_mode` (and ignores the local ones).
    timeout: seconds per HTTP attempt of a remote backend (default 120); ignored by local models.
    access: how the command or run reaches and places its models (`ModelAccess`): its endpoint
    where the arguments above are not given, its device / dtype / batch size beneath the spec's own.
    """
    if access is not None:
        base_url = base_url or access.base_url
        api_key = api_key or access.api_key()
        timeout = timeout if timeout is not None else access.timeout
        cache = cache and access.cache
    if os.environ.get("CULTURELLM_NO_CACHE", "").strip() not in ("", "0"):
        cache = False

    parsed = parse_spec(spec, **options)
    placed = {k: v for k, v in (access.placement() if access else {}).items() if k not in parsed.options}
    if placed and parsed.local:  # the command's --device/--dtype/--batch-size, beneath the spec's own
        parsed = parsed.with_options(**placed)
    if base_url:
        parsed = dataclasses.replace(parsed, base_url=base_url)
    if timeout is not None and not parsed.local:
        parsed = parsed.with_options(timeout=timeout)
    opts = tuple(sorted((k, repr(v)) for k, v in parsed.options.items()))
    if parsed.local:  # an OPENAI_API_KEY in the environment is not for a local model
        api_key = None
    key = (parsed.text, parsed.base_url, api_key, cache, opts)
    with _MODELS_LOCK:
        if key in _MODELS:
            return _MODELS[key]
    if api_key:
        parsed = parsed.with_options(api_key=api_key)
    model = load_backend(parsed)
    if cache:
        from culturellm.llm.cache import CachingBackend, open_cache

        model = CachingBackend(model, open_cache())
    with _MODELS_LOCK:
        return _MODELS.setdefault(key, model)
