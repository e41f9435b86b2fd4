"""Hostile and careless input (issue #14): one clear line and exit 2 (never a traceback), nothing written
outside the intended directories, no user file replaced, damaged caches and state detected.

Each test names the issue's problem group it covers."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pandas as pd
import pyreadstat
import pytest

from culturellm.errors import CultureLLMError, DataError
from culturellm.stages import STAGES
from hostile import assert_clear_error, changes, snapshot, user_tasks


def _raise(exc: BaseException):
    def boom(*a, **k):
        raise exc

    return boom


# --- 7. the error printer prints text, never markup; unexpected errors are bugs -------------------


def test_error_printer_prints_names_as_text(cli):
    """[7] A culture name holding Rich markup and an emoji code is printed as written."""
    line = assert_clear_error(cli("seeds", "--culture", "[/x]:100:[bold]"), "unknown culture")
    assert "'[/x]:100:[bold]'" in line and "\U0001f4af" not in line


def _validation_error() -> Exception:
    from pydantic import BaseModel, Field, ValidationError

    class M(BaseModel):
        limit: int = Field(gt=0)

    try:
        M(limit=-1)
    except ValidationError as e:
        return e
    raise AssertionError("no error")


@pytest.mark.parametrize(
    ("exc", "needle"),
    [
        (CultureLLMError("two\nlines [/x] :100:"), "two lines [/x] :100:"),
        (PermissionError(13, "Permission denied", "/data/[/x].csv"), "/data/[/x].csv: Permission denied"),
        (UnicodeDecodeError("utf-8", b"\xe9", 0, 1, "invalid continuation byte"), "not valid utf-8"),
        (sqlite3.DatabaseError("database disk image is malformed"), "malformed"),
        (None, "field 'limit': Input should be greater than 0 (got -1)"),
    ],
)
def test_user_errors_become_one_line_and_exit_2(cli, monkeypatch, exc, needle):
    """[7] CultureLLMError, OSError, UnicodeDecodeError, sqlite3 and pydantic errors reaching the CLI."""
    import culturellm.wvs.questions as questions

    monkeypatch.setattr(questions, "load_questions", _raise(exc or _validation_error()))
    assert_clear_error(cli("wvs", "questions"), needle)


def test_unexpected_error_is_a_bug_with_a_logged_traceback(cli, monkeypatch, tmp_path):
    """[7] Anything else: exit 1, a 'please report' line, the traceback in a log file, not on screen."""
    import culturellm.wvs.questions as questions

    monkeypatch.setattr(questions, "load_questions", _raise(ZeroDivisionError("[/x] boom")))
    res = cli("wvs", "questions")
    assert res.code == 1 and "Traceback" not in res.err
    (line,) = res.err_lines
    assert "ZeroDivisionError: [/x] boom" in line and "please report" in line
    (log,) = (tmp_path / "home" / "logs").glob("crash-*.log")
    assert str(log) in line
    text = log.read_text()
    assert "Traceback" in text and "ZeroDivisionError" in text and "command: wvs" in text


# --- 1. names that become paths, data paths that leave their directory --------------------------


@pytest.mark.parametrize(
    ("field", "value", "needle"),
    [
        ("name", "arabic/../../../../tmp/x", "is not a safe name"),
        ("name", "/abs", "is not a safe name"),
        ("culture", "../x", "is not a safe name"),
        ("path", "/etc/passwd", "must be a path relative to the data directory"),
        ("path", "Arabic/../../../secret.jsonl", "must not contain '..'"),
    ],
)
def test_task_registry_refuses_names_and_paths_that_leave_their_directory(
    cli, tmp_path, field, value, needle
):
    """[1] A user tasks.toml entry whose name or data path would escape --out / --data-dir."""
    tasks = user_tasks(tmp_path / "home", **{field: value})
    assert_clear_error(cli("tasks"), str(tasks), needle)


def _wvs_csv(path: Path, rows: list[dict]) -> Path:
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_wvs_import_refuses_a_country_code_that_is_a_path(cli, tmp_path):
    """[1] A WVS country code `../../X` would become a culture whose run files leave the run directory."""
    f = _wvs_csv(tmp_path / "evil.csv", [{"B_COUNTRY_ALPHA": "../../X", "Q27": 1}])
    assert_clear_error(cli("wvs", "import", str(f), "--no-progress"), "evil.csv", "alpha-3", "../../X")
    assert not (tmp_path / "home" / "data" / "wvs_answers.jsonl").exists()


def test_safe_name_rule():
    from culturellm.names import check_inside, is_safe_name

    assert is_safe_name("arabic") and is_safe_name("gpt-4o.mini_2") and is_safe_name("NGA")
    for bad in ("", ".", "..", ".hidden", "a/b", "a\\b", "/x", "a b", "x" * 65, "é", "a\n", None, 3):
        assert not is_safe_name(bad), bad
    assert is_safe_name("arabic/offensive_detect", parts=True)
    assert not is_safe_name("arabic/../x", parts=True) and not is_safe_name("arabic/", parts=True)
    with pytest.raises(DataError, match="outside"):
        check_inside("/tmp/out/../elsewhere", "/tmp/out")


# --- 6. tracebacks from damaged or odd files ----------------------------------------------------


def test_corrupted_response_cache_is_moved_aside_and_rebuilt(cli, tmp_path):
    """[6] A damaged responses.sqlite: every cached command, `cache clear` included, keeps working."""
    cache = tmp_path / "home" / "cache"
    cache.mkdir(parents=True)
    (cache / "responses.sqlite").write_bytes(b"this is not a database" * 100)
    res = cli("cache", "stats", "--json")
    assert res.code == 0, res.err
    assert "damaged cache database" in res.err and "Traceback" not in res.err
    assert json.loads(res.out)["entries"] == 0
    assert len(list(cache.glob("responses.sqlite.corrupt-*"))) == 1
    (cache / "responses.sqlite").write_bytes(b"\0" * 4096)
    res = cli("cache", "clear", "--yes")
    assert res.code == 0 and "deleted 0 entries" in res.out, res.err


def test_corrupted_embedding_cache_is_moved_aside_and_rebuilt(tmp_path, capsys):
    """[6] A damaged embeddings.sqlite (truncated mid-write here) is replaced by an empty store."""
    import numpy as np

    from culturellm.embed import EmbeddingStore

    path = tmp_path / "embeddings.sqlite"
    store = EmbeddingStore(path)
    store.put_many("m", {"k": np.ones(4, dtype=np.float32)})
    store._reset()
    path.write_bytes(path.read_bytes()[:100] + b"garbage" * 500)
    fresh = EmbeddingStore(path)
    assert fresh.get_many("m", ["k"]) == {}
    fresh.put_many("m", {"k": np.ones(4, dtype=np.float32)})
    assert list(fresh.get_many("m", ["k"])) == ["k"]
    assert "damaged cache database" in capsys.readouterr().err


def _task_dir(tmp_path: Path, content: bytes) -> tuple[Path, object]:
    from culturellm.evaluate.tasks import read_tasks

    data = tmp_path / "data"
    (data / "Arabic").mkdir(parents=True)
    (data / "Arabic" / "mine.jsonl").write_bytes(content)
    toml = user_tasks(tmp_path / "reg")
    return data, read_tasks(toml)["arabic/mine"]


def test_task_files_in_latin1_utf16_and_empty(tmp_path):
    """[6] Latin-1 is a clear error naming file and line; UTF-16 with a byte-order mark is read; an empty
    file is a clear error instead of a null macro-F1."""
    from culturellm.evaluate.data import load_task

    rows = [{"tweet": "café offensant", "label": "OFF"}, {"tweet": "bonjour", "label": "NOT"}]
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    data, task = _task_dir(tmp_path / "a", text.encode("latin-1"))
    with pytest.raises(DataError, match=r"mine\.jsonl:1: not UTF-8 text \(byte 0xe9\)"):
        load_task(task, data)
    data, task = _task_dir(tmp_path / "b", text.encode("utf-16"))
    assert [e.text for e in load_task(task, data).examples] == ["café offensant", "bonjour"]
    data, task = _task_dir(tmp_path / "c", b"")
    with pytest.raises(DataError, match="no labelled example"):
        load_task(task, data)


def test_wvs_import_refuses_infinite_weights(cli, tmp_path):
    """[6] Weights of 1e309 (inf) made an OverflowError while writing the aggregates."""
    f = tmp_path / "w.csv"
    f.write_text("B_COUNTRY_ALPHA,W_WEIGHT,Q27\nNGA,1e309,1\nNGA,1,2\n")
    assert_clear_error(cli("wvs", "import", str(f), "--no-progress"), "w.csv", "W_WEIGHT", "row 1")


def test_serve_port_out_of_range(cli):
    """[6] `serve --port -1 / 99999`: a usage error (exit 2) before any model is loaded."""
    for port in ("-1", "99999"):
        res = cli("serve", "--port", port)
        assert res.code == 2 and "Traceback" not in res.err and "--port" in res.err


# --- 8. silently wrong results ------------------------------------------------------------------


def test_duplicate_question_column_is_refused(cli, tmp_path):
    """[8] A second Q27 column was silently ignored (pandas renamed it Q27.1)."""
    f = tmp_path / "dup.csv"
    f.write_text("B_COUNTRY_ALPHA,Q27,Q27\nNGA,1,4\nNGA,1,4\n")
    assert_clear_error(cli("wvs", "import", str(f), "--no-progress"), "dup.csv", "Q27 appears twice")


def test_sav_renamed_csv_is_named_for_what_it_is(cli, tmp_path):
    """[8] A .sav renamed .csv was reported as 'missing column B_COUNTRY_ALPHA'."""
    sav = tmp_path / "x.sav"
    pyreadstat.write_sav(pd.DataFrame({"B_COUNTRY_ALPHA": ["NGA"], "Q27": [1.0]}), sav)
    f = tmp_path / "release.csv"
    f.write_bytes(sav.read_bytes())
    assert_clear_error(cli("wvs", "import", str(f), "--no-progress"), "release.csv", "SPSS .sav file")


def test_null_text_is_skipped_not_scored_as_empty(tmp_path):
    """[8] `"tweet": null` was scored as an empty text; now it is skipped and counted."""
    from culturellm.evaluate.data import load_task

    rows = [{"tweet": None, "label": "OFF"}, {"tweet": "", "label": "OFF"}, {"tweet": "hi", "label": "NOT"}]
    data, task = _task_dir(tmp_path, "".join(json.dumps(r) + "\n" for r in rows).encode())
    td = load_task(task, data)
    assert [e.text for e in td.examples] == ["hi"] and td.skipped_empty == 2


def test_wvs_import_writes_nothing_on_error(cli, tmp_path):
    """No partial import: a bad second file leaves the user's aggregates as they were."""
    good = _wvs_csv(tmp_path / "good.csv", [{"B_COUNTRY_ALPHA": "NGA", "Q27": 1}])
    assert cli("wvs", "import", str(good), "--no-progress").code == 0
    home = tmp_path / "home"
    before = snapshot(home)
    bad = tmp_path / "bad.csv"
    bad.write_text("B_COUNTRY_ALPHA,Q27\nNGA,Agree\n")
    assert_clear_error(cli("wvs", "import", str(good), str(bad), "--no-progress"), "bad.csv")
    assert changes(before, snapshot(home)) == {"created_outside": [], "changed": []}


