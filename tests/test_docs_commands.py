"""Every `culturellm ...` command in README.md and docs/ parses: its command exists and every flag it
passes is one that command takes (a user copying it gets no "No such option"). Arguments are only
parsed (click's make_context), nothing runs; a synopsis's `[--optional ...]` parts are left out, and
missing required options are allowed (prose mentions `culturellm dataset` without its flags)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
# architecture.md's walk-through of adding an option uses a flag that does not exist yet
HYPOTHETICAL = {"culturellm evaluate --few-shot 3"}


def doc_commands(path: Path) -> list[str]:
    """The `culturellm` command lines of a Markdown file: in code blocks (continuation lines joined,
    `&&`/`|`/`;` chains split) and in inline code."""
    text = path.read_text(encoding="utf-8")
    blocks = re.findall(r"```[a-z]*\n(.*?)```", text, re.S)
    inline = re.findall(r"`(culturellm [^`]+)`", re.sub(r"```.*?```", "", text, flags=re.S))
    out = []
    for block in blocks + inline:
        for line in block.replace("\\\n", " ").splitlines():
            for part in re.split(r"&&|\|\||;|\|", line.strip().removeprefix("$ ")):
                part = part.strip().rstrip("&").strip()
                if part.startswith("culturellm ") and part not in HYPOTHETICAL:
                    out.append(part)
    return out


def _parse(root, args: list[str]) -> str | None:
    """Why `culturellm ARGS` does not parse (None: it does)."""
    try:
        ctx = root.make_context("culturellm", list(args))
        while hasattr(ctx.command, "resolve_command") and ctx._protected_args + ctx.args:
            name, sub, rest = ctx.command.resolve_command(ctx, ctx._protected_args + ctx.args)
            if sub is None:
                break
            ctx = sub.make_context(name, rest, parent=ctx)
    except Exception as e:
        if type(e).__name__ == "Exit":  # --help
            return None
        msg = e.format_message() if hasattr(e, "format_message") else f"{type(e).__name__}: {e}"
        allowed = ("does not exist", "Missing option", "Missing argument", "requires an argument")
        return None if any(a in msg for a in allowed) else msg
    return None


def test_doc_commands_are_found():
    assert sum(len(doc_commands(p)) for p in DOCS) > 150  # the extraction still sees them


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_culturellm_command_in_the_docs_parses(doc, tmp_path, monkeypatch):
    import typer

    from culturellm.cli import app

    monkeypatch.chdir(tmp_path)  # relative paths in the commands resolve to nothing of the repository
    root = typer.main.get_command(app)
    bad = []
    for cmd in doc_commands(doc):
        synopsis = re.sub(r"\[[^\]]*\]", "", cmd).replace("...", "")  # [--optional FLAGS] left out
        args = shlex.split(synopsis, comments=True)[1:]
        if any("completion" in a for a in args):  # --install-completion would write to ~/.bashrc
            continue
        args = [str(tmp_path / Path(a).name) if a.startswith("/") else a for a in args]
        why = _parse(root, args)
        if why:
            bad.append(f"{cmd}: {why}")
    assert not bad, "\n".join(bad)


def test_the_checker_catches_an_unknown_flag():
    import typer

    from culturellm.cli import app

    root = typer.main.get_command(app)
    assert "No such option: --bogus" in _parse(root, ["evaluate", "--bogus", "x"])
    assert "No such command" in _parse(root, ["evaluat", "--model", "bundled"])
    assert _parse(root, ["evaluate", "--model", "bundled", "--culture", "arabic", "--limit", "5"]) is None
