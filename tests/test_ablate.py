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
