"""CLI commands of culturellm.llm: `chat`, `cache stats|clear`, `models`."""

from __future__ import annotations

import contextlib
import json
import sys

import typer

from culturellm.llm.placement import DEVICE_HELP, DTYPE_HELP, Device, Dtype, load_options

cache_app = typer.Typer(
    help="The LLM response cache (SQLite): statistics and clearing.", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root app."""
    app.command("chat")(chat)
    app.command("models")(models)
    app.add_typer(cache_app, name="cache")


def chat(
    text: str = typer.Argument(..., help="The user message ('-' reads it from stdin)."),
    model: str = typer.Option(
        "bundled",
        "--model",
        "-m",
        help="Model spec: bundled, gemma3-270m, hf:PATH, "
        "openai:MODEL, or a culture model directory (culturellm.json / adapter).",
    ),
    system: str | None = typer.Option(None, "--system", "-s", help="System prompt."),
    max_tokens: int = typer.Option(256, "--max-tokens", min=1, help="Most tokens to generate."),
    temperature: float = typer.Option(0.0, "--temperature", "-t", min=0.0, max=2.0, help="0 = greedy."),
    seed: int = typer.Option(0, "--seed", help="Sampling seed (with --temperature > 0)."),
    base_url: str | None = typer.Option(None, "--base-url", help="OpenAI-compatible server (openai:MODEL)."),
    api_key: str | None = typer.Option(
        None, "--api-key", envvar="OPENAI_API_KEY", show_envvar=True, help="API key for openai:MODEL."
    ),
    cache: bool = typer.Option(True, "--cache/--no-cache", help="Use the response cache."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a spinner while loading."),
    timeout: float | None = typer.Option(
        None, "--timeout", min=0.001, help="Seconds per HTTP attempt (openai:MODEL; default 120)."
    ),
    usage: bool = typer.Option(False, "--usage", help="Also print token usage and cost on stderr."),
    device: Device | None = typer.Option(None, "--device", help=DEVICE_HELP),
    dtype: Dtype | None = typer.Option(None, "--dtype", help=DTYPE_HELP),
) -> None:
    """Send one message to a model and print its reply."""
    from rich.console import Console

    from culturellm.llm import SamplingParams, load_model

    if text == "-":
        text = _read_stdin()
    messages = ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": text}
    ]
    err = Console(stderr=True, emoji=False)
    with err.status(f"loading {model}") if progress else contextlib.nullcontext():
        opts = load_options(device, dtype)
        llm = load_model(model, base_url=base_url, api_key=api_key, cache=cache, timeout=timeout, **opts)
    reply = llm.generate(
        [messages], SamplingParams(max_tokens=max_tokens, temperature=temperature, seed=seed)
    )[0]
    print(reply)
    if usage:
        err.print(json.dumps(llm.usage.as_dict()), highlight=False)


def _read_stdin() -> str:
    """The message from standard input: UTF-8 text, or one clear error naming stdin and the byte."""
    from culturellm.errors import DataError

    data = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read().encode()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"stdin: not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start})") from None


def models() -> None:
    """List the model spec forms and the bundled models."""
    from culturellm.llm.convert import BUNDLED
    from culturellm.llm.registry import spec_forms

    for entry in BUNDLED.values():
        print(f"{entry.name:14s} {entry.description}")
    print("\nspec forms:")
    for form in spec_forms():
        print(f"  {form}")


@cache_app.command("stats")
def cache_stats(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Entries, hits, misses, tokens and cost saved."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from culturellm.llm.cache import open_cache

    s = open_cache().stats()
    if as_json:
        print(json.dumps(s, indent=2))
        return
    console = Console(emoji=False)
    lookups = s["hits"] + s["misses"]
    rate = f"{100 * s['hits'] / lookups:.1f}%" if lookups else "-"
    console.print(f"[bold]{escape(s['path'])}[/] ({s['size_bytes'] / 1e6:.1f} MB)", highlight=False)
    console.print(
        f"entries {s['entries']}   hits {s['hits']}   misses {s['misses']}   hit rate {rate}\n"
        f"tokens saved {s['tokens_saved']}   cost saved ${s['cost_saved_usd']:.4f}   "
        f"stored tokens {s['stored_tokens']}   stored cost ${s['stored_cost_usd']:.4f}",
        highlight=False,
    )
    if s["by_model"]:
        table = Table("backend", "model", "kind", "entries")
        for row in s["by_model"]:
            table.add_row(escape(row["backend"]), escape(row["model"]), row["kind"], str(row["entries"]))
        console.print(table)


@cache_app.command("clear")
def cache_clear(
    model: str | None = typer.Option(None, "--model", help="Only entries of this model id (see stats)."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask."),
) -> None:
    """Delete cached responses (all of them, or one model's); whatever sits at the cache path when it
    is not a cache database (a directory there included) is removed."""
    from culturellm.llm.cache import default_cache_path, foreign_entry, open_cache, remove_entry

    path = default_cache_path()
    what_is_there = foreign_entry(path)
    if what_is_there is not None:  # the error that recommends `cache clear`: remove it, not open it
        if not yes and not typer.confirm(f"{path} is {what_is_there}, not a cache database: remove it?"):
            raise typer.Abort()
        remove_entry(path)
        print(f"removed {path} ({what_is_there})")
        return
    cache = open_cache()
    what = f"entries of model '{model}'" if model else "all cached responses and counters"
    if not yes and not typer.confirm(f"delete {what} in {cache.path}?"):
        raise typer.Abort()
    n = cache.clear(model=model)
    print(f"deleted {n} entries")
