"""Soft-label (distribution-faithful) training: the answer is learned as the survey's distribution.

A training record may carry ``"target_distribution": {"1": 0.52, "2": 0.31, ...}`` (what
``culturellm dataset --target distribution`` writes) next to its messages; its assistant message is
then the distribution's most likely code. For such records the loss on the answer token(s) is the
cross-entropy against the distribution instead of against the single code:

    loss = - sum_c q_c log p(c | prompt)          (= KL(q || p) + H(q); same gradient as the KL)

Codes are token sequences ("10" is two tokens for SmolLM2). The sequence probability factorises over
the trie of the codes' tokens, so at every completion position the target is the mass of the codes
that pass through that trie node, split by their next token (the end-of-turn token when a code ends
there). On a completion the model is teacher-forced along (the majority code), this is the exact
per-token decomposition of the sequence cross-entropy for the nodes on that path; codes that differ
from it at the first token contribute through the first position (where every code branches off).
A one-hot target gives TRL's own loss exactly.

It rides on TRL: `SoftTargetCollator` wraps TRL's collator and adds two tensors per batch,
`SoftLabelSFTTrainer.compute_loss` replaces the hard cross-entropy by the soft one. No training loop
of our own: optimiser, schedule, checkpoints, accelerate and resume stay the HF Trainer's.

Per-example loss weights (a record's ``"weight"``, `[dataset] weight`) ride on the same trainer: the
collator adds `example_weight` (batch,), every supervised token's loss is multiplied by its example's
weight and the sum is divided by the sum of the weights of the supervised tokens (across gradient
accumulation, as the Trainer counts tokens), so a weight of 0 removes an example exactly (the same
gradient as training without it) and weights of 1 give the unweighted loss.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import torch

SOFT_COLUMN = "soft_target"
WEIGHT_COLUMN = "weight"  # the per-example loss weight (culturellm.finetune.data.to_prompt_completion)


def node_targets(
    code_tokens: Mapping[str, Sequence[int]], dist: Mapping[str, float], path: Sequence[int], eot: int
) -> list[dict[int, float]]:
    """Per completion position j (predicting path[j]), the target distribution over next tokens.

    `path` is the completion's token ids (the teacher-forced code followed by the end-of-turn token).
    At position j the codes still consistent with path[:j] share the mass; a code that ends at j votes
    for `eot`. When no code matches path[:j] (a completion that is not an option code), the target is
    the path token itself (hard label)."""
    out: list[dict[int, float]] = []
    for j, tok in enumerate(path):
        mass: dict[int, float] = {}
        for code, toks in code_tokens.items():
            q = dist.get(code, 0.0)
            if q <= 0 or len(toks) < j or list(toks[:j]) != list(path[:j]):
                continue
            nxt = toks[j] if j < len(toks) else eot
            mass[nxt] = mass.get(nxt, 0.0) + q
        s = sum(mass.values())
        out.append({k: v / s for k, v in mass.items()} if s > 0 else {int(tok): 1.0})
    return out


class SoftTargetCollator:
    """TRL's collator plus `soft_ids` / `soft_probs` (batch, length, K): the target token ids and their
    probabilities at every supervised position (label != -100), zero-probability padding elsewhere."""

    def __init__(self, base: Any, tokenizer: Any, eot_id: int):
        self.base = base
        self.tokenizer = tokenizer
        self.eot_id = eot_id
        self._tokens: dict[str, list[int]] = {}

    def _code_tokens(self, code: str) -> list[int]:
        if code not in self._tokens:
            self._tokens[code] = list(self.tokenizer(code, add_special_tokens=False)["input_ids"])
        return self._tokens[code]

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        soft = [json.loads(ex[SOFT_COLUMN]) if ex.get(SOFT_COLUMN) else None for ex in examples]
        ours = (SOFT_COLUMN, WEIGHT_COLUMN)
        batch = self.base([{k: v for k, v in ex.items() if k not in ours} for ex in examples])
        if any(WEIGHT_COLUMN in ex for ex in examples):
            weights = [float(ex.get(WEIGHT_COLUMN, 1.0)) for ex in examples]
            batch["example_weight"] = torch.tensor(weights, dtype=torch.float32)
        labels = batch["labels"]
        per_row: list[dict[int, dict[int, float]]] = []
        k_max = 1
        for i, dist in enumerate(soft):
            pos = (labels[i] != -100).nonzero().flatten().tolist()
            path = labels[i, pos].tolist()
            if dist is None:
                targets = [{int(t): 1.0} for t in path]
            else:
                codes = {c: self._code_tokens(c) for c in dist}
                targets = node_targets(codes, dist, path, self.eot_id)
            row = dict(zip(pos, targets, strict=True))
            k_max = max([k_max, *(len(t) for t in targets)])
            per_row.append(row)
        ids = torch.zeros((*labels.shape, k_max), dtype=torch.long)
        probs = torch.zeros((*labels.shape, k_max), dtype=torch.float32)
        for i, row in enumerate(per_row):
            for p, target in row.items():
                for k, (tok, q) in enumerate(target.items()):
                    ids[i, p, k], probs[i, p, k] = tok, q
        batch["soft_ids"], batch["soft_probs"] = ids, probs
        return batch


def soft_cross_entropy(
    logits: torch.Tensor,
    labels: torch.Tensor,
    soft_ids: torch.Tensor,
    soft_probs: torch.Tensor,
    num_items: int | torch.Tensor | None = None,
    weights: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum over supervised positions of -sum_k q_k log p(id_k), divided by the number of supervised
    tokens (or `num_items`, the Trainer's count across gradient-accumulation steps). Logits at position
    t predict the token at t + 1 (causal shift). With `weights` (batch,), each position's loss is
    multiplied by its example's weight and the count is of weighted tokens (`num_items` then being the
    weighted count). Returns (loss, top-1 hit per supervised position)."""
    mask = labels[:, 1:] != -100
    logp = torch.log_softmax(logits[:, :-1][mask].float(), dim=-1)  # supervised positions only: (N, V)
    ids, probs = soft_ids[:, 1:][mask], soft_probs[:, 1:][mask]  # (N, K)
    per_pos = -(logp.gather(-1, ids) * probs).sum(-1)
    n = mask.sum() if num_items is None else num_items
    if weights is not None:
        w = weights.to(per_pos.device, per_pos.dtype)[:, None].expand(mask.shape)[mask]
        per_pos = per_pos * w
        n = w.sum() if num_items is None else num_items
    n = torch.as_tensor(n, device=per_pos.device)
    loss = per_pos.sum() / (n.clamp(min=1) if weights is None else n.clamp(min=1e-12))
    top1 = logp.argmax(-1) == labels[:, 1:][mask]
    return loss, top1


