"""`culturellm run` with `[augment] import_file`: the release's rewordings imported (one release file
kept by `import_source`, filtered by the named `import_filter`) instead of generated; the experiment
configs of issue 23 load. Tiny fixtures only (never ../shared)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from culturellm.augment.config import AugmentConfig
from culturellm.cli import app
from culturellm.config import load_config
from culturellm.errors import DataError, UnknownNameError

SEED27 = "One of my main goals in life has been to make my parents proud"
SEED28 = "When a mother works for pay, the children suffer"
POOL = [
    {"source": "new_WVQ_1000.jsonl", "q_id": "27", "seed": SEED27,
     "candidate": "A main goal of my life has been making my parents proud"},
    {"source": "new_WVQ_1000.jsonl", "q_id": "27", "seed": SEED27,
     "candidate": "Making my parents proud has been one of my main life goals"},
    {"source": "new_WVQ_1000.jsonl", "q_id": "28", "seed": SEED28,
     "candidate": "When mothers work for pay, their children suffer"},
    {"source": "new_WVQ_1000.jsonl", "q_id": "28", "seed": SEED28,
     "candidate": "When fathers work for pay, the children suffer"},  # opposed words: a meaning check
    {"source": "new_WVQ_sentence_only.jsonl", "q_id": "27", "seed": SEED27,
     "candidate": "One of my chief goals in life has been to make my parents proud"},
]  # fmt: skip
ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = ["frontier", "frontier-small", "nine-cultures", "nine-cultures-small"]


def _pool(path: Path) -> Path:
    path.write_text("".join(json.dumps(x) + "\n" for x in POOL), encoding="utf-8")
    return path


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_configs_load(name: str) -> None:
    cfg = load_config(ROOT / "configs" / "experiments" / f"{name}.toml")
    assert cfg.augment.import_source == "new_WVQ_1000" and cfg.augment.import_filter == "verifier"
    assert "new_WVQ_500" not in str(cfg.augment.import_file)
    assert cfg.dataset.holdout_questions > 0 and cfg.dataset.holdout_variants > 0
    if name.startswith("nine"):
        assert len(cfg.cultures) == 9 and {"arabic", "turkish", "bengali"} <= set(cfg.cultures)


def test_run_check_refuses_a_missing_import_file_and_an_unknown_filter(tmp_path: Path) -> None:
    cfg = tmp_path / "run.toml"
    cfg.write_text('[augment]\nimport_file = "nowhere.jsonl"\n', encoding="utf-8")
    r = CliRunner().invoke(app, ["run", str(cfg), "--check", "--out", str(tmp_path / "r")])
    assert isinstance(r.exception, DataError)  # run_app: one line, exit 2
    assert str(r.exception) == "[augment] import_file: nowhere.jsonl not found"
    pool = _pool(tmp_path / "pool.jsonl")
    cfg.write_text(f'[augment]\nimport_file = "{pool}"\nimport_filter = "oracle"\n', encoding="utf-8")
    r = CliRunner().invoke(app, ["run", str(cfg), "--check", "--out", str(tmp_path / "r")])
    assert isinstance(r.exception, UnknownNameError) and "unknown import filter 'oracle'" in str(r.exception)


@pytest.mark.slow
def test_augment_stage_imports_one_source_with_the_filter_and_a_plugin(tmp_path: Path, embedder) -> None:
    from culturellm.augment.importer import IMPORT_FILTERS, import_release, register_import_filter
    from culturellm.config import RunConfig
    from culturellm.cultures import get_culture
    from culturellm.jsonio import read_jsonl
    from culturellm.runlayout import RunLayout
    from culturellm.stages import STAGES, Run

    pool = _pool(tmp_path / "pool.jsonl")
    aug = {"import_file": pool, "import_source": "new_WVQ_1000", "limit_seeds": 20, "import_filter": "checks"}
    cfg = RunConfig(augment=aug)
    arabic = [get_culture("arabic")]
    run = Run(cfg, RunLayout(tmp_path / "run"), arabic, ["arabic"], {"questions": "q"}, progress=False)
    stage = next(s for s in STAGES if s.name == "augment")
    res = stage.run(run)
    rows = read_jsonl(run.layout.augmented)
    texts = [r["text"] for r in rows if r["step"] == "imported"]
    assert "When fathers work for pay, the children suffer" not in texts  # the meaning checks
    assert not any("chief goals" in t for t in texts)  # the other release file is not read
    assert len(texts) == 3 and res.counts["other_sources"] == 1
    manifest = json.loads((run.layout.augment_dir / "manifest.json").read_text())
    assert manifest["filter"] == "checks" and manifest["release_file"] == "new_WVQ_1000"
    assert any(r["reason"].startswith("meaning check opposed_words") for r in manifest["rejected"])
    key = stage.key(run, lambda name: "x")
    assert len(key["import_sha256"]) == 64
    stage.run(run)  # again into its own augment directory: allowed, same records
    assert read_jsonl(run.layout.augmented) == rows

    # a verifier plugs in by name: here one that rejects everything about mothers
    register_import_filter("no-mothers", lambda emb, opts: lambda pairs: [
        "verifier: mothers" if "mother" in cand else None for _, cand in pairs])  # fmt: skip
    try:
        only = AugmentConfig(import_source="new_WVQ_1000", import_filter="no-mothers")
        m = import_release(pool, tmp_path / "v", embedder, only)
    finally:
        IMPORT_FILTERS.pop("no-mothers")
    assert m["counts"]["accepted"] == 3 and m["rejection_reasons"] == {"verifier": 1}


@pytest.mark.slow
def test_the_verifier_is_a_built_in_import_filter(tmp_path: Path, embedder) -> None:
    """`import_filter = "verifier"`: each imported rewording is kept exactly when the fitted verifier
    keeps it, and a rejection is counted under the verifier with its first reason."""
    from culturellm.augment.importer import IMPORT_FILTERS, import_release
    from culturellm.meaning.features import load_lm
    from culturellm.meaning.verifier import Verifier

    reversed_ = "When a mother works for pay, the children thrive"  # the opposite claim
    changed = {"source": "new_WVQ_1000.jsonl", "q_id": "28", "seed": SEED28, "candidate": reversed_}
    pool = tmp_path / "pool.jsonl"
    pool.write_text("".join(json.dumps(x) + "\n" for x in [*POOL, changed]), encoding="utf-8")
    m = import_release(
        pool, tmp_path / "v", embedder, AugmentConfig(import_source="new_WVQ_1000", import_filter="verifier")
    )
    pairs = [(x["seed"], x["candidate"]) for x in [*POOL, changed] if x["source"] == "new_WVQ_1000.jsonl"]
    verdicts = Verifier(embedder, load_lm()).verdicts(pairs, top=1)
    opts = AugmentConfig().import_filter_options()
    checked = IMPORT_FILTERS["checks"](embedder, opts)(pairs)  # the lexical checks run first
    kept = {cand for (_, cand), v, w in zip(pairs, verdicts, checked, strict=True) if v.keep and w is None}
    texts = {r["text"] for r in (json.loads(x) for x in (tmp_path / "v" / "augmented.jsonl").open())}
    assert m["filter"] == "verifier" and changed["candidate"] not in kept and len(kept) >= 2
    assert {c for _, c in pairs} & texts == kept
    assert (
        sum(m["rejection_reasons"].values()) == len(pairs) - len(kept)
        and "verifier" in m["rejection_reasons"]
    )
    assert all(r["reason"].startswith(("verifier: ", "meaning check ")) for r in m["rejected"])
