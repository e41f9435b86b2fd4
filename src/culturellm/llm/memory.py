"""How many prompts a local model can score or generate at once, from the free accelerator memory.

A batch row costs its KV cache (2 x layers x key-value heads x head size x bytes per value, per token)
plus the activations of one layer's forward pass (about 12 x hidden size values per token: the
residual stream, attention output, and the MLP's up/gate projections) and the kept logits. The batch is
the share `budget` of the free memory divided by the cost of a row of `tokens` tokens, clamped to
[1, cap]. On a CPU there is no memory figure to go by: `default` (16) is used.
"""

from __future__ import annotations

from typing import Any

DEFAULT_BATCH = 16


def _text_config(config: Any) -> Any:
    return getattr(config, "text_config", None) or config


def kv_bytes_per_token(config: Any, bytes_per_value: int = 2) -> int:
    """Bytes of KV cache one token takes in a model with this (transformers) config."""
    cfg = _text_config(config)
    heads = int(cfg.num_attention_heads)
    kv_heads = int(getattr(cfg, "num_key_value_heads", None) or heads)
    head_dim = int(getattr(cfg, "head_dim", None) or cfg.hidden_size // heads)
    return 2 * int(cfg.num_hidden_layers) * kv_heads * head_dim * bytes_per_value


def row_bytes(config: Any, tokens: int, bytes_per_value: int = 2) -> int:
    """Peak bytes one batch row of `tokens` tokens adds: KV cache, one layer's activations, and the
    fp32 log-probabilities of the last position over the vocabulary."""
    cfg = _text_config(config)
    inter = int(getattr(cfg, "intermediate_size", None) or 4 * cfg.hidden_size)
    activations = tokens * (4 * int(cfg.hidden_size) + 2 * inter) * bytes_per_value
    logits = 2 * int(cfg.vocab_size) * 4
    return kv_bytes_per_token(config, bytes_per_value) * tokens + activations + logits


def auto_batch_size(
    model: Any,
    device: str,
    *,
    tokens: int = 512,
    budget: float = 0.6,
    cap: int = 256,
    default: int = DEFAULT_BATCH,
    free_bytes: int | None = None,
) -> int:
    """Prompts per forward pass for `model` on `device` ("cuda", "cuda:1", "mps", "cpu")."""
    import torch

    if free_bytes is None:
        if not device.startswith("cuda") or not torch.cuda.is_available():
            return default
        free_bytes, _total = torch.cuda.mem_get_info(torch.device(device))
    param = next(iter(model.parameters()), None) if hasattr(model, "parameters") else None
    width = param.element_size() if param is not None and param.is_floating_point() else 2
    per_row = row_bytes(model.config, tokens, bytes_per_value=min(width, 4))
    return int(max(1, min(cap, (free_bytes * budget) // per_row)))
