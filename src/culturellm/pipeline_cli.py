"""CLI commands of culturellm.pipeline (`culturellm run`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from culturellm.config import RunPreset
from culturellm.config_cli import MODELS, Endpoint, Placement, config_command

RUN_HELP = """Seeds -> augment -> fine-tune -> evaluate -> align -> report, resumable, in one command.

Settings: each stage's defaults < the --preset (demo: minutes on a laptop CPU, the default; full:
every stage's own defaults) < CONFIG_FILE (any field of [models], [augment], [dataset], [finetune],
[evaluate], [align]) < these flags. The run directory's config.toml shows every field. The model
options set [models] (every model of the run); --device and --dtype also set [finetune]'s."""


def _given(panel: Any) -> dict[str, Any]:
    """The flags of a model panel that were given (the others leave the TOML's values alone)."""
    return panel.model_dump(include=panel.model_fields_set)


def register(app: typer.Typer) -> None:
    """Add `run` to the root app.

    Long because: it holds the `run` command, whose signature is one typer option per flag."""

    @app.command("run", help=RUN_HELP)
    @config_command(Endpoint, panel=MODELS)
    @config_command(Placement, panel=MODELS)
    def run_cmd(
        endpoint: Endpoint,
        placement: Placement,
        run_toml: Path | None = typer.Argument(
            None, metavar="CONFIG_FILE", help="run configuration (TOML); flags override it"
        ),
        culture: list[str] = typer.Option(
            None, "--culture", "-c", help="culture(s) to model; 'all' = every one"
        ),
        out: Path | None = typer.Option(None, "--out", "-o", help="run directory (default: runs/<name>)"),
        name: str | None = typer.Option(None, "--name", help="run name"),
        preset: RunPreset | None = typer.Option(None, "--preset", help="demo (default) or full sizes"),
        base: str | None = typer.Option(None, "--base", "-b", help="model to fine-tune and evaluate"),
        llm: str | None = typer.Option(None, "--llm", help="augmentation LLM (spec)"),
        data_dir: Path | None = typer.Option(None, "--data-dir", help="the release's data/ folder"),
        limit: int | None = typer.Option(None, "--limit", min=1, help="evaluation examples per task"),
        limit_seeds: int | None = typer.Option(
            None, "--limit-seeds", min=1, help="augment only the first N seed questions"
        ),
        import_file: Path | None = typer.Option(
            None, "--import-file", help="import these release-format rewordings instead of generating"
        ),
        max_steps: int | None = typer.Option(
            None, "--max-steps", min=1, help="fine-tuning steps (overrides epochs)"
        ),
        seed: int | None = typer.Option(None, "--seed", help="random seed of every stage"),
        progress: bool = typer.Option(True, "--progress/--no-progress", help="show progress bars"),
        force: bool = typer.Option(
            False, "--force", help="run in an existing --out directory that culturellm did not make"
        ),
        check: bool = typer.Option(
            False, "--check", help="only validate the configuration and print it (writes nothing)"
        ),
        push_to: str | None = typer.Option(
            None, "--push-to", help="push every culture model to this Hub organisation after evaluation"
        ),
    ) -> None:
        """Long because: one typer option per flag of `culturellm run` (the help is RUN_HELP)."""
        from rich.console import Console

        from culturellm.config import RunConfig
        from culturellm.names import is_safe_name
        from culturellm.pipeline import Pipeline
        from culturellm.settings import flags, load_toml, resolve

        if culture and name is None and not run_toml:  # a name from unknown cultures: --culture's error
            derived = "-".join(c.lower() for c in culture)
            name = derived if is_safe_name(derived) else None
        given = {
            "name": name,
            "preset": preset,
            "cultures": culture or None,
            "seed": seed,
            # the model flags given (ModelAccess's fields, the Endpoint and Placement panels) over the TOML
            "models": {"base": base, "augmenter": llm, **_given(endpoint), **_given(placement)},
            "augment": {"limit_seeds": limit_seeds, "import_file": import_file},
            "finetune": {"max_steps": max_steps, "device": placement.device, "dtype": placement.dtype},
            "evaluate": {"data_dir": data_dir, "limit": limit},
            "push": {"to": push_to},
        }
        names = {"models.augmenter": "--llm", "cultures": "--culture", "push.to": "--push-to"}
        toml = load_toml(run_toml) if run_toml else None
        cfg = resolve(RunConfig, toml, flags(given, names))
        run_dir = out or Path("runs") / cfg.name
        console = Console(stderr=True)
        pipeline = Pipeline(cfg, run_dir, console=console, progress=progress, force=force)
        if check:
            pipeline.validate()
            print(cfg.without_credentials().to_toml(), end="")
            console.print(f"configuration valid; run directory {run_dir}", markup=False, highlight=False)
            return
        manifest = pipeline.run()
        _print_summary(run_dir, manifest)