def test_user_text_in_tables_is_not_markup(cli):
    """[7] A culture's display name from the user is printed as written in every table and message."""
    res = cli("cultures", "add", "mine", "--language", "ar", "--countries", "JOR", "--display", "[/x]:100:")
    assert res.code == 0, res.err
    assert "[/x]:100:" in res.err
    for args in (["cultures"], ["seeds", "--culture", "mine"]):
        res = cli(*args)
        assert res.code == 0 and "[/x]:100:" in res.out, res.err


# --- 1, 2, 6, 8: `culturellm run` validates everything before it writes or pays -----------------


@pytest.fixture
def in_tmp(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_run_with_an_unknown_culture_keeps_the_users_config(cli, in_tmp):
    """[2] `run --culture klingon --out u` replaced u/config.toml before saying 'unknown culture'."""
    (in_tmp / "u").mkdir()
    (in_tmp / "u" / "config.toml").write_text("my own notes\n")
    before = snapshot(in_tmp / "u")
    assert_clear_error(cli("run", "--culture", "klingon", "--out", "u"))
    line = assert_clear_error(cli("run", "--culture", "arabic", "--out", "u"), "was not made by culturellm")
    assert "--force" in line
    assert snapshot(in_tmp / "u") == before


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--name", "../../escape"], "safe name"),  # [1] the run would land outside runs/
        (["--base", "hf:/no/such/model"], "models.base"),  # [8] failed only at fine-tuning
        (["--llm", "nonsense-model"], "models.augmenter"),
        (["--limit", "-1"], "--limit"),  # [6] raw ValidationError
        (["--limit-seeds", "0"], "--limit-seeds"),
        (["--max-steps", "0"], "--max-steps"),
        (["--data-dir", "/no/such/dir"], "data directory not found"),
    ],
)
def test_run_refuses_bad_settings_before_writing_anything(cli, in_tmp, args, needle):
    assert_clear_error(cli("run", "--culture", "arabic", *args), needle)
    assert sorted(p.name for p in in_tmp.iterdir()) in ([], ["home"])  # no runs/, no run directory


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ('name = "x"\n[finetune]\nmax_steps = -3\n', "field 'finetune.max_steps'"),  # [8]
        ('name = "../x"\n', "safe name"),  # [1]
        ('name = "café"\n'.encode("latin-1"), "not UTF-8 text"),  # [6] a config that is not UTF-8
        ('cultures = ["klingon"]\n', "klingon"),
    ],
)
def test_run_config_errors_name_the_file(cli, in_tmp, content, needle):
    path = in_tmp / "c.toml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    assert_clear_error(cli("run", str(path), "--out", "r"), needle)
    assert not (in_tmp / "r").exists()


