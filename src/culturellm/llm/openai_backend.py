"""`ChatModel` over any OpenAI-compatible server (OpenAI, vLLM, Ollama, llama.cpp server,
`culturellm serve`).

- Base URL and key: arguments, else OPENAI_BASE_URL / OPENAI_API_KEY; a non-OpenAI base URL needs no key.
  Credentials in the URL (`http://user:PASS@host/v1`) are used for requests but never stored or
  printed: `display_url` (in the cache's model id, messages and logs) has them removed.
- Requests run in a thread pool (`concurrency`, default 8). 429, 5xx, timeouts and dropped connections
  are retried by the openai client, and malformed 200 replies (not JSON, truncated, no choices, missing
  log-probabilities) by this backend, with exponential backoff, up to `max_retries` (default 5) times
  each; `timeout` (seconds, default 120; a command's --timeout, a run's [models] timeout) bounds
  every attempt. The final error names the URL.
- `score` tries, per server, in this order (`score_mode="auto"`; or force one):
  1. **exact** (servers with vLLM's `/tokenize` and `/v1/completions` with `echo`+`logprobs`: vLLM,
     `culturellm serve`): the prompt is tokenised with the server's chat template (generation prompt
     added), each candidate on its own plus the template's end-of-turn token, exactly as the local
     backend does, and one completions request with the token ids of every prompt+candidate returns
     the log-probability of each candidate token. Same numbers as local scoring.
  2. **first-token**: one token with `logprobs`/`top_logprobs` (20); each candidate is matched to the
     returned first tokens (see `_score_from_top`): `end_of_turn` cannot be applied, multi-token
     candidates are scored by their first token, and a candidate outside the top 20 gets a floor.
  3. **parse**: generate and parse; the candidate the reply names gets log-probability 0, the others
     -inf; an unparseable reply gives every candidate log(1/n) (`usage.by_kind["score_unparsed"]`).
  Each ScoreResult says which method scored it (`method`).
- Usage counts the server's token usage; cost comes from `pricing.load_prices()`.
"""

from __future__ import annotations

import json
import math
import os
import re
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from culturellm.errors import CultureLLMError
from culturellm.llm.backend import Backend
from culturellm.llm.base import Chat, SamplingParams, ScoreRequest, ScoreResult
from culturellm.llm.pricing import PriceTable, load_prices
from culturellm.llm.records import Completion, Scored
from culturellm.redact import check_url, redact_url

OPENAI_URL = "https://api.openai.com/v1"
TOP_LOGPROBS = 20
FLOOR_MARGIN = math.log(2.0)  # a candidate outside the top-k is at least this much less likely
SCORE_MODES = ("auto", "exact", "first-token", "parse")
RAW = {"X-Stainless-Raw-Response": "true"}  # the openai client hands back the raw reply
BACKOFF_S = (0.5, 8.0)  # first and largest wait between retries of a malformed reply
DEFAULT_TIMEOUT_S = 120.0


class Malformed(Exception):
    """A 200 reply that cannot be used (not JSON, no choices, no log-probabilities...)."""


class Unsupported(Exception):
    """The server does not offer what a scoring method needs (a 400/404/405/501 reply)."""


