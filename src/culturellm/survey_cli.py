"""CLI commands of the survey data: `culturellm cultures [add]`, `seeds` (culturellm.cultures,
culturellm.seeds), `wvs import`, `wvs questions` (culturellm.wvs)."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.markup import escape

BARS = " ▁▂▃▄▅▆▇█"


def share_bar(distribution: dict[str, float]) -> str:
    """One block character per option (in option order), its height proportional to the share relative
    to the largest share (the majority is a full block); a blank means nobody chose that option."""
    top = max(distribution.values()) or 1.0
    return "".join(
        BARS[max(1, round(s / top * (len(BARS) - 1)))] if s > 0 else BARS[0] for s in distribution.values()
    )


def _split_codes(values: list[str] | None) -> list[str]:
    out: list[str] = []
    for v in values or []:
        out += [c.strip().upper() for c in v.split(",") if c.strip()]
    return out


def _progress(enabled: bool):
    from rich.console import Console

    from culturellm.progress import progress_bar

    # bars vanish when done; the summary table stays
    return progress_bar(enabled, console=Console(stderr=True, emoji=False), percent=True)


def cultures_list(
    all_countries: bool = typer.Option(
        False, "--all", help="also list every country with WVS data as a single-country culture"
    ),
    as_json: bool = typer.Option(False, "--json", help="one JSON object per line instead of a table"),
) -> None:
    """List the cultures: name, language, WVS countries and how many seed questions have answers."""
    from rich.console import Console
    from rich.table import Table

    from culturellm.cultures import list_cultures
    from culturellm.wvs.answers import load_answers
    from culturellm.wvs.countries import country_name

    table_data = load_answers()
    rows = []
    for c in list_cultures(include_countries=all_countries):
        answered = set()
        for code in c.countries:
            answered |= set(table_data.get(code, {}))
        rows.append((c, len(answered)))
    if as_json:
        for c, n in rows:
            print(json.dumps({**c.to_dict(), "questions": n}, ensure_ascii=False))
        return
    t = Table(title="Cultures")
    for col in ("culture", "display", "language", "countries", "questions answered"):
        t.add_column(col, justify="right" if col == "questions answered" else "left")
    for c, n in rows:
        countries = ", ".join(f"{code} ({country_name(code)})" for code in c.countries)
        t.add_row(c.name, escape(c.display), c.language, countries, str(n) if n else "[red]0 (no data)[/]")
    Console(emoji=False).print(t)


def cultures_add(
    name: str = typer.Argument(..., help="culture name (lower-case, e.g. 'levantine')"),
    language: str = typer.Option(..., "--language", "-l", help="ISO 639-1 language code, e.g. ar"),
    countries: list[str] = typer.Option(
        ..., "--countries", help="WVS countries, ISO3, comma-separated (e.g. JOR,LBN)"
    ),
    display: str | None = typer.Option(
        None, "--display", help="display name used in prompts (default: capitalised name)"
    ),
) -> None:
    """Add or replace a culture in the user registry (cultures.toml in the culturellm data directory)."""
    from rich.console import Console

    from culturellm.cultures import add_culture, user_cultures_path
    from culturellm.wvs.answers import available_countries

    c = add_culture(name, language, _split_codes(countries), display=display)
    have = set(available_countries())
    missing = [code for code in c.countries if code not in have]
    console = Console(stderr=True, emoji=False)
    console.print(
        f"added culture [bold]{c.name}[/] ({escape(c.display)}, {c.language}: {', '.join(c.countries)}) "
        f"to {escape(str(user_cultures_path()))}",
        highlight=False,
    )
    if missing:
        console.print(
            f"[yellow]warning:[/] no WVS data yet for {', '.join(missing)}: "
            "import it with `culturellm wvs import FILE`",
            highlight=False,
        )


def seeds_command(
    culture: str = typer.Option(..., "--culture", "-c", help="culture name or ISO3 country code"),
    as_json: bool = typer.Option(False, "--json", help="one JSON object per line instead of a table"),
    width: int = typer.Option(60, "--width", min=8, help="truncate question texts to this many characters"),
) -> None:
    """Show a culture's WVS seed questions with its answer distribution and majority answer."""
    from culturellm.cultures import get_culture
    from culturellm.seeds import seed_set

    c = get_culture(culture)
    seeds = seed_set(c)
    if as_json:
        print("".join(json.dumps(s.to_dict(), ensure_ascii=False) + "\n" for s in seeds), end="")
        return
    from rich.console import Console
    from rich.table import Table

    t = Table(
        title=f"{escape(c.display)} seeds: {len(seeds)} questions, countries {', '.join(c.countries)}",
        caption="distribution: one bar per option, in option order, relative to the majority share",
    )
    t.add_column("id")
    t.add_column("question")
    t.add_column("majority answer")
    t.add_column("share", justify="right")
    t.add_column("distribution")
    t.add_column("n", justify="right")
    for s in seeds:
        text = s.text if len(s.text) <= width else s.text[: width - 1] + "…"
        t.add_row(
            s.question_id,
            text,
            f"{s.majority} {s.majority_label}",
            f"{s.distribution[s.majority]:.0%}",
            share_bar(s.distribution),
            str(s.n),
        )
    Console(emoji=False).print(t)


