"""The meaning verifier (issue #22): features on real pairs with the bundled embedder and language model,
the shipped parameters load and reproduce a refit's scores, the refit's folds never put one question in
both train and test, `augment check` on our format and the release's (CLI, bad input: exit 2 and one
line), its verdicts used by `dataset --drop-rejected` and shown by `review`, and no check rejecting a
rewording only because it is phrased as a question."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from culturellm.jsonio import read_jsonl, write_jsonl

ROOT = Path(__file__).resolve().parents[1]
LABELS = ROOT / "benchmarks" / "data" / "release_labels.jsonl"
from test_review import SAMPLES as REVIEW_SAMPLES  # noqa: E402  (the review tests' seeds and rows)
from test_review import SEEDS  # noqa: E402

CACHE = ROOT / "benchmarks" / "results" / "verifier_features.npz"
SAMPLES = [*REVIEW_SAMPLES, ("Q28", "translation", "Wenn eine Mutter arbeitet, leiden die Kinder")]
QUESTION_FORMS = [
    ("How often do the following things occur in your neighborhood: street violence and fights",
     "Can you comment on the rate of street violence and fights in your neighborhood?"),
    ("How often do the following things occur in your neighborhood: robberies",
     "Can you gauge the regularity of robberies in your neighborhood?"),
    ("It is a duty towards society to have children",
     "Could you say whether having children is a duty towards society?"),
]  # fmt: skip


def _aug_dir(root: Path) -> Path:
    from culturellm.augment.pipeline import record_id

    rows = []
    for q, seed in SEEDS.items():
        sid = record_id(q, "seed", seed)
        rows.append({"id": sid, "question_id": q, "step": "seed", "text": seed, "parent": None})
        for _, step, text in (s for s in SAMPLES if s[0] == q):
            rows.append({"id": record_id(q, step, text), "question_id": q, "step": step, "text": text,
                         "parent": sid, "similarity": 0.9})  # fmt: skip
    d = root / "aug"
    d.mkdir()
    write_jsonl(d / "augmented.jsonl", rows)
    return d


def _release_file(root: Path) -> Path:
    rows = [
        {"q_id": "27", "q_content": "Making my parents proud has been one of my main aims in life",
         "ori_content": SEEDS["Q27"], "option": "1. Strongly agree"},
        {"q_id": 28, "q_content": "When a father works for pay, the children suffer",
         "ori_content": SEEDS["Q28"]},
        {"q_id": "Q28", "q_content": "Children suffer when their mother has a paid job"},  # no ori_content
    ]  # fmt: skip
    path = root / "new_WVQ_small.jsonl"
    write_jsonl(path, rows)
    return path


# --- no check rejects a question form --------------------------------------------------------------


def test_question_forms_are_no_modality_change():
    from culturellm.meaning.checks import MeaningChecks
    from culturellm.meaning.features import lexical_features

    modal = MeaningChecks(["modal_change"])
    for seed, cand in QUESTION_FORMS:
        assert modal.check(seed, cand) is None, cand
        f = lexical_features(seed, cand)
        assert f["modal_added"] == f["modal_lost"] == 0, cand
    # a real modality change still counts
    seed = "Adult children have the duty to provide long-term care for their parents"
    assert modal.check(seed, "Adult children can provide long-term care for their parents.") == "modal_change"
    f = lexical_features(seed, "Adult children can provide long-term care for their parents.")
    assert f["modal_added"] == f["modal_lost"] == 1


# --- the fit: folds, threshold, shipped parameters -------------------------------------------------


def test_refit_folds_never_share_a_question():
    from culturellm.meaning.fit import group_folds, load_labelled, nested_keep

    data = load_labelled(LABELS)
    assert len(data.pairs) == 550 and len(set(data.groups)) == 50
    folds = group_folds(data.groups)
    tested = np.concatenate([te for _, te in folds])
    assert sorted(tested) == list(range(len(data.pairs)))  # every pair tested exactly once
    for tr, te in folds:
        assert not set(data.groups[tr]) & set(data.groups[te])
    rng = np.random.default_rng(0)
    x = rng.normal(size=(len(data.pairs), 3)) + data.y[:, None]  # informative toy features
    keep, prob = nested_keep(x, data.y, data.groups)
    assert keep.shape == prob.shape == (550,) and 0 < keep.sum() < 550


def test_threshold_is_chosen_for_the_precision_of_what_is_kept():
    from culturellm.meaning.fit import choose_threshold, rates

    p = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8])
    y = np.array([0, 0, 0, 1, 0, 1, 1, 1])
    t = choose_threshold(p, y, target=0.05, floor=0.25)
    assert rates(p, y, t)[:2] == (0.0, 0.75)  # the three sure ones, none changed
    t2 = choose_threshold(p, y, target=0.25, floor=0.25)
    assert rates(p, y, t2)[0] <= 0.25 and rates(p, y, t2)[1] == 1.0


def test_shipped_parameters_load_and_reproduce_a_refit():
    """The shipped gate: 20 features + the pair head's logit, a threshold per kind of data; its stacked
    regression refitted on the cached features and out-of-fold head logits gives the same P(changed)."""
    from culturellm.meaning.fit import load_kinds, model
    from culturellm.meaning.verifier import Verifier, load_params

    params = load_params()
    assert 0 < params.threshold < 1 and params.info["cv"]["heldout"]["n"] == 1483  # every GPT-4 pair
    assert params.has_head and {"gpt4", "project_synonyms"} <= set(params.info["thresholds"])
    assert params.threshold_for("bundled") == ("bundled", params.info["thresholds"]["bundled"])
    assert params.threshold_for("openai:gpt-4o") == ("gpt4", params.threshold)
    assert CACHE.is_file(), f"{CACHE}: the committed feature cache is missing (scripts/fit_verifier.py)"
    z = np.load(CACHE)
    assert [*z["names"], "pair_head"] == list(params.features)
    data = load_kinds(ROOT / "benchmarks" / "data")
    fitted = [n for n in data if data[n].kind == "gpt4"]  # the slopes: GPT-4 pairs (gatefit.SLOPE_KINDS)
    x = np.vstack([np.hstack([z[f"{n}_x"], z[f"{n}_head_oof"][:, None]]) for n in fitted])
    y = np.concatenate([data[n].y for n in fitted])
    pipe = model(params.info["C"]).fit(x, y)
    v = Verifier(embedder=None, lm=object(), params=params)
    shift = params.shift_for("gpt4")  # the default kind's calibration (gatefit.kind_shifts)
    for n in data:  # the shipped head's logits, as the gate computes them from MiniLM embeddings
        xs = np.hstack([z[f"{n}_x"], z[f"{n}_head"][:, None]])
        want = 1 / (1 + np.exp(-(pipe.decision_function(xs) + shift)))
        np.testing.assert_allclose(v.probabilities(z[f"{n}_x"], head=z[f"{n}_head"]), want, atol=1e-5)


# --- augment check: both formats, bad input --------------------------------------------------------


def test_augment_check_bad_input_is_one_line_exit_2(tmp_path, cli):
    bad = tmp_path / "bad.jsonl"
    for content, needle in (
        ('{"foo": 1}\n', "neither an augmented.jsonl record"),
        ("not json\n", "not a JSON line"),
        ('{"q_id": "abc", "q_content": "x"}\n', "q_id"),
        ("", "empty file"),
    ):
        bad.write_text(content, encoding="utf-8")
        p = cli("augment", "check", str(bad))
        assert p.code == 2 and needle in p.err and "Traceback" not in p.err, p.err
        assert len(p.err.strip().splitlines()) == 1
    assert not (tmp_path / "bad.jsonl.verdicts.jsonl").exists()


def test_read_rows_both_formats(tmp_path):
    from culturellm.meaning.verdicts import default_out, read_rows

    fmt, rows = read_rows(_aug_dir(tmp_path))
    assert fmt == "augmented" and len(rows) == len(SAMPLES)
    assert rows[0]["seed"] == SEEDS["Q27"] and rows[-1]["step"] == "translation"
    assert default_out(tmp_path / "aug", fmt) == tmp_path / "aug" / "verdicts.jsonl"
    rel = _release_file(tmp_path)
    fmt, rows = read_rows(rel)
    assert fmt == "release" and [r["question_id"] for r in rows] == ["Q27", "Q28", "Q28"]
    assert rows[2]["seed"].lower().startswith("when a mother works")  # from our seeds
    assert default_out(rel, fmt).name == "new_WVQ_small.jsonl.verdicts.jsonl"


@pytest.mark.slow
def test_augment_check_both_formats_writes_verdicts(tmp_path, capsys):
    from culturellm.augment.cli import check_command
    from culturellm.errors import DataError

    args = {"out": None, "threshold": None, "embedder": "bundled", "device": "cpu", "dtype": "float32"}
    d = _aug_dir(tmp_path)
    check_command(file=d, force=False, **args)
    said = " ".join(capsys.readouterr().out.split())
    assert "augmented format" in said and f"{len(SAMPLES)} rows" in said and "1 skipped" in said
    rows = read_jsonl(d / "verdicts.jsonl")
    assert len(rows) == len(SAMPLES) and rows[-1]["verdict"] == "skipped"
    for r in rows[:-1]:
        assert r["verdict"] in ("keep", "reject") and 0 <= r["p_changed"] <= 1 and "cos" in r["features"]
        assert (r["verdict"] == "reject") == bool(r["reasons"])
    rel = _release_file(tmp_path)
    check_command(file=rel, force=False, **args)
    said = " ".join(capsys.readouterr().out.split())
    assert "release format" in said and "3 rows" in said
    out = tmp_path / "new_WVQ_small.jsonl.verdicts.jsonl"
    assert [r["line"] for r in read_jsonl(out)] == [1, 2, 3]
    check_command(file=rel, force=False, **args)  # our own file: replaced
    mine = tmp_path / "mine.jsonl"
    mine.write_text("my notes\n", encoding="utf-8")
    with pytest.raises(DataError, match="not written by culturellm"):
        check_command(file=rel, force=False, **{**args, "out": mine})
    assert mine.read_text(encoding="utf-8") == "my notes\n"


@pytest.mark.slow
def test_batched_check_gives_the_verdicts_of_one_row_at_a_time(tmp_path):
    """`augment check` scores the rows of a seed together (shared KV prefix, each distinct text once,
    chunks of rows); the verdicts are those of scoring every row alone, and the progress counts every
    row once."""
    from culturellm.embed import load_embedder
    from culturellm.meaning import verdicts as vd
    from culturellm.meaning.features import load_lm
    from culturellm.meaning.verifier import Verifier

    cands = [
        ("27", "Making my parents proud has been one of my main aims in life"),
        ("28", "When a father works for pay, the children suffer"),
        ("27", "Making my guardians proud has always been one of my primary goals in life."),
        ("28", "Children suffer when their mother has a paid job"),
        ("27", "Making my parents proud has been one of my main aims in life"),  # a repeated row
        ("27", "The goal to bring vanity to my parents has been a central life goal of mine."),
        ("28", "When a mother works for pay, the children suffer"),  # the seed itself
        ("27", "Credo you of the belief that my parents are proud"),
    ]
    path = tmp_path / "small.jsonl"
    write_jsonl(path, [{"q_id": q, "q_content": c, "ori_content": SEEDS[f"Q{q}"]} for q, c in cands])
    _, rows = vd.read_rows(path)
    verifier = Verifier(load_embedder(disk_cache=False), load_lm(device="cpu", dtype="float32"))
    verifier.extractor.chunk_rows = 3  # several chunks, a seed's rows split across none of them
    done: list[int] = []
    batched = vd.score(rows, verifier, progress=None)
    pairs = [(r["seed"], r["text"]) for r in rows]
    together = verifier.verdicts(pairs, advance=done.append)
    alone = [verifier.verdicts([p])[0] for p in pairs]
    assert sum(done) == len(rows) and len(done) >= 2
    assert [v.keep for v in together] == [v.keep for v in alone] == [r["verdict"] == "keep" for r in batched]
    assert [v.reasons for v in together] == [v.reasons for v in alone]
    np.testing.assert_allclose([v.probability for v in together], [v.probability for v in alone], atol=1e-4)
    for a, b in zip(together, alone, strict=True):
        np.testing.assert_allclose(list(a.scores.values()), list(b.scores.values()), atol=1e-4)
    assert together[0].probability == together[4].probability  # a repeated row scores the same


# --- verdicts used by dataset --drop-rejected and shown by review ---------------------------------


def _write_verdicts(d: Path, reject: set[str]) -> None:
    from culturellm.meaning.verdicts import KIND

    rows = [
        {"kind": KIND, "id": r["id"], "verdict": "reject" if r["text"] in reject else "keep",
         "p_changed": 0.5, "reasons": ["a named group changed"] if r["text"] in reject else []}
        for r in read_jsonl(d / "augmented.jsonl") if r["step"] != "seed"
    ]  # fmt: skip
    (d / "verdicts.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def test_drop_rejected_uses_verdicts_and_review_shows_them(tmp_path):
    from culturellm.dataset import build_training_set
    from culturellm.dataset.config import DatasetConfig
    from culturellm.review.store import load_items

    d = _aug_dir(tmp_path)
    father = SAMPLES[3][2]
    _write_verdicts(d, {father})
    man = build_training_set(
        ["german"], d / "augmented.jsonl", tmp_path / "kept.jsonl", DatasetConfig(drop_rejected=True)
    )
    assert (
        len(man["review"]["dropped"]) == 1
        and man["review"]["dropped_by_verifier"] == man["review"]["dropped"]
    )
    texts = [r["messages"][1]["content"] for r in read_jsonl(tmp_path / "kept.jsonl")]
    assert not any("father" in t for t in texts)
    items = {it["text"]: it for it in load_items(d)}
    assert items[father]["verdict"]["verdict"] == "reject"
    assert items[father]["verdict"]["reasons"] == ["a named group changed"]


# --- features with the real bundled embedder and language model -----------------------------------


@pytest.mark.slow
def test_features_on_real_pairs():
    from culturellm.embed import load_embedder
    from culturellm.meaning.features import FEATURES, PairFeatures, load_lm

    pairs = [
        ("Sexual harassment", "Sexual harassment in the workplace"),
        ("Sexual harassment", "Erotic harassment"),
        ("I believe that immigrants take jobs away", "I believe that immigrants take away jobs"),
        (
            "I believe that immigrants take jobs away",
            "Credo you of the belief that immigrants take jobs away",
        ),
    ]
    x = PairFeatures(load_embedder(disk_cache=False), load_lm(device="cpu", dtype="float32")).compute(pairs)
    f = {name: x[:, i] for i, name in enumerate(FEATURES)}
    assert x.shape == (4, len(FEATURES)) and np.isfinite(x).all()
    assert f["new_frac"][1] == 0.5 and f["new_frac"][0] == 1 / 3  # erotic; workplace
    assert f["new_sim_min"][1] < 1 and f["lm_new_mean"][1] > 0
    assert f["lm_new_mean"][3] > f["lm_new_mean"][2]  # "credo you of" surprises the model
    assert f["new_frac"][2] == 0 and f["cos"][2] > 0.95


def test_meaning_filter_is_a_flag_of_augment():
    import typer

    from culturellm.augment.config import AugmentConfig
    from culturellm.cli import app

    cmd = typer.main.get_command(app).commands["augment"]  # type: ignore[attr-defined]
    have = {o for p in cmd.params for o in p.opts}
    assert {"--meaning-filter", "--verifier-threshold"} <= have
    # the default gate for generated and imported data alike (issue #30; measured in docs/augmentation.md)
    assert AugmentConfig().meaning_filter == "verifier" and AugmentConfig().import_filter == "verifier"
    assert AugmentConfig(meaning_filter="verifier").fingerprint()["meaning_filter"] == "verifier"
