"""Choosing the words a synonym swap may touch, and building the swapped variants.

Content words are the open-class words (nouns, verbs, adjectives, adverbs). English function words
are a closed class, so we take the complement of a stop-word list (scikit-learn's
ENGLISH_STOP_WORDS, 318 words) instead of running a part-of-speech tagger; negations, quantifiers,
frequency adverbs and modals are protected explicitly (swapping them flips or shifts the meaning),
and so are the words of the question's answer options (the answer scale must keep referring to the
same words). The LLM then chooses, among these candidates, which words it can give synonyms for.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

NEGATIONS = frozenset(
    (
        "not",
        "no",
        "never",
        "none",
        "nobody",
        "nothing",
        "nowhere",
        "neither",
        "nor",
        "without",
        "cannot",
        "cant",
        "don't",
        "doesn't",
        "didn't",
        "isn't",
        "aren't",
        "wasn't",
        "weren't",
        "won't",
        "wouldn't",
        "shouldn't",
        "couldn't",
        "can't",
        "mustn't",
        "haven't",
        "hasn't",
        "hadn't",
        "n't",
        "lack",
        "lacks",
        "lacking",
    )
)
QUANTIFIERS = frozenset(
    (
        "all",
        "every",
        "each",
        "any",
        "some",
        "many",
        "much",
        "few",
        "fewer",
        "less",
        "least",
        "more",
        "most",
        "several",
        "both",
        "either",
        "half",
        "whole",
        "entire",
        "only",
        "always",
        "often",
        "sometimes",
        "rarely",
        "seldom",
        "usually",
        "frequently",
        "occasionally",
        "hardly",
        "almost",
        "nearly",
        "mostly",
        "equally",
        "just",
        "very",
        "quite",
        "rather",
        "too",
        "enough",
        "majority",
        "minority",
    )
)
MODALS = frozenset(["should", "must", "may", "might", "can", "could", "would", "will", "shall", "ought"])
PROTECTED = NEGATIONS | QUANTIFIERS | MODALS
STOPWORDS = frozenset(ENGLISH_STOP_WORDS) | PROTECTED

_TOKEN = re.compile(r"[A-Za-z][A-Za-z'’-]*[A-Za-z]|[A-Za-z]")
_NEG_TOKEN = re.compile(r"[A-Za-z]+(?:['’][a-z]+)?|n['’]t", re.IGNORECASE)


def tokens(text: str) -> list[re.Match[str]]:
    return list(_TOKEN.finditer(text))


def option_words(options: Iterable[str]) -> set[str]:
    """Lower-cased words of the answer options (never swapped)."""
    return {m.group(0).lower() for o in options for m in _TOKEN.finditer(o)}


def content_words(text: str, protected: Iterable[str] = (), *, limit: int | None = None) -> list[str]:
    """Distinct swappable words of `text`, in order: not a stop word, negation, quantifier or modal,
    not in `protected` (e.g. option words), at least 3 letters, no apostrophe."""
    extra = {w.lower() for w in protected}
    out: list[str] = []
    seen: set[str] = set()
    for m in tokens(text):
        w = m.group(0)
        lw = w.lower()
        if len(lw) < 3 or "'" in lw or "’" in lw or lw in STOPWORDS or lw in extra or lw in seen:
            continue
        seen.add(lw)
        out.append(w)
    return out[:limit] if limit else out


def negation_count(text: str) -> int:
    """Number of negation words (not, no, never, n't, without, ...) in `text`."""
    n = 0
    for m in _NEG_TOKEN.finditer(text):
        t = m.group(0).lower().replace("’", "'")
        if t in NEGATIONS or t.endswith("n't"):
            n += 1
    return n


def _match_case(src: str, repl: str) -> str:
    if src.isupper() and len(src) > 1:
        return repl.upper()
    if src[:1].isupper():
        return repl[:1].upper() + repl[1:]
    return repl


def substitute(text: str, swaps: dict[str, str]) -> str:
    """Replace each whole-word occurrence of the keys (case-insensitive) by its synonym, keeping the
    capitalisation of the replaced word."""
    if not swaps:
        return text
    low = {k.lower(): v for k, v in swaps.items()}

    def repl(m: re.Match[str]) -> str:
        w = m.group(0)
        s = low.get(w.lower())
        return _match_case(w, s) if s is not None else w

    return _TOKEN.sub(repl, text)


@dataclass(frozen=True)
class Variant:
    text: str
    swaps: tuple[tuple[str, str], ...]


def build_variants(
    text: str, synonyms: dict[str, list[str]], *, max_combined: int = 2, max_candidates: int = 64
) -> list[Variant]:
    """All single swaps first (every word x every synonym), then combined swaps of 2..max_combined
    words (each word's first synonyms), up to `max_candidates` variants, without duplicates."""
    present = {m.group(0).lower() for m in tokens(text)}
    syn = {w: [s for s in ss if s.lower() != w.lower()] for w, ss in synonyms.items() if w.lower() in present}
    syn = {w: ss for w, ss in syn.items() if ss}
    out: list[Variant] = []
    seen = {text}

    def add(swaps: Sequence[tuple[str, str]]) -> bool:
        t = substitute(text, dict(swaps))
        if t not in seen:
            seen.add(t)
            out.append(Variant(t, tuple(swaps)))
        return len(out) >= max_candidates

    for w, ss in syn.items():
        for s in ss:
            if add([(w, s)]):
                return out
    words = list(syn)
    for size in range(2, max_combined + 1):
        for combo in itertools.combinations(words, size):
            for choice in itertools.product(*(syn[w][:2] for w in combo)):
                if add(list(zip(combo, choice, strict=True))):
                    return out
    return out
