"""Shims over tokenizers and transformers versions, used by the local model and its loaders.

Chat templates for tokenizers that carry none, the end-of-turn token of a template, per-row stopping
criteria for `generate`, and the KV-cache calls whose names changed between transformers releases.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Sequence
from typing import Any

from culturellm.errors import CultureLLMError

# A plain ChatML template for tokenizers that have none (tiny test tokenizers, base models).
CHATML_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# Gemma 3's chat template (the GGUF in the gemma3-270m packages carries none): system text is
# prepended to the first user turn; the assistant role is called "model".
GEMMA_TEMPLATE = (
    "{{ bos_token }}"
    "{%- if messages[0]['role'] == 'system' -%}"
    "{%- set first_user_prefix = messages[0]['content'] + '\\n\\n' -%}"
    "{%- set loop_messages = messages[1:] -%}"
    "{%- else -%}{%- set first_user_prefix = '' -%}{%- set loop_messages = messages -%}{%- endif -%}"
    "{%- for message in loop_messages -%}"
    "{%- if message['role'] == 'assistant' -%}{%- set role = 'model' -%}"
    "{%- else -%}{%- set role = message['role'] -%}{%- endif -%}"
    "{{ '<start_of_turn>' + role + '\\n' + (first_user_prefix if loop.first else '') }}"
    "{{ message['content'] | trim }}{{ '<end_of_turn>\\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<start_of_turn>model\\n' }}{%- endif -%}"
)


def ensure_chat_template(tokenizer: Any) -> None:
    """Give a tokenizer without a chat template the one its vocabulary implies (Gemma's turn
    markers, else ChatML), and a pad token (EOS) when it has none; both are needed for batching."""
    if tokenizer.chat_template is None:
        vocab = tokenizer.get_vocab()
        tokenizer.chat_template = GEMMA_TEMPLATE if "<start_of_turn>" in vocab else CHATML_TEMPLATE
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token


def end_of_turn_ids(tokenizer: Any) -> list[int]:
    """Token ids the chat template puts after an assistant message (e.g. `<|im_end|>`), else EOS."""
    marker = "\x00ZQX\x00"
    try:
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": "hi"}, {"role": "assistant", "content": marker}], tokenize=False
        )
        tail = text.split(marker, 1)[1].strip()
    except Exception:  # templates that reject this conversation
        tail = ""
    if tail:
        ids = tokenizer(tail, add_special_tokens=False)["input_ids"]
        # keep the special token(s) only: the template's trailing newline is not part of the turn
        special = [i for i in ids if i in set(tokenizer.all_special_ids)]
        if special:
            return special[:1]
        if ids:
            return ids
    if tokenizer.eos_token_id is None:
        raise CultureLLMError("tokenizer has neither an end-of-turn token in its chat template nor an EOS")
    return [int(tokenizer.eos_token_id)]


def row_stops(checks: Sequence[Any]) -> Any:
    """A StoppingCriteriaList that stops each row when its callable returns True."""
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    class RowStop(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            return torch.tensor([bool(c()) for c in checks], dtype=torch.bool, device=input_ids.device)

    return StoppingCriteriaList([RowStop()])


def sliding_window(model: Any) -> int | None:
    """The attention window of a model with sliding-window layers (Gemma 3, Mistral...), else None."""
    cfg = getattr(model, "config", None)
    cfg = getattr(cfg, "text_config", None) or cfg
    window = getattr(cfg, "sliding_window", None)
    return int(window) if isinstance(window, int) and window > 0 else None


@functools.cache
def cache_kwarg() -> str:
    """The forward() keyword of the KV cache: `cache` since transformers 5.24, `past_key_values` before
    (still accepted, with a deprecation warning)."""
    import inspect

    from transformers import LlamaForCausalLM

    return "cache" if "cache" in inspect.signature(LlamaForCausalLM.forward).parameters else "past_key_values"


def cache_of(out: Any) -> Any:
    return out.cache if "cache" in out else out.past_key_values


def select_cache(cache: Any, index: Any) -> Any:
    """A new cache holding rows `index` of `cache` (the original is left intact)."""
    sub = copy.copy(cache)
    sub.layers = [copy.copy(layer) for layer in cache.layers]
    sub.reorder_cache(index)
    return sub


class TemperatureTopP:
    """A `generate` logits processor doing what transformers' TemperatureLogitsWarper and then
    TopPLogitsWarper do (divide by the temperature; drop the least likely tokens whose mass together
    is at most 1 - top_p), without sorting the whole vocabulary at every step when the `k` most likely
    tokens already hold the nucleus (they almost always do; otherwise it sorts as transformers does).
    The sort was a sixth of the demo's augmentation time on a CPU."""

    def __init__(self, temperature: float, top_p: float, k: int = 256) -> None:
        self.temperature, self.top_p, self.k = float(temperature), float(top_p), k

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        scores = scores / self.temperature
        k = min(self.k, scores.shape[-1])
        top, idx = scores.topk(k, dim=-1)  # descending
        p_top = (top.double() - scores.double().logsumexp(-1, keepdim=True)).exp()
        above = p_top.cumsum(-1) - p_top  # mass of the tokens more likely than each
        if bool((p_top.sum(-1) < self.top_p).any()):  # the nucleus may reach beyond the top k
            from transformers.generation.logits_process import TopPLogitsWarper

            return TopPLogitsWarper(self.top_p)(input_ids, scores)
        # transformers removes a token when the mass at or below it is <= 1 - top_p
        keep_top = (1.0 - above).float() > torch.tensor(1 - self.top_p, dtype=torch.float32)
        keep_top[..., 0] = True
        keep = torch.zeros_like(scores, dtype=torch.bool).scatter(1, idx, keep_top)
        return scores.masked_fill(~keep, -float("inf"))
