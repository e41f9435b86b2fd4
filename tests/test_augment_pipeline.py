"""The whole augmentation pipeline with the real bundled SmolLM2 and MiniLM embedder, on a few seeds:
records and manifest, filters respected, request counts, resume after a torn write, the CLI."""

from __future__ import annotations

import json
import shutil
from collections import Counter

import pytest

from culturellm.augment import AugmentConfig, augment, read_complete
from culturellm.dataset import build_training_set
from culturellm.jsonio import read_jsonl
from culturellm.wvs import load_questions

SEEDS = ("Q28", "Q40")
# Settings the CLI can also express, so the CLI test replays the same requests from the cache.
FAST = dict(n=1, m=2, k=2, retries=0, max_words=3)
CLI_FAST = ["--n", "1", "--m", "2", "--k", "2", "--retries", "0", "--max-words", "3"]


@pytest.fixture(scope="module")
def cached_model(bundled_model):
    """The session's bundled model behind the real SQLite response cache (test-session home)."""
    from culturellm.llm.cache import CachingBackend, open_cache

    return CachingBackend(bundled_model, open_cache())


@pytest.fixture(scope="module")
def seeds():
    by_id = {q.id: q for q in load_questions()}
    return [by_id[q] for q in SEEDS]


@pytest.fixture(scope="module")
def run(tmp_path_factory, cached_model, embedder, seeds):
    out = tmp_path_factory.mktemp("aug")
    manifest = augment(seeds, cached_model, embedder, AugmentConfig(**FAST), out)
    return out, manifest


def test_records_and_manifest(run, seeds):
    out, manifest = run
    rows = read_jsonl(out / "augmented.jsonl")
    assert json.loads((out / "manifest.json").read_text()) == manifest
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids))
    by_id = {r["id"]: r for r in rows}
    assert [r["question_id"] for r in rows if r["step"] == "seed"] == list(SEEDS)
    cfg = AugmentConfig(**FAST)
    for r in rows:
        assert set(r) >= {"id", "question_id", "text", "step", "parent", "similarity"}
        assert r["step"] in {"seed", "paraphrase", "synonym"}
        if r["step"] == "seed":
            assert r["parent"] is None and r["similarity"] == 1.0
            continue
        parent = by_id[r["parent"]]
        assert parent["question_id"] == r["question_id"]
        assert r["text"] != parent["text"]
        if r["step"] == "paraphrase":
            assert parent["step"] == "seed" and cfg.t1 <= r["similarity"] < cfg.dup_threshold
        else:
            assert parent["step"] in {"seed", "paraphrase"} and r["similarity"] >= cfg.t2
            assert r["swaps"] and all(len(s) == 2 for s in r["swaps"])
    per_q = Counter((r["question_id"], r["step"]) for r in rows)
    for q in SEEDS:
        assert per_q[(q, "paraphrase")] <= cfg.n and per_q[(q, "synonym")] <= cfg.m
    c = manifest["counts"]
    assert c["seeds"] == 2 and c["total"] == len(rows) and c["accepted"] == len(rows) - 2
    steps = manifest["steps"]
    # batched: at most one paraphrase request per seed and attempt, one synonym request per sentence
    assert 2 <= steps["paraphrase"]["requests"] <= 2 * (cfg.retries + 1)
    assert steps["synonym"]["requests"] <= 2 * max(cfg.n, 1)
    assert manifest["llm_requests"] == sum(s["requests"] for s in steps.values())
    assert manifest["usage"]["requests"] + manifest["usage"]["cache_hits"] == manifest["llm_requests"]
    assert manifest["tokens"] > 0
    for s in ("paraphrase", "synonym"):
        d = steps[s]
        assert d["accepted"] + d["rejected"] == d["candidates"]
        assert d["rejection_rate"] is None or 0.0 <= d["rejection_rate"] <= 1.0
    m = manifest["metrics"]
    assert 0.0 <= m["diversity_gain"] <= 1.0 and 0.0 < m["distinct_2_seeds"] <= 1.0
    assert manifest["config"]["n"] == 1 and manifest["elapsed_s"] > 0


def test_resume_after_torn_write_gives_same_records(run, tmp_path, cached_model, embedder, seeds):
    out, _ = run
    copy = tmp_path / "aug"
    shutil.copytree(out, copy)
    (copy / "manifest.json").unlink()
    path = copy / "augmented.jsonl"
    full = path.read_text()
    lines = full.splitlines(keepends=True)
    first_group = sum(1 for r in read_jsonl(path) if r["question_id"] == SEEDS[0])
    # keep the first seed's group and half a line of the second seed's first record
    path.write_text("".join(lines[:first_group]) + lines[first_group][:20])
    _, done = read_complete(path)
    assert done == {SEEDS[0]}
    before = cached_model.usage.requests
    manifest = augment(seeds, cached_model, embedder, AugmentConfig(**FAST), copy)
    assert path.read_text() == full  # same records, same order, no duplicate, no torn line
    assert cached_model.usage.requests == before  # every LLM answer replayed from the cache
    assert manifest["counts"]["seeds_resumed"] == 1
    # a finished run re-run does nothing
    again = augment(seeds, cached_model, embedder, AugmentConfig(**FAST), copy)
    assert again["counts"]["seeds_resumed"] == 2 and path.read_text() == full
    assert {k: v for k, v in again["counts"].items() if k != "seeds_resumed"} == {
        k: v for k, v in manifest["counts"].items() if k != "seeds_resumed"
    }


