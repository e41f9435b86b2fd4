"""`ChatModel` over any OpenAI-compatible chat-completions server (OpenAI, vLLM, Ollama, llama.cpp
server, `culturellm serve`).

- Base URL and key: arguments, else OPENAI_BASE_URL / OPENAI_API_KEY; a non-OpenAI base URL needs no key.
- Requests run in a thread pool (`concurrency`, default 8); the openai client retries 429, 5xx,
  timeouts and connection errors with exponential backoff (`max_retries`, default 5).
- `score` asks for one token with `logprobs`/`top_logprobs` (20) and matches each candidate to the
  returned first tokens (see `_score_from_top`). Limits: only the first token of a candidate is seen
  (`end_of_turn` cannot be applied, multi-token candidates are scored by their first token, so
  candidates that share a first token tie), and a candidate outside the top 20 gets a floor below the
  lowest returned log-probability. Servers that return no logprobs fall back to generate-and-parse:
  the candidate the reply names gets log-probability 0, the others -inf; an unparseable reply gives
  every candidate log(1/n) and is counted in `usage.by_kind["score_unparsed"]`.
- Usage counts the server's token usage; cost comes from `pricing.load_prices()`.
"""

from __future__ import annotations

import math
import os
import re
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from culturellm.errors import CultureLLMError
from culturellm.llm.backend import Backend
from culturellm.llm.base import Chat, SamplingParams, ScoreRequest, ScoreResult
from culturellm.llm.pricing import PriceTable, load_prices
from culturellm.llm.records import Completion, Scored

OPENAI_URL = "https://api.openai.com/v1"
TOP_LOGPROBS = 20
FLOOR_MARGIN = math.log(2.0)  # a candidate outside the top-k is at least this much less likely


