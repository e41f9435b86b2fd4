"""The retrieval baseline (issue 29): `align --context retrieve:K` puts the culture's survey answers to
the K training seed questions nearest the asked one in the system message; the asked question and
held-out questions are never retrieved. A small deterministic embedder (bag of words) for the
nearest-neighbour checks; the bundled model and embedder once, marked slow."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from culturellm.dataset import DatasetConfig, build_training_set
from culturellm.errors import DataError
from culturellm.evaluate.align import _items, _systems
from culturellm.evaluate.retrieval import HEADER, Retriever, answers_line, pool_questions
from culturellm.evaluate.variant import ModelVariant, Retrieval
from culturellm.jsonio import write_jsonl
from culturellm.seeds import seed_set
from culturellm.wvs import load_questions


class WordsEmbedder:
    """Unit bag-of-words vectors over the words seen so far (deterministic: same texts, same vectors)."""

    def __init__(self) -> None:
        self.vocab: dict[str, int] = {}

    def encode(self, texts):
        rows = []
        for t in texts:
            v = np.zeros(2048, dtype=np.float32)
            for w in re.findall(r"[a-z]+", t.lower()):
                v[self.vocab.setdefault(w, len(self.vocab))] += 1.0
            rows.append(v / (np.linalg.norm(v) or 1.0))
        return np.stack(rows)


@pytest.fixture
def split(tmp_path):
    """A training-set manifest over the first 10 seed questions, 3 held out (seed 0)."""
    rows = []
    for q in load_questions()[:10]:
        rows.append({"id": f"{q.id}-s", "question_id": q.id, "step": "seed", "text": q.text})
        rows += [{"id": f"{q.id}-v{i}", "question_id": q.id, "step": "imported", "text": f"{q.text} ({i})"}
                 for i in range(2)]  # fmt: skip
    write_jsonl(tmp_path / "aug.jsonl", rows)
    cfg = DatasetConfig(holdout_questions=3, holdout_variants=0.5)
    build_training_set(["arabic"], tmp_path / "aug.jsonl", tmp_path / "train.jsonl", cfg)
    return tmp_path / "train.manifest.json"


def _seeds():
    return {s.question_id: s for s in seed_set("arabic")}


def test_pool_is_the_training_questions_never_held_out_ones(split):
    m = json.loads(split.read_text())["split"]
    seeds = _seeds()
    pool = pool_questions(seeds, split)
    assert pool == [q for q in m["train_questions"] if q in seeds] and len(pool) >= 5
    assert not set(pool) & set(m["heldout_questions"])
    assert pool_questions(seeds, None) == list(seeds)  # no split: every seed the culture answered


def test_nearest_picks_the_most_similar_and_never_the_asked_question(split):
    seeds = _seeds()
    pool = pool_questions(seeds, split)
    r = Retriever(Retrieval(2), seeds, pool, WordsEmbedder())
    target = pool[3]
    # asked as another question with the target's exact wording: the target comes first
    other = next(q for q in pool if q != target)
    assert r.nearest(other, seeds[target].text)[0] == target
    # asked as the target itself: it is left out, and K others come back
    got = r.nearest(target, seeds[target].text)
    assert target not in got and len(got) == 2
    # a held-out question's exact wording never brings back that question
    held = json.loads(split.read_text())["split"]["heldout_questions"]
    for q in held:
        if q in seeds:
            assert q not in r.nearest(q, seeds[q].text)
    # cosine order: the second-nearest is no closer than the first
    emb = WordsEmbedder()
    vecs = emb.encode([seeds[q].text for q in pool])
    asked = emb.encode(["When jobs are scarce, men should have more right to a job"])[0]
    best = [pool[i] for i in np.argsort(-(vecs @ asked), kind="stable")]
    assert r.nearest("Q999", "When jobs are scarce, men should have more right to a job") == best[:2]


def test_system_message_per_item_holds_the_culture_prompt_and_answers(split, monkeypatch):
    import culturellm.embed

    monkeypatch.setattr(culturellm.embed, "load_embedder", lambda spec="bundled", **kw: WordsEmbedder())
    from culturellm.cultures import get_culture

    seeds = _seeds()
    items = _items(seeds, split, "arabic")
    v = ModelVariant("base+retrieval", "bundled", "retrieve:3")
    assert isinstance(v.system, Retrieval) and v.describe_system() == "culture+retrieve:3"
    systems, retrieved = _systems(v, get_culture("arabic"), seeds, items, split)
    held = set(json.loads(split.read_text())["split"]["heldout_questions"])
    plain_prompt = ModelVariant("base", "bundled", "culture").system_prompt("arabic")
    for (qid, _, _), system, ids in zip(items, systems, retrieved, strict=True):
        assert system.startswith(plain_prompt + "\n\n")
        assert HEADER.format(display="Arabic") in system
        assert len(ids) == 3 and qid not in ids and not set(ids) & held
        for q in ids:
            assert answers_line(seeds[q]) in system
    line = answers_line(seeds["Q27"])
    assert line.startswith('- "One of my main goals') and "1 (Strongly agree) 90%" in line
    assert line.endswith("most common: 1")
    plain = ModelVariant("base", "bundled", "culture")
    systems, retrieved = _systems(plain, get_culture("arabic"), seeds, items, split)
    assert set(systems) == {plain.system_prompt("arabic")} and retrieved == [None] * len(items)


def test_bad_k_and_evaluate_are_clear_errors(cli):
    with pytest.raises(DataError, match=r"retrieve:0: K of retrieve:K"):
        Retrieval.parse("retrieve:0")
    p = cli("align", "--model", "bundled", "--culture", "arabic", "--context", "retrieve:x")
    assert p.code == 2 and "K of retrieve:K must be a whole number" in p.err
    p = cli("evaluate", "--model", "bundled", "--culture", "arabic", "--context", "retrieve:3")
    assert p.code == 2 and "use it with `culturellm align`" in p.err


@pytest.mark.slow
def test_align_with_retrieval_on_the_bundled_model(split, cli, tmp_path):
    p = cli("align", "--model", "bundled", "--culture", "arabic", "--split", str(split),
            "--context", "retrieve:2", "--json")  # fmt: skip
    assert p.code == 0, p.err
    res = json.loads(p.out)
    assert res["system"] == "culture+retrieve:2"
    held = set(json.loads(split.read_text())["split"]["heldout_questions"])
    for row in res["questions"]:
        assert len(row["retrieved"]) == 2
        assert row["question_id"] not in row["retrieved"] and not set(row["retrieved"]) & held
