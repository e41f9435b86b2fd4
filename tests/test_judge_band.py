"""Verifier + judge (issue #22 step 4): only the candidates whose P(changed) lies in the unsure band
reach the judge (a real tiny chat model: random weights, the SmolLM2 tokenizer); the band is chosen on
training folds only; the manifest counts judge requests per kept sample; `--judge-band` is a flag."""

from __future__ import annotations

import numpy as np
import pytest

from culturellm.augment.config import AugmentConfig
from culturellm.augment.summary import judge_summary
from culturellm.meaning.fit import band_route, choose_band, group_folds, nested_band
from culturellm.meaning.judge import Judge, judge_where_unsure

PAIRS = [
    ("It is a duty towards society to have children", "Having children is a duty towards society"),
    ("It is a duty towards society to have children", "Society expects us to have children"),
    ("Men make better political leaders than women do", "Women make better political leaders than men"),
    ("I trust my neighbours", "My neighbours are people I trust"),
    ("Work should always come first", "Work should sometimes come first"),
]


@pytest.fixture(scope="module")
def tiny_judge(tiny_base):
    from culturellm.llm import load_model

    return load_model(tiny_base, cache=False)


def test_only_unsure_pairs_reach_the_judge(tiny_judge):
    p = [0.01, 0.2, 0.5, 0.7, 0.95]
    judge = Judge(tiny_judge)
    before = tiny_judge.usage.requests
    keep, route = judge_where_unsure(judge, PAIRS, p, (0.1, 0.7))
    assert route.tolist() == [1, 0, 0, -1, -1]  # 0.7 is the band's high bound: rejected without asking
    assert judge.requests == 4 and tiny_judge.usage.requests - before == 4  # 2 pairs, both directions
    assert keep[0] and not keep[3] and not keep[4]
    assert keep[1:3] == [v.same for v in Judge(tiny_judge).verdicts(PAIRS[1:3])]
    every, none = Judge(tiny_judge), Judge(tiny_judge)
    assert (judge_where_unsure(every, PAIRS, p, (0.0, 1.0))[1] == 0).all() and every.requests == 10
    kept, r = judge_where_unsure(none, PAIRS, p, (1.0, 1.0))
    assert kept == [True] * 5 and (r == 1).all() and none.requests == 0


def test_band_is_chosen_on_training_folds_only():
    rng = np.random.default_rng(0)
    p = np.linspace(0.0, 0.99, 200)
    y = (rng.random(200) < p).astype(int)
    low, high = choose_band(p, y)
    assert y[p < low].mean() <= 0.05 and y[p >= high].mean() >= 0.8 and low <= high
    assert band_route(np.array([low - 1e-9, low, high - 1e-9, high]), (low, high)).tolist() == [1, 0, 0, -1]
    x = rng.normal(size=(200, 3)) + y[:, None]
    groups = np.repeat(np.arange(20), 10)
    _, bands = nested_band(x, y, groups)
    te = group_folds(groups)[0][1]
    flipped = y.copy()
    flipped[te] = 1 - flipped[te]  # the first fold's test labels change: its band must not
    assert nested_band(x, flipped, groups)[1][0] == bands[0]


def test_manifest_counts_judge_requests_per_kept_sample():
    cfg = AugmentConfig(judge="fake:j", meaning_filter="verifier")
    steps = {
        "paraphrase": {"judge_requests": 6, "judge_unsure": 3, "judge_sure_kept": 2,
                       "reasons": {"judge_rejected": 1, "verifier_rejected": 4}},
        "synonym": {"judge_requests": 4, "judge_unsure": 2, "judge_sure_kept": 5,
                    "reasons": {"verifier_rejected": 1}},
    }  # fmt: skip
    j = judge_summary(cfg, {"steps": steps}, accepted=8, band=(0.1, 0.7))
    assert j is not None
    assert (j["requests"], j["judged"], j["unsure"], j["sure_kept"], j["sure_rejected"]) == (10, 5, 5, 7, 5)
    assert j["rejected"] == 1 and j["requests_per_kept"] == 1.25 and j["band"] == [0.1, 0.7]
    checks = cfg.model_copy(update={"meaning_filter": "checks"})
    assert "band" not in (judge_summary(checks, {"steps": steps}, 8, (0, 1)) or {})


def test_judge_band_flag_and_bad_values(cli, tmp_path):
    from pydantic import ValidationError

    assert AugmentConfig(judge_band=[0.1, 0.7]).judge_band == [0.1, 0.7]
    for bad in ([0.7, 0.1], [0.1], [0.1, 1.5]):
        with pytest.raises(ValidationError, match="judge_band"):
            AugmentConfig(judge_band=bad)
    r = cli("augment", "--help")
    assert r.code == 0 and "--judge-band" in r.out
    r = cli("augment", "--judge-band", "0.8,0.2", "--limit-seeds", "1", "-o", str(tmp_path / "x"))
    assert r.code == 2 and "--judge-band" in r.err and "Traceback" not in r.err, r.err
    assert len(r.err.strip().splitlines()) == 1 and not (tmp_path / "x").exists()


@pytest.mark.slow
def test_augment_with_verifier_and_judge_counts_in_the_manifest(tmp_path, embedder, tiny_judge):
    """The whole run: the issue-16 script's rewordings, the verifier (bundled model) and the tiny judge;
    band 0,1 sends every screened candidate to the judge, 1,1 none, the default is the shipped band."""
    from culturellm.augment import augment
    from culturellm.jsonio import read_jsonl
    from culturellm.meaning.verifier import load_params
    from culturellm.wvs import load_questions
    from test_augment_checks import IssueLLM

    qs = {q.id: q for q in load_questions()}
    llm = IssueLLM()
    llm.SEEDS = {q: qs[q].text for q in IssueLLM.PARA}
    seeds = [qs[q] for q in IssueLLM.PARA]
    base = AugmentConfig(n=1, m=4, retries=0, meaning_filter="verifier", judge="tiny")

    def run(name: str, band: list[float] | None) -> dict:
        cfg = base.model_copy(update={"judge_band": band})
        return augment(seeds, llm, embedder, cfg, tmp_path / name, judge=tiny_judge)

    every = run("every", [0.0, 1.0])
    j, accepted = every["judge"], every["counts"]["accepted"]
    # the gate's threshold is the one of the augmenter's kind (an unknown augmenter: the default kind)
    gate = every["meaning_gate"]
    assert gate["kind"] == "gpt4" and gate["threshold"] == round(load_params().threshold, 6)
    kept = [r for r in read_jsonl(tmp_path / "every" / "augmented.jsonl") if r["step"] != "seed"]
    assert all(0 <= r["p_changed"] <= 1 for r in kept) and every["meaning_estimate"]["scored"] == len(kept)
    assert j["unsure"] > 0 and j["sure_kept"] == j["sure_rejected"] == 0
    assert j["requests"] == 2 * j["unsure"] == 2 * j["judged"]
    assert accepted <= j["unsure"] - j["rejected"]  # every kept one passed the judge
    assert j["requests_per_kept"] == (round(j["requests"] / accepted, 4) if accepted else None)
    none = run("none", [1.0, 1.0])["judge"]
    assert none["requests"] == 0 and none["unsure"] == 0 and none["sure_kept"] > 0
    shipped = run("shipped", None)["judge"]
    assert shipped["band"] == list(load_params().info["judge_band"])
    assert shipped["requests"] == 2 * shipped["unsure"]