def wvs_import(
    files: list[Path] = typer.Argument(
        ..., help="WVS microdata: .csv (.gz/.zip), .sav or .dta files or dirs"
    ),
    countries: list[str] | None = typer.Option(
        None, "--countries", help="only these ISO3 countries (comma-separated; default: all in the file)"
    ),
    weights: bool = typer.Option(
        True, "--weights/--no-weights", help="weight answers by W_WEIGHT if present"
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="show progress bars"),
) -> None:
    """Aggregate a WVS wave-7 release into the user data directory: every country in it becomes usable
    as a culture (`--culture NGA`); imported countries replace the bundled aggregates of those countries."""
    from rich.console import Console
    from rich.table import Table

    from culturellm.wvs.aggregate import aggregate
    from culturellm.wvs.answers import merge_user_answers, user_answers_path
    from culturellm.wvs.countries import country_name
    from culturellm.wvs.microdata import read_microdata

    with _progress(progress) as prog:
        df = read_microdata(files, countries=_split_codes(countries), progress=prog)
        answers = aggregate(df, use_weights=weights, progress=prog)
    rows = df.groupby("country").size()
    written = merge_user_answers(answers)
    per_country: dict[str, int] = {}
    for a in answers:
        per_country[a.country] = per_country.get(a.country, 0) + 1
    t = Table(title=f"Imported into {escape(str(user_answers_path()))}")
    for col in ("country", "name", "respondents", "questions"):
        t.add_column(col, justify="right" if col in ("respondents", "questions") else "left")
    for code in sorted(set(rows.index)):
        t.add_row(code, country_name(code), str(int(rows[code])), str(per_country.get(code, 0)))
    Console(emoji=False).print(t)
    Console(stderr=True, emoji=False).print(
        f"{len(written)} countries imported"
        + (" (weighted by W_WEIGHT)" if weights and bool((df["weight"] != 1.0).any()) else ""),
        highlight=False,
    )


def wvs_questions(
    as_json: bool = typer.Option(False, "--json", help="one JSON object per line instead of a table"),
) -> None:
    """List the 50 seed questions with their answer options."""
    from culturellm.wvs.questions import load_questions

    qs = load_questions()
    if as_json:
        for q in qs:
            print(json.dumps(q.to_dict(), ensure_ascii=False))
        return
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"{len(qs)} WVS wave-7 seed questions")
    for col in ("id", "topic", "question", "options"):
        t.add_column(col)
    for q in qs:
        t.add_row(q.id, q.topic, q.text, "; ".join(f"{k} {v}" for k, v in q.options.items()))
    Console(emoji=False).print(t)


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root app."""
    cultures_app = typer.Typer(
        help="Culture registry: list cultures, add your own.",
        invoke_without_command=True,
        no_args_is_help=False,
    )

    @cultures_app.callback(invoke_without_command=True)
    def _cultures(
        ctx: typer.Context,
        all_countries: bool = typer.Option(
            False, "--all", help="also list every country with WVS data as a single-country culture"
        ),
        as_json: bool = typer.Option(False, "--json", help="one JSON object per line instead of a table"),
    ) -> None:
        """List the cultures (name, language, WVS countries, seed questions answered); `add` adds one."""
        if ctx.invoked_subcommand is None:
            cultures_list(all_countries=all_countries, as_json=as_json)

    cultures_app.command("add")(cultures_add)
    app.add_typer(cultures_app, name="cultures")
    app.command("seeds")(seeds_command)

    wvs_app = typer.Typer(help="World Values Survey data: import a release, list the seed questions.")
    wvs_app.command("import")(wvs_import)
    wvs_app.command("questions")(wvs_questions)
    app.add_typer(wvs_app, name="wvs")