def _print_summary(run_dir: Path, manifest: dict[str, Any]) -> None:
    """The closing table (`print_summary` of `summary_rows`); where the outputs are."""
    from rich.console import Console

    from culturellm.runlayout import RunLayout

    layout = RunLayout(run_dir)
    con = Console(markup=False, emoji=False)
    print_summary(summary_rows(run_dir), f"culturellm run: {run_dir}", con)
    con.print(f"report:   {layout.report}", soft_wrap=True)
    con.print(f"plots:    {layout.plots_dir}", soft_wrap=True)
    con.print(f"manifest: {layout.manifest}  ({manifest.get('total_elapsed_s')} s)", soft_wrap=True)


SUMMARY_HEADERS = ["culture", "model", "tasks", "mean\nmacro-F1", "WVS\nmajority\nagreement", "WVS\n1-JSD",
                   "WVS\n1-W1", "WVS\nitems"]  # fmt: skip


def print_summary(rows: list[dict[str, Any]], title: str, console: Any) -> None:
    """Per culture and model (rows of `summary_rows`): macro-F1 and WVS alignment. Model names and
    headers are never cut: on a terminal a rich table per culture (it fits 80 columns), else one
    Markdown table (culturellm.tables)."""
    from culturellm.tables import print_table

    def fmt(x: float | None) -> str:
        return "-" if x is None else f"{x:.3f}"

    cells = [
        [
            r["culture"],
            r["model"],
            str(r["tasks"]) if r["tasks"] else "-",
            fmt(r["mean_macro_f1"]),
            fmt(r.get("majority_agreement")),
            fmt(r.get("one_minus_jsd")),
            fmt(r.get("one_minus_wasserstein")),
            r.get("items") or "-",
        ]
        for r in rows
    ]
    h = SUMMARY_HEADERS
    if not console.is_terminal:
        print_table(console, h, cells, title=title)
        return
    for culture in dict.fromkeys(c[0] for c in cells):  # on a terminal: one table per culture
        rows_c = [c[1:] for c in cells if c[0] == culture]
        print_table(console, h[1:], rows_c, title=f"{title} · {culture}", right=h[2:7], whole=[h[1], h[7]])


def summary_rows(run_dir: Path) -> list[dict[str, Any]]:
    """Per culture and model: mean macro-F1 over tasks, and WVS alignment (for the closing table)."""
    from culturellm.jsonio import read_jsonl
    from culturellm.runlayout import RunLayout

    rows: dict[tuple[str, str], dict[str, Any]] = {}
    layout = RunLayout(run_dir)
    for culture in layout.evaluated_cultures():
        for r in read_jsonl(layout.results(culture)):
            d = rows.setdefault((culture, r["model"]), {"culture": culture, "model": r["model"], "f1": []})
            if isinstance(r.get("macro_f1"), int | float):
                d["f1"].append(r["macro_f1"])
        al = layout.align(culture)
        if al.exists():
            for r in read_jsonl(al):
                d = rows.setdefault(
                    (culture, r["model"]), {"culture": culture, "model": r["model"], "f1": []}
                )
                d["majority_agreement"] = r.get("majority_agreement")
                d["one_minus_jsd"] = r.get("one_minus_jsd")
                d["one_minus_wasserstein"] = r.get("one_minus_wasserstein")
                d["items"] = r.get("items")
            _reference_rows(rows, culture, read_jsonl(al))
    out = []
    for d in rows.values():
        f1 = d.pop("f1")
        d["tasks"] = len(f1)
        d["mean_macro_f1"] = sum(f1) / len(f1) if f1 else None
        out.append(d)
    return out


def _reference_rows(
    rows: dict[tuple[str, str], dict[str, Any]], culture: str, align_rows: list[dict]
) -> None:
    """Summary rows for the uniform answer and another culture's survey on the items of the run's
    alignment (those of its culture model: held-out items when there were enough)."""
    ref = next((r for r in align_rows if r.get("model") == "culturellm" and r.get("uniform")), None)
    if ref is None:
        return
    refs = [("reference: uniform answer", ref["uniform"])]
    contrast = ref.get("contrast") or {}
    if contrast.get("n_questions"):
        refs.append((f"reference: {contrast['culture']} survey", contrast))
    for label, r in refs:
        rows[(culture, label)] = {
            "culture": culture,
            "model": label,
            "f1": [],
            "majority_agreement": r.get("majority_agreement"),
            "one_minus_jsd": r.get("one_minus_jsd"),
            "one_minus_wasserstein": r.get("one_minus_wasserstein"),
            "items": ref.get("items"),
        }