def test_run_check_validates_and_writes_nothing(cli, in_tmp):
    res = cli("run", "--culture", "arabic", "--out", "r", "--check")
    assert res.code == 0, res.err
    assert 'name = "arabic"' in res.out and not (in_tmp / "r").exists()


@pytest.mark.parametrize("content", ["{torn", "[1, 2]", '{"stages": {"augment": 3}}', '{"stages": []}'])
def test_damaged_run_manifest_is_moved_aside(tmp_path, content):
    """[6] A torn or wrong-shaped manifest.json was a traceback; now a warning and a fresh manifest."""
    from rich.console import Console

    from culturellm.manifest import Manifest
    from culturellm.runlayout import RunLayout

    (tmp_path / "manifest.json").write_text(content)
    out = Console(file=__import__("io").StringIO(), width=300)
    m = Manifest(RunLayout(tmp_path), out)
    assert m.data == {"stages": {}}
    assert (tmp_path / "manifest.json.damaged").read_text() == content
    assert "damaged run manifest" in out.file.getvalue()


# --- 5: the augmentation manifest describes its records, whatever happened to the state file ------

AUG = ["--llm", "fake:aug", "--m", "1", "--k", "2", "--retries", "0", "--limit-seeds", "2", "--no-progress"]


@pytest.fixture
def augmented(cli, tmp_path):
    out = tmp_path / "aug"
    res = cli("augment", *AUG, "--n", "1", "--out", str(out))
    assert res.code == 0, res.err
    return out