class OpenAIChatModel(Backend):
    """A remote chat model behind an OpenAI-compatible API."""

    backend = "openai"

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        name: str | None = None,
        concurrency: int = 8,
        max_retries: int = 5,
        timeout: float = 120.0,
        prices: PriceTable | str | None = None,
        score_mode: str = "auto",
    ) -> None:
        import openai

        self.base_url = (base_url or os.environ.get("OPENAI_BASE_URL") or OPENAI_URL).rstrip("/")
        super().__init__(name or f"openai:{model}", model_id=f"{model}@{self.base_url}")
        self.model = model
        key = api_key or os.environ.get("OPENAI_API_KEY")
        if not key:
            if self.base_url == OPENAI_URL:
                raise CultureLLMError(
                    f"model '{self.name}' needs an API key: set OPENAI_API_KEY (or pass --base-url for "
                    "a local OpenAI-compatible server)"
                )
            key = "not-needed"
        self.client = openai.OpenAI(
            base_url=self.base_url, api_key=key, max_retries=max_retries, timeout=timeout
        )
        self.concurrency = max(1, int(concurrency))
        self.prices = prices if isinstance(prices, PriceTable) else load_prices(prices)
        self.score_mode = score_mode  # "auto" (logprobs, else parse), "logprobs", "parse"
        self._logprobs_ok: bool | None = None if score_mode == "auto" else score_mode == "logprobs"
        self._lock = threading.Lock()

    # -- plumbing ----------------------------------------------------------------------------------

    def _map(self, fn: Any, items: Sequence[Any]) -> list[Any]:
        if len(items) <= 1 or self.concurrency == 1:
            return [fn(x) for x in items]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(items))) as pool:
            return list(pool.map(fn, items))  # re-raises the first failure

    def _create(self, **kw: Any) -> Any:
        import openai

        try:
            return self.client.chat.completions.create(model=self.model, **kw)
        except openai.APIConnectionError as e:  # includes timeouts, after all retries
            raise CultureLLMError(f"cannot reach {self.base_url} ({type(e).__name__}: {e})") from None
        except openai.AuthenticationError as e:
            raise CultureLLMError(
                f"{self.base_url}: authentication failed; check OPENAI_API_KEY ({e})"
            ) from None
        except openai.NotFoundError as e:
            raise CultureLLMError(
                f"{self.base_url}: model '{self.model}' not found ({_message(e)})"
            ) from None
        except openai.APIStatusError as e:
            raise CultureLLMError(
                f"{self.base_url}: request failed with HTTP {e.status_code}: {_message(e)}"
            ) from None

    def _cost(self, usage: Any) -> tuple[int, int, float]:
        p = int(getattr(usage, "prompt_tokens", 0) or 0)
        c = int(getattr(usage, "completion_tokens", 0) or 0)
        return p, c, self.prices.cost(self.model, p, c)

    # -- generate ----------------------------------------------------------------------------------

    def generate_detailed(
        self, requests: Sequence[Chat], params: SamplingParams | None = None
    ) -> list[Completion]:
        params = params or SamplingParams()

        def one(messages: Chat) -> Completion:
            kw: dict[str, Any] = {
                "messages": list(messages),
                "max_tokens": int(params.max_tokens),
                "temperature": float(params.temperature),
            }
            if params.temperature > 0:
                kw["top_p"] = float(params.top_p)
                kw["seed"] = int(params.seed) * 1_000_003 + int(params.sample_index)
            if params.stop:
                kw["stop"] = list(params.stop)[:4]
            t0 = time.perf_counter()
            resp = self._create(**kw)
            latency = time.perf_counter() - t0
            choice = resp.choices[0]
            p, c, cost = self._cost(resp.usage)
            return Completion(
                (choice.message.content or "").strip(),
                prompt_tokens=p,
                completion_tokens=c,
                cost_usd=cost,
                latency_s=latency,
                finish_reason=str(choice.finish_reason or "stop"),
            )

        return self._map(one, list(requests))

    # -- score -------------------------------------------------------------------------------------

    def score_detailed(self, requests: Sequence[ScoreRequest]) -> list[Scored]:
        return self._map(self._score_one, list(requests))

    def _score_one(self, req: ScoreRequest) -> Scored:
        if self._logprobs_ok is not False:
            t0 = time.perf_counter()
            resp = self._create(
                messages=list(req.messages),
                max_tokens=1,
                temperature=0.0,
                logprobs=True,
                top_logprobs=TOP_LOGPROBS,
            )
            latency = time.perf_counter() - t0
            content = getattr(resp.choices[0].logprobs, "content", None) if resp.choices[0].logprobs else None
            p, c, cost = self._cost(resp.usage)
            if content:
                self._logprobs_ok = True
                top = [(t.token, float(t.logprob)) for t in (content[0].top_logprobs or [])]
                if not top:
                    top = [(content[0].token, float(content[0].logprob))]
                return Scored(_score_from_top(req.candidates, top), p, c, cost, latency)
            if self._logprobs_ok is True:
                raise CultureLLMError(f"{self.base_url}: the server stopped returning logprobs")
            with self._lock:
                self._logprobs_ok = False
        return self._score_by_parsing(req)

    def _score_by_parsing(self, req: ScoreRequest) -> Scored:
        longest = max(len(c) for c in req.candidates)
        done = self.generate_detailed(
            [req.messages], SamplingParams(max_tokens=max(16, longest // 2 + 8), temperature=0.0)
        )[0]
        pick = parse_choice(done.text, req.candidates)
        n = len(req.candidates)
        if pick is None:
            with self._lock:
                self.usage.by_kind["score_unparsed"] = self.usage.by_kind.get("score_unparsed", 0) + 1
            lps = tuple(-math.log(n) for _ in req.candidates)
        else:
            lps = tuple(0.0 if i == pick else float("-inf") for i in range(n))
        result = ScoreResult(logprobs=lps, num_tokens=tuple(1 for _ in req.candidates))
        return Scored(result, done.prompt_tokens, done.completion_tokens, done.cost_usd, done.latency_s)


def _message(e: Any) -> str:
    body = getattr(e, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
    return str(getattr(e, "message", e))


def _score_from_top(candidates: Sequence[str], top: list[tuple[str, float]]) -> ScoreResult:
    """Candidate log-probabilities from the top first-token log-probabilities.

    A candidate's score is the log-sum-exp of the returned tokens equal to it (ignoring surrounding
    whitespace: "1" and " 1" both count); failing that, of the tokens that are a prefix of it; failing
    that, a floor below the lowest returned log-probability."""
    floor = min(lp for _, lp in top) - FLOOR_MARGIN
    lps: list[float] = []
    for cand in candidates:
        c = cand.strip()
        exact = [lp for tok, lp in top if tok.strip() == c and c]
        prefix = [lp for tok, lp in top if tok.strip() and c.startswith(tok.strip())]
        hits = exact or prefix
        lps.append(_logsumexp(hits) if hits else floor)
    return ScoreResult(logprobs=tuple(lps), num_tokens=tuple(1 for _ in candidates))


def _logsumexp(xs: Sequence[float]) -> float:
    m = max(xs)
    return m + math.log(sum(math.exp(x - m) for x in xs))


def parse_choice(text: str, candidates: Sequence[str]) -> int | None:
    """Index of the candidate a free-text reply names, or None: an exact match (case-insensitive,
    ignoring surrounding punctuation/markdown), else the only candidate the reply contains as a whole
    word. Replies naming several candidates ("1 or 2") are unparseable."""
    t = text.strip().strip(".!\"'`*").strip().lower()
    cands = [c.strip().lower() for c in candidates]
    for i, c in enumerate(cands):
        if t == c:
            return i
    found = {c for c in cands if c and re.search(rf"(?<![\w]){re.escape(c)}(?![\w])", t)}
    return cands.index(found.pop()) if len(found) == 1 else None
