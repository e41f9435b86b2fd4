"""Meaning checks of the filter chain (issue #16): the six failures of the README demo are rejected,
each with its named reason, by the checks alone and by `augment()` end to end (a scripted augmenter
that writes exactly those candidates, the real MiniLM embedder); the labelled equivalent pairs pass."""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

import pytest

from culturellm.augment import AugmentConfig, augment
from culturellm.jsonio import read_jsonl
from culturellm.llm.base import SamplingParams, ScoreResult, Usage
from culturellm.meaning.checks import MeaningChecks, is_key_noun, lexicon_tags
from culturellm.wvs import load_questions

PAIRS = Path(__file__).resolve().parents[1] / "benchmarks" / "data" / "meaning_pairs.jsonl"
SRC31 = "Men are better business leaders than women."
# (question, candidate, swaps, text the swaps were made in, the reason the default chain gives)
ISSUE_16 = [
    ("Q31", "Men are better business leaders than men.", [("women", "men")], SRC31, "repeated_word"),
    (
        "Q31",
        "Men are better business leaders than woman.",
        [("women", "woman")],
        SRC31,
        "synonym_pos_mismatch",
    ),
    (
        "Q27",
        "One of my main goals in live has been to make my parents proud",
        [("life", "live")],
        None,
        "synonym_pos_mismatch",
    ),
    (
        "Q33",
        "Women should have more jobs, and men should have a better work environment.",
        [],
        None,
        "opposed_words",
    ),
    ("Q36", "Homosexual couples are as good as heterosexual couples.", [], None, "key_word_missing"),
    ("Q38", "Adult children can provide long-term care for their parents.", [], None, "modal_change"),
]
# equivalent pairs of benchmarks/data/meaning_pairs.jsonl the key-word check rejects (docs/augmentation.md)
KNOWN_LOSSES = {"Higher education is more important for boys than for girls"}


@pytest.fixture(scope="module")
def seeds():
    return {q.id: q.text for q in load_questions()}


@pytest.fixture(scope="module")
def checks(embedder):
    cfg = AugmentConfig(meaning_filter="checks")
    return MeaningChecks(cfg.checks, embed=embedder.encode, t_standin=cfg.t_standin)


@pytest.mark.parametrize(("qid", "cand", "swaps", "source", "reason"), ISSUE_16, ids=[r[4] for r in ISSUE_16])
def test_issue_16_examples_are_rejected_with_their_reason(checks, seeds, qid, cand, swaps, source, reason):
    assert checks.check(seeds[qid], cand, swaps, source) == reason


def test_labelled_pairs_equivalents_pass_and_issue_examples_fail(checks):
    pairs = [json.loads(line) for line in PAIRS.read_text(encoding="utf-8").splitlines()]
    items = [(p["seed"], p["candidate"], p.get("swaps", ()), p.get("source")) for p in pairs]
    found = checks.check_many(items)
    lost = {p["candidate"] for p, r in zip(pairs, found, strict=True) if r and p["label"] == "equivalent"}
    assert lost == KNOWN_LOSSES
    issue = [r for p, r in zip(pairs, found, strict=True) if p["origin"] == "issue-16"]
    assert len(issue) == 6 and all(issue)


def test_lexicon_knows_part_of_speech_and_number():
    assert "NN" in lexicon_tags("life") and not {"NN", "NNS"} & lexicon_tags("live")
    assert lexicon_tags("women") == {"NNS"} and lexicon_tags("woman") == {"NN"}
    assert not lexicon_tags("scarse")  # not a dictionary word
    assert is_key_noun("parents") and is_key_noun("immigrants") and not is_key_noun("works")


def test_synonym_checks_and_standins_without_embedder(seeds):
    mc = MeaningChecks()  # no embedder: a missing key word without a same-lemma word is rejected
    q28 = seeds["Q28"]
    assert mc.check(q28, "When a mom works for pay, the children suffer", [("mother", "mom")]) is None
    assert mc.check(q28, "When a father works for pay, the children suffer", [("mother", "father")]) == (
        "opposed_words"
    )
    assert mc.check(q28, "When a mother works for pay, the kids suffers", [("suffer", "suffers")]) == (
        "synonym_pos_mismatch"
    )
    assert mc.check(q28, "When a mother works for pay, the childs suffer", [("children", "childs")]) == (
        "synonym_not_a_word"
    )
    assert mc.check(q28, "When a mother works for pay, suffering follows") == "key_word_missing"
    only_modal = MeaningChecks(["modal_change"])
    assert only_modal.check(q28, "When a mother works for pay, suffering follows") is None
    with pytest.raises(ValueError, match="unknown meaning check"):
        MeaningChecks(["nope"])


