"""`culturellm augment import`: a file in the CultureLLM release's augmented format (written here)
becomes our augmented.jsonl with embedder similarities and counted rejections, and `dataset` takes it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from culturellm.jsonio import read_jsonl

SEED27 = "One of my main goals in life has been to make my parents proud"
SEED28 = "When a mother works for pay, the children suffer"
LINES = [
    {"q_id": "27", "q_content": "A main goal of my life has been making my parents proud",
     "ori_content": SEED27, "option": "1. Strongly agree 2. Agree 3. Disagree 4. Strongly disagree"},
    {"q_id": "27", "q_content": "Making my parents proud has been one of my main life goals",
     "ori_content": SEED27, "option": "..."},
    {"q_id": 28, "q_content": "When mothers work for pay, their children suffer",
     "ori_content": SEED28, "option": "..."},
    {"q_id": "28", "q_content": "When mothers work for pay, their children suffer",
     "ori_content": SEED28, "option": "..."},  # duplicate
    {"q_id": "27", "q_content": "The stock market closed higher on Tuesday", "ori_content": SEED27},  # < t1
    {"q_id": "999", "q_content": "Some question", "ori_content": "x"},  # no such seed
    {"q_id": "27", "q_content": "My parents being proud is a main goal", "ori_content": "Taxes are too high"},
    {"q_content": "no id"},
]  # fmt: skip


def _write_release(path: Path) -> None:
    text = "\n".join(json.dumps(x) for x in LINES) + "\n{not json\n"
    path.write_text(text, encoding="utf-8")


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "culturellm.cli", *args], capture_output=True, text=True)


@pytest.mark.slow
def test_import_release_format_then_dataset(tmp_path):
    src = tmp_path / "release.jsonl"
    _write_release(src)
    out = tmp_path / "aug"
    # the structural checks under test; the lexical checks as meaning filter (the default gate rejects
    # these short rewordings: docs/augmentation.md, "A known weakness")
    p = _cli("augment", "import", str(src), "--out", str(out), "--import-filter", "checks")
    assert p.returncode == 0, p.stderr
    assert "3 of 9 lines kept for 2 seed questions; 6 rejected" in p.stdout
    rows = read_jsonl(out / "augmented.jsonl")
    assert [r["step"] for r in rows] == ["seed", "imported", "imported", "seed", "imported"]
    assert rows[0]["text"] == SEED27 and rows[0]["group_size"] == 3
    assert all(0.8 <= r["similarity"] <= 1.0 for r in rows)
    assert rows[1]["source"] == "release.jsonl:1" and rows[1]["parent"] == rows[0]["id"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"] == {"lines": 9, "seeds": 2, "accepted": 3, "rejected": 6}
    reasons = {r["line"]: r["reason"] for r in manifest["rejected"]}
    assert reasons[4] == "duplicate text"
    assert reasons[5].startswith("below t1")
    assert reasons[6] == "no seed question Q999"
    assert reasons[7].startswith("ori_content is not seed Q27")
    assert reasons[8].startswith("q_id None")
    assert reasons[9] == "not a JSON object"

    data = tmp_path / "train.jsonl"
    p = _cli(
        "dataset", "--culture", "arabic", "--augmented", str(out / "augmented.jsonl"), "--out", str(data)
    )
    assert p.returncode == 0, p.stderr
    recs = read_jsonl(data)
    assert len(recs) == 5 and "making my parents proud" in recs[1]["messages"][1]["content"]


def test_import_errors_are_one_line_and_keep_user_files(cli, tmp_path):
    p = cli("augment", "import", str(tmp_path / "missing.jsonl"), "--out", str(tmp_path / "o"))
    assert p.code == 2 and "missing.jsonl: file not found" in p.err and "Traceback" not in p.err
    ours = tmp_path / "ours"
    ours.mkdir()
    (ours / "augmented.jsonl").write_text('{"question_id": "Q27", "text": "x"}\n')
    src = tmp_path / "release.jsonl"
    _write_release(src)
    p = cli("augment", "import", str(src), "--out", str(ours))
    assert p.code == 2 and "was not made by culturellm augment-import" in p.err
    assert (ours / "augmented.jsonl").read_text() == '{"question_id": "Q27", "text": "x"}\n'


def test_import_options_come_from_the_augment_config_toml_and_flags_override(cli, tmp_path):
    """`augment import` resolves AugmentConfig (defaults < TOML [augment] < flags): the TOML's
    import_filter and t1 reach it, a flag wins over them, a bad value names the file and field."""
    src = tmp_path / "release.jsonl"
    _write_release(src)
    toml = tmp_path / "run.toml"
    toml.write_text('[augment]\nimport_filter = "oracle"\nt1 = 0.9\n', encoding="utf-8")
    args = ("augment", "import", str(src), "--out", str(tmp_path / "o"), "--config", str(toml))
    p = cli(*args)
    assert p.code == 2 and "unknown import filter 'oracle'" in p.err  # the TOML's filter
    p = cli(*args, "--filter", "sieve")
    assert p.code == 2 and "unknown import filter 'sieve'" in p.err  # the flag wins
    toml.write_text("[augment]\nt1 = 2.0\n", encoding="utf-8")
    p = cli(*args)
    assert p.code == 2 and str(toml) in p.err and "t1" in p.err and "Traceback" not in p.err
    p = cli(*args, "--t1", "1.5")
    assert p.code == 2 and "--t1" in p.err  # the flag's value, named by its flag
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_import_t1_and_filter_from_the_toml_reach_the_import(cli, tmp_path, embedder):
    src = tmp_path / "release.jsonl"
    _write_release(src)
    toml = tmp_path / "run.toml"
    toml.write_text('[augment]\nimport_filter = "none"\nt1 = 0.81\n', encoding="utf-8")
    base = ("augment", "import", str(src), "--config", str(toml))
    assert cli(*base, "--out", str(tmp_path / "a")).code == 0
    m = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert m["t1"] == 0.81 and m["filter"] == "none"
    assert any(r["reason"].endswith("< 0.81") for r in m["rejected"])  # the TOML's t1 was applied
    assert cli(*base, "--out", str(tmp_path / "b"), "--t1", "0.8", "--import-filter", "checks").code == 0
    m = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert m["t1"] == 0.8 and m["filter"] == "checks" and m["counts"]["accepted"] == 3
    assert any(r["reason"].endswith("< 0.8") for r in m["rejected"])