def soft_trainer_class() -> type:
    """`SFTTrainer` with the soft cross-entropy as its loss (imported lazily: TRL is heavy)."""
    from trl import SFTTrainer

    class SoftLabelSFTTrainer(SFTTrainer):
        """SFTTrainer whose loss on the answer is the cross-entropy against a target distribution."""

        def _get_num_items_in_batch(self, batch_samples, device):
            """The Trainer's count of supervised tokens, each weighted by its example's weight when the
            batches carry weights (so that the accumulated loss is a weighted mean)."""
            count = super()._get_num_items_in_batch(batch_samples, device)
            if count is None or not batch_samples or "example_weight" not in batch_samples[0]:
                return count
            tokens = [(b["labels"][..., 1:] != -100).sum(-1).float() for b in batch_samples]
            plain = sum(t.sum() for t in tokens)
            weighted = sum(
                (t * b["example_weight"]).sum() for t, b in zip(tokens, batch_samples, strict=True)
            )
            if self.args.average_tokens_across_devices and self.args.world_size > 1:
                plain = self.accelerator.gather(plain.to(device)).sum()
                weighted = self.accelerator.gather(weighted.to(device)).sum()
            # the parent's count (gathered and divided as it does) rescaled to weighted tokens
            return count * (weighted.to(count.device) / plain.to(count.device).clamp(min=1))

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            mode = "train" if self.model.training else "eval"
            soft_ids, soft_probs = inputs.pop("soft_ids"), inputs.pop("soft_probs")
            weights = inputs.pop("example_weight", None)
            labels = inputs.pop("labels")
            inputs["use_cache"] = False
            outputs = model(**inputs)
            loss, top1 = soft_cross_entropy(
                outputs.logits, labels, soft_ids, soft_probs, num_items=num_items_in_batch, weights=weights
            )
            if self.args.average_tokens_across_devices and num_items_in_batch is not None:
                loss = loss * self.accelerator.num_processes
            acc = top1.float().mean().item() if top1.numel() else 0.0
            self._metrics[mode]["mean_token_accuracy"].append(acc)
            if mode == "train" and "attention_mask" in inputs:
                self._total_train_tokens += int(inputs["attention_mask"].sum().item())
            self._metrics[mode]["num_tokens"] = [self._total_train_tokens]
            return (loss, outputs) if return_outputs else loss

    return SoftLabelSFTTrainer