def _seed_keys(out: Path) -> set:
    rows = [json.loads(x) for x in (out / "augmented.jsonl").read_text().splitlines()]
    return {r.get("state_key") for r in rows if r["step"] == "seed"}


def test_missing_state_and_other_settings_is_refused(cli, augmented):
    """[5] `cp dir/*` drops the hidden state file; a rerun with another --n exited 0 with a manifest
    claiming the new settings over the old records."""
    (augmented / ".augment-state.json").unlink()
    before = snapshot(augmented)
    assert_clear_error(cli("augment", *AUG, "--n", "2", "--out", str(augmented)), "other settings")
    assert snapshot(augmented) == before
    assert _seed_keys(augmented) == {json.loads((augmented / "manifest.json").read_text())["state_key"]}


@pytest.mark.parametrize("state", [None, "{torn", "[1, 2]", '{"fingerprint": 3, "steps": {"x": "y"}}'])
def test_missing_or_damaged_state_with_same_settings_resumes(cli, augmented, state):
    """[5, 6] Same settings: records kept, counters back from manifest.json; a damaged state file is a
    warning (it was a traceback)."""
    manifest = json.loads((augmented / "manifest.json").read_text())
    records = (augmented / "augmented.jsonl").read_bytes()
    if state is None:
        (augmented / ".augment-state.json").unlink()
    else:
        (augmented / ".augment-state.json").write_text(state)
    res = cli("augment", *AUG, "--n", "1", "--out", str(augmented))
    assert res.code == 0 and "warning:" in res.err, res.err
    again = json.loads((augmented / "manifest.json").read_text())
    assert (augmented / "augmented.jsonl").read_bytes() == records
    assert again["steps"] == manifest["steps"] and again["counts"]["seeds_resumed"] == 2


@pytest.mark.slow  # the --force run augments with the bundled embedder
def test_augment_refuses_a_foreign_output_directory(cli, tmp_path):
    """[2] `augment --out` over a directory holding someone's manifest.json replaced it."""
    out = tmp_path / "theirs"
    out.mkdir()
    (out / "manifest.json").write_text('{"mine": true}')
    assert_clear_error(cli("augment", *AUG, "--n", "1", "--out", str(out)), "--force", "manifest.json")
    assert [p.name for p in out.iterdir()] == ["manifest.json"]
    assert (out / "manifest.json").read_text() == '{"mine": true}'
    res = cli("augment", *AUG, "--n", "1", "--out", str(out), "--force")
    assert res.code == 0, res.err


