"""POST /tokenize, POST /detokenize, GET /tokenizer_info (vLLM's shapes): exact label scoring over HTTP
and lm-eval's remote tokenizer use them."""

from __future__ import annotations

from typing import Any

from culturellm.serve.protocol import DetokenizeIn, TokenizeIn, invalid, messages_of
from culturellm.serve.serving import Serving


class ServingTokenization(Serving):
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
                messages_of(body.messages), body.add_generation_prompt, body.continue_final_message
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
