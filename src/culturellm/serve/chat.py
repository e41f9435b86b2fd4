"""POST /v1/chat/completions."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from culturellm.serve.protocol import ChatRequestIn, chat_logprobs, completion_response, invalid, messages_of
from culturellm.serve.serving import Serving


class ServingChat(Serving):
    async def chat_completions(self, body: ChatRequestIn, request: Request) -> dict[str, Any]:
        """Chat completions: `logprobs`/`top_logprobs`, `n`, `seed`, `stop`; vLLM's
        `add_generation_prompt` / `continue_final_message`."""
        name = self.check(body)
        if body.top_logprobs is not None and not body.logprobs:
            raise invalid("top_logprobs requires logprobs=true", "top_logprobs")
        prompt = self.render(
            messages_of(body.messages), body.add_generation_prompt, body.continue_final_message
        )
        k = (body.top_logprobs or 0) if body.logprobs else None
        asked = body.max_completion_tokens or body.max_tokens
        limit = self.budget(prompt, asked, "max_tokens", copies=body.n)
        budget = self.new_budget()
        jobs = [self.job(budget, name, "generate", prompt, body.params(limit, i), k) for i in range(body.n)]
        outs = await self.wait(request, jobs)
        choices = [
            {
                "index": i,
                "message": {"role": "assistant", "content": o.text},
                "logprobs": chat_logprobs(o) if k is not None else None,
                "finish_reason": o.finish_reason,
            }
            for i, o in enumerate(outs)
        ]
        return completion_response(
            "chat.completion", name, choices, [prompt], sum(o.completion_tokens for o in outs)
        )