# --- 2, 6: evaluate and report never write over a user's files ------------------------------------

EVAL = ["--model", "fake:ev", "--culture", "arabic", "--task", "spam_detect", "--limit", "4", "--no-progress"]


def test_evaluate_refuses_a_foreign_directory_and_a_file(cli, tmp_path):
    """[2] `evaluate --out` replaced an existing report.md and plots; [6] --out naming a file failed
    with a traceback after the model ran."""
    theirs = tmp_path / "theirs"
    (theirs / "plots").mkdir(parents=True)
    (theirs / "report.md").write_text("my report")
    before = snapshot(theirs)
    assert_clear_error(cli("evaluate", *EVAL, "--out", str(theirs)), "--force", "report.md")
    assert snapshot(theirs) == before
    (tmp_path / "a-file").write_text("x")
    assert_clear_error(cli("evaluate", *EVAL, "--out", str(tmp_path / "a-file")), "not a directory")
    ours = tmp_path / "ours"
    assert cli("evaluate", *EVAL, "--out", str(ours)).code == 0
    assert_clear_error(cli("report", str(ours), "--out", str(theirs)), "--force")
    assert snapshot(theirs) == before


def test_evaluate_resumes_in_its_own_directory_and_cleans_up_a_failed_start(cli, tmp_path):
    out = tmp_path / "ev"
    assert cli("evaluate", *EVAL, "--out", str(out)).code == 0
    res = cli("evaluate", *EVAL, "--out", str(out))
    assert res.code == 0, res.err
    assert cli("report", str(out), "--out", str(out)).code == 0  # a report into our own output
    assert_clear_error(cli("evaluate", *EVAL[:4], "--task", "nope", "--out", str(tmp_path / "new")))
    assert not (tmp_path / "new").exists()


def test_model_labels_follow_the_safe_name_rule(cli, tmp_path):
    """[1] A --label becomes a directory under OUT/predictions."""
    assert_clear_error(cli("evaluate", *EVAL, "--label", "../../x", "--out", str(tmp_path / "o")), "--label")
    from culturellm.names import path_part

    assert path_part("..") == "_.." and path_part(".hidden") == "_.hidden"
    assert path_part("openai:gpt-4o") == "openai_gpt-4o"


RUN_TOML = """
name = "t"
cultures = ["arabic"]
[augment]
n = 1
m = 1
limit_seeds = 3
[finetune]
max_steps = 2
batch_size = 4
[evaluate]
limit = 4
tasks = ["spam_detect"]
[align]
min_heldout = 1
"""


@pytest.mark.slow
def test_run_claims_its_directory_resumes_and_survives_a_damaged_manifest(cli, tmp_path, tiny_model_dir):
    """A whole run (fake: augmenter, a tiny random base): rerun skips every stage in its own directory,
    a torn manifest.json is moved aside and the stages rerun to the same outputs."""
    base = tiny_model_dir(tmp_path / "tiny")
    (tmp_path / "t.toml").write_text(RUN_TOML)
    args = ["run", str(tmp_path / "t.toml"), "--llm", "fake:run", "--base", base, "--no-progress"]
    out = tmp_path / "r"
    res = cli(*args, "--out", str(out))
    assert res.code == 0, res.err[-3000:]
    assert json.loads((out / ".culturellm").read_text())["kind"] == "run"
    results = (out / "eval" / "arabic" / "results.jsonl").read_text()
    res = cli(*args, "--out", str(out))
    assert res.code == 0 and res.err.count("up to date, skipped") == len(STAGES), res.err
    (out / "manifest.json").write_text('{"stages": {"augment": ')
    res = cli(*args, "--out", str(out))
    assert res.code == 0 and "damaged run manifest" in res.err, res.err
    assert (out / "manifest.json.damaged").exists()
    assert json.loads((out / "manifest.json").read_text())["stages"]["report"]["status"] == "done"
    rows = [json.loads(x) for x in (out / "eval" / "arabic" / "results.jsonl").read_text().splitlines()]
    assert sorted(r["macro_f1"] for r in rows) == sorted(
        json.loads(x)["macro_f1"] for x in results.splitlines()
    )
