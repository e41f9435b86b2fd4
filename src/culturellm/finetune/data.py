"""Training data: OpenAI chat fine-tuning JSONL, validated line by line, and its conversions.

A record is ``{"messages": [{"role": "system", ...}, {"role": "user", ...}, {"role": "assistant",
"content": "2"}]}`` (the format `culturellm dataset` writes and the OpenAI fine-tuning API reads).
The last message is the assistant answer the model is trained on; earlier messages are the prompt.

For local training a record becomes TRL's prompt/completion format: the prompt is the chat template
applied to the earlier messages with the generation prompt, the completion is the answer followed by
the end-of-turn token. The loss then covers the answer and the end-of-turn token only (the bundled
model's chat template has no ``{% generation %}`` markers, so TRL's assistant-only loss cannot be
used, and its pad token equals EOS, so labels must not be masked by pad id).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from culturellm.errors import DataError
from culturellm.regularfiles import check_input

ROLES = ("system", "user", "assistant")
# Matches culturellm.prompts.culture_system_prompt: "You are a person from the {display} culture."
_CULTURE_RE = re.compile(r"You are a person from the (.+?) culture\.")


@dataclass(frozen=True)
class TrainingRecord:
    """One validated training example."""

    messages: list[dict[str, str]]
    source: str  # "file:line", for error messages
    # Soft label: the answer's target distribution over option codes ("target_distribution" in the
    # JSONL; written by `culturellm dataset --target distribution`). None: the answer is a hard label.
    target: dict[str, float] | None = None
    # Loss weight of the example ("weight" in the JSONL; `[dataset] weight`): its loss is multiplied
    # by it (culturellm.finetune.soft). None: no weight given (the example weighs 1).
    weight: float | None = None

    @property
    def prompt_messages(self) -> list[dict[str, str]]:
        return self.messages[:-1]

    @property
    def answer(self) -> str:
        return self.messages[-1]["content"]

    @property
    def system(self) -> str | None:
        return next((m["content"] for m in self.messages if m["role"] == "system"), None)


def _validate(obj: Any, where: str) -> list[dict[str, str]]:
    if not isinstance(obj, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    msgs = obj.get("messages")
    if msgs is None:
        raise DataError(f"{where}: missing field 'messages' (OpenAI chat fine-tuning format)")
    if not isinstance(msgs, list) or not msgs:
        raise DataError(f"{where}: field 'messages' must be a non-empty list")
    out = []
    for i, m in enumerate(msgs):
        if not isinstance(m, dict):
            raise DataError(f"{where}: messages[{i}] must be an object with 'role' and 'content'")
        role, content = m.get("role"), m.get("content")
        if role not in ROLES:
            raise DataError(f"{where}: messages[{i}].role is {role!r}; expected one of {', '.join(ROLES)}")
        if not isinstance(content, str):
            raise DataError(f"{where}: messages[{i}].content must be a string")
        if role != "system" and not content.strip():
            raise DataError(f"{where}: messages[{i}].content is empty")
        out.append({"role": role, "content": content})
    if out[-1]["role"] != "assistant":
        raise DataError(f"{where}: the last message must be the assistant answer (role 'assistant')")
    if not any(m["role"] == "user" for m in out[:-1]):
        raise DataError(f"{where}: no user message before the assistant answer")
    if any(m["role"] == "system" for m in out[1:]):
        raise DataError(f"{where}: a system message may only come first")
    return out


def _target(obj: dict[str, Any], msgs: list[dict[str, str]], where: str) -> dict[str, float] | None:
    """The record's optional `target_distribution`, validated and normalised to sum 1."""
    dist = obj.get("target_distribution")
    if dist is None:
        return None
    if not isinstance(dist, dict) or not dist:
        raise DataError(f"{where}: target_distribution must be a non-empty object code -> share")
    for code, share in dist.items():
        if (
            isinstance(share, bool)
            or not isinstance(share, int | float)
            or not math.isfinite(share)
            or share < 0
        ):
            raise DataError(f"{where}: target_distribution[{code!r}] must be a number >= 0, got {share!r}")
    total = sum(dist.values())
    if total <= 0:
        raise DataError(f"{where}: target_distribution has no positive share")
    if msgs[-1]["content"] not in dist:
        raise DataError(
            f"{where}: the assistant answer {msgs[-1]['content']!r} is not a code of target_distribution"
        )
    return {str(k): float(v) / total for k, v in dist.items()}


def _weight(obj: dict[str, Any], where: str) -> float | None:
    """The record's optional loss `weight`: a finite number >= 0."""
    w = obj.get("weight")
    if w is None:
        return None
    if isinstance(w, bool) or not isinstance(w, int | float) or not math.isfinite(w) or w < 0:
        raise DataError(f"{where}: weight must be a number >= 0, got {w!r}")
    return float(w)


def has_weights(records: Sequence[TrainingRecord]) -> bool:
    """Whether any record carries a loss weight (weighted training)."""
    return any(r.weight is not None for r in records)


def has_soft_targets(records: Sequence[TrainingRecord]) -> bool:
    """Whether any record carries a target distribution (soft-label training)."""
    return any(r.target is not None for r in records)


