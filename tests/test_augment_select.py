"""Selection logic of the pipeline (re-asking, duplicate / negation / threshold rejections, quota per
paraphrase) with the `fake:` backend answering from a script and the real MiniLM embedder. The
real-LLM run is in test_augment_pipeline.py."""

from __future__ import annotations

import json

from culturellm.augment import AugmentConfig, augment
from culturellm.jsonio import read_jsonl
from culturellm.llm.base import SamplingParams
from culturellm.llm.fake import FakeBackend

SEED = {
    "id": "Q28",
    "text": "When a mother works for pay, the children suffer",
    "options": {"1": "Strongly agree", "2": "Agree", "3": "Disagree", "4": "Strongly disagree"},
}
FIRST = """1. When a mother works for pay, the children suffer.
2. When a mother works for pay, the children do not suffer.
3. My favourite colour is blue and I like the sea.
4. Children suffer when their mother has a paid job."""
SECOND = """1. Children suffer when their mother has a paid job.
2. If a mother is employed, her children suffer."""


def scripted_llm() -> FakeBackend:
    """The `fake:` backend with a scripted reply: paraphrases by sample_index, synonyms as JSON.
    `llm.asked` records the sampling parameters of every request."""
    asked: list[SamplingParams] = []

    def reply(chat, params: SamplingParams) -> str:
        asked.append(params)
        user = chat[-1]["content"]
        if user.startswith("Rewrite"):
            return FIRST if params.sample_index == 0 else SECOND
        words = user.split("Words: ")[1].split("\n")[0].split(", ")
        syn = {"children": ["kids", "youngsters"], "suffer": ["struggle", "rejoice"], "mother": ["mom"]}
        return json.dumps({w: syn.get(w.lower(), ["thing"]) for w in words})

    llm = FakeBackend("fake:scripted", reply=reply)
    llm.asked = asked  # type: ignore[attr-defined]
    return llm


def test_reask_varies_sample_index_and_filters(tmp_path, embedder):
    llm = scripted_llm()
    cfg = AugmentConfig(meaning_filter="checks", n=2, m=3, retries=2, temperature=0.7)
    man = augment([SEED], llm, embedder, cfg, tmp_path)
    rows = read_jsonl(tmp_path / "augmented.jsonl")
    para = [r["text"] for r in rows if r["step"] == "paraphrase"]
    assert para == [
        "Children suffer when their mother has a paid job.",
        "If a mother is employed, her children suffer.",
    ]
    p_calls = [p for p in llm.asked if p.max_tokens == cfg.paraphrase_tokens]
    assert [p.sample_index for p in p_calls] == [0, 1] and p_calls[0].seed != p_calls[1].seed
    reasons = man["steps"]["paraphrase"]["reasons"]
    assert reasons["duplicate"] >= 2  # the seed echoed, then the already kept paraphrase
    assert reasons["negation_mismatch"] == 1 and reasons["below_t1"] == 1
    syn = [r for r in rows if r["step"] == "synonym"]
    assert 1 <= len(syn) <= 3
    assert {r["parent"] for r in syn} <= {r["id"] for r in rows if r["step"] == "paraphrase"}
    assert all(r["similarity"] >= cfg.t2 for r in syn)
    # round-robin over paraphrases: the most similar variant of each before any second one
    assert len({r["parent"] for r in syn[:2]}) == min(2, len({r["parent"] for r in syn}))
    assert man["steps"]["synonym"]["requests"] == 2  # one request per kept paraphrase
    # "rejoice" for "suffer" and "thing" for anything: dropped by the word-level similarity check
    assert not any("rejoice" in r["text"] or "thing" in r["text"] for r in syn)
    assert man["steps"]["synonym"]["synonyms_dropped_below_t_word"] >= 2
    assert man["llm_requests"] == 2 + 2


def test_no_paraphrase_kept_falls_back_to_seed_for_synonyms(tmp_path, embedder):
    llm = scripted_llm()
    man = augment(
        [SEED], llm, embedder, AugmentConfig(meaning_filter="checks", n=0, m=2), tmp_path, progress=True
    )
    rows = read_jsonl(tmp_path / "augmented.jsonl")
    assert man["steps"]["paraphrase"]["requests"] == 0
    assert [r["parent"] for r in rows if r["step"] == "synonym"] == [rows[0]["id"]] * 2
    words = {tuple(s) for r in rows for s in r.get("swaps", [])}
    assert not any(w in {"strongly", "agree", "disagree"} for w, _ in words)


def test_one_synonym_request_per_seed(tmp_path, embedder):
    llm = scripted_llm()
    cfg = AugmentConfig(meaning_filter="checks", n=2, m=4, retries=1, synonym_requests="seed")
    man = augment([SEED], llm, embedder, cfg, tmp_path)
    rows = read_jsonl(tmp_path / "augmented.jsonl")
    assert man["steps"]["synonym"]["requests"] == 1
    syn = [r for r in rows if r["step"] == "synonym"]
    assert syn and {r["parent"] for r in syn} <= {r["id"] for r in rows if r["step"] == "paraphrase"}
    assert all(r["similarity"] >= cfg.t2 for r in syn)
