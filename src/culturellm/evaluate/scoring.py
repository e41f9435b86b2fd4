"""Turning a model into predictions for a task: label scoring (default) or generate-and-parse.

score mode: one ScoreRequest per example, candidates = the task's label verbalizations, scored as the
whole assistant reply (end_of_turn=True); the prediction is the candidate with the highest summed
log-probability. generate mode: the paper's protocol by default (sampling at temperature 0.7, top-p 0.9,
up to 200 new tokens, as the reference's `getResponse` does; seeded, so a rerun replays), then
`parse_answer` maps the reply to a label (or to nothing: counted as unparseable and as wrong).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Sequence

from culturellm.evaluate.tasks import Task
from culturellm.llm.base import Chat, ChatModel, SamplingParams, ScoreRequest

CHUNK = 32  # examples per ChatModel call: bounds memory and drives the progress bar
# The reference's generate-and-parse (llm_response.getResponse, local Llama path): sampled at
# temperature 0.7 (top-p 0.9 from Llama-2-chat's generation config), up to 200 new tokens.
PAPER_TEMPERATURE = 0.7
PAPER_TOP_P = 0.9
PAPER_MAX_TOKENS = 200


def generation_params(
    temperature: float = PAPER_TEMPERATURE, max_tokens: int = PAPER_MAX_TOKENS, seed: int = 0
) -> SamplingParams:
    """Sampling parameters of generate mode (defaults: the paper's); temperature 0 = greedy."""
    return SamplingParams(
        max_tokens=max_tokens,
        temperature=temperature,
        top_p=PAPER_TOP_P if temperature > 0 else 1.0,
        seed=seed,
    )


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


# Contextual calibration (Zhao et al., "Calibrate Before Use", ICML 2021): the label scores a model gives
# to content-free texts estimate its prior over the labels (a small model gives the shorter or more
# frequent verbalization most of the mass whatever the text), and dividing it out makes the label
# decision depend on the text.
CONTENT_FREE = ("N/A", "", "[MASK]")
CALIBRATIONS = ("contextual", "none")
MIN_PRIOR = 1e-4  # a content-free prior this small (e.g. parse-fallback scores of 0 / -inf) is unusable


def content_free_prior(model: ChatModel, task: Task, system: str | None) -> list[float] | None:
    """Per-label log prior: the mean over CONTENT_FREE texts of the label distribution (scores
    softmax-normalised over the task's labels). None when it is unusable (a label with probability
    below MIN_PRIOR, or non-finite scores: a backend that scored by parsing one reply)."""
    return log_prior(predict_score(model, task, list(CONTENT_FREE), system)[1])


def calibrated_predictions(
    model: ChatModel, task: Task, scores: Sequence[Sequence[float]], system: str | None
) -> tuple[list[str | None], list[float] | None]:
    """Predictions from label scores with the model's content-free prior divided out, and that prior
    (None: unusable, the scores were taken as they are)."""
    prior = content_free_prior(model, task, system)
    return [pick_label(task.label_names, calibrate(s, prior)) for s in scores], prior


def softmax(lps: Sequence[float]) -> list[float]:
    """Probabilities from log-probabilities (-inf gives 0; all non-finite: uniform)."""
    finite = [x for x in lps if math.isfinite(x)]
    if not finite:
        return [1.0 / len(lps)] * len(lps)
    m = max(finite)
    ex = [math.exp(x - m) if math.isfinite(x) else 0.0 for x in lps]
    z = sum(ex)
    return [e / z for e in ex]


def log_prior(scores: Sequence[Sequence[float]]) -> list[float] | None:
    """Mean label distribution (log) of rows of label log-probabilities; None when unusable."""
    if not scores:
        return None
    probs = [0.0] * len(scores[0])
    for lps in scores:
        if not all(math.isfinite(x) for x in lps):
            return None
        for i, p in enumerate(softmax(lps)):
            probs[i] += p / len(scores)
    if min(probs) < MIN_PRIOR:
        return None
    return [math.log(p) for p in probs]


def calibrate(logprobs: Sequence[float], prior: Sequence[float] | None) -> list[float]:
    """Label scores with the content-free prior divided out (log p - log prior). Scores that are all
    equal (a backend that could not decide) stay a tie: calibration never turns no decision into one."""
    lps = list(logprobs)
    if prior is None or len(set(lps)) == 1:
        return lps
    return [x - p for x, p in zip(lps, prior, strict=True)]


def predict_score(
    model: ChatModel,
    task: Task,
    texts: Sequence[str],
    system: str | None,
    advance: Callable[[int], None] | None = None,
    methods: list[str] | None = None,
) -> tuple[list[str | None], list[list[float]]]:
    """Label scoring: predictions and the per-label log-probabilities (in task label order).
    `methods`, when given, receives how each example was scored (exact, first-token or parse)."""
    labels = task.label_names
    verbs = task.verbalizations
    preds: list[str | None] = []
    scores: list[list[float]] = []
    for start in range(0, len(texts), CHUNK):
        chunk = texts[start : start + CHUNK]
        reqs = [ScoreRequest(build_messages(task, t, system), verbs, end_of_turn=True) for t in chunk]
        for res in model.score(reqs):
            if methods is not None:
                methods.append(getattr(res, "method", "exact"))
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
    params: SamplingParams | None = None,
) -> tuple[list[str | None], list[str]]:
    """Generate-and-parse: replies sampled with `params` (default `generation_params()`, the paper's
    settings; seeded, so reruns replay and hit the cache) and their parsed labels (None = unparseable)."""
    params = params or generation_params()
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
