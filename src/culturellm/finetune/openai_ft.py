"""Fine-tuning through the OpenAI fine-tuning API (or any server that implements it).

Steps: validate + estimate (offline), upload the data (files API, purpose "fine-tune"), create the
job, poll it with a progress bar (events are appended to DIR/loss.jsonl), and write the fine-tuned
model id into DIR/culturellm.json (kind "openai"). The file and job ids are kept in
DIR/finetune.json as soon as they exist, so an interrupted command re-attaches to the same job
instead of paying for a second one.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress

from culturellm.errors import CultureLLMError
from culturellm.finetune.config import FinetuneConfig
from culturellm.finetune.data import TrainingRecord
from culturellm.finetune.estimate import estimate_with, openai_epochs, openai_estimate
from culturellm.jsonio import append_jsonl, write_json, write_jsonl
from culturellm.llm.modelref import MODELREF_FILE, ModelRef, write_modelref
from culturellm.llm.openai_backend import redact_url
from culturellm.outdir import claim
from culturellm.progress import progress_bar

TERMINAL = ("succeeded", "failed", "cancelled")
STATE_FILE = "finetune.json"


def _client(config: FinetuneConfig) -> tuple[Any, str | None]:
    from openai import OpenAI

    base_url = config.base_url or os.environ.get("OPENAI_BASE_URL")
    api_key = os.environ.get("OPENAI_API_KEY")
    if not api_key:
        raise CultureLLMError(
            "OPENAI_API_KEY is not set (needed by --backend openai; --dry-run works without it)"
        )
    return OpenAI(api_key=api_key, base_url=base_url, max_retries=3), base_url


def _read_state(out: Path) -> dict[str, Any]:
    import json

    p = out / STATE_FILE
    try:
        return json.loads(p.read_text(encoding="utf-8")) if p.is_file() else {}
    except (ValueError, RecursionError):
        return {}


def finetune_openai(
    records: Sequence[TrainingRecord],
    base: str,
    out: Path,
    config: FinetuneConfig,
    *,
    data_sha: str,
    cultures: list[str],
    progress: bool = True,
    console: Console | None = None,
) -> Path:
    """Run (or re-attach to) an OpenAI fine-tuning job; return DIR/culturellm.json."""
    console = console or Console(stderr=True)
    model = base.removeprefix("openai:")
    est = estimate_with(openai_estimate, records, base, config)  # raises on data the API would reject
    key = {
        "backend": "openai",
        "data_sha256": data_sha,
        "base": f"openai:{model}",
        "fingerprint": _fp(config),
    }
    state = _read_state(out)
    same = all(state.get(k) == v for k, v in key.items())
    ref_file = out / MODELREF_FILE
    if same and state.get("status") == "done" and ref_file.is_file():
        console.print(f"[dim]{out}: fine-tuned model already made from this data, skipped[/]")
        return ref_file
    if not same:
        if out.is_dir() and any(out.iterdir()) and not state:
            raise CultureLLMError(
                f"{out}: directory is not empty and holds no culturellm fine-tuning run; choose a new --out"
            )
        state = {**key, "status": "created", "estimate": est}
    elif state.get("status") in ("failed", "cancelled"):
        console.print(f"previous job {state.get('job_id')} {state['status']}: starting a new job")
        state.pop("job_id", None)
    claim(out, "finetune", ours=(STATE_FILE,))  # culturellm.outdir: our files only, never through links
    write_json(out / STATE_FILE, state)
    cost = est.get("cost_usd")
    cost_text = f"estimated cost ${cost:.4f}" if cost is not None else "cost unknown (no price known)"
    console.print(
        f"{est['examples']} examples, ~{est['tokens_per_epoch']} tokens/epoch x {est['epochs']} epochs, "
        + cost_text
    )

    client, base_url = _client(config)
    _start_job(client, model, records, state, out, config, console)
    job = _poll(client, state["job_id"], out, config, progress, console)
    if job.status != "succeeded":
        state["status"] = job.status
        write_json(out / STATE_FILE, state)
        msg = getattr(getattr(job, "error", None), "message", None) or "no error message"
        raise CultureLLMError(f"fine-tuning job {job.id} {job.status}: {msg}")

    ref_file = _finish(job, model, base_url, records, est, state, out, config, cultures, data_sha)
    console.print(f"[green]fine-tuned[/] {job.fine_tuned_model} -> {ref_file}")
    return ref_file


def _start_job(
    client: Any,
    model: str,
    records: Sequence[TrainingRecord],
    state: dict[str, Any],
    out: Path,
    config: FinetuneConfig,
    console: Console,
) -> None:
    """Upload the data and create the job unless the state already has them (re-attach)."""
    if state.get("job_id"):
        console.print(f"re-attaching to fine-tuning job {state['job_id']}")
        return
    if not state.get("file_id"):
        upload = out / "upload.jsonl"
        write_jsonl(upload, [{"messages": r.messages} for r in records])
        with open(upload, "rb") as f:
            file = client.files.create(file=(upload.name, f), purpose="fine-tune")
        state["file_id"] = file.id
        write_json(out / STATE_FILE, state)
        console.print(f"uploaded training file {file.id}")
    params: dict[str, Any] = {
        "model": model,
        "training_file": state["file_id"],
        "hyperparameters": {"n_epochs": openai_epochs(config)},
        "seed": config.seed,
    }
    if config.suffix:
        params["suffix"] = config.suffix
    job = client.fine_tuning.jobs.create(**params)
    state.update(job_id=job.id, status="running")
    write_json(out / STATE_FILE, state)
    console.print(f"created fine-tuning job {job.id}")


def _finish(
    job: Any,
    model: str,
    base_url: str | None,
    records: Sequence[TrainingRecord],
    est: dict[str, Any],
    state: dict[str, Any],
    out: Path,
    config: FinetuneConfig,
    cultures: list[str],
    data_sha: str,
) -> Path:
    """Write the model reference, train_summary.json and the finished state; return the reference."""
    cost = est.get("cost_usd")
    ft_model = job.fine_tuned_model
    extra = {"job_id": job.id, "trained_tokens": job.trained_tokens, "cost_estimate_usd": cost}
    ref_file = write_modelref(
        out,
        ModelRef(
            kind="openai",
            base=f"openai:{model}",
            path=None,
            model=ft_model,
            base_url=redact_url(base_url) if base_url else None,  # never store credentials
            cultures=cultures,
            data_sha256=data_sha,
            extra=extra,
        ),
    )
    summary = {
        "backend": "openai",
        "base": f"openai:{model}",
        "model": ft_model,
        "job_id": job.id,
        "examples": len(records),
        "tokens_per_epoch": est["tokens_per_epoch"],
        "epochs": est["epochs"],
        "trained_tokens": job.trained_tokens,
        "cost_estimate_usd": cost,
        "cultures": cultures,
        "data_sha256": data_sha,
        "config": config.model_dump(mode="json"),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    write_json(out / "train_summary.json", summary)
    state.update(status="done", model=ft_model)
    write_json(out / STATE_FILE, state)
    return ref_file


def _fp(config: FinetuneConfig) -> str:
    # What the API is sent: epochs and seed (LoRA/lr options do not apply to this backend).
    from culturellm.hashing import stable_hash

    return stable_hash(f"{openai_epochs(config)}:{config.seed}:{config.suffix}")


def _poll(
    client: Any, job_id: str, out: Path, config: FinetuneConfig, progress: bool, console: Console
) -> Any:
    """Poll the job until it ends; show status and step progress; log new events to DIR/loss.jsonl."""
    seen: set[str] = set()
    bar: Progress | None = None
    task = None
    if progress:
        bar = progress_bar(console=console, transient=False, extra="{task.fields[status]}")
        bar.start()
        task = bar.add_task(f"[bold]job {job_id}", total=None, status="")
    try:
        while True:
            job = client.fine_tuning.jobs.retrieve(job_id)
            events = list(client.fine_tuning.jobs.list_events(job_id, limit=100).data)
            new = [e for e in reversed(events) if e.id not in seen]  # API lists newest first
            for e in new:
                seen.add(e.id)
                data = e.data if isinstance(e.data, dict) else {}
                row = {"event": e.id, "created_at": e.created_at, "level": e.level, "message": e.message}
                row.update({k: v for k, v in data.items() if isinstance(v, int | float | str)})
                append_jsonl(out / "loss.jsonl", [row])
                if bar is not None and "step" in data and "total_steps" in data:
                    bar.update(task, total=data["total_steps"], completed=data["step"])
                elif not progress:
                    console.print(f"[dim]{e.message}[/]")
            if bar is not None:
                bar.update(task, status=job.status)
            if job.status in TERMINAL:
                return job
            time.sleep(config.poll_interval)
    finally:
        if bar is not None:
            bar.stop()
