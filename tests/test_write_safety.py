"""The one output rule (issue #20, culturellm.safewrite), as a matrix: every command that writes x
{empty directory, a foreign directory holding user files with the names we write, symbolic links out of
the output root, an output that is one of the inputs}.

Each case runs the real CLI in-process (`fake:` models, the tiny random base, small fixtures) inside its
own sandbox and checks afterwards: 0 bytes of any user file changed (every file the test made, compared
by hash), 0 files created outside the output root (and the user's culturellm home), links left where
they were; a refusal is one clear `error:` line with exit code 2. The counts are printed at the end:

    write-safety: N cases, R refused, A accepted, 0 user files changed, 0 writes outside roots
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from hostile import assert_clear_error, run_cli, snapshot

RECORDS = "augmented.jsonl"
AUG = ["--n", "1", "--m", "1", "--k", "2", "--retries", "0", "--limit-seeds", "2", "--no-progress"]
EVAL = ["--model", "fake:ws", "--culture", "arabic", "--task", "spam_detect", "--no-progress"]
RELEASE = [
    {"q_id": "27", "q_content": "Making my parents proud has been one of my main life goals"},
    {"q_id": "28", "q_content": "When mothers work for pay, their children suffer"},
]
RUN_TOML = """
name = "ws"
cultures = ["arabic"]
[augment]
n = 1
m = 1
limit_seeds = 2
[finetune]
max_steps = 1
batch_size = 2
[evaluate]
limit = 4
tasks = ["spam_detect"]
[align]
min_heldout = 1
"""
COUNTS = {"cases": 0, "refused": 0, "accepted": 0, "user_files_changed": 0, "written_outside": 0}


@dataclass
class Fx:
    """Inputs made once per module (read-only for the cases; their bytes are checked too)."""

    root: Path
    home: Path
    aug: Path
    release: Path
    train: Path
    evaldir: Path
    base: str
    run_toml: Path
    inputs: dict[str, str] = field(default_factory=dict)


@pytest.fixture(scope="module")
def fx(tmp_path_factory, tiny_model_dir) -> Fx:
    from typer.testing import CliRunner

    from culturellm.cli import app

    root = tmp_path_factory.mktemp("ws-inputs")
    home = tmp_path_factory.mktemp("ws-home")
    with pytest.MonkeyPatch.context() as mp:  # undone after: the session's own home stays for the rest
        mp.setenv("CULTURELLM_HOME", str(home))  # the CliRunner calls below; cases set it per test
        runner = CliRunner()
        aug = root / "aug"
        res = runner.invoke(app, ["augment", "--llm", "fake:ws", *AUG, "--out", str(aug)])
        assert res.exit_code == 0, res.output
        train = root / "train.jsonl"
        res = runner.invoke(
            app, ["dataset", "-c", "arabic", "-a", str(aug / "augmented.jsonl"), "-o", str(train)]
        )
        assert res.exit_code == 0, res.output
        evaldir = root / "ev"
        res = runner.invoke(app, ["evaluate", *EVAL, "--limit", "4", "--out", str(evaldir)])
        assert res.exit_code == 0, res.output
    release = root / "release.jsonl"
    release.write_text("".join(json.dumps(r) + "\n" for r in RELEASE), encoding="utf-8")
    base = tiny_model_dir(root / "tiny")
    (root / "run.toml").write_text(RUN_TOML, encoding="utf-8")
    return Fx(root, home, aug, release, train, evaldir, base, root / "run.toml", snapshot(root))


@pytest.fixture(scope="module", autouse=True)
def _report(request):
    yield
    capture = request.config.pluginmanager.getplugin("capturemanager")
    line = (
        f"write-safety: {COUNTS['cases']} cases, {COUNTS['refused']} refused, {COUNTS['accepted']} accepted, "
        f"{COUNTS['user_files_changed']} user files changed, {COUNTS['written_outside']} writes outside roots"
    )
    with capture.global_and_fixture_disabled():
        print("\n" + line, flush=True)


@dataclass(frozen=True)
class Cmd:
    """One writing command: its arguments for an output path, the names it writes there, its claim
    kind (to make a claimed directory by hand where a real first run is too slow), whether --out is a
    file, whether a real run is cheap enough for the matrix, and its `output = input` arguments."""

    name: str
    args: Callable[[Fx, Path], list[str]]
    writes: tuple[str, ...]
    kind: str
    file_out: bool = False
    cheap: bool = True
    same: Callable[[Fx, Path], list[str]] | None = None


def _ablate(fx: Fx, out: Path, aug: Path | None = None) -> list[str]:
    a = aug or fx.aug / "augmented.jsonl"
    return ["ablate", "-a", str(a), "--out", str(out), "--base", fx.base, "--max-steps", "1", "--no-progress"]


CMDS = [
    Cmd("augment", lambda fx, o: ["augment", "--llm", "fake:ws", *AUG, "--out", str(o)],
        ("augmented.jsonl", "manifest.json", ".augment-state.json"), "augment",
        same=lambda fx, o: ["augment", "--llm", "fake:ws", *AUG, "--config", str(o / "augmented.jsonl"),
                            "--out", str(o)]),
    Cmd("augment-import", lambda fx, o: ["augment", "import", str(fx.release), "--out", str(o)],
        ("augmented.jsonl", "manifest.json"), "augment-import",
        same=lambda fx, o: ["augment", "import", str(o / "augmented.jsonl"), "-o", str(o)]),
    Cmd("dataset", lambda fx, o: ["dataset", "-c", "arabic", "-a", str(fx.aug / RECORDS), "-o", str(o)],
        ("train.jsonl", "train.manifest.json"), "dataset", file_out=True,
        same=lambda fx, o: ["dataset", "-c", "arabic", "-a", str(o / "augmented.jsonl"),
                            "-o", str(o / "augmented.jsonl")]),
    Cmd("finetune", lambda fx, o: ["finetune", "-d", str(fx.train), "--base", fx.base, "--out", str(o),
                                   "--max-steps", "1", "--batch-size", "2", "--no-progress"],
        ("finetune.json", "adapter_config.json", "README.md"), "finetune", cheap=False,
        same=lambda fx, o: ["finetune", "-d", str(o / "train.jsonl"), "--base", fx.base, "--out", str(o),
                            "--max-steps", "1", "--no-progress"]),
    Cmd("evaluate", lambda fx, o: ["evaluate", *EVAL, "--limit", "4", "--out", str(o)],
        ("results.jsonl", "report.md", "predictions", "plots"), "evaluate",
        same=lambda fx, o: ["evaluate", *EVAL, "--limit", "4", "--data-dir", str(o), "--out", str(o)]),
    Cmd("align", lambda fx, o: ["align", "--model", "fake:ws", "--culture", "arabic", "--no-progress",
                                "--out", str(o)],
        ("align.jsonl", "align"), "align",
        same=lambda fx, o: ["align", "--model", "fake:ws", "--culture", "arabic", "--no-progress",
                            "--context", str(o / "align.jsonl"), "--out", str(o)]),
    Cmd("align-matrix", lambda fx, o: ["align", "--model", "fake:ws", "--model", "fake:ws2", "--culture",
                                       "arabic", "--no-progress", "--out", str(o)],
        ("align_matrix.json", "align_matrix.png"), "align"),
    Cmd("ablate", _ablate, ("ablation.jsonl", "ablation.md", "data/full.jsonl"), "ablate", cheap=False,
        same=lambda fx, o: _ablate(fx, o, o / "data" / "full.jsonl")),
    Cmd("report", lambda fx, o: ["report", str(fx.evaldir), "--out", str(o)],
        ("report.md", "results.jsonl", "plots"), "report",
        same=lambda fx, o: ["report", str(o / "results.jsonl"), "--out", str(o)]),
    Cmd("run", lambda fx, o: ["run", str(fx.run_toml), "--llm", "fake:ws", "--base", fx.base, "--no-progress",
                              "--out", str(o)],
        ("config.toml", "manifest.json", "seeds"), "run", cheap=False,
        same=lambda fx, o: ["run", str(o / "config.toml"), "--llm", "fake:ws", "--base", fx.base,
                            "--no-progress", "--out", str(o)]),
]  # fmt: skip
BY_NAME = {c.name: c for c in CMDS}


@pytest.fixture
def case(tmp_path, monkeypatch, capsys, fx):
    """run(*args) in a sandbox (`tmp_path`, the culturellm home shared by the module)."""
    monkeypatch.setenv("CULTURELLM_HOME", str(fx.home))
    monkeypatch.delenv("CULTURELLM_CACHE_DIR", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.chdir(tmp_path)
    return lambda *args: run_cli(monkeypatch, capsys, *args)


def _user_file(path: Path, text: str = "") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(f"user bytes of {path.name} {text}".encode())


def _check(fx: Fx, box: Path, out: Path, before: dict[str, str], res, *, refuse: bool | None) -> None:
    """No user file changed (the sandbox's files outside `out`, every file of a foreign `out`, the
    module's inputs), nothing created outside `out`; `refuse`: exit 2 with one clear line (True),
    exit 0 (False) or either (None)."""
    after = snapshot(box)
    prefix = str(out.relative_to(box)) if out.is_relative_to(box) else None
    outside_new = [p for p in after if p not in before and not (prefix and p.startswith(prefix))]
    changed = [p for p in before if after.get(p) != before[p]]
    changed += [p for p, h in snapshot(fx.root).items() if fx.inputs.get(p, h) != h]
    changed += [p for p in fx.inputs if not (fx.root / p).exists()]
    COUNTS["cases"] += 1
    COUNTS["user_files_changed"] += len(changed)
    COUNTS["written_outside"] += len(outside_new)
    COUNTS["refused" if res.code == 2 else "accepted"] += 1
    assert not changed, (changed, res.err[-2000:])
    assert not outside_new, (outside_new, res.err[-2000:])
    assert res.code in (0, 2) and "Traceback" not in res.err, res.err[-3000:]
    if res.code == 2 or refuse:
        assert_clear_error(res)
    if refuse is False:
        assert res.code == 0, res.err[-3000:]


# The commands whose real run loads the bundled embedder (augment, augment import): slow cases.
EMBEDS = frozenset({"augment", "augment-import"})


def _names(cmds) -> list:
    """The cases of `cmds`, those that run a command loading the bundled embedder marked slow."""
    return [pytest.param(c.name, marks=pytest.mark.slow) if c.name in EMBEDS else c.name for c in cmds]


def _out(box: Path, cmd: Cmd) -> Path:
    return box / "out" / "train.jsonl" if cmd.file_out else box / "out"


# --- empty directory: the command works and writes only under its output ----------------------------


@pytest.mark.parametrize("name", _names(c for c in CMDS if c.cheap))
def test_empty_output(case, fx, tmp_path, name):
    cmd = BY_NAME[name]
    out = _out(tmp_path, cmd)
    before = snapshot(tmp_path)
    root = out.parent if cmd.file_out else out
    _check(fx, tmp_path, root, before, case(*cmd.args(fx, out)), refuse=False)


# --- a foreign directory with user files named as ours: refused, nothing touched --------------------


@pytest.mark.parametrize("name", [c.name for c in CMDS])
def test_foreign_directory_with_our_names(case, fx, tmp_path, name):
    cmd = BY_NAME[name]
    out = _out(tmp_path, cmd)
    for n in cmd.writes:
        _user_file((out.parent if cmd.file_out else out) / n / "inner.txt" if "." not in n else
                   (out.parent if cmd.file_out else out) / n)  # fmt: skip
    before = snapshot(tmp_path)
    _check(fx, tmp_path, out.parent if cmd.file_out else out, before, case(*cmd.args(fx, out)), refuse=True)
    assert snapshot(tmp_path) == before


# --- symbolic links inside a claimed output, pointing out of it: never followed ---------------------


def _claimed(case, fx: Fx, cmd: Cmd, out: Path) -> None:
    """`out` as culturellm left it: a real first run (cheap commands) or a claim made by hand."""
    if cmd.cheap:
        res = case(*cmd.args(fx, out))
        assert res.code == 0, res.err[-3000:]
    else:
        from culturellm.outdir import claim

        claim(out, cmd.kind)


@pytest.mark.parametrize("name", _names(c for c in CMDS if not c.file_out))
def test_symlinks_out_of_a_claimed_directory(case, fx, tmp_path, name):
    cmd = BY_NAME[name]
    out, outside = tmp_path / "out", tmp_path / "outside"
    _claimed(case, fx, cmd, out)
    links = []
    for n in cmd.writes:
        target = outside / n
        if "." in n:
            _user_file(target)
        else:
            _user_file(target / "inner.txt")
        p = out / n
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink(missing_ok=True)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.symlink_to(target, target_is_directory=target.is_dir())
        links.append(p)
    before = snapshot(tmp_path)
    args = cmd.args(fx, out)
    if name == "augment":
        args[args.index("--n") + 1] = "2"  # new settings: the run must write again
    if name in ("evaluate",):
        args[args.index("--limit") + 1] = "3"
    res = case(*args)
    _check(fx, tmp_path, out, before, res, refuse=None)
    assert snapshot(outside) == {
        k[len("outside/") :]: v for k, v in before.items() if k.startswith("outside/")
    }
    if name != "run":  # a damaged run manifest (a link to a user file) is moved aside, link and all
        assert all(p.is_symlink() for p in links), [p for p in links if not p.is_symlink()]


def test_dataset_output_link_and_manifest_link(case, fx, tmp_path):
    """The file output: a link at --out, or at the manifest beside it, is refused."""
    out, outside = tmp_path / "out" / "train.jsonl", tmp_path / "outside"
    for name in ("train.jsonl", "train.manifest.json"):
        _user_file(outside / name)
    out.parent.mkdir()
    out.symlink_to(outside / "train.jsonl")
    before = snapshot(tmp_path)
    _check(fx, tmp_path, out.parent, before, case(*BY_NAME["dataset"].args(fx, out)), refuse=True)
    out.unlink()
    (out.parent / "train.manifest.json").symlink_to(outside / "train.manifest.json")
    _check(fx, tmp_path, out.parent, before, case(*BY_NAME["dataset"].args(fx, out)), refuse=True)
    assert snapshot(outside) == {"train.jsonl": before["outside/train.jsonl"],
                                 "train.manifest.json": before["outside/train.manifest.json"]}  # fmt: skip


# --- output equal to input -------------------------------------------------------------------------


@pytest.mark.parametrize("name", [c.name for c in CMDS if c.same is not None])
def test_output_equal_to_input(case, fx, tmp_path, name):
    """The input lives in the output (a user's file there, or our own augmented set): refused, nothing
    changed."""
    cmd = BY_NAME[name]
    out = tmp_path / "out"
    shutil.copytree(fx.aug, out)  # an augmentation culturellm made, holding augmented.jsonl
    shutil.copy(fx.train, out / "train.jsonl")
    shutil.copy(fx.evaldir / "results.jsonl", out / "results.jsonl")
    shutil.copy(fx.run_toml, out / "config.toml")
    (out / "data").mkdir()
    shutil.copy(fx.aug / "augmented.jsonl", out / "data" / "full.jsonl")
    (out / "align.jsonl").write_text("a context\n", encoding="utf-8")
    before = snapshot(tmp_path)
    _check(fx, tmp_path, out, before, case(*cmd.same(fx, out)), refuse=True)
    assert snapshot(tmp_path) == before


def test_dataset_over_its_own_output_and_force(case, fx, tmp_path):
    """`dataset --out` may replace a training set it wrote (the manifest records its hash); a file the
    user edited since, or made, needs --force."""
    out = tmp_path / "train.jsonl"
    args = BY_NAME["dataset"].args(fx, out)
    assert case(*args).code == 0
    assert case(*args).code == 0  # ours: replaced
    out.write_text(out.read_text() + "\n", encoding="utf-8")  # edited by the user
    before = snapshot(tmp_path)
    _check(fx, tmp_path, tmp_path / "none", before, case(*args), refuse=True)
    assert case(*args, "--force").code == 0


# --- review: ratings go only into a file the page wrote ---------------------------------------------


def _rate(aug: Path) -> int:
    from starlette.testclient import TestClient

    from culturellm.review.app import make_app
    from culturellm.review.store import load_items

    app = make_app(aug)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        body = {"reviewer": "ann", "id": load_items(aug)[0]["id"], "rating": "same"}
        return client.post("/api/ratings", json=body).status_code


@pytest.mark.parametrize("scenario", ["ours", "foreign", "link"])
def test_review_writes_only_its_own_ratings_file(fx, tmp_path, scenario):
    from culturellm.errors import DataError

    aug, outside = tmp_path / "aug", tmp_path / "outside"
    shutil.copytree(fx.aug, aug)
    seed = json.loads((aug / "augmented.jsonl").read_text().splitlines()[0])
    sample = {**seed, "id": seed["id"] + "-p", "step": "paraphrase", "text": "A reworded question"}
    with open(aug / "augmented.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps({**sample, "parent": seed["id"]}) + "\n")
    if scenario == "foreign":
        _user_file(aug / "reviews.jsonl", "not ratings")
    elif scenario == "link":
        _user_file(outside / "reviews.jsonl")
        (aug / "reviews.jsonl").symlink_to(outside / "reviews.jsonl")
    before = snapshot(tmp_path)
    COUNTS["cases"] += 1
    if scenario == "ours":
        assert _rate(aug) == 200 and _rate(aug) == 200
        COUNTS["accepted"] += 1
        assert len((aug / "reviews.jsonl").read_text().splitlines()) == 2
        assert [p for p in snapshot(tmp_path) if p not in before] == ["aug/reviews.jsonl"]
        return
    with pytest.raises(DataError, match=r"reviews\.jsonl"):
        _rate(aug)
    COUNTS["refused"] += 1
    assert snapshot(tmp_path) == before


def test_ledger_keeps_every_file_written_by_threads(tmp_path):
    """Threads writing into one claimed directory (evaluation jobs) lose no ledger entry, so a rerun
    may replace every file it wrote."""
    import threading

    from culturellm.jsonio import write_json
    from culturellm.outdir import claim
    from culturellm.safewrite import ledger

    out = claim(tmp_path / "o", "evaluate")
    threads = [threading.Thread(target=write_json, args=(out / f"f{i}.json", {"i": i})) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert ledger(out) == {f"f{i}.json" for i in range(40)}
    write_json(out / "f0.json", {"i": "again"})  # ours: replaced


def test_import_never_replaces_a_users_manifest(case, fx, tmp_path):
    """[2] `augment import FILE --out DIR` replaced DIR/manifest.json (the user's, no augmented.jsonl
    beside it), even when the import then failed."""
    out = tmp_path / "out"
    _user_file(out / "manifest.json")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"q_id": "999", "q_content": "no such seed"}\n', encoding="utf-8")
    before = snapshot(tmp_path)
    for src in (fx.release, bad):
        _check(fx, tmp_path, out, before, case("augment", "import", str(src), "--out", str(out)), refuse=True)
    assert snapshot(tmp_path) == before
