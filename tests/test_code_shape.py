"""The developers' guide's shape rules, counted over src/: no module over 600 lines, no function over
100 lines, and no function over 60 lines without a reason in its docstring (a line starting
"Long because:"). Each check is run on a small tree written here first, so it can fail."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
MAX_LINES = 100  # no function longer, whatever its docstring says
LONG = 60  # a longer function says why in its docstring
MAX_MODULE = 600
REASON = "Long because:"

# Over a limit in files a change does not own: "path name" (or a module's path) -> whose it is; each
# entry must go once fixed (test_pending_entries_are_still_over_a_limit fails then).
PENDING: dict[str, str] = {}


def function_lengths(root: Path) -> list[tuple[int, str, bool]]:
    """(lines, "file:line name", has a reason) of every function and method below `root`, decorators
    excluded; a reason is a docstring line starting with "Long because:"."""
    out = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = node.end_lineno - node.lineno + 1
                doc = ast.get_docstring(node) or ""
                reason = any(line.strip().startswith(REASON) for line in doc.splitlines())
                out.append((n, f"{path.relative_to(root)}:{node.lineno} {node.name}", reason))
    return out


def module_lengths(root: Path) -> dict[str, int]:
    """Lines of every module below `root`, by path relative to it."""
    return {
        str(p.relative_to(root)): len(p.read_text(encoding="utf-8").splitlines()) for p in root.rglob("*.py")
    }


def shape_problems(root: Path, pending: dict[str, str]) -> list[str]:
    """Every breach of the shape rules below `root` that `pending` does not name."""
    problems = [
        f"{path}: {n} lines (modules: at most {MAX_MODULE})"
        for path, n in sorted(module_lengths(root).items())
        if n > MAX_MODULE and path not in pending
    ]
    for n, where, reason in sorted(function_lengths(root)):
        if _name(where) in pending:
            continue
        if n > MAX_LINES:
            problems.append(f"{where}: {n} lines (functions: at most {MAX_LINES})")
        elif n > LONG and not reason:
            problems.append(f"{where}: {n} lines and no '{REASON}' line in its docstring")
    return problems


def test_the_rules_catch_long_modules_and_functions(tmp_path: Path) -> None:
    def fn(name: str, lines: int, doc: str = "") -> str:
        body = "\n".join(f"    x{i} = {i}" for i in range(lines - 1 - bool(doc)))
        return f"def {name}():\n" + (f'    """{doc}"""\n' if doc else "") + body + "\n\n\n"

    (tmp_path / "m.py").write_text(
        fn("short", 10) + fn("long", LONG + 5) + fn("why", LONG + 5, f"{REASON} a table.") + fn("huge", 105)
    )
    (tmp_path / "big.py").write_text("x = 1\n" * (MAX_MODULE + 1))
    found = shape_problems(tmp_path, {})
    assert len(found) == 3, found
    assert found[0].startswith("big.py: 601 lines")
    assert any(" long: 65 lines and no 'Long because:'" in p for p in found)
    assert any(" huge: 105 lines (functions: at most 100)" in p for p in found)
    assert shape_problems(tmp_path, {"big.py": "x", "m.py long": "x", "m.py huge": "x"}) == []


def test_src_keeps_the_shape_rules() -> None:
    assert len(function_lengths(SRC)) > 100  # the walk found the package
    problems = shape_problems(SRC, PENDING)
    assert not problems, "\n".join(problems)


def test_pending_entries_are_still_over_a_limit() -> None:
    over = {p for p, n in module_lengths(SRC).items() if n > MAX_MODULE}
    over |= {_name(where) for n, where, reason in function_lengths(SRC) if n > LONG and not reason}
    assert set(PENDING) <= over, f"fixed: remove {set(PENDING) - over} from PENDING"


def _name(where: str) -> str:
    """The location without its line number (stable while a file changes)."""
    path, rest = where.split(":", 1)
    return f"{path} {rest.split(' ', 1)[1]}"