def test_other_config_in_same_dir_is_refused(run, cached_model, embedder, seeds):
    from culturellm.errors import CultureLLMError

    out, _ = run
    with pytest.raises(CultureLLMError, match="another configuration"):
        augment(seeds, cached_model, embedder, AugmentConfig(**{**FAST, "n": 3}), out)


def test_training_set_from_real_augmentation(run, tmp_path):
    out, manifest = run
    man = build_training_set(["german"], out / "augmented.jsonl", tmp_path / "train.jsonl")
    assert man["counts"]["records"] == manifest["counts"]["total"]


def test_cli_augment_acceptance_interface(run, tmp_path, monkeypatch):
    """`culturellm augment --llm bundled ...` (same settings: answers come from the shared cache)."""
    from typer.testing import CliRunner

    from culturellm.cli import app

    out = tmp_path / "cli"
    args = ["augment", "--llm", "bundled", *CLI_FAST, "--out", str(out)]
    r = CliRunner().invoke(app, [*args, "--question", SEEDS[0], "--limit-seeds", "1", "--no-progress"])
    assert r.exit_code == 0, r.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert "llm_requests" in manifest and manifest["counts"]["seeds"] == 1
    assert (out / "augmented.jsonl").exists()
    assert "LLM requests" in r.output
    ours = [r for r in read_jsonl(run[0] / "augmented.jsonl") if r["question_id"] == SEEDS[0]]
    assert read_jsonl(out / "augmented.jsonl") == ours  # same requests, answered by the shared cache
    assert manifest["usage"]["requests"] == 0 and manifest["cache_hits"] == manifest["llm_requests"]


def test_translation_step_records_and_counts(tmp_path, cached_model, embedder, seeds):
    """Step 3 with the real bundled model: every seed and kept paraphrase is translated, every
    non-empty translation back-translated, and a translation is kept only when its back-translation
    is close enough to its source (t3) and it is not an untranslated echo. t3 = -1 keeps every real
    translation, so the record format is exercised whatever the 135M model writes; t3 = 1.01 keeps none."""
    cfg = AugmentConfig(**{**FAST, "m": 0, "translate": "German", "t3": -1.0, "max_tokens_translate": 48})
    manifest = augment(seeds[:1], cached_model, embedder, cfg, tmp_path / "t")
    rows = read_jsonl(tmp_path / "t" / "augmented.jsonl")
    by_id = {r["id"]: r for r in rows}
    sources = [r for r in rows if r["step"] in ("seed", "paraphrase")]
    st = manifest["steps"]["translation"]
    assert st["candidates"] == len(sources)
    empty = st["reasons"].get("unparseable_answer:empty", 0)
    assert st["requests"] == 2 * len(sources) - empty  # translate all, back-translate the non-empty
    trans = [r for r in rows if r["step"] == "translation"]
    assert len(trans) == st["accepted"] == manifest["counts"]["translation"]
    assert st["accepted"] + sum(v for k, v in st["reasons"].items() if k != "unparseable_answer:empty") == (
        len(sources) - empty
    )
    for r in trans:
        src = by_id[r["parent"]]
        assert src["step"] in ("seed", "paraphrase") and r["text"] != src["text"]
        assert r["language"] == "German" and r["back_translation"]
        assert -1.0 <= r["back_similarity"] <= 1.0 and -1.0 <= r["similarity"] <= 1.0
    strict = augment(
        seeds[:1], cached_model, embedder, cfg.model_copy(update={"t3": 1.01}), tmp_path / "strict"
    )
    assert strict["counts"]["translation"] == 0
    assert strict["steps"]["translation"]["reasons"].get("below_t3", 0) == len(sources) - empty


def test_judge_with_bundled_model_scores_both_ways_and_replays_from_cache(cached_model, seeds):
    """The judge step's real path: label log-probabilities from the bundled model, 2 scoring
    requests per pair, the same verdicts replayed from the response cache."""
    import math

    from culturellm.meaning.judge import Judge

    judge = Judge(cached_model)
    seed = seeds[0].text
    pairs = [(seed, "Children suffer when their mother has a paid job"), (seed, "My favourite colour is red")]
    verdicts = judge.verdicts(pairs)
    assert judge.requests == 4 and len(verdicts) == 2
    assert all(math.isfinite(v.forward) and math.isfinite(v.backward) for v in verdicts)
    hits = cached_model.usage.cache_hits
    assert judge.verdicts(pairs) == verdicts
    assert cached_model.usage.cache_hits == hits + 4