def load_records(paths: Path | str | Sequence[Path | str]) -> list[TrainingRecord]:
    """Read and validate one or more JSONL files (concatenated in order).

    Raises DataError naming the file and line of the first bad record, or when there is no record.
    """
    if isinstance(paths, str | Path):
        paths = [paths]
    if not paths:
        raise DataError("no training data given (use --data FILE)")
    records: list[TrainingRecord] = []
    for p in map(Path, paths):
        if not p.exists():
            raise DataError(f"{p}: training data file not found")
        check_input(p, "data")  # a regular file: a FIFO or /dev/zero is one line, never read
        with open(p, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                where = f"{p}:{n}"
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as e:
                    raise DataError(f"{where}: not valid JSON ({e.msg})") from None
                msgs = _validate(obj, where)
                records.append(TrainingRecord(msgs, where, _target(obj, msgs, where), _weight(obj, where)))
    if not records:
        names = ", ".join(str(p) for p in paths)
        raise DataError(f"{names}: no training examples (empty file)")
    return records


def data_sha256(paths: Path | str | Sequence[Path | str]) -> str:
    """sha256 over the bytes of the data files, in order (the identity of a training set)."""
    if isinstance(paths, str | Path):
        paths = [paths]
    h = hashlib.sha256()
    for p in paths:
        with open(p, "rb") as f:
            for block in iter(lambda f=f: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def cultures_in(records: Iterable[TrainingRecord]) -> list[str]:
    """Culture names found in the records' system prompts, in first-seen order.

    Display names ("Arabic") are mapped to registry names ("arabic") when the culture registry
    knows them; otherwise the display name is lower-cased.
    """
    displays: dict[str, None] = {}
    for r in records:
        s = r.system
        if s:
            m = _CULTURE_RE.search(s)
            if m:
                displays[m.group(1)] = None
    return [_culture_name(d) for d in displays]


def _culture_name(display: str) -> str:
    try:
        from culturellm.cultures import list_cultures

        for c in list_cultures():
            if display.lower() in (c.display.lower(), c.name.lower()):
                return c.name
    except Exception:  # registry not available or failed: fall back to the display name
        pass
    return display.lower()


# --- local training format -------------------------------------------------------------------------


def to_prompt_completion(records: Sequence[TrainingRecord], tokenizer: Any) -> list[dict[str, str]]:
    """TRL prompt/completion rows: chat-templated prompt (with generation prompt) + answer + EOT; with
    soft targets in any record, also a `soft_target` column (JSON of code -> share, "" for hard); with
    weights in any record, also a `weight` column (1.0 where a record has none)."""
    eot = end_of_turn_token(tokenizer)
    soft, weighted = has_soft_targets(records), has_weights(records)
    rows = []
    for r in records:
        prompt = tokenizer.apply_chat_template(r.prompt_messages, add_generation_prompt=True, tokenize=False)
        row: dict[str, Any] = {"prompt": prompt, "completion": r.answer + eot}
        if soft:  # a JSON string: arrow needs one type per column, and codes differ between questions
            row["soft_target"] = json.dumps(r.target) if r.target is not None else ""
        if weighted:
            row["weight"] = r.weight if r.weight is not None else 1.0
        rows.append(row)
    return rows


def end_of_turn_token(tokenizer: Any) -> str:
    """The token the chat template closes an assistant turn with (<|im_end|> for ChatML models)."""
    probe = [{"role": "user", "content": "x"}]
    try:
        prompt = tokenizer.apply_chat_template(probe, add_generation_prompt=True, tokenize=False)
        full = tokenizer.apply_chat_template(
            [*probe, {"role": "assistant", "content": "QQQ"}], tokenize=False
        )
        tail = full[len(prompt) :] if full.startswith(prompt) else full[full.rindex("QQQ") :]
        after = tail.split("QQQ", 1)[1]
        for tok in tokenizer.all_special_tokens:
            if tok and after.startswith(tok):
                return tok
    except Exception:
        pass
    return tokenizer.eos_token or ""


# --- token counts (OpenAI backend) -----------------------------------------------------------------

CHARS_PER_TOKEN = 4.0  # OpenAI's rule of thumb for English text when tiktoken is not installed
TOKENS_PER_MESSAGE = 3  # role + separators, as in OpenAI's cookbook counting
TOKENS_PER_REPLY = 3


def _encoder(model: str):
    try:
        import tiktoken  # optional: exact counts if the user has it
    except ImportError:
        return None
    try:
        return tiktoken.encoding_for_model(model)
    except Exception:
        try:
            return tiktoken.get_encoding("o200k_base")
        except Exception:
            return None


def count_tokens(records: Sequence[TrainingRecord], model: str = "gpt-4o-mini") -> tuple[list[int], str]:
    """Tokens per example as billed for chat fine-tuning, and the counting method used.

    With tiktoken installed: exact content tokens; else ceil(characters / 4). Each message adds 3
    tokens and each example 3 more (OpenAI cookbook's rule).
    """
    enc = _encoder(model)
    method = f"tiktoken:{enc.name}" if enc is not None else "approx: ceil(chars/4) + 3 per message + 3"
    counts = []
    for r in records:
        n = TOKENS_PER_REPLY
        for m in r.messages:
            text = m["content"]
            n += TOKENS_PER_MESSAGE + (
                len(enc.encode(text)) if enc is not None else math.ceil(len(text) / CHARS_PER_TOKEN)
            )
        counts.append(n)
    return counts, method
