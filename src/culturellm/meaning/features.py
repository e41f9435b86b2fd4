"""Per-pair features of the meaning verifier (culturellm.meaning.verifier): what a rewording of a seed
question keeps and what it brings in, measured with the parts that run on this machine.

* sentence similarity (the bundled MiniLM embedder) and word alignment: how well every content word of
  the seed is matched in the candidate (same lemma or stem: 1; otherwise the best word-embedding
  cosine), how well the seed's key nouns are kept, and how close every new word of the candidate is to
  some word of the seed (a context-blind synonym, "erotic" for "sexual", is far from all of them);
* lexicon validity of the new words (LemmInflect's lexicon, shipped in its wheel);
* differences in negation, modality (question frames such as "Can you comment on" left out),
  quantifiers, comparison words, intensity words and named groups of people;
* length ratio;
* the fluency of the candidate's new words under a small causal language model (the bundled
  SmolLM2-135M by default): their mean and largest surprisal, alone and after the seed, and the
  candidate's mean surprisal minus the seed's ("credo you of the belief", "In brightness of" are
  surprising to it). (How much each sentence predicts the other, read after the other, was tried and
  added nothing in cross-validation: AUC 0.798 with it, 0.799 without.)

`PairFeatures(embedder, lm).compute(pairs)` returns one row per (seed, candidate) pair, columns in
`FEATURES` order. `lm` is a loaded local chat model (`load_lm`: device and dtype are its arguments).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from culturellm.meaning.checks import (
    GROUPS_OF_PEOPLE,
    MODALITY,
    OPPOSED,
    is_key_noun,
    lemmas,
    lexicon_tags,
    strip_question_frame,
)
from culturellm.meaning.words import NEGATIONS, QUANTIFIERS, STOPWORDS, negation_count

EMBEDDING = ("cos", "align_mean", "align_min", "key_cover", "new_sim_min", "new_sim_mean")
LEXICAL = (
    "new_frac",
    "new_nonword",
    "neg_diff",
    "modal_added",
    "modal_lost",
    "quant_diff",
    "cmp_diff",
    "strength_diff",
    "group_diff",
    "len_ratio",
)
FLUENCY = ("lm_new_mean", "lm_new_max", "lm_ctx_new_mean", "lm_delta")
FEATURES = EMBEDDING + LEXICAL + FLUENCY
# What a feature pushing a pair towards "changed" means, for the verdict's reasons.
DESCRIBE = {
    "cos": "low sentence similarity",
    "align_mean": "seed words poorly matched",
    "align_min": "a seed word has no counterpart",
    "key_cover": "a key noun of the seed is missing",
    "new_sim_min": "a new word unrelated to the seed",
    "new_sim_mean": "new words far from the seed",
    "new_frac": "many new words",
    "new_nonword": "a new word not in the lexicon",
    "neg_diff": "negation differs",
    "modal_added": "a modality the seed does not have",
    "modal_lost": "the seed's modality dropped",
    "quant_diff": "quantifiers differ",
    "cmp_diff": "comparison words differ",
    "strength_diff": "intensity words differ",
    "group_diff": "a named group changed",
    "len_ratio": "length differs",
    "lm_new_mean": "new words surprising to the language model",
    "lm_new_max": "a very surprising new word",
    "lm_ctx_new_mean": "new words surprising after the seed",
    "lm_delta": "less fluent than the seed",
}

Advance = Callable[[int], Any]
_WORD = re.compile(r"[A-Za-z]+(?:['’-][A-Za-z]+)*")


def _csv(text: str) -> frozenset[str]:
    return frozenset(text.split(","))


_COMPARISON = _csv(
    "than,over,more,less,better,worse,higher,lower,greater,fewer,superior,inferior,rather,instead,"
    "prefer,preferred,priority,most,least,best,worst"
)
_STRENGTH = _csv(
    "very,extremely,highly,strongly,completely,totally,absolutely,fully,entirely,essential,crucial,"
    "vital,important,main,central,key,primary,significant,major,serious,seriously,critical,paramount,"
    "somewhat,slightly,fairly,quite,really,deeply,greatly,particularly,especially,always,never"
)
_GROUP_SIDES = {
    t: (name, i) for name in GROUPS_OF_PEOPLE for i in (0, 1) for t in OPPOSED[name][i] if " " not in t
}
_CONTEXT = " In other words:"


def _words(text: str) -> list[tuple[str, int, int]]:
    return [(m.group(0).lower().replace("’", "'"), m.start(), m.end()) for m in _WORD.finditer(text)]


def _content(text: str) -> list[tuple[str, int, int]]:
    return [w for w in _words(text) if len(w[0]) > 2 and w[0] not in STOPWORDS]


def _same_word(a: str, b: str) -> bool:
    return a == b or bool(lemmas(a) & lemmas(b)) or (len(a) >= 5 and len(b) >= 5 and a[:5] == b[:5])


def _set_diff(seed: str, cand: str, vocab: frozenset[str]) -> int:
    s = {w for w, _, _ in _words(seed) if w in vocab}
    c = {w for w, _, _ in _words(cand) if w in vocab}
    return len(s ^ c)


def _modalities(text: str) -> set[str]:
    t = strip_question_frame(text)
    return {k for k, rx in MODALITY.items() if rx.search(t)}


def _groups(text: str) -> set[tuple[str, int]]:
    return {_GROUP_SIDES[w] for w, _, _ in _words(text) if w in _GROUP_SIDES}


def lexical_features(seed: str, cand: str) -> dict[str, float]:
    """The features that need no model (LEXICAL)."""
    sc, cc = _content(seed), _content(cand)
    new = [w for w, _, _ in cc if not any(_same_word(w, s) for s, _, _ in sc)]
    neg = NEGATIONS - {"no"}
    return {
        "new_frac": len(new) / max(len(cc), 1),
        "new_nonword": float(sum(1 for w in new if not lexicon_tags(w.split("-")[-1]))),
        "neg_diff": float(abs(negation_count(seed) - negation_count(cand)) + _set_diff(seed, cand, neg) / 4),
        "modal_added": float(len(_modalities(cand) - _modalities(seed))),
        "modal_lost": float(bool(_modalities(seed)) and not _modalities(seed) & _modalities(cand)),
        "quant_diff": float(_set_diff(seed, cand, QUANTIFIERS - _STRENGTH)),
        "cmp_diff": float(_set_diff(seed, cand, _COMPARISON)),
        "strength_diff": float(_set_diff(seed, cand, _STRENGTH)),
        "group_diff": float(len(_groups(seed) ^ _groups(cand))),
        "len_ratio": abs(math.log(max(len(_words(cand)), 1) / max(len(_words(seed)), 1))),
    }


def new_words(seed: str, cand: str) -> list[tuple[str, int, int]]:
    """Content words of `cand` (with character spans) whose lemma or stem is in no content word of
    `seed`."""
    sc = _content(seed)
    return [w for w in _content(cand) if not any(_same_word(w[0], s) for s, _, _ in sc)]


def load_lm(spec: str = "bundled", *, device: str | None = None, dtype: str | None = None) -> Any:
    """The local causal LM whose surprisal the fluency features use (no response cache). device and
    dtype: as given (a command's --device/--dtype, a run's [models]), else cpu / float32 (the shipped
    verifier was fitted with those)."""
    from culturellm.llm import load_model

    return load_model(spec, device=device or "cpu", dtype=dtype or "float32", cache=False)


@dataclass
class PairFeatures:
    """Computes `FEATURES` for (seed, candidate) pairs. `embedder`: an `Embedder` (unit-norm rows);
    `lm`: a `LocalChatModel` (needs `tokenizer` and `prompt_logprobs`), or None to leave the fluency
    features at 0."""

    embedder: Any
    lm: Any = None
    chunk_rows: int = 48  # rows whose fluency runs together (one progress step)
    group_rows: int = 64  # texts per group of `prompt_logprobs`

    def compute(
        self,
        pairs: Sequence[tuple[str, str]],
        fluency: np.ndarray | None = None,
        advance: Advance | None = None,
    ) -> np.ndarray:
        """Rows of `FEATURES`; `fluency`: the FLUENCY columns when already computed (the language
        model's part, by far the slowest; `fluency_columns`). `advance(n)`: called as rows are done."""
        if not pairs:
            return np.zeros((0, len(FEATURES)), dtype=np.float64)
        rows = [dict(lexical_features(s, c)) for s, c in pairs]
        self._embedding(pairs, rows)
        if fluency is None:
            self._fluency(pairs, rows, advance)
        else:
            if advance:
                advance(len(pairs))
            for r, v in zip(rows, np.asarray(fluency), strict=True):
                r.update(zip(FLUENCY, map(float, v), strict=True))
        return np.array([[r[f] for f in FEATURES] for r in rows], dtype=np.float64)

    def fluency_columns(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """Just the FLUENCY columns (for a cache)."""
        rows: list[dict[str, float]] = [{} for _ in pairs]
        self._fluency(pairs, rows)
        return np.array([[r[f] for f in FLUENCY] for r in rows], dtype=np.float64).reshape(len(pairs), -1)

    def _encode(self, texts: list[str]) -> dict[str, np.ndarray]:
        uniq = sorted(set(texts))
        emb = np.asarray(self.embedder.encode(uniq), dtype=np.float32) if uniq else []
        return dict(zip(uniq, emb, strict=True))

    def _embedding(self, pairs: Sequence[tuple[str, str]], rows: list[dict[str, float]]) -> None:
        sent = self._encode([t for p in pairs for t in p])
        words = self._encode([w for s, c in pairs for w, _, _ in _content(s) + _content(c)])
        for (s, c), r in zip(pairs, rows, strict=True):
            r["cos"] = float(sent[s] @ sent[c])
            sc, cc = [w for w, _, _ in _content(s)], [w for w, _, _ in _content(c)]
            align = [
                1.0
                if any(_same_word(w, x) for x in cc)
                else max((float(words[w] @ words[x]) for x in cc), default=0.0)
                for w in sc
            ]
            r["align_mean"] = float(np.mean(align)) if align else 1.0
            r["align_min"] = min(align, default=1.0)
            keys = [w for w in sc if is_key_noun(w)]
            r["key_cover"] = (
                (sum(any(_same_word(k, x) for x in cc) for k in keys) / len(keys)) if keys else 1.0
            )
            new = [w for w, _, _ in new_words(s, c)]
            near = [max((float(words[w] @ words[x]) for x in sc), default=0.0) for w in new]
            r["new_sim_min"] = min(near, default=1.0)
            r["new_sim_mean"] = float(np.mean(near)) if near else 1.0

    def _fluency(
        self, pairs: Sequence[tuple[str, str]], rows: list[dict[str, float]], advance: Advance | None = None
    ) -> None:
        """The FLUENCY columns, a few dozen rows at a time (`advance(n)` after each chunk): the rows of
        a seed run together, so the seed and "seed In other words:" run once for all its candidates
        (their KV cache is reused) and every distinct text is scored once."""
        for r in rows:
            r.update(dict.fromkeys(FLUENCY, 0.0))
        if self.lm is None:
            if advance:
                advance(len(pairs))
            return
        by_seed: dict[str, list[int]] = {}
        for i, (s, _) in enumerate(pairs):
            by_seed.setdefault(s, []).append(i)
        chunk: list[int] = []
        for k, members in enumerate(by_seed.values()):
            chunk += members
            if len(chunk) >= self.chunk_rows or k == len(by_seed) - 1:
                self._fluency_chunk(pairs, rows, chunk)
                if advance:
                    advance(len(chunk))
                chunk = []

    def _fluency_chunk(
        self, pairs: Sequence[tuple[str, str]], rows: list[dict[str, float]], idx: list[int]
    ) -> None:
        texts = list(dict.fromkeys(t for i in idx for t in (pairs[i][1], pairs[i][0])))
        single = dict(zip(texts, self._surprisal([(t, 0) for t in texts]), strict=True))
        ctx_in = [(f"{s}{_CONTEXT} {c}", len(s) + len(_CONTEXT) + 1) for s, c in (pairs[i] for i in idx)]
        ctx = self._surprisal(ctx_in, keys=[pairs[i][0] for i in idx])
        for i, cx in zip(idx, ctx, strict=True):
            (s, c), r = pairs[i], rows[i]
            a, sd = single[c], single[s]
            spans = [(b, e) for _, b, e in new_words(s, c)]
            na, nc = _in_spans(a, spans, 0), _in_spans(cx, spans, len(s) + len(_CONTEXT) + 1)
            r["lm_new_mean"] = float(np.mean(na)) if na else 0.0
            r["lm_new_max"] = max(na, default=0.0)
            r["lm_ctx_new_mean"] = float(np.mean(nc)) if nc else 0.0
            r["lm_delta"] = _mean(a) - _mean(sd)

    def _surprisal(
        self, texts: list[tuple[str, int]], keys: Sequence[str] | None = None
    ) -> list[list[tuple[int, int, float]]]:
        """Per text: (start, end, surprisal in nats) of every token at or after character `from`.
        Texts with the same key (default: all) run as one group of the language model's
        `prompt_logprobs`, shortest first, so their shared token prefix runs once and padding is small."""
        tok = self.lm.tokenizer
        start = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
        encs = [tok(t, return_offsets_mapping=True, add_special_tokens=False) for t, _ in texts]
        seqs = [[int(start), *e["input_ids"]] for e in encs]
        groups: dict[str, list[int]] = {}
        for i, key in enumerate(keys if keys is not None else [""] * len(texts)):
            groups.setdefault(key, []).append(i)
        order = [
            part[j : j + self.group_rows]
            for part in (sorted(g, key=lambda i: len(seqs[i])) for g in groups.values())
            for j in range(0, len(part), self.group_rows)
        ]
        res = self.lm.prompt_logprobs([[seqs[i] for i in g] for g in order])
        out: list[list[tuple[int, int, float]]] = [[] for _ in texts]
        for g, r_g in zip(order, res, strict=True):
            for i, r in zip(g, r_g or [], strict=True):
                e, frm = encs[i], texts[i][1]
                out[i] = [
                    (b, en, -lp)
                    for (b, en), lp in zip(e["offset_mapping"], r["token_logprobs"], strict=True)
                    if en > frm
                ]
        return out


def _in_spans(toks: list[tuple[int, int, float]], spans: list[tuple[int, int]], shift: int) -> list[float]:
    return [v for b, e, v in toks if any(b - shift < se and e - shift > sb for sb, se in spans)]


def _mean(toks: list[tuple[int, int, float]]) -> float:
    return float(np.mean([v for _, _, v in toks])) if toks else 0.0
