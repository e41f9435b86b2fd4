"""Chat-model backends behind one protocol (`ChatModel`), with a response cache.

    from culturellm.llm import load_model, SamplingParams, ScoreRequest
    llm = load_model("bundled")                      # SmolLM2-135M-Instruct, offline
    llm.generate([[{"role": "user", "content": "Hi"}]], SamplingParams(max_tokens=32))
    llm.score([ScoreRequest(messages, ("1", "2", "3", "4"))])

Specs: `bundled`, `gemma3-270m`, `hf:PATH`, `openai:MODEL`, a HF model directory, a PEFT adapter
directory, or a directory/file holding culturellm.json.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

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

__all__ = [
    "Chat",
    "ChatModel",
    "Embedder",
    "Message",
    "SamplingParams",
    "ScoreRequest",
    "ScoreResult",
    "Usage",
    "load_model",
    "resolve_spec",
]

_MODELS: dict[tuple[Any, ...], ChatModel] = {}
_MODELS_LOCK = threading.Lock()


def resolve_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """('local' | 'openai', details) for a model spec; raises UnknownNameError for unknown specs."""
    from culturellm.llm.convert import BUNDLED
    from culturellm.llm.local import unknown_spec
    from culturellm.modelref import find_modelref, read_modelref

    spec = spec.strip()
    if not spec:
        raise unknown_spec(spec, "empty")
    if spec.startswith("openai:"):
        if not spec[7:]:
            raise unknown_spec(spec, "openai: needs a model name, e.g. openai:gpt-4o-mini")
        return "openai", {"model": spec[7:]}
    if spec in BUNDLED or spec.startswith("hf:"):
        return "local", {}
    ref_file = find_modelref(spec)
    if ref_file is not None:
        ref = read_modelref(ref_file)
        if ref.kind == "openai":
            if not ref.model:
                from culturellm.errors import DataError

                raise DataError(f"{ref_file}: kind 'openai' needs a 'model' field")
            return "openai", {"model": ref.model, "base_url": ref.base_url}
        return "local", {}
    p = Path(spec).expanduser()
    if p.is_dir() and ((p / "config.json").is_file() or (p / "adapter_config.json").is_file()):
        return "local", {}
    why = f"{p} is not a model directory" if p.exists() else ""
    raise unknown_spec(spec, why)


def load_model(
    spec: str,
    *,
    base_url: str | None = None,
    api_key: str | None = None,
    cache: bool = True,
    **options: Any,
) -> ChatModel:
    """Load a chat model once per process (memoised on all arguments).

    cache: answer repeated requests from the SQLite response cache (`culturellm cache stats`);
    the environment variable CULTURELLM_NO_CACHE=1 turns it off everywhere.
    options: local backends take `dtype` ("float32" default, "bfloat16"), `batch_size`, `score_rows`,
    `progress`; the openai backend takes `concurrency`, `max_retries`, `timeout`, `prices`.
    """
    if os.environ.get("CULTURELLM_NO_CACHE", "").strip() not in ("", "0"):
        cache = False
    key = (spec, base_url, api_key, cache, tuple(sorted((k, repr(v)) for k, v in options.items())))
    with _MODELS_LOCK:
        if key in _MODELS:
            return _MODELS[key]
    kind, details = resolve_spec(spec)
    if kind == "openai":
        from culturellm.llm.openai_backend import OpenAIChatModel

        inner: Any = OpenAIChatModel(
            details["model"],
            base_url=base_url or details.get("base_url"),
            api_key=api_key,
            name=spec,
            **options,
        )
    else:
        from culturellm.llm.local import load_local_chat

        inner = load_local_chat(spec, **options)
    model: Any = inner
    if cache:
        from culturellm.llm.cache import CachedChatModel

        model = CachedChatModel(inner)
    with _MODELS_LOCK:
        return _MODELS.setdefault(key, model)