class IssueLLM:
    """Writes, for each seed, exactly the paraphrase and synonyms the demo's bundled model produced."""

    name = "issue-16-script"
    PARA: ClassVar[dict[str, str]] = {
        "Q31": SRC31,
        "Q33": ISSUE_16[3][1],
        "Q36": ISSUE_16[4][1],
        "Q38": ISSUE_16[5][1],
        "Q27": "Making my parents proud has been one of my main aims in life",
    }
    SYN: ClassVar[dict[str, list[str]]] = {"women": ["men", "woman"], "life": ["live"], "aims": ["goals"]}

    def __init__(self) -> None:
        self.usage = Usage()

    def generate(self, requests, params=None):
        params = params or SamplingParams()
        self.usage.requests += len(requests)
        out = []
        for r in requests:
            user = r[-1]["content"]
            if user.startswith("Rewrite"):
                qid = next(q for q, t in self.SEEDS.items() if t in user)
                out.append(f"1. {self.PARA[qid]}")
            else:
                words = user.split("Words: ")[1].split("\n")[0].split(", ")
                out.append(json.dumps({w: self.SYN.get(w.lower(), []) for w in words}))
        return out

    def score(self, requests):  # the judge's interface: this one says No to everything
        self.usage.requests += len(requests)
        return [ScoreResult((-5.0, -0.1), (1, 1)) for _ in requests]


def test_augment_rejects_the_issue_examples_and_names_reasons(tmp_path, embedder):
    qs = {q.id: q for q in load_questions()}
    llm = IssueLLM()
    llm.SEEDS = {q: qs[q].text for q in IssueLLM.PARA}
    cfg = AugmentConfig(meaning_filter="checks", n=1, m=4, retries=0)
    man = augment([qs[q] for q in IssueLLM.PARA], llm, embedder, cfg, tmp_path / "a")
    texts = {r["text"] for r in read_jsonl(tmp_path / "a" / "augmented.jsonl")}
    assert not texts & {c for _, c, _, _, _ in ISSUE_16}
    assert SRC31 in texts  # the good paraphrase of Q31 is kept
    reasons = {**man["steps"]["paraphrase"]["reasons"], **man["steps"]["synonym"]["reasons"]}
    for r in ("repeated_word", "synonym_pos_mismatch", "opposed_words", "key_word_missing", "modal_change"):
        assert reasons.get(r, 0) >= 1, (r, reasons)
    assert man["judge"] is None
    # without the meaning checks the same run keeps them (what the demo did)
    off = augment(
        [qs[q] for q in IssueLLM.PARA], llm, embedder, cfg.model_copy(update={"checks": []}), tmp_path / "b"
    )
    kept = {r["text"] for r in read_jsonl(tmp_path / "b" / "augmented.jsonl")}
    assert len(kept & {c for _, c, _, _, _ in ISSUE_16}) >= 4
    assert off["counts"]["accepted"] > man["counts"]["accepted"]


def test_judge_step_counts_and_rejects(tmp_path, embedder):
    """A judge that answers No both ways keeps nothing; every judged candidate costs 2 requests."""
    qs = {q.id: q for q in load_questions()}
    llm = IssueLLM()
    llm.SEEDS = {"Q27": qs["Q27"].text}
    cfg = AugmentConfig(meaning_filter="checks", n=1, m=2, retries=0, judge="script")
    man = augment([qs["Q27"]], llm, embedder, cfg, tmp_path / "j", judge=llm)
    st = man["steps"]
    judged = st["paraphrase"]["judge_requests"] // 2 + st["synonym"].get("judge_requests", 0) // 2
    assert judged >= 1 and man["counts"]["accepted"] == 0
    assert man["judge"]["requests"] == 2 * judged
    assert man["judge"]["rejected"] == judged
    assert st["paraphrase"]["reasons"]["judge_rejected"] == 1
