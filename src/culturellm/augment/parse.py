"""Robust parsing of LLM answers: lists of sentences and word -> synonyms maps.

Any text gives a result, never an exception: a list (maybe empty) plus, when nothing usable was
found, a short rejection reason that the pipeline counts. Handles numbered (``1.``, ``1)``, ``(1)``),
bulleted (``-``, ``*``, ``•``) and JSON answers (arrays, objects holding an array, single quotes),
markdown emphasis, surrounding quotes, chatter lines ("Here are 3 rewrites:").
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field

_MARKER = re.compile(r"^\s*(?:\(?\d{1,3}[.):\]]|\d{1,3}\s*-|[-*•·–—+]|[a-hA-H][.)])\s*(?=\S)")
_LABEL = re.compile(
    r"^(?:rewrite|paraphrase|version|sentence|statement|option|answer|translation)\s*\d*\s*[:\-–]\s*",
    re.IGNORECASE,
)
_WS = re.compile(r"\s+")
_QUOTES = "\"'“”‘’`«»"
_TRAILING_QUOTE = re.compile(r"^(.*?)[\"'“”‘’`«»]+\s*([.?!]?)\s*$", re.DOTALL)
_WORD_RE = re.compile(r"^[^\W\d_](?:[^\W\d_]|[-' ’])*$")


@dataclass
class Parsed:
    """What was parsed from one answer; `rejected` names why nothing usable was found."""

    items: list[str] = field(default_factory=list)
    rejected: str | None = None
    format: str = "none"  # json | list | lines | none


@dataclass
class ParsedSynonyms:
    synonyms: dict[str, list[str]] = field(default_factory=dict)
    rejected: str | None = None
    format: str = "none"


def clean_sentence(s: str) -> str:
    """Strip list markers, labels, markdown emphasis, surrounding quotes and extra whitespace."""
    s = _WS.sub(" ", s).strip()
    s = _MARKER.sub("", s, count=1)
    s = s.replace("**", "").replace("__", "").strip()
    s = _LABEL.sub("", s).strip()
    if s and s[0] in _QUOTES:
        s = s.lstrip(_QUOTES)
        m = _TRAILING_QUOTE.match(s)
        if m:
            body, end = m.group(1).rstrip(), m.group(2)
            s = body if (not end or body.endswith(end)) else body + end
    return s.strip()


def _json_candidates(text: str) -> list[object]:
    """Every JSON-ish value found in the text: the whole text, fenced blocks, [...] and {...} spans."""
    out: list[object] = []
    spans = [text]
    spans += re.findall(r"```(?:json)?\s*(.*?)```", text, flags=re.DOTALL)
    for open_, close in (("[", "]"), ("{", "}")):
        i, j = text.find(open_), text.rfind(close)
        if 0 <= i < j:
            spans.append(text[i : j + 1])
    for span in spans:
        span = span.strip()
        if not span or span[0] not in "[{":
            continue
        for loader in (json.loads, ast.literal_eval):
            try:
                out.append(loader(span))
                break
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                continue
    return out


def _strings_from_json(value: object) -> list[str] | None:
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return list(value)
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        got = [next((x for x in v.values() if isinstance(x, str)), None) for v in value]
        strs = [g for g in got if g]
        return strs or None
    if isinstance(value, dict):
        for v in value.values():
            got = _strings_from_json(v)
            if got:
                return got
    return None


def parse_list(text: object, *, min_words: int = 3, max_chars: int = 600) -> Parsed:
    """Sentences from an LLM answer that was asked for a numbered list (or JSON array).

    Items shorter than `min_words` words, longer than `max_chars`, or that end with ':' (chatter
    like "Here are three rewrites:") are dropped. Duplicates (case-insensitive) are removed.
    """
    if not isinstance(text, str) or not text.strip():
        return Parsed(rejected="empty")
    try:
        items, fmt = _parse_list_raw(text)
    except Exception:  # defensive: parsing must never break a run
        return Parsed(rejected="unparseable")
    kept: list[str] = []
    seen: set[str] = set()
    for raw in items:
        s = clean_sentence(raw)
        if not s or s.endswith(":") or len(s) > max_chars or len(s.split()) < min_words:
            continue
        key = normalize(s)
        if key and key not in seen:
            seen.add(key)
            kept.append(s)
    if not kept:
        return Parsed(rejected="no_items", format=fmt)
    return Parsed(items=kept, format=fmt)


def _parse_list_raw(text: str) -> tuple[list[str], str]:
    for value in _json_candidates(text):
        got = _strings_from_json(value)
        if got:
            return got, "json"
    lines = [ln for ln in text.splitlines() if ln.strip()]
    marked = [ln for ln in lines if _MARKER.match(ln)]
    if marked:
        # continuation lines (no marker) after a marked line belong to it
        items: list[str] = []
        for ln in lines:
            if _MARKER.match(ln):
                items.append(ln)
            elif items and not ln.rstrip().endswith(":"):
                items[-1] += " " + ln.strip()
        return items, "list"
    return lines, "lines"


def normalize(s: str) -> str:
    """Lower-case, letters/digits only, single spaces: the key for exact-duplicate detection."""
    return _WS.sub(" ", re.sub(r"[^\w\s]", " ", s.lower().replace("’", "'"))).strip()


def _clean_synonym(s: str, word: str) -> str | None:
    s = clean_sentence(s).strip(" .,;:!?()[]").lower()
    s = s.replace("’", "'")
    if not s or s == word.lower() or len(s.split()) > 3 or len(s) > 40:
        return None
    if not _WORD_RE.match(s):
        return None
    return s


def parse_synonyms(text: object, words: list[str] | None = None, *, per_word: int = 5) -> ParsedSynonyms:
    """A word -> synonyms map from an LLM answer asked for a JSON object.

    Accepts JSON / Python-literal objects (values a list or a comma-separated string) and, failing
    that, lines like ``word: a, b`` or ``word - a, b``. When `words` is given, only those keys are
    kept (matched case-insensitively); the synonym equal to the word itself is dropped.
    """
    if not isinstance(text, str) or not text.strip():
        return ParsedSynonyms(rejected="empty")
    try:
        raw, fmt = _parse_synonyms_raw(text)
    except Exception:
        return ParsedSynonyms(rejected="unparseable")
    wanted = {w.lower(): w for w in words} if words is not None else None
    out: dict[str, list[str]] = {}
    for key, values in raw:
        k = clean_sentence(key).strip(" .,;:!?()[]").lower()
        if not k:
            continue
        if wanted is not None:
            if k not in wanted:
                continue
            k = wanted[k]
        syns: list[str] = out.setdefault(k, [])
        for v in values:
            c = _clean_synonym(v, k)
            if c and c not in syns and len(syns) < per_word:
                syns.append(c)
    out = {k: v for k, v in out.items() if v}
    if not out:
        return ParsedSynonyms(rejected="no_synonyms", format=fmt)
    return ParsedSynonyms(synonyms=out, format=fmt)


def _split_values(v: object) -> list[str]:
    if isinstance(v, str):
        return [p for p in re.split(r"\s*(?:,|;|/|\bor\b)\s*", v) if p]
    if isinstance(v, list | tuple):
        return [x for x in v if isinstance(x, str)]
    return []


def _parse_synonyms_raw(text: str) -> tuple[list[tuple[str, list[str]]], str]:
    for value in _json_candidates(text):
        if isinstance(value, dict):
            pairs = [(k, _split_values(v)) for k, v in value.items() if isinstance(k, str)]
            if any(vals for _, vals in pairs):
                return pairs, "json"
        if isinstance(value, list) and value and all(isinstance(d, dict) for d in value):
            pairs = []
            for d in value:
                for k, v in d.items():
                    if isinstance(k, str):
                        pairs.append((k, _split_values(v)))
            if any(vals for _, vals in pairs):
                return pairs, "json"
    # broken JSON as small models write it: `"word", [...]`, unclosed lists, truncated objects
    pairs = [
        (m.group(1), re.findall(r'"([^"]*)"', m.group(2)))
        for m in re.finditer(
            r'"([^"\[\]{}]{1,30})"\s*[:,]\s*\[([^\[\]]*?)(?:\]|(?="[^"]*"\s*[:,]\s*\[)|$)', text
        )
    ]
    if any(vals for _, vals in pairs):
        return pairs, "json_repaired"
    pairs = []
    for ln in text.splitlines():
        ln = _MARKER.sub("", ln.strip(), count=1)
        m = re.match(r"^[\"']?([^\W\d_][\w' -]{0,30}?)[\"']?\s*(?::|=>|->|-|–|=)\s*(.+)$", ln)
        if m:
            pairs.append((m.group(1), _split_values(m.group(2).strip("[]{} "))))
    return pairs, ("lines" if pairs else "none")
