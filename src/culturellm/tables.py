"""Tables for people, whole wherever they are read: rich's table on a terminal (the columns named in
`whole` never wrap or cut, the others wrap), a Markdown table when the output is piped or logged
(rich would fit it into 80 columns and cut every long model name and header to "base+c…"); the
Markdown lines are as long as their cells, and they paste into a report or an issue as they are.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub-flavoured Markdown table ("|" in a cell escaped, line breaks of a header joined)."""

    def cell(x: str) -> str:
        return " ".join(str(x).split()).replace("|", "\\|")

    lines = ["| " + " | ".join(cell(h) for h in headers) + " |", "|" + " --- |" * len(headers)]
    lines += ["| " + " | ".join(cell(x) for x in r) + " |" for r in rows]
    return "\n".join(lines)


def print_table(
    console: Console,
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    title: str | None = None,
    right: Collection[str] = (),
    whole: Collection[str] = (),
) -> None:
    """Print a table on `console`: rich on a terminal, Markdown otherwise (see the module).
    `right`: headers of right-aligned columns; `whole`: headers of columns that never wrap.
    A header may hold line breaks (a terminal shows them; Markdown joins the lines)."""
    if not console.is_terminal:
        text = (f"{title}\n\n" if title else "") + markdown_table(headers, rows)
        console.print(text, markup=False, highlight=False, emoji=False, soft_wrap=True)
        return
    table = Table(
        title=Text(title) if title else None,
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        padding=(0, 1, 0, 0),
    )
    for i, h in enumerate(headers):
        cells = [str(r[i]) for r in rows]
        # the longest word (whole cell in a `whole` column): rich shrinks a column no further
        units = [*h.split(), *(cells if h in whole else (w for c in cells for w in c.split()))]
        table.add_column(
            Text(h),
            justify="right" if h in right else "left",
            no_wrap=h in whole,
            overflow="fold",
            min_width=max(map(len, units), default=1),
        )
    for r in rows:
        table.add_row(*(Text(str(x)) for x in r))
    console.print(table)
