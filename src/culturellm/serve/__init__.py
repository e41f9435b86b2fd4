"""`culturellm serve`: an OpenAI-compatible HTTP server for local models and culture adapters.

Laid out as vLLM's `entrypoints/openai`: `protocol` (request/response models, limits, errors), `host`
(the models in memory), `worker` (the one thread that runs the model), one module per endpoint family
(`chat`, `completions`, `tokenize`, `models`; their shared checks in `serving`), and `app` (routes,
error handlers, the API-key guard, `serve`).

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
long ones are not starved either. Limits (time, new tokens, prompts, log-prob prompt tokens) hold per
request across all its prompts. Generation and log-prob scoring stop when the client disconnects or
the request's time limit passes; the disconnect cancels that request only, and no exception in one
batch stops the worker (/health answers 503 when the worker is dead or stuck). Streaming is not
supported (400).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from culturellm.serve.app import make_app, parse_models, serve
    from culturellm.serve.host import ModelHost, load_host
    from culturellm.serve.protocol import Limits

# Each name from its module on first use: `culturellm serve`'s options come from `protocol.Limits`,
# which every CLI call reads, without loading the app (FastAPI) until the server starts.
_WHERE = {
    "Limits": "protocol",
    "ModelHost": "host",
    "load_host": "host",
    "make_app": "app",
    "parse_models": "app",
    "serve": "app",
}
__all__ = ["Limits", "ModelHost", "load_host", "make_app", "parse_models", "serve"]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
