"""Fuzz and fault suite (issue #14): hypothesis-generated WVS files, task registries and task files,
run configs and augmentation state files, fed to the real CLI in a sandbox directory.

For every input: exit code 0 or 2, a 2 is exactly one `error:` line (no traceback), no file is created
outside the command's output roots, no pre-existing file changes. Bounded (few examples each, no
deadline surprises); the counts are printed at the end of the module:
    fuzz: N inputs tried, A accepted, E clear errors, 0 crashes, 0 files written outside roots, ...

Adding a case: build inputs in a sandbox, `snapshot` it, run the command with `run_cli`, snapshot
again and call `hostile.check_case` (HTTP-reply faults from a fault-injecting server plug in the same way).
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from pathlib import Path

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hostile import STATS, check_case, run_cli, snapshot, user_tasks

SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,  # the same inputs in every CI run: a failure is reproducible
)
NASTY = ["../../X", "..", "/etc/passwd", "[/x]", ":100:", "[bold]", "é", "", " ", "\u2028", "NUL\x00"]


@pytest.fixture(scope="module", autouse=True)
def _report_counts(request):
    yield
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():
        print("\n" + STATS.line(), flush=True)
    assert STATS.crashes == 0 and STATS.written_outside == 0 and STATS.preexisting_changed == 0


@pytest.fixture
def sandbox_cli(monkeypatch, capsys):
    """run(root, *args): the CLI with CULTURELLM_HOME = root/home and the working directory = root."""

    def run(root: Path, *args: str):
        monkeypatch.setenv("CULTURELLM_HOME", str(root / "home"))
        monkeypatch.delenv("CULTURELLM_CACHE_DIR", raising=False)
        cwd = os.getcwd()
        os.chdir(root)
        try:
            return run_cli(monkeypatch, capsys, *args)
        finally:
            os.chdir(cwd)  # the sandbox is deleted after each example

    return run


# --- WVS microdata files ------------------------------------------------------------------------

COLUMNS = ["B_COUNTRY_ALPHA", "B_COUNTRY", "W_WEIGHT", "Q27", "Q28", "Q122", "q27", "Q999", "[/x]", ""]
CELL = st.one_of(
    st.integers(-10, 12),
    st.sampled_from([1e309, -1e309, float("nan"), 0.5, -0.0, 1e6, 2.5e7]),
    st.sampled_from(["IRQ", "NGA", "jor", "Agree", "1e309", "-1", "368", *NASTY]),
    st.text(max_size=4),
)


@st.composite
def wvs_file(draw) -> tuple[str, bytes]:
    kind = draw(st.sampled_from(["csv", "csv", "csv", "raw"]))
    if kind == "raw":
        suffix = draw(st.sampled_from([".csv", ".sav", ".dta", ".zip", ".csv.gz"]))
        return suffix, draw(st.binary(max_size=64))
    header = draw(st.lists(st.sampled_from(COLUMNS), min_size=1, max_size=5))
    rows = draw(st.lists(st.lists(CELL, min_size=len(header), max_size=len(header)), max_size=5))
    sep = draw(st.sampled_from([",", ";"]))
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=sep)
    w.writerow(header)
    w.writerows(rows)
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "latin-1", "utf-16"]))
    return ".csv", buf.getvalue().encode(encoding, errors="replace")


@SETTINGS
@given(files=st.lists(wvs_file(), min_size=1, max_size=2), countries=st.sampled_from([[], ["NGA"], ["../X"]]))
def test_fuzz_wvs_import(sandbox_cli, files, countries):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        inputs = []
        for i, (suffix, data) in enumerate(files):
            p = root / "in" / f"f{i}{suffix}"
            p.parent.mkdir(exist_ok=True)
            p.write_bytes(data)
            inputs.append(str(p))
        extra = ["--countries", ",".join(countries)] if countries else []
        before = snapshot(root)
        res = sandbox_cli(root, "wvs", "import", *inputs, *extra, "--no-progress")
        after = snapshot(root)
        check_case(res, before, after, allowed=("home/",), protected=tuple(before))
        if res.code == 2:  # nothing half-imported
            assert not (root / "home" / "data" / "wvs_answers.jsonl").exists()
        else:  # what was imported is usable by every later command
            for args in (["cultures", "--all", "--json"], ["seeds", "--culture", "NGA", "--json"]):
                follow = sandbox_cli(root, *args)
                check_case(follow, after, snapshot(root), allowed=("home/",), protected=tuple(after))


# --- task registries ----------------------------------------------------------------------------

NAME = st.one_of(st.sampled_from(["arabic/mine", "mine", "arabic/a.b-c_d", *NASTY]), st.text(max_size=8))
PATH = st.one_of(
    st.sampled_from(["Arabic/mine.jsonl", "../x.jsonl", "/abs.jsonl", "a/../../b", "~/x", "C:\\x", *NASTY]),
    st.text(max_size=8),
)


@st.composite
def task_entry(draw) -> dict:
    entry = {
        "name": draw(NAME),
        "culture": draw(st.sampled_from(["arabic", "ARABIC", "../x", "[/x]", ""])),
        "type": draw(st.sampled_from(["offensive", "hate", "weird"])),
        "path": draw(PATH),
        "text_fields": draw(st.sampled_from([["tweet"], "tweet", [], [3]])),
        "labels": draw(
            st.sampled_from(
                [
                    {"labels": {"OFF": "offensive", "NOT": "not offensive"}},
                    {"labels": {"A": "same", "B": "same"}},
                    {"labels": {}},
                    "unknown-scheme",
                ]
            )
        ),
    }
    drop = draw(st.sampled_from([None, "name", "path", "labels"]))
    if drop:
        entry.pop(drop)
    return entry


@SETTINGS
@given(entries=st.lists(task_entry(), min_size=1, max_size=3), raw=st.sampled_from([None, b"", b"\xff\xfe["]))
def test_fuzz_task_registry(sandbox_cli, entries, raw):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        reg = root / "home" / "data" / "tasks.toml"
        reg.parent.mkdir(parents=True)
        reg.write_bytes(raw if raw is not None else tomli_w.dumps({"tasks": entries}).encode())
        before = snapshot(root)
        res = sandbox_cli(root, "tasks", "--json")
        check_case(res, before, snapshot(root), allowed=("home/",), protected=tuple(before))
        if res.code == 0:
            for line in res.out.splitlines():
                task = json.loads(line)
                assert ".." not in task["name"].split("/") and not Path(task["path"]).is_absolute()


# --- run configurations -------------------------------------------------------------------------

VALUE = st.one_of(
    st.integers(-3, 5),
    st.sampled_from([0.0, 0.5, 1.5, -1.0, 1e309, True, "", "bundled", "hf:/nope", "fake:x", *NASTY]),
    st.lists(st.sampled_from(["arabic", "klingon", "all", "../x", "NGA"]), max_size=2),
)
FIELDS = {
    None: ["name", "preset", "cultures", "seed", "typo"],
    "models": ["base", "augmenter", "embedder", "base_url", "cache"],
    "augment": ["n", "m", "limit_seeds", "t1", "questions", "batch_size"],
    "dataset": ["holdout_questions", "holdout_variants", "target"],
    "finetune": ["max_steps", "epochs", "lr", "batch_size", "preset"],
    "evaluate": ["limit", "data_dir", "tasks", "mode", "calibration"],
    "align": ["min_heldout"],
}


@st.composite
def run_config(draw) -> bytes:
    if draw(st.integers(0, 9)) == 0:
        return draw(st.sampled_from([b"\xff\xfe\x00", b"name = 'caf\xe9'", b"[[[", b"", b"a = 1\na = 2"]))
    doc: dict = {}
    for section, keys in FIELDS.items():
        chosen = draw(st.lists(st.sampled_from(keys), max_size=2, unique=True))
        target = doc if section is None else doc.setdefault(section, {})
        for key in chosen:
            target[key] = draw(VALUE)
    try:
        return tomli_w.dumps(doc).encode()
    except (TypeError, ValueError):  # a value TOML cannot hold (nan, inf): write it by hand
        return b"[augment]\nt1 = nan\n"


@SETTINGS
@given(config=run_config())
def test_fuzz_run_config(sandbox_cli, config):
    """`run CONFIG --check`: validation of a whole run configuration writes nothing, ever."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "c.toml").write_bytes(config)
        before = snapshot(root)
        res = sandbox_cli(root, "run", "c.toml", "--out", "r", "--check")
        check_case(res, before, snapshot(root), allowed=("home/",), protected=tuple(before))
        assert not (root / "r").exists() and not (root / "runs").exists()


