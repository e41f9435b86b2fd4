"""Files from elsewhere are data, never paths (issue #31, items 1-3), as fuzz cases of the real CLI.

1. A name read from a file (a result row's `culture`) that would leave the output directory is one
   `error:` line naming the file and row, for `report`, `evaluate -o DIR` (the row already in
   DIR/results.jsonl) and `run` on a copied run directory: nothing is written outside the output
   directory and the user's file there is byte-for-byte unchanged.
2. `push` uploads regular files inside the model directory only: a link that leaves it is refused.
3. Only regular files are read or written as files: a device, a FIFO or a socket as an input or an
   output is one line (never a hang, never a read to the end of /dev/zero); an input over its kind's
   size limit is refused before it is read.

Each case runs in its own sandbox under a time limit (pytest-timeout: a hang fails the case) and is
counted through `hostile.check_case`; the counts are printed at the end of the module:
    fuzz (files): N inputs tried, A accepted, E clear errors, 0 crashes, 0 files written outside ...
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hostile import FuzzStats, assert_clear_error, check_case, run_cli, snapshot

STATS = FuzzStats()
SETTINGS = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,  # the same inputs in every run: a failure is reproducible
)
NASTY = ["../../X", "..", "/etc/passwd", "[/x]", ":100:", "[bold]", "é", "", " ", "\u2028", "NUL\x00"]
LIMIT = pytest.mark.timeout(120)  # per case: a hang (a FIFO opened, /dev/zero read) fails it
EVAL = ["--model", "fake:x", "--culture", "arabic", "--task", "spam_detect", "--limit", "4", "--no-progress"]
VICTIM = b"\x89PNG the user's own picture, not ours"
# `out/rep/plots/f1_<culture>.png` with the first one is `elsewhere/victim.png` (issue #31)
TRAVERSAL = [
    "x/../../../../elsewhere/victim",
    "../../../elsewhere/victim",
    "/abs/elsewhere/victim",
    "..",
    ".hidden",
    "a/b",
    "",
    "x\\..\\y",
    ["list"],
    7,
]


@pytest.fixture(scope="module", autouse=True)
def _report_counts(request):
    yield
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():
        print("\n" + STATS.line().replace("fuzz:", "fuzz (files):"), flush=True)
    assert STATS.crashes == 0 and STATS.written_outside == 0 and STATS.preexisting_changed == 0


@pytest.fixture
def sandbox(tmp_path, monkeypatch, capsys):
    """(root, run): a sandbox directory holding the user's `elsewhere/victim.png`; run(*ARGS) is the CLI
    with CULTURELLM_HOME = root/home and the working directory = root."""
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "victim.png").write_bytes(VICTIM)
    monkeypatch.setenv("CULTURELLM_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CULTURELLM_CACHE_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path, lambda *args: run_cli(monkeypatch, capsys, *args)


def _case(root: Path, run, *args: str, allowed=("home/", "out/"), protect_all: bool = True):
    """Run one case in the sandbox and count it: no crash, nothing created outside `allowed`, no
    pre-existing file changed (all of them protected unless `protect_all` is False)."""
    before = snapshot(root)
    res = run(*args)
    check_case(res, before, snapshot(root), allowed, tuple(before) if protect_all else (), stats=STATS)
    assert (root / "elsewhere" / "victim.png").read_bytes() == VICTIM
    return res


def _row(culture: object, task: str = "arabic/x") -> str:
    return json.dumps({"task": task, "model": "m", "macro_f1": 0.5, "culture": culture}) + "\n"


# --- 1. names from data go through the one name rule ----------------------------------------------


@LIMIT
@pytest.mark.parametrize("culture", TRAVERSAL, ids=repr)
def test_report_refuses_a_culture_that_is_a_path(sandbox, culture):
    root, run = sandbox
    (root / "in").mkdir()
    (root / "in" / "res.jsonl").write_text(_row("arabic") + "\n" + _row(culture), encoding="utf-8")
    res = _case(root, run, "report", "in/res.jsonl", "-o", "out/rep")
    assert_clear_error(res, "in/res.jsonl:3", "'culture'", "not a safe name")
    assert not list(root.glob("out/rep/plots/*"))


@LIMIT
def test_report_accepts_safe_cultures(sandbox):
    root, run = sandbox
    (root / "res.jsonl").write_text(_row("arabic") + _row("my-culture_2.b", "y"), encoding="utf-8")
    res = _case(root, run, "report", "res.jsonl", "-o", "out/rep")
    assert res.code == 0, res.err
    assert {p.name for p in (root / "out" / "rep" / "plots").glob("f1_*")} == {
        "f1_arabic.png",
        "f1_my-culture_2.b.png",
    }


GENERAL_ROW = {"model": "m", "task": "hellaswag", "metric": "acc", "filter": "none", "value": 0.5}


@LIMIT
@pytest.mark.parametrize(
    "change",
    [{"model": ["../x"]}, {"task": None}, {"metric": 3}, {"value": "0.5"}, {"value": True}, {"stderr": {}}],
    ids=repr,
)
def test_report_refuses_damaged_general_rows(sandbox, change):
    """general.jsonl beside a results file (a copied evaluation) is read as data too."""
    root, run = sandbox
    (root / "in").mkdir()
    (root / "in" / "results.jsonl").write_text(_row("arabic"), encoding="utf-8")
    rows = [GENERAL_ROW, GENERAL_ROW | {"task": "arc"} | change]
    (root / "in" / "general.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    res = _case(root, run, "report", "in", "-o", "out")
    assert_clear_error(res, "general.jsonl:2", f"'{next(iter(change))}'")


CULTURE = st.one_of(
    st.sampled_from(["arabic", "Arabic", "a.b", "a" * 65, *TRAVERSAL, *NASTY, None, {}]),
    st.text(max_size=10),
)


@LIMIT
@settings(SETTINGS, max_examples=30)
@given(cultures=st.lists(CULTURE, min_size=1, max_size=3))
def test_fuzz_result_cultures(sandbox, cultures):
    """Generated cultures (text, hostile names, other JSON types) in result rows: a report of the safe
    ones, one line naming the file and row of the first unsafe one; never a file outside `out/`."""
    import tempfile

    from culturellm.names import is_safe_name

    root, run = sandbox
    with tempfile.TemporaryDirectory(dir=root) as tmp:  # a fresh place per example, inside the sandbox
        here = Path(tmp)
        (here / "res.jsonl").write_text("".join(_row(c, f"t{i}") for i, c in enumerate(cultures)))
        rel = here.relative_to(root)
        res = _case(root, run, "report", f"{rel}/res.jsonl", "-o", f"{rel}/out", allowed=(f"{rel}/out/",))
        bad = [i for i, c in enumerate(cultures, 1) if not is_safe_name(c)]
        if bad:
            assert_clear_error(res, f"res.jsonl:{bad[0]}", "'culture'")
        else:
            assert res.code == 0, res.err
            assert {p.name for p in (here / "out" / "plots").glob("f1_*")} == {
                f"f1_{c}.png" for c in cultures
            }


@LIMIT
@pytest.mark.parametrize("culture", TRAVERSAL[:4], ids=repr)
def test_evaluate_refuses_a_traversal_row_in_its_results_before_any_work(sandbox, culture):
    """`evaluate -o DIR` where DIR/results.jsonl (ours, shared or copied) holds a hostile row."""
    root, run = sandbox
    assert run("evaluate", *EVAL, "-o", "out").code == 0
    results = root / "out" / "results.jsonl"
    row = json.loads(results.read_text().splitlines()[0])
    with open(results, "a", encoding="utf-8") as f:
        f.write(json.dumps(row | {"model": "other", "culture": culture}) + "\n")
    res = _case(root, run, "evaluate", *EVAL, "-o", "out")
    assert_clear_error(res, "out/results.jsonl: row 2", "'culture'")


@pytest.mark.slow  # a whole run: the fake: augmenter and a tiny random base fine-tuned for one step
@pytest.mark.timeout(600)
def test_run_on_a_copied_run_directory_with_a_traversal_row(sandbox, tiny_model_dir):
    root, run = sandbox
    base = tiny_model_dir(root / "tiny")
    (root / "t.toml").write_text(RUN_TOML, encoding="utf-8")
    args = ["run", "t.toml", "--llm", "fake:run", "--base", base, "--no-progress"]
    assert run(*args, "--out", "first").code == 0
    shutil.copytree(root / "first", root / "out")  # a run directory mailed from another lab
    results = root / "out" / "eval" / "arabic" / "results.jsonl"
    row = json.loads(results.read_text().splitlines()[0])
    with open(results, "a", encoding="utf-8") as f:
        f.write(json.dumps(row | {"model": "other", "culture": TRAVERSAL[0]}) + "\n")
    res = _case(root, run, *args, "--out", "out", protect_all=False)
    assert_clear_error(res, "results.jsonl", "'culture'", "not a safe name")
    assert [p.name for p in (root / "elsewhere").iterdir()] == ["victim.png"]
    assert not (root / "out" / "plots" / "f1_x").exists()


RUN_TOML = """
name = "t"
cultures = ["arabic"]
[augment]
n = 1
m = 1
limit_seeds = 3
[finetune]
max_steps = 1
batch_size = 4
[evaluate]
limit = 4
tasks = ["spam_detect"]
[align]
min_heldout = 1
"""


# --- 2. push uploads regular files inside the directory only ---------------------------------------

MODELREF = {"format": "culturellm.modelref/1", "kind": "peft-adapter", "base": "bundled", "path": "."}
SECRET = "a user's private file outside the model directory\n"


def _model_dir(root: Path) -> Path:
    """A culture model directory as `finetune` leaves it (the files a push reads and lists)."""
    m = root / "out" / "model"
    m.mkdir(parents=True)
    (m / "culturellm.json").write_text(json.dumps(MODELREF), encoding="utf-8")
    (m / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 4}), encoding="utf-8")
    (root / "elsewhere" / "secret.txt").write_text(SECRET, encoding="utf-8")
    return m


@LIMIT
@pytest.mark.parametrize(
    "name", ["tokenizer_config.json", "tokenizer.json", "adapter_model.safetensors", "adapter_config.json"]
)
@pytest.mark.parametrize("target", ["file", "dir", "relative"])
def test_push_refuses_a_link_out_of_the_model_directory(sandbox, name, target):
    root, run = sandbox
    m = _model_dir(root)
    (m / name).unlink(missing_ok=True)
    dest = {"file": root / "elsewhere" / "secret.txt", "dir": root / "elsewhere"}.get(target)
    (m / name).symlink_to(dest if dest is not None else Path("..") / ".." / "elsewhere" / "secret.txt")
    res = _case(root, run, "push", "out/model", "--repo", "org/name", "--dry-run", allowed=("home/",))
    assert_clear_error(res, f"out/model/{name}", "symbolic link", "outside")
    assert "secret" not in res.out and SECRET.strip() not in res.out + res.err


@LIMIT
def test_push_lists_a_link_that_stays_inside_and_refuses_special_files(sandbox):
    import os

    root, run = sandbox
    m = _model_dir(root)
    (m / "tokenizer.json").write_text("{}", encoding="utf-8")
    (m / "tokenizer_config.json").symlink_to("tokenizer.json")  # inside: the same file twice
    res = _case(root, run, "push", "out/model", "--repo", "org/name", "--dry-run", allowed=("home/",))
    assert res.code == 0 and "tokenizer_config.json" in res.out, res.err
    os.mkfifo(m / "special_tokens_map.json")
    res = _case(root, run, "push", "out/model", "--repo", "org/name", "--dry-run", allowed=("home/",))
    assert_clear_error(res, "special_tokens_map.json", "FIFO")


@LIMIT
@pytest.mark.parametrize("link", ["train.jsonl", "train.manifest.json"])
def test_push_refuses_a_training_set_linked_out_of_its_folder(sandbox, link):
    root, run = sandbox
    d = root / "out" / "data"
    d.mkdir(parents=True)
    for name in ("train.jsonl", "train.manifest.json"):
        (d / name).write_text("{}\n", encoding="utf-8")
    (root / "elsewhere" / "secret.txt").write_text(SECRET, encoding="utf-8")
    (d / link).unlink()
    (d / link).symlink_to(root / "elsewhere" / "secret.txt")
    res = _case(root, run, "push", "out/data", "--repo", "org/name", "--dry-run", allowed=("home/",))
    assert_clear_error(res, f"out/data/{link}", "symbolic link", "outside")


# --- 3. only regular files are read or written as files --------------------------------------------

SEED = {"id": "Q27-s", "question_id": "Q27", "step": "seed", "text": "a seed", "parent": None}
ALIGN = ["align", "--model", "fake:a", "-c", "arabic", "--no-progress"]
DATASET_IN = ["dataset", "-c", "arabic", "-a"]
EVALUATE = ["evaluate", *EVAL]
FINETUNE = ["finetune", "--base", "fake:x", "-d"]
DATASET = [*DATASET_IN, "aug.jsonl"]


def _special(root: Path, name: str, kind: str) -> str:
    """Make `name` in the sandbox a FIFO, a socket, a link to /dev/zero or a sparse file over a size
    limit (no disk used); the path to give on the command line."""
    import os
    import socket

    p = root / name
    if kind == "fifo":
        os.mkfifo(p)
    elif kind == "socket":
        s = socket.socket(socket.AF_UNIX)
        s.bind(name)  # relative to the sandbox: a socket path must be short
        s.close()
    elif kind == "link-dev":
        p.symlink_to("/dev/zero")
    elif kind == "huge":
        with open(p, "wb") as f:
            f.truncate(17 << 20)  # over the 16 MiB of a config or context file, and read by no case
    return name


# (id, how the special file is made, the arguments with {} for it, words of the expected error)
SPECIAL_CASES = [
    ("dataset-out-dev-full", None, [*DATASET, "-o", "/dev/full"], ["/dev/full", "character device"]),
    ("dataset-out-fifo", "fifo", [*DATASET, "-o", "{}"], ["FIFO"]),
    ("dataset-out-fifo-force", "fifo", [*DATASET, "-o", "{}", "--force"], ["FIFO"]),
    ("dataset-out-socket", "socket", [*DATASET, "-o", "{}"], ["socket"]),
    ("dataset-out-link-dev", "link-dev", [*DATASET, "-o", "{}", "--force"], ["character device"]),
    ("dataset-in-dev-zero", None, [*DATASET_IN, "/dev/zero", "-o", "t.jsonl"], ["/dev/zero"]),
    ("dataset-in-fifo", "fifo", [*DATASET_IN, "{}", "-o", "t.jsonl"], ["FIFO"]),
    ("check-out-dev-zero", None, ["augment", "check", "aug.jsonl", "-o", "/dev/zero"], ["character device"]),
    ("check-in-fifo", "fifo", ["augment", "check", "{}", "-o", "v.jsonl"], ["FIFO"]),
    ("evaluate-context-dev-zero", None, [*EVALUATE, "--context", "/dev/zero", "-o", "out"], ["/dev/zero"]),
    ("evaluate-context-fifo", "fifo", [*EVALUATE, "--context", "{}", "-o", "out"], ["FIFO"]),
    ("evaluate-context-huge", "huge", [*EVALUATE, "--context", "{}", "-o", "out"], ["17 MiB", "limit"]),
    ("align-split-dev-zero", None, [*ALIGN, "--split", "/dev/zero", "-o", "out"], ["/dev/zero"]),
    ("align-split-fifo", "fifo", [*ALIGN, "--split", "{}", "-o", "out"], ["FIFO"]),
    ("align-context-dev-zero", None, [*ALIGN, "--context", "/dev/zero", "-o", "out"], ["/dev/zero"]),
    ("align-context-link-dev", "link-dev", [*ALIGN, "--context", "{}", "-o", "out"], ["character device"]),
    ("run-config-dev-zero", None, ["run", "/dev/zero", "--check"], ["/dev/zero"]),
    ("run-config-fifo", "fifo", ["run", "{}", "--out", "out", "--check"], ["FIFO"]),
    ("run-config-huge", "huge", ["run", "{}", "--out", "out", "--check"], ["limit for a config file"]),
    ("report-in-fifo", "fifo", ["report", "{}", "-o", "out"], ["FIFO"]),
    ("report-in-socket", "socket", ["report", "{}", "-o", "out"], ["socket"]),
    ("finetune-data-dev-zero", None, [*FINETUNE, "/dev/zero", "-o", "out"], ["/dev/zero"]),
    ("wvs-import-fifo", "fifo", ["wvs", "import", "{}", "--no-progress"], ["FIFO"]),
]  # fmt: skip


@LIMIT
@pytest.mark.parametrize(
    ("make", "args", "needles"), [c[1:] for c in SPECIAL_CASES], ids=[c[0] for c in SPECIAL_CASES]
)
def test_special_files_are_refused_in_one_line(sandbox, make, args, needles):
    root, run = sandbox
    (root / "aug.jsonl").write_text(json.dumps(SEED) + "\n", encoding="utf-8")
    name = _special(root, "special", make) if make else ""
    res = _case(root, run, *[a.replace("{}", name) for a in args])
    assert_clear_error(res, *needles)
    assert not (root / "out").exists() and not (root / "t.jsonl").exists()


@LIMIT
@pytest.mark.parametrize("make", ["fifo", "link-dev", "huge"])
def test_a_special_tasks_toml_is_refused(sandbox, make):
    root, run = sandbox
    (root / "home" / "data").mkdir(parents=True)
    _special(root, "home/data/tasks.toml", make)
    res = _case(root, run, "tasks", "--json", allowed=("home/",))
    assert_clear_error(res, "tasks.toml")


@LIMIT
@pytest.mark.parametrize("name", ["report.md", "results.jsonl", "plots"])
def test_a_fifo_in_a_claimed_output_is_never_opened(sandbox, name):
    """`report -o DIR` where DIR (ours: a valid marker naming the file) holds a FIFO at one of our
    names: one line, no hang (a write through `target` renames over it; an append would block)."""
    import os

    root, run = sandbox
    (root / "res.jsonl").write_text(_row("arabic"), encoding="utf-8")
    out = root / "out"
    out.mkdir()
    (out / ".culturellm").write_text(json.dumps({"kind": "report", "version": "0", "files": [name]}))
    os.mkfifo(out / name)
    res = _case(root, run, "report", "res.jsonl", "-o", "out", protect_all=False)
    assert_clear_error(res, name)
    assert (out / name).is_fifo()