class Exhausted(CultureLLMError):
    """Every attempt got a malformed reply."""


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
        timeout: float | None = None,
        prices: PriceTable | str | None = None,
        score_mode: str = "auto",
    ) -> None:
        import openai

        if score_mode == "logprobs":  # the name before exact scoring existed
            score_mode = "first-token"
        if score_mode not in SCORE_MODES:
            raise CultureLLMError(f"unknown score_mode '{score_mode}': use one of {', '.join(SCORE_MODES)}")
        if timeout is None:
            timeout = DEFAULT_TIMEOUT_S
        if not timeout > 0:
            raise CultureLLMError(f"timeout must be a positive number of seconds, got {timeout}")
        self.base_url = (base_url or os.environ.get("OPENAI_BASE_URL") or OPENAI_URL).rstrip("/")
        try:
            check_url(self.base_url)
        except ValueError as e:
            where = "--base-url" if base_url else "OPENAI_BASE_URL"
            raise CultureLLMError(f"{where}: {e}") from None
        self.display_url = redact_url(self.base_url)
        super().__init__(name or f"openai:{model}", model_id=f"{model}@{self.display_url}")
        self.model = model
        key = api_key or os.environ.get("OPENAI_API_KEY")
        if not key:
            if self.base_url == OPENAI_URL:
                raise CultureLLMError(
                    f"model '{self.name}' needs an API key: set OPENAI_API_KEY (or pass --base-url for "
                    "a local OpenAI-compatible server)"
                )
            key = "not-needed"
        self.max_retries = max(0, int(max_retries))
        self.timeout = float(timeout)
        self.client = openai.OpenAI(
            base_url=self.base_url, api_key=key, max_retries=self.max_retries, timeout=self.timeout
        )
        self.concurrency = max(1, int(concurrency))
        self.prices = prices if isinstance(prices, PriceTable) else load_prices(prices)
        self.score_mode = score_mode
        self.score_tag = f"score:{score_mode}"  # part of the cache key: methods differ in results
        # per method: None (untried), True (works), False (the server cannot)
        self._works: dict[str, bool | None] = {m: None for m in SCORE_MODES[1:]}
        self._token_memo: dict[str, list[int]] = {}
        self._eot: list[int] | None = None
        self._lock = threading.Lock()

    # -- plumbing ----------------------------------------------------------------------------------

    def _map(self, fn: Any, items: Sequence[Any]) -> list[Any]:
        if len(items) <= 1 or self.concurrency == 1:
            return [fn(x) for x in items]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(items))) as pool:
            return list(pool.map(fn, items))  # re-raises the first failure

    def _root(self) -> str:
        """The server root (vLLM's /tokenize lives beside /v1, not under it)."""
        return self.base_url[: -len("/v1")] if self.base_url.endswith("/v1") else self.base_url

    def _post(self, path: str, body: dict[str, Any], parse: Callable[[dict[str, Any]], Any]) -> Any:
        """POST `body` and `parse` the JSON reply. Transport faults and 429/5xx are retried by the
        openai client; a malformed 200 reply (or one `parse` rejects with Malformed) is retried here
        with the same bound. Raises Unsupported for 400/404/405/501, CultureLLMError otherwise."""
        import openai

        url = path if path.startswith("http") else f"{self.display_url}{path}"
        shown = redact_url(url)
        last = ""
        for attempt in range(self.max_retries + 1):
            if attempt:
                time.sleep(min(BACKOFF_S[0] * 2 ** (attempt - 1), BACKOFF_S[1]))
            try:
                raw = self.client.post(path, cast_to=object, body=body, options={"headers": RAW})
                data = json.loads(raw.text)
                if not isinstance(data, dict):
                    raise Malformed("the reply is not a JSON object")
                return parse(data)
            except (Malformed, ValueError, KeyError, TypeError, IndexError) as e:
                last = f"{type(e).__name__}: {e}" if not isinstance(e, Malformed) else str(e)
                continue
            except openai.APIConnectionError as e:  # includes timeouts, after all retries
                raise CultureLLMError(f"cannot reach {shown} ({type(e).__name__}: {e})") from None
            except openai.AuthenticationError as e:
                raise CultureLLMError(f"{shown}: authentication failed; check OPENAI_API_KEY ({e})") from None
            except openai.APIStatusError as e:
                if e.status_code in (400, 404, 405, 422, 501):
                    raise Unsupported(f"{shown}: HTTP {e.status_code}: {_message(e)}") from None
                raise CultureLLMError(
                    f"{shown}: request failed with HTTP {e.status_code}: {_message(e)}"
                ) from None
        raise Exhausted(
            f"{shown}: malformed reply after {self.max_retries + 1} attempts ({last}; the server "
            "answered 200 but not with a usable OpenAI-style body)"
        )

    def _chat(self, body: dict[str, Any], parse: Callable[[dict[str, Any]], Any]) -> Any:
        try:
            return self._post("/chat/completions", {"model": self.model, **body}, parse)
        except Unsupported as e:
            if "HTTP 404" in str(e):
                raise CultureLLMError(f"{self.display_url}: model '{self.model}' not found ({e})") from None
            raise CultureLLMError(
                f"{self.display_url}: request failed with {str(e).split(': ', 1)[1]}"
            ) from None

    def _cost(self, usage: Any) -> tuple[int, int, float]:
        usage = usage if isinstance(usage, dict) else {}
        p = int(usage.get("prompt_tokens", 0) or 0)
        c = int(usage.get("completion_tokens", 0) or 0)
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
            data, choice = self._chat(kw, _first_choice)
            p, c, cost = self._cost(data.get("usage"))
            return Completion(
                str(choice["message"].get("content") or "").strip(),
                prompt_tokens=p,
                completion_tokens=c,
                cost_usd=cost,
                latency_s=time.perf_counter() - t0,
                finish_reason=str(choice.get("finish_reason") or "stop"),
            )

        return self._map(one, list(requests))

    # -- score -------------------------------------------------------------------------------------

    def score_detailed(self, requests: Sequence[ScoreRequest]) -> list[Scored]:
        return self._map(self._score_one, list(requests))

    def _methods(self) -> list[str]:
        if self.score_mode != "auto":
            return [self.score_mode]
        return [m for m in SCORE_MODES[1:] if self._works[m] is not False]

    def _score_one(self, req: ScoreRequest) -> Scored:
        fns = {"exact": self._score_exact, "first-token": self._score_first_token, "parse": self._score_parse}
        reasons = []
        for method in self._methods():
            try:
                out = fns[method](req)
            except (Unsupported, Exhausted) as e:
                # a server that never offers a method (404, or 200s without log-probs every time) is
                # asked the next one; once a method has worked, its failures are errors
                if self._works[method] or self.score_mode != "auto":
                    if isinstance(e, Exhausted):
                        raise
                    raise CultureLLMError(f"{method} scoring failed: {e}") from None
                with self._lock:
                    self._works[method] = False
                reasons.append(f"{method}: {e}")
                continue
            with self._lock:
                self._works[method] = True
            return out
        raise CultureLLMError(f"{self.display_url}: no scoring method works ({'; '.join(reasons)})")

    # exact: the server's tokeniser and prompt log-probabilities

    def _tokenize(self, body: dict[str, Any]) -> list[int]:
        def parse(d: dict[str, Any]) -> list[int]:
            toks = d["tokens"]
            if not isinstance(toks, list) or not all(isinstance(t, int) for t in toks):
                raise Malformed("/tokenize reply without a list of token ids")
            return toks

        return self._post(f"{self._root()}/tokenize", {"model": self.model, **body}, parse)

    def _candidate_ids(self, text: str) -> list[int]:
        with self._lock:
            if text in self._token_memo:
                return self._token_memo[text]
        ids = self._tokenize({"prompt": text, "add_special_tokens": False})
        with self._lock:
            self._token_memo[text] = ids
        return ids

    def _eot_ids(self) -> list[int]:
        """The chat template's end-of-turn token: the first token the template puts after an
        assistant message (what the local backend appends to candidates, e.g. `<|im_end|>`)."""
        if self._eot is None:
            msgs = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "ok"}]
            full = self._tokenize({"messages": msgs, "add_generation_prompt": False})
            open_ = self._tokenize(
                {"messages": msgs, "add_generation_prompt": False, "continue_final_message": True}
            )
            if full[: len(open_)] != open_ or len(full) <= len(open_):
                raise Unsupported("cannot find the chat template's end-of-turn token through /tokenize")
            self._eot = full[len(open_) : len(open_) + 1]
        return self._eot

    def _score_exact(self, req: ScoreRequest) -> Scored:
        prompt = self._tokenize({"messages": list(req.messages), "add_generation_prompt": True})
        eot = self._eot_ids() if req.end_of_turn else []
        cands = [self._candidate_ids(c) + eot for c in req.candidates]
        if any(not c for c in cands):
            raise CultureLLMError("cannot score an empty candidate with end_of_turn=False")
        body = {
            "model": self.model,
            "prompt": [prompt + c for c in cands],
            "max_tokens": 1,
            "temperature": 0.0,
            "echo": True,
            "logprobs": 1,
        }

        def parse(d: dict[str, Any]) -> tuple[list[float], dict[str, Any]]:
            choices = sorted(_choices(d, len(cands)), key=lambda ch: int(ch.get("index", 0)))
            sums = []
            for ch, c in zip(choices, cands, strict=True):
                lps = (ch.get("logprobs") or {}).get("token_logprobs")
                if not isinstance(lps, list):
                    raise Malformed("completions reply without token_logprobs")
                if len(lps) < len(prompt) + len(c):
                    raise Unsupported(f"the server ignores echo (got {len(lps)} token log-probs)")
                part = lps[len(prompt) : len(prompt) + len(c)]
                if not all(isinstance(x, int | float) for x in part):
                    raise Malformed("non-numeric token log-probabilities")
                sums.append(float(sum(part)))
            return sums, d

        t0 = time.perf_counter()
        sums, data = self._post("/completions", body, parse)
        p, c, cost = self._cost(data.get("usage"))
        res = ScoreResult(tuple(sums), tuple(len(x) for x in cands), method="exact")
        return Scored(
            res, prompt_tokens=p, completion_tokens=c, cost_usd=cost, latency_s=time.perf_counter() - t0
        )

    # first-token: top log-probabilities of one generated token

    def _score_first_token(self, req: ScoreRequest) -> Scored:
        def parse(d: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[str, float]]]:
            choice = _first_choice(d)[1]
            content = (choice.get("logprobs") or {}).get("content")
            if not content:
                raise Malformed("chat reply without logprobs.content")
            first = content[0]
            top = [(str(t["token"]), float(t["logprob"])) for t in (first.get("top_logprobs") or [])]
            return d, top or [(str(first["token"]), float(first["logprob"]))]

        body = {
            "messages": list(req.messages),
            "max_tokens": 1,
            "temperature": 0.0,
            "logprobs": True,
            "top_logprobs": TOP_LOGPROBS,
        }
        t0 = time.perf_counter()
        data, top = self._chat(body, parse)
        p, c, cost = self._cost(data.get("usage"))
        result = _score_from_top(req.candidates, top)
        latency = time.perf_counter() - t0
        return Scored(result, prompt_tokens=p, completion_tokens=c, cost_usd=cost, latency_s=latency)

    # parse: generate a reply and find the candidate it names

    def _score_parse(self, req: ScoreRequest) -> Scored:
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
        result = ScoreResult(logprobs=lps, num_tokens=tuple(1 for _ in req.candidates), method="parse")
        return Scored(
            result,
            prompt_tokens=done.prompt_tokens,
            completion_tokens=done.completion_tokens,
            cost_usd=done.cost_usd,
            latency_s=done.latency_s,
        )


def _choices(d: dict[str, Any], n: int = 1) -> list[dict[str, Any]]:
    choices = d.get("choices")
    if not isinstance(choices, list) or len(choices) < n or not all(isinstance(c, dict) for c in choices):
        raise Malformed(
            f"expected {n} choice(s), got {len(choices) if isinstance(choices, list) else 'none'}"
        )
    return choices


def _first_choice(d: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    choice = _choices(d)[0]
    if not isinstance(choice.get("message"), dict):
        raise Malformed("choice without a message")
    return d, choice


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
    return ScoreResult(logprobs=tuple(lps), num_tokens=tuple(1 for _ in candidates), method="first-token")


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