# --- augmentation state: damaged, missing or foreign files in a real output directory -------------

AUG = ["--m", "1", "--k", "2", "--retries", "0", "--limit-seeds", "2", "--no-progress"]


@pytest.fixture(scope="module")
def good_augment(tmp_path_factory):
    """A real augmentation output made by the fake: backend (no model weights, deterministic)."""
    from typer.testing import CliRunner

    from culturellm.cli import app

    out = tmp_path_factory.mktemp("fuzz-aug") / "out"
    res = CliRunner().invoke(app, ["augment", "--llm", "fake:fuzz", "--n", "1", *AUG, "--out", str(out)])
    assert res.exit_code == 0, res.output
    return out


FILE_CONTENT = st.one_of(
    st.sampled_from(
        [b"", b"{", b"[]", b"null", b'{"steps": 3}', b'{"fingerprint": {}, "usage": {"x": "y"}}']
    ),
    st.binary(max_size=40),
    st.text(max_size=40).map(str.encode),
)
MUTATION = st.tuples(
    st.sampled_from([".augment-state.json", "manifest.json", "augmented.jsonl", ".culturellm"]),
    st.sampled_from(["delete", "replace", "truncate", "swap-key"]),
    FILE_CONTENT,
)


def _mutate(out: Path, name: str, how: str, content: bytes) -> None:
    p = out / name
    if how == "delete":
        p.unlink(missing_ok=True)
    elif how == "replace":
        p.write_bytes(content)
    elif how == "truncate" and p.exists():
        data = p.read_bytes()
        p.write_bytes(data[: len(data) // 2])
    elif how == "swap-key" and p.exists():
        p.write_bytes(p.read_bytes().replace(b'"state_key": "', b'"state_key": "f00'))


@settings(SETTINGS, max_examples=25)
@given(mutations=st.lists(MUTATION, min_size=1, max_size=3), n=st.sampled_from(["1", "2"]))
def test_fuzz_augment_state(sandbox_cli, good_augment, mutations, n):
    """Whatever happened to the state, records or manifest: exit 0 with a manifest that describes
    exactly the records on disk (same state key, same count), or one clear error and nothing changed."""
    import shutil

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        out = root / "out"
        shutil.copytree(good_augment, out)
        for name, how, content in mutations:
            _mutate(out, name, how, content)
        before = snapshot(root)
        res = sandbox_cli(root, "augment", "--llm", "fake:fuzz", "--n", n, *AUG, "--out", "out")
        after = snapshot(root)
        check_case(res, before, after, allowed=("home/", "out/"), protected=())
        if res.code == 2:
            assert {k: v for k, v in after.items() if k.startswith("out/")} == {
                k: v for k, v in before.items() if k.startswith("out/")
            }
            return
        manifest = json.loads((out / "manifest.json").read_text())
        rows = [json.loads(x) for x in (out / "augmented.jsonl").read_text().splitlines() if x.strip()]
        assert {r.get("state_key") for r in rows if r["step"] == "seed"} == {manifest["state_key"]}
        assert manifest["counts"]["total"] == len(rows) and manifest["config"]["n"] == int(n)


# --- task data files through a real evaluation (fake: backend) -----------------------------------

TEXTS = ["a text", "another text", "x y z", "a text", None, "", *NASTY]
LABELS = ["OFF", "NOT", "OFF", "NOT", "off", 1, 0, None, "", "weird"]
ROW = st.fixed_dictionaries(
    {"tweet": st.one_of(st.sampled_from(TEXTS), st.integers(), st.lists(st.none(), max_size=1))},
    optional={"label": st.sampled_from(LABELS), "other": st.text(max_size=3)},
).map(lambda r: r if "label" in r or not r else r | {"label": "OFF"})


@st.composite
def task_file(draw) -> bytes:
    kind = draw(st.sampled_from(["rows"] * 5 + ["raw"]))
    if kind == "raw":
        return draw(st.binary(max_size=60))
    rows = draw(st.lists(ROW, max_size=6))
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    text += draw(st.sampled_from(["", "", "", "{torn", "[1]\n", "\n\n"]))
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-8", "latin-1", "utf-16"]))
    return text.encode(encoding, errors="replace")


@settings(SETTINGS, max_examples=15)  # each accepted input is a whole evaluation with a report
@given(content=task_file())
def test_fuzz_task_files(sandbox_cli, content):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        labels = {"labels": {"OFF": "offensive", "NOT": "not offensive"}, "map": {"1": "OFF", "0": "NOT"}}
        user_tasks(root / "home", labels=labels)
        data = root / "data" / "Arabic" / "mine.jsonl"
        data.parent.mkdir(parents=True)
        data.write_bytes(content)
        before = snapshot(root)
        args = ["evaluate", "--model", "fake:f", "--culture", "arabic", "--task", "mine", "--no-progress"]
        res = sandbox_cli(root, *args, "--data-dir", "data", "--out", "out")
        check_case(res, before, snapshot(root), allowed=("home/", "out/"), protected=tuple(before))
        if res.code == 2:
            assert not (root / "out").exists()


# --- issue #20: release files for `augment import` -------------------------------------------------

QID = st.one_of(
    st.sampled_from(["27", "Q27", 27, "²", "٢٧", "1" * 5000, "0x1b", -1, 1e309, None, True, [], {}, *NASTY]),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.text(max_size=6),
)
RAW_LINE = st.sampled_from(
    ["[" * 100_000, "{" * 50_000, '{"q_id": ' + "9" * 5000 + "}", "{torn", "[]", "null"]
)


@st.composite
def release_file(draw) -> bytes:
    lines = []
    for _ in range(draw(st.integers(1, 4))):
        if draw(st.booleans()):
            lines.append(draw(RAW_LINE))
        else:
            row = {
                "q_id": draw(QID),
                "q_content": draw(st.one_of(st.sampled_from(NASTY), st.text(max_size=20))),
            }
            lines.append(json.dumps(row, ensure_ascii=False, allow_nan=True))
    text = "\n".join(lines) + "\n"
    return text.encode(draw(st.sampled_from(["utf-8", "utf-8", "latin-1", "utf-16"])), errors="replace")


@pytest.mark.slow  # its augment / augment import runs load the bundled embedder
@settings(SETTINGS, max_examples=25)
@given(content=release_file(), t1=st.sampled_from([None, "0.8", "nan", "inf", "-5", "1e309"]))
def test_fuzz_import_release_files(sandbox_cli, content, t1):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "rel.jsonl").write_bytes(content)
        before = snapshot(root)
        extra = ["--t1", t1] if t1 else []
        res = sandbox_cli(root, "augment", "import", "rel.jsonl", "--out", "out", *extra)
        check_case(res, before, snapshot(root), allowed=("home/", "out/"), protected=tuple(before))


# --- issue #20: result rows for `report` -----------------------------------------------------------

NUMBER = st.one_of(
    st.sampled_from(
        [0.5, 0, 1, float("nan"), float("inf"), -float("inf"), 1e309, -5, 1.5, "NaN", "0.5", None]
    ),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
)


@settings(SETTINGS, max_examples=30)
@given(
    rows=st.lists(
        st.fixed_dictionaries(
            {
                "task": st.sampled_from(["arabic/spam_detect", "x", *NASTY]),
                "model": st.sampled_from(["m", *NASTY]),
            },
            optional={
                "macro_f1": NUMBER,
                "n": NUMBER,
                "accuracy": NUMBER,
                "baselines": st.dictionaries(
                    st.sampled_from(["random", "majority", "[/x]"]), NUMBER, max_size=2
                ),
            },
        ),
        min_size=1,
        max_size=3,
    )
)
def test_fuzz_report_rows(sandbox_cli, rows):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        text = "".join(json.dumps(r, allow_nan=True) + "\n" for r in rows)
        (root / "res.jsonl").write_text(text, encoding="utf-8")
        before = snapshot(root)
        res = sandbox_cli(root, "report", "res.jsonl", "--out", "out")
        check_case(res, before, snapshot(root), allowed=("home/", "out/"), protected=tuple(before))


# --- issue #20: output directories holding user files and links out of them -----------------------

ENTRY_NAMES = ["results.jsonl", "report.md", "plots", "predictions", "align.jsonl", "augmented.jsonl"]
ENTRY_NAMES += ["manifest.json", ".augment-state.json", "train.jsonl", "train.manifest.json", "notes.txt"]
ENTRY = st.tuples(st.sampled_from(ENTRY_NAMES), st.sampled_from(["file", "link-file", "link-dir"]))
MARKER = st.sampled_from([None, '{"kind": "report", "version": "0", "files": []}', "garbage", "[" * 5000])
WRITERS = {
    "report": lambda: ["report", "res.jsonl", "--out", "out"],
    "import": lambda: ["augment", "import", "rel.jsonl", "--out", "out"],
    "dataset": lambda: ["dataset", "-c", "arabic", "-a", "aug.jsonl", "--out", "out/train.jsonl"],
    "align": lambda: ["align", "--model", "fake:a", "--model", "fake:b", "-c", "arabic", "--out", "out",
                      "--no-progress"],
}  # fmt: skip


def _user_tree(root: Path, entries: list[tuple[str, str]], marker: str | None) -> None:
    out, outside = root / "out", root / "outside"
    out.mkdir()
    (outside / "dir").mkdir(parents=True)
    (outside / "file").write_text("a user's file outside the output")
    (outside / "dir" / "inner").write_text("a user's file in a directory outside")
    for name, how in entries:
        p = out / name
        if p.exists() or p.is_symlink():
            continue
        if how == "file":
            p.write_text(f"the user's own {name}")
        else:
            p.symlink_to(outside / ("file" if how == "link-file" else "dir"))
    if marker is not None:
        (out / ".culturellm").write_text(marker)


@pytest.mark.slow  # its augment / augment import runs load the bundled embedder
@settings(SETTINGS, max_examples=30)
@given(
    command=st.sampled_from(sorted(WRITERS)),
    entries=st.lists(ENTRY, max_size=4),
    marker=MARKER,
)
def test_fuzz_output_trees(sandbox_cli, command, entries, marker):
    """Whatever the user keeps in the output directory (files with our names, links out of it, a
    damaged marker): no user byte changes and nothing is written outside the output root."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "res.jsonl").write_text(
            json.dumps({"task": "arabic/x", "model": "m", "macro_f1": 0.5}) + "\n"
        )
        (root / "rel.jsonl").write_text(
            json.dumps({"q_id": "27", "q_content": "Making my parents proud"}) + "\n"
        )
        seed = {"id": "Q27-s", "question_id": "Q27", "step": "seed", "text": "a seed", "parent": None}
        (root / "aug.jsonl").write_text(json.dumps(seed) + "\n")
        _user_tree(root, entries, marker)
        links = [p for p in (root / "out").iterdir() if p.is_symlink()]
        before = snapshot(root)
        res = sandbox_cli(root, *WRITERS[command]())
        ledger = marker is not None and marker.startswith("{")  # a valid marker records what we write
        protected = tuple(p for p in before if not (ledger and p == "out/.culturellm"))
        check_case(res, before, snapshot(root), allowed=("home/", "out/"), protected=protected)
        assert all(p.is_symlink() for p in links), "a user's link was replaced"


# --- issue #20: names as Rich markup in `review --stats`, bytes on `chat -` -------------------------


@settings(SETTINGS, max_examples=15)
@given(step=st.one_of(st.sampled_from(NASTY), st.text(max_size=8)), reviewer=st.sampled_from([*NASTY, "ann"]))
def test_fuzz_review_stats_names(sandbox_cli, step, reviewer):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        d = root / "a[" / "x]"
        d.mkdir(parents=True)
        rows = [{"id": "s", "question_id": "Q27", "step": "seed", "text": "t", "parent": None},
                {"id": "p", "question_id": "Q27", "step": step, "text": "u", "parent": "s"}]  # fmt: skip
        (d / "augmented.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        (d / "reviews.jsonl").write_text(
            json.dumps({"reviewer": reviewer, "id": "p", "rating": "same"}) + "\n"
        )
        before = snapshot(root)
        res = sandbox_cli(root, "review", "a[/x]", "--stats")
        check_case(res, before, snapshot(root), allowed=("home/",), protected=tuple(before))


@settings(SETTINGS, max_examples=15)
@given(data=st.one_of(st.binary(max_size=30), st.text(max_size=20).map(str.encode)))
def test_fuzz_chat_stdin(sandbox_cli, monkeypatch, data):
    import sys

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), errors="surrogateescape"))
        res = sandbox_cli(root, "chat", "-", "--model", "fake:x", "--no-progress")
        check_case(res, {}, snapshot(root), allowed=("home/",))
