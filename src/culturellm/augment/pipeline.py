"""`augment()`: seed questions -> paraphrases -> synonym-swapped variants (-> translations).

Step 1 asks the LLM for k rewrites of every seed in ONE batched call, keeps those whose embedding
cosine with the seed is >= t1 (and below the near-duplicate bound, with the seed's negation count),
and re-asks (new sample_index/seed, so a cache does not replay the answer) for seeds short of n.
Step 2 asks, in ONE request per kept paraphrase, for synonyms of all its content words, builds
single and combined swaps, keeps those with cosine >= t2 to the seed, and takes the most similar,
round-robin over paraphrases, up to m per seed. Optional step 3 translates seed and paraphrases and
keeps a translation when its back-translation is close to the source. All candidates of a batch are
embedded in one call.

This module is the algorithm (`Augmenter`); `augment.run.augment()` drives it over the seeds,
resumably (records appended per chunk of seeds; `augment.state`), and writes the manifest
(`augment.summary`).
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from culturellm.augment.config import AugmentConfig
from culturellm.augment.parse import clean_sentence, normalize, parse_list, parse_synonyms
from culturellm.augment.prompts import paraphrase_messages, synonym_messages, translate_messages
from culturellm.errors import DataError
from culturellm.llm.base import ChatModel, Embedder, SamplingParams
from culturellm.meaning.checks import MeaningChecks
from culturellm.meaning.judge import Judge, judge_where_unsure
from culturellm.meaning.words import build_variants, content_words, negation_count, option_words

STEPS = ("seed", "paraphrase", "synonym", "translation")


@dataclass
class SeedItem:
    """What augmentation needs of a seed question (a wvs Question or Seed)."""

    question_id: str
    text: str
    options: dict[str, str]

    @classmethod
    def of(cls, q: Any) -> SeedItem:
        qid = getattr(q, "question_id", None) or getattr(q, "id", None)
        if isinstance(q, dict):
            qid = q.get("question_id") or q.get("id")
            text, options = q.get("text"), q.get("options") or {}
        else:
            text, options = getattr(q, "text", None), getattr(q, "options", None) or {}
        if not qid or not isinstance(text, str) or not text.strip():
            raise DataError(f"seed question {q!r}: needs an id and a non-empty text")
        return cls(str(qid), text.strip(), dict(options))


def record_id(question_id: str, step: str, text: str) -> str:
    """Stable id: question id + step initial + 10 hex digits of sha1(text)."""
    digest = hashlib.sha1(text.encode("utf-8")).hexdigest()[:10]
    return f"{question_id}-{step[0]}{digest}"


@dataclass
class StepStats:
    requests: int = 0
    candidates: int = 0
    accepted: int = 0
    rejected: Counter = field(default_factory=Counter)
    extra: Counter = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        # candidates parsed and not kept; answer-level reasons (unparseable_answer:*,
        # no_content_words) count requests/sentences and are listed in `reasons` only
        rej = max(self.candidates - self.accepted, 0)
        return {
            **dict(sorted(self.extra.items())),
            "requests": self.requests,
            "candidates": self.candidates,
            "accepted": self.accepted,
            "rejected": rej,
            "rejection_rate": round(rej / self.candidates, 4) if self.candidates else None,
            "reasons": dict(sorted(self.rejected.items())),
        }

    def add(self, d: dict[str, Any]) -> None:
        self.requests += int(d.get("requests", 0))
        self.candidates += int(d.get("candidates", 0))
        self.accepted += int(d.get("accepted", 0))
        self.rejected.update(d.get("reasons", {}))
        self.extra.update({k: int(v) for k, v in d.items() if k.startswith(("synonyms_", "judge_"))})


@dataclass
class _Kept:
    text: str
    sim: float
    rid: str
    parent: str | None
    step: str
    extra: dict[str, Any] = field(default_factory=dict)


class _SeedState:
    def __init__(self, item: SeedItem, emb: np.ndarray) -> None:
        self.item = item
        self.emb = emb
        self.rid = record_id(item.question_id, "seed", item.text)
        self.keys = {normalize(item.text)}
        self.para: list[_Kept] = []
        self.para_emb: list[np.ndarray] = []
        self.syn: list[_Kept] = []
        self.trans: list[_Kept] = []
        self.neg = negation_count(item.text)


class Augmenter:
    """One augmentation run (see module docstring). Use `augment()`."""

    def __init__(
        self,
        llm: ChatModel,
        embedder: Embedder,
        config: AugmentConfig,
        judge: ChatModel | None = None,
        placement: Mapping[str, Any] | None = None,
    ) -> None:
        self.llm, self.embedder, self.cfg = llm, embedder, config
        self.stats = {s: StepStats() for s in STEPS[1:]}
        self.parse_formats: Counter = Counter()
        self.meaning = MeaningChecks(config.checks, embed=self._encode, t_standin=config.t_standin)
        verifier = config.meaning_filter == "verifier"
        self.verifier = _load_verifier(embedder, config, placement or {}, llm.name) if verifier else None
        self.judge = Judge(judge) if judge is not None else None
        self.band = _judge_band(self.verifier, config)
        self.p_changed: dict[tuple[str, str], float] = {}  # the gate's P(changed) of scored pairs

    # --- helpers ------------------------------------------------------------------------------
    def _params(self, max_tokens: int, attempt: int = 0) -> SamplingParams:
        c = self.cfg
        return SamplingParams(
            max_tokens=max_tokens,
            temperature=c.temperature,
            top_p=c.top_p if c.temperature > 0 else 1.0,
            seed=c.seed + attempt,
            sample_index=attempt,
        )

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        return np.asarray(self.embedder.encode(list(texts)), dtype=np.float32)

    def _screen(
        self, st: StepStats, items: list[Any], seed_of: Any, text_of: Any, swaps_of: Any
    ) -> list[Any]:
        """Items passing the meaning checks (one batch; `_checked`) and, with the meaning gate
        (meaning_filter = verifier), those of them the gate keeps, with a judge where it is unsure
        (`_verified_and_judged`): the gate and the checks together (docs/augmentation.md)."""
        items = self._checked(st, items, seed_of, text_of, swaps_of)
        if items and self.verifier is not None:
            ok = self._verified_and_judged(st, [(seed_of(x), text_of(x)) for x in items])
            return [x for x, k in zip(items, ok, strict=True) if k]
        return items

    def _checked(
        self, st: StepStats, items: list[Any], seed_of: Any, text_of: Any, swaps_of: Any
    ) -> list[Any]:
        """Items passing the lexical meaning checks; the first failed check of each other item is
        counted as its rejection reason."""
        if not items or not self.cfg.checks:
            return items
        found = self.meaning.check_many([(seed_of(x), text_of(x), *swaps_of(x)) for x in items])
        kept = []
        for x, reasons in zip(items, found, strict=True):
            if reasons:
                st.rejected[reasons[0]] += 1
            else:
                kept.append(x)
        return kept

    def _judged(self, st: StepStats, pairs: list[tuple[str, str]]) -> list[bool]:
        """Judge verdicts (True: same meaning both ways) for (seed, candidate) pairs; all True
        without a judge. Rejections are counted as `judge_rejected`."""
        if self.judge is None or not pairs:
            return [True] * len(pairs)
        verdicts = self.judge.verdicts(pairs)
        st.extra["judge_requests"] += 2 * len(pairs)
        out = [v.same for v in verdicts]
        st.rejected["judge_rejected"] += out.count(False)
        return out

    def _verified_and_judged(self, st: StepStats, pairs: list[tuple[str, str]]) -> list[bool]:
        """With the meaning verifier: its verdicts (P(changed) below the threshold); with a judge too,
        the verifier alone keeps below the unsure band and rejects above it, and the judge decides
        inside it (counted as `judge_unsure`; `judge_sure_kept` / `verifier_rejected` skip it)."""
        if self.verifier is None:
            return self._judged(st, pairs)
        verdicts = self.verifier.verdicts(pairs)
        self.p_changed.update((pair, v.probability) for pair, v in zip(pairs, verdicts, strict=True))
        if self.judge is None:
            keep = [v.keep for v in verdicts]
            st.rejected["verifier_rejected"] += keep.count(False)
            return keep
        keep, route = judge_where_unsure(self.judge, pairs, [v.probability for v in verdicts], self.band)
        unsure = int((route == 0).sum())
        st.rejected["verifier_rejected"] += int((route == -1).sum())
        st.extra["judge_sure_kept"] += int((route == 1).sum())
        st.extra["judge_unsure"] += unsure
        st.extra["judge_requests"] += 2 * unsure
        st.rejected["judge_rejected"] += sum(r == 0 and not k for k, r in zip(keep, route, strict=True))
        return keep

    # --- step 1 -------------------------------------------------------------------------------
    def paraphrase(self, states: list[_SeedState]) -> None:
        cfg, st = self.cfg, self.stats["paraphrase"]
        if cfg.n == 0:
            return
        for attempt in range(cfg.retries + 1):
            pending = [s for s in states if len(s.para) < cfg.n]
            if not pending:
                return
            reqs = [paraphrase_messages(s.item.text, cfg.rewrites_per_request) for s in pending]
            outs = self.llm.generate(reqs, self._params(cfg.paraphrase_tokens, attempt))
            st.requests += len(reqs)
            cands: list[tuple[_SeedState, str]] = []
            for s, out in zip(pending, outs, strict=True):
                p = parse_list(out)
                self.parse_formats[f"paraphrase:{p.format}"] += 1
                if p.rejected:
                    st.rejected[f"unparseable_answer:{p.rejected}"] += 1
                cands += [(s, t) for t in p.items]
            st.candidates += len(cands)
            if not cands:
                continue
            emb = self._encode([t for _, t in cands])
            by_seed: dict[int, list[tuple[float, str, np.ndarray]]] = defaultdict(list)
            passing: list[tuple[_SeedState, str, float, np.ndarray]] = []
            for (s, t), e in zip(cands, emb, strict=True):
                sim = float(e @ s.emb)
                reason = self._check_para(s, t, sim)
                if reason:
                    st.rejected[reason] += 1
                else:
                    passing.append((s, t, sim, e))
            passing = self._screen(
                st, passing, lambda x: x[0].item.text, lambda x: x[1], lambda x: ((), None)
            )
            pairs = [(x[0].item.text, x[1]) for x in passing]
            # with the verifier, _screen has already asked the judge where the verifier was unsure
            ok = [True] * len(pairs) if self.verifier is not None else self._judged(st, pairs)
            for (s, t, sim, e), good in zip(passing, ok, strict=True):
                if good:
                    by_seed[id(s)].append((sim, t, e))
            for s in pending:
                for sim, t, e in sorted(by_seed.get(id(s), []), key=lambda x: -x[0]):
                    key = normalize(t)
                    if len(s.para) >= cfg.n:
                        st.rejected["surplus"] += 1
                        continue
                    if key in s.keys:
                        st.rejected["duplicate"] += 1
                        continue
                    if s.para_emb and max(float(e @ p) for p in s.para_emb) >= cfg.dup_threshold:
                        st.rejected["near_duplicate"] += 1
                        continue
                    s.keys.add(key)
                    s.para.append(
                        _Kept(t, sim, record_id(s.item.question_id, "paraphrase", t), s.rid, "paraphrase")
                    )
                    s.para_emb.append(e)
                    st.accepted += 1

    def _check_para(self, s: _SeedState, text: str, sim: float) -> str | None:
        cfg = self.cfg
        if normalize(text) in s.keys:
            return "duplicate"
        if sim < cfg.t1:
            return "below_t1"
        if sim >= cfg.dup_threshold:
            return "near_duplicate"
        if cfg.check_negation and negation_count(text) != s.neg:
            return "negation_mismatch"
        return None

    # --- step 2 -------------------------------------------------------------------------------
    def synonyms(self, states: list[_SeedState]) -> None:
        cfg, st = self.cfg, self.stats["synonym"]
        if cfg.m == 0:
            return
        jobs = self._synonym_jobs(states)
        if not jobs:
            return
        reqs = [synonym_messages(text, words, cfg.synonyms_per_word) for _, _, text, words in jobs]
        budget = cfg.max_tokens_synonyms or 16 + 18 * max(len(w) for _, _, _, w in jobs)
        outs = self.llm.generate(reqs, self._params(budget))
        st.requests += len(reqs)
        parsed = []
        for (s, srcs, _ctx, words), out in zip(jobs, outs, strict=True):
            p = parse_synonyms(out, words, per_word=cfg.synonyms_per_word)
            self.parse_formats[f"synonym:{p.format}"] += 1
            if p.rejected:
                st.rejected[f"unparseable_answer:{p.rejected}"] += 1
                continue
            parsed.append((s, srcs, p.synonyms))
        self._word_filter([syn for _, _, syn in parsed])
        cands: list[tuple[_SeedState, _Kept | None, str, tuple]] = []
        for s, srcs, synonyms in parsed:
            for src in srcs:
                text = src.text if src else s.item.text
                for v in build_variants(
                    text, synonyms, max_combined=cfg.max_combined, max_candidates=cfg.max_candidates
                ):
                    cands.append((s, src, v.text, v.swaps))
        st.candidates += len(cands)
        # the lexical checks here; the gate reads only the variants about to be taken (_take_synonyms)
        cands = self._checked(
            st,
            cands,
            lambda c: c[0].item.text,
            lambda c: c[2],
            lambda c: (c[3], c[1].text if c[1] else c[0].item.text),
        )
        if not cands:
            return
        emb = self._encode([t for _, _, t, _ in cands])
        pools: dict[int, dict[int, list[tuple[float, str, tuple]]]] = defaultdict(lambda: defaultdict(list))
        for (s, src, t, swaps), e in zip(cands, emb, strict=True):
            sim = float(e @ s.emb)
            if sim < cfg.t2:
                st.rejected["below_t2"] += 1
            elif cfg.check_negation and negation_count(t) != s.neg:
                st.rejected["negation_mismatch"] += 1
            else:
                pools[id(s)][id(src)].append((sim, t, swaps))
        self._take_synonyms(states, pools)

    def _synonym_jobs(
        self, states: list[_SeedState]
    ) -> list[tuple[_SeedState, list[_Kept | None], str, list[str]]]:
        """One synonym request per job: (seed state, the sentences it serves, context sentence, words);
        per seed (synonym_requests = "seed") or per kept paraphrase."""
        cfg, st = self.cfg, self.stats["synonym"]
        jobs: list[tuple[_SeedState, list[_Kept | None], str, list[str]]] = []
        for s in states:
            protected = option_words(s.item.options.values())
            sources: list[_Kept | None] = list(s.para) or [None]  # no paraphrase kept: the seed itself
            if cfg.synonym_requests == "seed":
                words: list[str] = []
                for src in [None, *s.para]:
                    for w in content_words(src.text if src else s.item.text, protected):
                        if w.lower() not in {x.lower() for x in words}:
                            words.append(w)
                words = words[: 2 * cfg.max_words]
                if words:
                    jobs.append((s, sources, s.item.text, words))
                else:
                    st.rejected["no_content_words"] += 1
                continue
            for src in sources:
                text = src.text if src else s.item.text
                words = content_words(text, protected, limit=cfg.max_words)
                if words:
                    jobs.append((s, [src], text, words))
                else:
                    st.rejected["no_content_words"] += 1
        return jobs

    def _take_synonyms(self, states: list[_SeedState], pools: dict[int, dict[int, list]]) -> None:
        """Up to m variants per seed: the most similar of each paraphrase in turn (round-robin over
        paraphrases), skipping duplicates; with a judge, in rounds until m are kept or none is left."""
        cfg, st = self.cfg, self.stats["synonym"]
        queues: dict[int, list[tuple[float, str, tuple, Any]]] = {}
        for s in states:
            srcs = {id(src): src for src in ([*s.para] or [None])}
            ranked = [
                [(*x, srcs.get(key)) for x in sorted(v, key=lambda x: -x[0])]
                for key, v in pools.get(id(s), {}).items()
            ]
            longest = max((len(r) for r in ranked), default=0)
            queues[id(s)] = [r[i] for i in range(longest) for r in ranked if i < len(r)]
        taken: Counter = Counter()
        while True:
            batch: list[tuple[_SeedState, tuple[float, str, tuple, Any]]] = []
            for s in states:
                q, picked = queues[id(s)], 0
                while q and picked < cfg.m - taken[id(s)]:
                    item = q.pop(0)
                    nk = normalize(item[1])
                    if nk in s.keys or any(normalize(b[1][1]) == nk for b in batch if b[0] is s):
                        st.rejected["duplicate"] += 1
                        continue
                    batch.append((s, item))
                    picked += 1
            if not batch:
                break
            ok = self._verified_and_judged(st, [(s.item.text, item[1]) for s, item in batch])
            for (s, (sim, t, swaps, src)), good in zip(batch, ok, strict=True):
                if not good:
                    continue
                s.keys.add(normalize(t))
                s.syn.append(
                    _Kept(
                        t,
                        sim,
                        record_id(s.item.question_id, "synonym", t),
                        src.rid if src else s.rid,
                        "synonym",
                        {"swaps": [list(x) for x in swaps]},
                    )
                )
                st.accepted += 1
                taken[id(s)] += 1
        st.rejected["surplus"] += sum(len(q) for q in queues.values())

    def _word_filter(self, maps: list[dict[str, list[str]]]) -> None:
        """Drop (in place) proposed synonyms whose embedding cosine with the word is below t_word:
        one batched encode of all distinct words and synonyms of the batch."""
        st, t = self.stats["synonym"], self.cfg.t_word
        pairs = sorted({(w.lower(), x) for mp in maps for w, xs in mp.items() for x in xs})
        st.extra["synonyms_proposed"] += len(pairs)
        if t is None or not pairs:
            return
        vocab = sorted({w for w, _ in pairs} | {x for _, x in pairs})
        emb = dict(zip(vocab, self._encode(vocab), strict=True))
        bad = {(w, x) for w, x in pairs if float(emb[w] @ emb[x]) < t}
        st.extra["synonyms_dropped_below_t_word"] += len(bad)
        for mp in maps:
            for w in list(mp):
                mp[w] = [x for x in mp[w] if (w.lower(), x) not in bad]
                if not mp[w]:
                    del mp[w]

    # --- step 3 -------------------------------------------------------------------------------
    def translate(self, states: list[_SeedState]) -> None:
        cfg, st = self.cfg, self.stats["translation"]
        lang = cfg.translate
        if not lang:
            return
        jobs = [(s, s.rid, s.item.text) for s in states] + [
            (s, p.rid, p.text) for s in states for p in s.para
        ]
        outs = self.llm.generate(
            [translate_messages(t, lang) for _, _, t in jobs], self._params(cfg.max_tokens_translate)
        )
        st.requests += len(jobs)
        trans = [_first_line(o) for o in outs]
        ok = [i for i, t in enumerate(trans) if t]
        st.candidates += len(jobs)
        st.rejected["unparseable_answer:empty"] += len(jobs) - len(ok)
        if not ok:
            return
        backs = self.llm.generate(
            [translate_messages(trans[i], "English") for i in ok], self._params(cfg.max_tokens_translate)
        )
        st.requests += len(ok)
        back = [_first_line(b) for b in backs]
        emb_b = self._encode([b or "-" for b in back])
        emb_src = self._encode([jobs[i][2] for i in ok])
        for j, i in enumerate(ok):
            s, parent, src_text = jobs[i]
            t = trans[i]
            sim = float(emb_b[j] @ emb_src[j])
            if not back[j] or sim < cfg.t3:
                st.rejected["below_t3"] += 1
                continue
            if normalize(t) in s.keys or normalize(t) == normalize(src_text):
                st.rejected["duplicate"] += 1  # untranslated echo
                continue
            s.keys.add(normalize(t))
            s.trans.append(
                _Kept(
                    t,
                    round(float(emb_b[j] @ s.emb), 6),
                    record_id(s.item.question_id, "translation", t),
                    parent,
                    "translation",
                    {"language": lang, "back_translation": back[j], "back_similarity": round(sim, 6)},
                )
            )
            st.accepted += 1

    # --- records ------------------------------------------------------------------------------
    def records(self, s: _SeedState) -> list[dict[str, Any]]:
        """The seed's group of records; a kept paraphrase or variant the gate scored carries its
        P(changed) (`p_changed`: the estimate of culturellm.meaning.estimate reads it)."""
        kept = [*s.para, *s.syn, *s.trans]
        rows = [
            {
                "id": s.rid,
                "question_id": s.item.question_id,
                "step": "seed",
                "text": s.item.text,
                "parent": None,
                "similarity": 1.0,
                "group_size": 1 + len(kept),
            }
        ]
        for k in kept:
            rows.append(
                {
                    "id": k.rid,
                    "question_id": s.item.question_id,
                    "step": k.step,
                    "text": k.text,
                    "parent": k.parent,
                    "similarity": round(k.sim, 6),
                    **k.extra,
                    **self._p_field(s.item.text, k.text),
                }
            )
        return rows

    def _p_field(self, seed: str, text: str) -> dict[str, float]:
        p = self.p_changed.get((seed, text))
        return {} if p is None else {"p_changed": round(p, 4)}

    def run_chunk(self, items: list[SeedItem]) -> list[list[dict[str, Any]]]:
        emb = self._encode([i.text for i in items])
        states = [_SeedState(i, e) for i, e in zip(items, emb, strict=True)]
        self.paraphrase(states)
        self.synonyms(states)
        self.translate(states)
        return [self.records(s) for s in states]


def _load_verifier(
    embedder: Embedder, config: AugmentConfig, placement: Mapping[str, Any], augmenter: str
) -> Any:
    """The meaning gate: its fluency LM on the command's or run's device and dtype (`placement`), its
    threshold the one shipped for this augmenter's kind of output (unless config.verifier_threshold)."""
    from culturellm.meaning.features import load_lm
    from culturellm.meaning.verifier import Verifier

    lm = load_lm(device=placement.get("device"), dtype=placement.get("dtype"))
    return Verifier(embedder, lm, threshold=config.verifier_threshold, augmenter=augmenter)


def _judge_band(verifier: Any, config: AugmentConfig) -> tuple[float, float]:
    """The verifier's unsure band [low, high) where the judge decides: config.judge_band, else the
    shipped one (verifier.json), else (without one) the threshold on both sides (the judge sees none)."""
    if config.judge_band is not None:
        return float(config.judge_band[0]), float(config.judge_band[1])
    if verifier is None:
        return (0.0, 1.0)
    band = verifier.params.info.get("judge_band") or (verifier.threshold, verifier.threshold)
    return float(band[0]), float(band[1])


def _first_line(text: str) -> str:
    for ln in (text or "").splitlines():
        c = clean_sentence(ln)
        if c and not c.endswith(":"):
            return c
    return ""
