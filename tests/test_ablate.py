"""`culturellm ablate` at smoke size: a tiny random Llama (the bundled tokenizer), an augmented set with
seeds, paraphrases and synonym variants written here, two training steps per set; checks the sets share
one split and the table, rows and plot are written."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from culturellm.cli import app
from culturellm.jsonio import read_jsonl, write_jsonl
from culturellm.wvs import load_questions


def _augmented(path: Path) -> Path:
    rows = []
    for q in load_questions()[:8]:
        rows.append({"id": f"{q.id}-s", "question_id": q.id, "step": "seed", "text": q.text})
        for i in range(2):
            rows.append(
                {"id": f"{q.id}-p{i}", "question_id": q.id, "step": "paraphrase", "text": f"{q.text} ({i})"}
            )
            rows.append(
                {"id": f"{q.id}-y{i}", "question_id": q.id, "step": "synonym", "text": f"{q.text} [{i}]"}
            )
    write_jsonl(path, rows)
    return path


def test_ablate_smoke_writes_table_rows_and_plot(tiny_base, tmp_path):
    aug = _augmented(tmp_path / "augmented.jsonl")
    out = tmp_path / "abl"
    args = ["ablate", "--augmented", str(aug), "--culture", "arabic", "--out", str(out), "--base", tiny_base,
            "--preset", "smoke", "--max-steps", "2", "--holdout-questions", "2", "--holdout-variants", "0.3",
            "--sizes", "5,1000", "--no-progress"]  # fmt: skip
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    rows = read_jsonl(out / "ablation.jsonl")
    assert [x["set"] for x in rows] == ["base", "seeds", "+paraphrases", "+synonyms", "all, 5 records"]
    n = [x["records"] for x in rows[1:]]
    assert n[0] < n[1] < n[2] and n[3] == 5  # seeds < + paraphrases < + synonyms; a 5-record subsample
    for x in rows:
        assert 0.0 <= x["paraphrase_agreement"] <= 1.0 and 0.0 <= x["paraphrase_1_jsd"] <= 1.0
        assert x["n_paraphrases"] == rows[0]["n_paraphrases"] > 0  # one split for every set
    table = (out / "ablation.md").read_text()
    assert f"| +synonyms | {n[2]} |" in table
    assert (out / "ablation.png").stat().st_size > 1000
    splits = {json.dumps(json.loads(p.read_text())["split"]) for p in (out / "data").glob("*.manifest.json")}
    assert len(splits) == 1
    trained = json.loads((out / "models" / "set0" / "finetune.json").read_text())
    again = CliRunner().invoke(app, args)  # resumes: nothing retrained
    assert again.exit_code == 0 and read_jsonl(out / "ablation.jsonl") == rows
    assert json.loads((out / "models" / "set0" / "finetune.json").read_text()) == trained
    # another target in the same --out: the rows are keyed by their options, so every set retrains
    other = CliRunner().invoke(app, [*args, "--target", "majority"])
    assert other.exit_code == 0, other.output
    new = read_jsonl(out / "ablation.jsonl")
    assert [x["set"] for x in new] == [x["set"] for x in rows]
    assert new[0] == rows[0]  # the base model's row does not depend on the target: reused
    assert all(a["key"] != b["key"] for a, b in zip(new[1:], rows[1:], strict=True))
    retrained = json.loads((out / "models" / "set0" / "finetune.json").read_text())
    assert retrained["data_sha256"] != trained["data_sha256"]
    # a fine-tuning option changed (--lr): every set retrains on the same data; the base row is reused
    lr = CliRunner().invoke(app, [*args, "--target", "majority", "--lr", "0.001"])
    assert lr.exit_code == 0, lr.output
    third = read_jsonl(out / "ablation.jsonl")
    assert third[0] == new[0] and all(a["key"] != b["key"] for a, b in zip(third[1:], new[1:], strict=True))
    relr = json.loads((out / "models" / "set0" / "finetune.json").read_text())
    assert relr["data_sha256"] == retrained["data_sha256"] and relr != retrained


def test_bare_ablate_holds_out_with_its_preset(tmp_path, cli):
    """DatasetConfig's defaults hold nothing out; ablate's own preset (ablate.SPLIT: 10 questions, 30%
    of the wordings) sits beneath --config and the flags, so the command without split flags has a
    split. (A remote base then stops it at fine-tuning, with one line.)"""
    from culturellm.ablate import SPLIT

    rows = []
    for q in load_questions()[:14]:
        rows.append({"id": f"{q.id}-s", "question_id": q.id, "step": "seed", "text": q.text})
        rows += [{"id": f"{q.id}-p{i}", "question_id": q.id, "step": "paraphrase", "text": f"{q.text} ({i})"}
                 for i in range(3)]  # fmt: skip
    aug = tmp_path / "aug.jsonl"
    write_jsonl(aug, rows)
    out = tmp_path / "abl"
    p = cli("ablate", "-a", str(aug), "-o", str(out), "--base", "fake:x", "--no-progress")
    assert p.code == 2 and "fine-tune it with --backend openai" in p.err and "Traceback" not in p.err
    counts = json.loads((out / "data" / "full.manifest.json").read_text())["counts"]
    assert counts["heldout_questions"] == SPLIT["holdout_questions"] == 10 and counts["heldout_variants"] > 0
    assert read_jsonl(out / "ablation.jsonl")[0]["set"] == "base"
    toml = tmp_path / "run.toml"
    toml.write_text("[dataset]\nholdout_questions = 3\n", encoding="utf-8")  # the TOML over the preset
    p = cli("ablate", "-a", str(aug), "-o", str(tmp_path / "b"), "--base", "fake:x", "--config", str(toml))
    counts = json.loads((tmp_path / "b" / "data" / "full.manifest.json").read_text())["counts"]
    assert counts["heldout_questions"] == 3 and counts["heldout_variants"] > 0
