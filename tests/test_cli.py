"""CLI consistency across commands: the same flag means the same thing everywhere, choice options are
choices, help is readable at 80 columns, unknown filters are one-line errors (exit 2), completion is
on. Commands run in-process through culturellm.cli.main (the real entry point) or as the script."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import typer

from culturellm.cli import app

# Commands that talk to a model: each takes --base-url, --cache/--no-cache, --progress/--no-progress.
MODEL_COMMANDS = ("chat", "augment", "evaluate", "align", "run")
# Short flags and the one long flag each stands for, in every command that has it.
SHORT = {
    "-c": "--culture",
    "-o": "--out",
    "-m": "--model",
    "-b": "--base",
    "-q": "--question",
    "-t": "--temperature",
}


def _commands() -> dict[str, object]:
    """Every leaf command of the app by its path ('cache stats', 'evaluate', ...)."""
    root = typer.main.get_command(app)
    out: dict[str, object] = {}

    def walk(group, prefix: str) -> None:
        for name, cmd in group.commands.items():
            path = f"{prefix} {name}".strip()
            if getattr(cmd, "commands", None):
                walk(cmd, path)
                if getattr(cmd, "invoke_without_command", False):
                    out[path] = cmd
            else:
                out[path] = cmd

    walk(root, "")
    return out


def _options(cmd) -> dict[str, object]:
    """Each option string of a command -> its click parameter."""
    return {opt: p for p in cmd.params for opt in (*p.opts, *p.secondary_opts)}


@pytest.fixture
def cli(cli, monkeypatch):
    """The shared in-process CLI (tests/conftest.py) at 80 columns."""
    monkeypatch.setenv("COLUMNS", "80")
    return cli


def test_short_flags_mean_the_same_everywhere():
    seen = {}
    for path, cmd in _commands().items():
        opts = _options(cmd)
        for short, long in SHORT.items():
            if short in opts:
                assert long in opts[short].opts, f"`{path}`: {short} is {opts[short].opts}, not {long}"
                seen.setdefault(short, []).append(path)
    assert {"evaluate", "align", "tasks", "seeds", "run", "finetune"} <= set(seen["-c"])
    assert {"augment", "dataset", "finetune", "evaluate", "align", "report", "run"} <= set(seen["-o"])


def test_commands_that_talk_to_a_model_share_their_flags():
    commands = _commands()
    for path in MODEL_COMMANDS:
        opts = _options(commands[path])
        for flag in ("--base-url", "--cache", "--no-cache", "--progress", "--no-progress"):
            assert flag in opts, f"`culturellm {path}` has no {flag}"


@pytest.mark.parametrize(
    ("command", "flag", "choices"),
    [
        ("evaluate", "--mode", "score|generate"),
        ("evaluate", "--calibration", "contextual|none"),
        ("finetune", "--preset", "cpu-small|paper|paper-qlora|smoke"),
        ("finetune", "--dtype", "auto|float32|bfloat16|float16"),
        ("run", "--preset", "demo|full"),
        ("augment", "--synonym-requests", "sentence|seed"),
        ("serve", "--dtype", "float32|bfloat16|float16"),
    ],
)
def test_choice_options_are_choices(cli, command, flag, choices):
    code, out, _ = cli(command, "--help")
    assert code == 0
    line = next(x for x in out.splitlines() if flag in x)
    assert choices in line.replace(" ", "") or choices in out.replace("\n", "").replace(" ", "")
    code, _, err = cli(command, flag, "nonsense")
    assert code == 2 and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and "'nonsense' is not one of" in err, err


@pytest.mark.parametrize(
    ("command", "flag", "names", "rest"),
    [
        ("finetune", "--backend", ("local", "openai"), ("--data", "x.jsonl", "--out", "o")),
        ("dataset", "--target", ("majority", "sharpened"), ("-c", "arabic", "-a", "x", "-o", "o")),
    ],
)
def test_registry_options_list_their_names_and_refuse_others(cli, command, flag, names, rest):
    """Options backed by a registry (finetune.backends, dataset.targets) are text checked against it:
    the help names the built-in entries, an unknown one is one line naming the known ones."""
    code, out, _ = cli(command, "--help")
    assert code == 0 and all(n in out for n in names)
    code, _, err = cli(
        command, flag, "nonsense", "--data", "x.jsonl", "--out", "o", "-c", "arabic", "-a", "x"
    )
    assert code == 2 and "Traceback" not in err


@pytest.mark.slow  # the real script in its own process
@pytest.mark.parametrize("command", [[], ["augment"], ["finetune"]])
def test_help_is_readable_at_80_columns(command):
    """`COLUMNS=80 culturellm augment --help` through the real script: fits, nothing cut off."""
    res = subprocess.run(
        [sys.executable, "-m", "culturellm.cli", *command, "--help"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "80"},
    )
    assert res.returncode == 0, res.stderr
    assert all(len(line) <= 80 for line in res.stdout.splitlines()), res.stdout
    assert "…" not in res.stdout
    assert "--progress" in res.stdout if command else "--install-completion" in res.stdout


def test_every_help_fits_in_process(cli):
    for path in _commands():
        code, out, err = cli(*path.split(), "--help")
        assert code == 0, (path, err)
        assert all(len(line) <= 80 for line in out.splitlines()), (path, out)
        assert "…" not in out, (path, out)


def test_align_and_evaluate_take_base_url_and_short_out(cli):
    for command in ("align", "evaluate"):
        code, out, _ = cli(command, "--help")
        assert code == 0 and "--base-url" in out and "-o, --out" in out


def test_tasks_prints_full_names_at_80_columns(cli):
    from culturellm.evaluate.tasks import list_tasks

    code, out, _ = cli("tasks")
    assert code == 0
    assert all(len(line) <= 80 for line in out.splitlines())
    for t in list_tasks():
        assert t.name in out, t.name


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["tasks", "--type", "nonsense"], "unknown task type 'nonsense'"),
        (["tasks", "--culture", "klingon"], "unknown culture 'klingon'"),
        (["tasks", "--bogus"], "No such option: --bogus"),
    ],
)
def test_unknown_filters_are_one_line_errors(cli, args, needle):
    code, out, err = cli(*args)
    assert code == 2, err
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], err
    assert out == ""


def test_shell_completion_is_on(cli):
    code, out, _ = cli("--help")
    assert code == 0 and "--install-completion" in out and "--show-completion" in out


def test_evaluate_and_align_take_the_shared_flags(cli, tmp_path):
    """With the fake: backend (no weights): -o, --base-url, --no-cache, --no-progress, --config."""
    from culturellm.jsonio import read_jsonl
    from culturellm.llm import load_model

    run_toml = tmp_path / "run.toml"
    run_toml.write_text('[evaluate]\nlimit = 3\ncalibration = "none"\n')
    code, _, err = cli(
        "evaluate", "-m", "fake:ev", "-c", "english", "--task", "threat_detect", "--config", str(run_toml),
        "--limit", "4", "-o", str(tmp_path / "ev"), "--no-cache", "--no-progress",
        "--base-url", "http://127.0.0.1:9",
    )  # fmt: skip
    assert code == 0, err
    (row,) = read_jsonl(tmp_path / "ev" / "results.jsonl")
    assert row["n"] == 4 and "calibration" not in row  # flag > TOML (limit), TOML > default (none)
    assert load_model("fake:ev", base_url="http://127.0.0.1:9", cache=False).calls  # as the flags said
    args = ["align", "-m", "fake:al", "-c", "korean", "--json", "-o", str(tmp_path / "al"), "--no-cache"]
    code, out, err = cli(*args, "--no-progress")
    assert code == 0, err
    assert len(read_jsonl(tmp_path / "al" / "align.jsonl")) == 1 and '"majority_agreement"' in out
    assert load_model("fake:al", cache=False).calls


def test_import_options_are_offered_where_they_are_used(cli):
    """One name set: `augment import` takes --import-source / --import-filter (their old names --source
    / --filter still work); `culturellm augment`, which generates and would ignore them, does not offer
    them (a run sets them in [augment])."""
    code, out, _ = cli("augment", "import", "--help")
    assert code == 0 and "--import-source" in out and "--import-filter" in out and "checks" in out
    code, out, _ = cli("augment", "--help")
    assert code == 0 and "--import-filter" not in out and "--import-source" not in out
    code, _, err = cli("augment", "--import-filter", "checks", "--out", "x")
    assert code == 2 and "--import-filter" in err and "Traceback" not in err
