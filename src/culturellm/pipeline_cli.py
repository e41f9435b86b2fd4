"""CLI commands of culturellm.pipeline (`culturellm run`)."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Add `run` to the root app."""

    @app.command("run")
    def run_cmd(
        config_file: Path | None = typer.Argument(None, help="run configuration (TOML); flags override it"),
        culture: list[str] = typer.Option(
            None, "--culture", "-c", help="culture(s) to model; 'all' = every one"
        ),
        out: Path | None = typer.Option(None, "--out", "-o", help="run directory (default: runs/<name>)"),
        name: str | None = typer.Option(None, help="run name"),
        base: str | None = typer.Option(None, help="model to fine-tune and evaluate (spec)"),
        llm: str | None = typer.Option(None, "--llm", help="augmentation LLM (spec)"),
        base_url: str | None = typer.Option(None, help="base URL for openai:MODEL specs"),
        data_dir: Path | None = typer.Option(None, help="the CultureLLM release's data/ folder"),
        limit: int | None = typer.Option(None, help="evaluation examples per task"),
        limit_seeds: int | None = typer.Option(None, help="augment only the first N seed questions"),
        max_steps: int | None = typer.Option(None, help="fine-tuning steps (overrides epochs)"),
        seed: int | None = typer.Option(None, help="random seed"),
        no_cache: bool = typer.Option(False, "--no-cache", help="bypass the response cache"),
    ) -> None:
        """Seeds -> augment -> fine-tune -> evaluate -> report, resumable, in one command."""
        from rich.console import Console
        from rich.table import Table

        from culturellm.config import RunConfig, load_config
        from culturellm.pipeline import Pipeline, summary_rows

        cfg = load_config(config_file) if config_file else RunConfig()
        upd = cfg.model_dump()
        if culture:
            upd["cultures"] = culture
            if name is None and not config_file:
                upd["name"] = "-".join(c.lower() for c in culture)
        for key, val in {"name": name, "seed": seed}.items():
            if val is not None:
                upd[key] = val
        for section, key, val in [
            ("models", "base", base),
            ("models", "augmenter", llm),
            ("models", "base_url", base_url),
            ("evaluate", "data_dir", data_dir),
            ("evaluate", "limit", limit),
            ("augment", "limit_seeds", limit_seeds),
            ("finetune", "max_steps", max_steps),
        ]:
            if val is not None:
                upd[section][key] = val
        if no_cache:
            upd["models"]["cache"] = False
        cfg = RunConfig.model_validate(upd)
        run_dir = out or Path("runs") / cfg.name
        console = Console(stderr=True)
        manifest = Pipeline(cfg, run_dir, console=console).run()

        table = Table(title=f"culturellm run: {run_dir}")
        for col in ("culture", "model", "tasks", "mean macro-F1", "WVS majority agreement", "WVS 1-JSD"):
            table.add_column(col, justify="left" if col in ("culture", "model") else "right")

        def fmt(x: float | None) -> str:
            return "-" if x is None else f"{x:.3f}"

        for r in summary_rows(run_dir):
            table.add_row(
                r["culture"],
                r["model"],
                str(r["tasks"]),
                fmt(r["mean_macro_f1"]),
                fmt(r.get("majority_agreement")),
                fmt(r.get("one_minus_jsd")),
            )
        out_console = Console()
        out_console.print(table)
        out_console.print(f"report:   {run_dir / 'report.md'}")
        out_console.print(f"plots:    {run_dir / 'plots'}")
        out_console.print(f"manifest: {run_dir / 'manifest.json'}  ({manifest.get('total_elapsed_s')} s)")
