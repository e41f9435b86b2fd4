"""Turning a model into predictions for a task: label scoring (default) or generate-and-parse.

score mode: one ScoreRequest per example, candidates = the task's label verbalizations, scored as the
whole assistant reply (end_of_turn=True); the prediction is the candidate with the highest summed
log-probability. generate mode: greedy generation, then `parse_answer` maps the reply to a label (or to
nothing: counted as unparseable and as wrong).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence

from culturellm.evaluate.tasks import Task
from culturellm.llm.base import Chat, ChatModel, SamplingParams, ScoreRequest

CHUNK = 128  # examples per ChatModel call: bounds memory and drives the progress bar
GENERATE_MAX_TOKENS = 16


def user_message(task: Task, text: str) -> str:
    """The user turn: the task's instruction, the text, then the allowed answers."""
    options = ", ".join(f'"{v}"' for v in task.verbalizations)
    return f"{task.instruction}\n\nText: {text}\n\nAnswer with one of: {options}."


def build_messages(task: Task, text: str, system: str | None) -> Chat:
    msgs: Chat = []
    if system:
        msgs.append({"role": "system", "content": system})
    msgs.append({"role": "user", "content": user_message(task, text)})
    return msgs


def _norm(s: str) -> str:
    s = unicodedata.normalize("NFKC", s).casefold()
    s = re.sub(r"[\s_\-]+", " ", s)
    return s.strip()


def parse_answer(task: Task, reply: str) -> str | None:
    """Map a free-text reply to a canonical label, or None when it is unparseable.

    A reply that is exactly a label spelling (verbalization, canonical name, raw data code) maps to it;
    otherwise verbalizations and canonical names are searched as whole phrases; a match inside a
    longer match ("offensive" inside "not offensive") is ignored. One label found: that label.
    Several: the reply's first match wins only when the reply starts with it
    ("Not offensive. It is not offensive..."); otherwise the reply is ambiguous (None).
    Never a bare substring test: "not" alone does not mean the negative class."""
    text = _norm(reply)
    text = re.sub(r"^(answer|label|the answer is|classification)\s*[:\-]?\s*", "", text)
    text = text.strip(" \"'`*.:")
    if not text:
        return None
    aliases: dict[str, str] = {}
    for canon, verb in task.labels.items():
        aliases[_norm(verb)] = canon
        aliases.setdefault(_norm(canon), canon)
    raw_codes = {_norm(raw): canon for raw, canon in task.label_map.items()}
    if text in aliases:
        return aliases[text]
    if text in raw_codes:  # a bare data code ("OFF"); never searched inside a sentence ("do NOT know")
        return raw_codes[text]
    spans: list[tuple[int, int, str]] = []
    for alias, canon in aliases.items():
        for m in re.finditer(rf"(?<!\w){re.escape(alias)}(?!\w)", text):
            spans.append((m.start(), m.end(), canon))
    # drop matches contained in a longer match
    kept = [
        s
        for s in spans
        if not any(o != s and o[0] <= s[0] and s[1] <= o[1] and (o[1] - o[0]) > (s[1] - s[0]) for o in spans)
    ]
    found = {c for _, _, c in kept}
    if len(found) == 1:
        return found.pop()
    if not kept:
        return None
    first = min(kept, key=lambda s: (s[0], -(s[1] - s[0])))
    if first[0] == 0:
        return first[2]
    return None


def pick_label(labels: Sequence[str], logprobs: Sequence[float]) -> str | None:
    """The label with the highest log-probability; None on a tie at the top (an HTTP backend without
    logprobs scores an unparseable reply as all-equal, and first-token scoring can tie candidates that
    share a first token): a tie is no decision, counted as unparseable rather than given to label 1."""
    best = max(logprobs)
    top = [i for i, lp in enumerate(logprobs) if lp == best]
    return labels[top[0]] if len(top) == 1 else None


def predict_score(
    model: ChatModel,
    task: Task,
    texts: Sequence[str],
    system: str | None,
    advance: Callable[[int], None] | None = None,
) -> tuple[list[str | None], list[list[float]]]:
    """Label scoring: predictions and the per-label log-probabilities (in task label order)."""
    labels = task.label_names
    verbs = task.verbalizations
    preds: list[str | None] = []
    scores: list[list[float]] = []
    for start in range(0, len(texts), CHUNK):
        chunk = texts[start : start + CHUNK]
        reqs = [ScoreRequest(build_messages(task, t, system), verbs, end_of_turn=True) for t in chunk]
        for res in model.score(reqs):
            lps = list(res.logprobs)
            scores.append(lps)
            preds.append(pick_label(labels, lps))
        if advance:
            advance(len(chunk))
    return preds, scores


def predict_generate(
    model: ChatModel,
    task: Task,
    texts: Sequence[str],
    system: str | None,
    advance: Callable[[int], None] | None = None,
    max_tokens: int = GENERATE_MAX_TOKENS,
) -> tuple[list[str | None], list[str]]:
    """Generate-and-parse: greedy replies (temperature 0, so reruns are identical and cached) and their
    parsed labels (None = unparseable)."""
    params = SamplingParams(max_tokens=max_tokens, temperature=0.0)
    preds: list[str | None] = []
    replies: list[str] = []
    for start in range(0, len(texts), CHUNK):
        chunk = texts[start : start + CHUNK]
        out = model.generate([build_messages(task, t, system) for t in chunk], params)
        replies += out
        preds += [parse_answer(task, r) for r in out]
        if advance:
            advance(len(chunk))
    return preds, replies
