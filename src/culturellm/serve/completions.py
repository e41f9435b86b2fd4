"""POST /v1/completions: `prompt` as text or token ids (one or a list), `logprobs`, and `echo` (the
prompt's tokens and their log-probabilities in the legacy format: tokens, token_logprobs,
top_logprobs, text_offset), as lm-evaluation-harness's `local-completions` sends for log-likelihoods."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from culturellm.llm.base import SamplingParams
from culturellm.llm.records import Completion
from culturellm.serve.protocol import (
    CompletionRequestIn,
    completion_response,
    generated_legacy_logprobs,
    invalid,
)
from culturellm.serve.serving import Serving
from culturellm.serve.worker import Budget


class ServingCompletions(Serving):
    async def completions(self, body: CompletionRequestIn, request: Request) -> dict[str, Any]:
        name = self.check(body)
        prompts = self.prompts_of(body)
        budget = self.new_budget()
        if body.echo:
            choices, ctoks = await self.echo_choices(request, budget, name, body, prompts)
        else:
            choices, ctoks = await self.plain_choices(request, budget, name, body, prompts)
        return completion_response("text_completion", name, choices, prompts, ctoks)

    async def plain_choices(
        self, request: Request, budget: Budget, name: str, body: CompletionRequestIn, prompts: list[list[int]]
    ) -> tuple[list[dict[str, Any]], int]:
        """Completions without echo: generated text (and its log-probs when asked for)."""
        if not body.max_tokens:
            raise invalid("max_tokens: must be at least 1 without echo", "max_tokens")
        copies = len(prompts) * body.n
        limits = [self.budget(p, body.max_tokens, "max_tokens", copies) for p in prompts]
        jobs = [
            self.job(budget, name, "generate", p, body.params(limit, i), body.logprobs)
            for p, limit in zip(prompts, limits, strict=True)
            for i in range(body.n)
        ]
        outs = await self.wait(request, jobs)
        choices = [
            {
                "index": i,
                "text": o.text,
                "logprobs": generated_legacy_logprobs(o) if body.logprobs is not None else None,
                "finish_reason": o.finish_reason,
            }
            for i, o in enumerate(outs)
        ]
        return choices, sum(o.completion_tokens for o in outs)

    async def echo_choices(
        self, request: Request, budget: Budget, name: str, body: CompletionRequestIn, prompts: list[list[int]]
    ) -> tuple[list[dict[str, Any]], int]:
        """Completions with echo: prompt log-probs from one forward pass; greedy 0-1 new tokens come
        from the same pass, anything else is generated afterwards."""
        k = body.logprobs
        copies = len(prompts) * body.n
        for p in prompts:
            self.budget(p, body.max_tokens or None, "max_tokens", copies)
        scored_tokens = sum(len(p) for p in prompts)
        if scored_tokens > self.limits.max_logprob_tokens:
            raise invalid(
                f"prompt: at most {self.limits.max_logprob_tokens} prompt tokens per echo request on this "
                f"server (this one has {scored_tokens})",
                "prompt",
            )
        fast = not body.max_tokens or (body.max_tokens == 1 and body.temperature == 0)
        job = self.job(budget, name, "logprobs", prompts, SamplingParams(), k or 0)
        (scored,) = await self.wait(request, [job])
        gens: list[Completion | None] = [None] * copies
        if not fast:
            jobs = [
                self.job(budget, name, "generate", p, body.params(int(body.max_tokens or 1), i), k)
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
