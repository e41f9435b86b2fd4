"""A retrieval baseline for WVS alignment (issue 29; as ValuesRAG does): instead of fine-tuning, put
the culture's own survey answers to related questions in the system message.

For each asked item (a held-out question or a held-out wording), the K training seed questions most
similar to it (the sentence embedder, cosine of unit vectors) are retrieved from the pool: the
training questions of the split (its manifest's `train_questions`; every seed the culture answered
when there is no split), never the asked question itself and never a held-out question. The system
message is the culture prompt followed by one line per retrieved question: its wording, the survey's
shares of each answer and the most common answer. `culturellm align --context retrieve:K` asks with
it; a run's `[align] retrieve = K` adds `base+retrieval` and `culturellm+retrieval` beside its models.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from culturellm.evaluate.variant import Retrieval

HEADER = "Survey answers of people from the {display} culture to related questions (share of respondents):"


def pool_questions(seeds: Mapping[str, Any], split: Path | None) -> list[str]:
    """The questions retrieval may use: the split's training questions the culture answered (held-out
    questions never), or every seed the culture answered without a split."""
    if split is None:
        return list(seeds)
    from culturellm.dataset.build import read_split
    from culturellm.regularfiles import read_input

    held = read_split(split).questions  # checks the file: a regular JSON object, or one error line
    data = json.loads(read_input(Path(split), "json").decode("utf-8"))
    src = data.get("split") if isinstance(data.get("split"), dict) else data
    train = src.get("train_questions")
    ids = [str(q) for q in train] if isinstance(train, list) else list(seeds)
    return [q for q in ids if q in seeds and q not in held]


def answers_line(seed: Any) -> str:
    """One retrieved question: its wording, each option's share of respondents, the most common one."""
    total = sum(max(float(v), 0.0) for v in seed.distribution.values()) or 1.0
    shares = ", ".join(
        f"{code} ({label}) {100 * max(float(seed.distribution.get(code, 0.0)), 0.0) / total:.0f}%"
        for code, label in seed.options.items()
    )
    return f'- "{seed.text}": {shares}; most common: {seed.majority}'


class Retriever:
    """The K nearest pool questions of each asked item, and the system message made of them."""

    def __init__(self, retrieval: Retrieval, seeds: Mapping[str, Any], pool: Sequence[str], embedder: Any):
        self.k = retrieval.k
        self.seeds = seeds
        self.pool = list(pool)
        self.embedder = embedder
        self._vecs = embedder.encode([seeds[q].text for q in self.pool]) if self.pool else None

    def nearest(self, question_id: str, text: str) -> list[str]:
        """The K pool questions most similar to `text` (cosine), the asked question left out; most
        similar first, ties in pool order."""
        if self._vecs is None:
            return []
        sims = self._vecs @ self.embedder.encode([text])[0]
        order = sorted(range(len(self.pool)), key=lambda i: (-float(sims[i]), i))
        return [self.pool[i] for i in order if self.pool[i] != question_id][: self.k]

    def system(self, base: str | None, display: str, question_id: str, text: str) -> tuple[str, list[str]]:
        """(the system message for one asked item, the retrieved question ids)."""
        ids = self.nearest(question_id, text)
        lines = [HEADER.format(display=display), *(answers_line(self.seeds[q]) for q in ids)]
        context = "\n".join(lines)
        return (f"{base}\n\n{context}" if base else context), ids


def retriever(retrieval: Retrieval, seeds: Mapping[str, Any], split: Path | None) -> Retriever:
    """A Retriever over the pool of `split` with the retrieval's embedder (loaded once per process)."""
    from culturellm.embed import load_embedder

    return Retriever(retrieval, seeds, pool_questions(seeds, split), load_embedder(retrieval.embedder))
