"""The local fine-tuning backend's run (`run_local`), resumable.

The output directory holds a small state file (`finetune.json`: data sha256, base, config
fingerprint, status). Calling `finetune` (culturellm.finetune.api) again

- returns at once when DIR already holds a finished adapter for the same data, base and config;
- continues from the last checkpoint when DIR holds an unfinished run of the same data, base and
  config (or of the same data and base with `config.resume`, e.g. after raising `epochs`);
- otherwise starts again, replacing the files a previous run wrote.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from culturellm.errors import CultureLLMError
from culturellm.finetune.config import FinetuneConfig
from culturellm.jsonio import write_json
from culturellm.llm.modelref import MODELREF_FILE, ModelRef, write_modelref
from culturellm.outdir import claim
from culturellm.safewrite import library_writes

STATE_FILE = "finetune.json"
SUMMARY_FILE = "train_summary.json"
# The files of a culture model directory that make the model: what `culturellm push` publishes
# (never checkpoints, training state, logs or a merged copy).
MODEL_FILES = (
    "adapter_config.json",
    "adapter_model.safetensors",
    "adapter_model.bin",
    MODELREF_FILE,
    SUMMARY_FILE,
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
    "vocab.json",
    "merges.txt",
    "tokenizer.model",
)
# Files a local run writes into DIR (removed when a different run replaces it): the model's files
# and the run's by-products.
_OUTPUT_NAMES = (*MODEL_FILES, "README.md", "loss.jsonl", "checkpoints", "merged", "logs")


def _is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def run_local(
    records: list[Any],
    base: str,
    out: Path,
    config: FinetuneConfig,
    *,
    paths: Sequence[Path],
    data_sha: str,
    cultures: list[str],
    progress: bool = True,
    console: Console,
) -> Path:
    """The local backend (LoRA through TRL + PEFT): train `base` on `records` into `out`, resuming or
    reusing what `out` holds; return DIR/culturellm.json."""
    from culturellm.finetune.local import check_device, load_base, train_local

    check_device(config.device)  # a named accelerator that is absent: one line, before anything else

    key = {"data_sha256": data_sha, "base": base, "fingerprint": config.fingerprint()}
    plan = _plan(out, key, config, console)
    if plan is None:
        return out / MODELREF_FILE
    resume_from, restart = plan

    # an unknown or unusable base fails before anything is written
    model_and_tokenizer = load_base(base, config)
    _prepare_dir(out, key, config, resume_from=resume_from, restart=restart, console=console)
    with library_writes(out, active=_is_main_process()):  # the Trainer writes files itself
        summary = train_local(
            records,
            base,
            out,
            config,
            resume_from=resume_from,
            progress=progress,
            console=console,
            model_and_tokenizer=model_and_tokenizer,
        )
    if not _is_main_process():
        return out / MODELREF_FILE

    summary.update(cultures=cultures, data_sha256=data_sha, data_files=[str(p) for p in paths])
    return _write_outputs(out, config, summary, key, console)


def _plan(
    out: Path, key: dict[str, Any], config: FinetuneConfig, console: Console
) -> tuple[Path | None, bool] | None:
    """What DIR holds decides the run: None when it already holds this finished run (nothing to do),
    else (the checkpoint to resume from or None, whether DIR holds another run to clean first)."""
    from culturellm.finetune.local import latest_checkpoint

    base, sha = key["base"], key["data_sha256"]
    state = _read_state(out)
    if state is None and out.is_dir() and any(out.iterdir()):
        raise CultureLLMError(
            f"{out}: directory is not empty and holds no culturellm fine-tuning run; choose a new --out"
        )
    same = state is not None and all(state.get(k) == v for k, v in key.items())
    finished = (out / MODELREF_FILE).is_file() and (out / "adapter_config.json").is_file()
    if same and state.get("status") == "done" and finished:
        console.print(f"[dim]{out}: already fine-tuned on this data with this config, skipped[/]")
        return None

    ckpt = latest_checkpoint(out)
    if config.resume:
        if ckpt is None:
            raise CultureLLMError(f"--resume: no checkpoint to resume in {out / 'checkpoints'}")
        if state and state.get("base") != base:
            raise CultureLLMError(
                f"adapter/base mismatch: {ckpt} was trained on base '{state.get('base')}', not '{base}'"
            )
        if state and state.get("data_sha256") != sha:
            raise CultureLLMError(f"--resume: {ckpt} was trained on different data (sha256 differs)")
        return ckpt, False
    if ckpt is not None and same:
        return ckpt, False
    return None, state is not None and not same


def _prepare_dir(
    out: Path,
    key: dict[str, Any],
    config: FinetuneConfig,
    *,
    resume_from: Path | None,
    restart: bool,
    console: Console,
) -> None:
    """DIR claimed and its state "running" (main process), with every process past the same points."""
    from culturellm.finetune.local import wait_for_everyone

    # several processes: all have read DIR before the main process changes it
    wait_for_everyone(config.device)
    if resume_from is not None:
        console.print(f"resuming from {resume_from}")
    if restart and _is_main_process():
        console.print(f"[yellow]{out}: held a run with other data, base or config; starting again[/]")
        _clean(out)
    if _is_main_process():
        claim(out, "finetune", ours=(STATE_FILE,))  # culturellm.outdir: our files only, never through links
        _write_state(out, {**key, "status": "running", "backend": "local", "config": _config_dict(config)})
    wait_for_everyone(config.device)


def _write_outputs(
    out: Path, config: FinetuneConfig, summary: dict[str, Any], key: dict[str, Any], console: Console
) -> Path:
    """After training (main process): train_summary.json, culturellm.json (and merged/culturellm.json),
    the model card, the finished state; returns DIR/culturellm.json."""
    from culturellm.finetune.card import write_model_card
    from culturellm.llm.hub import hub_base
    from culturellm.llm.registry import parse_spec

    base_ref, hub_repo = hub_base(parse_spec(key["base"]))  # a Hub base is recorded by its Hub id
    summary.update(
        base_model=hub_repo,
        config=_config_dict(config),
        fingerprint=key["fingerprint"],
        finished_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    write_json(out / SUMMARY_FILE, summary)
    extra = {
        "preset": config.preset,
        "final_loss": summary["final_loss"],
        "steps": summary["steps"],
        "quantization": summary["quantization"],
        "precision": summary["precision"],
        "device": summary["device"],
    }
    names, sha = summary["cultures"], summary["data_sha256"]
    ref_file = write_modelref(
        out,
        ModelRef(kind="peft-adapter", base=base_ref, path=".", cultures=names, data_sha256=sha, extra=extra),
    )
    if config.merge:
        write_modelref(
            out / "merged",
            ModelRef(kind="merged", base=base_ref, path=".", cultures=names, data_sha256=sha, extra=extra),
        )
    write_model_card(out, summary, kind="peft-adapter")
    _write_state(out, {**key, "status": "done", "backend": "local", "config": _config_dict(config)})
    console.print(
        f"[green]fine-tuned[/] {summary['steps']} steps, final loss {_fmt(summary['final_loss'])} "
        f"-> {ref_file}"
    )
    return ref_file


def _fmt(x: Any) -> str:
    return f"{x:.4f}" if isinstance(x, float) else str(x)


def _config_dict(config: FinetuneConfig) -> dict[str, Any]:
    return config.model_dump(mode="json")


def _read_state(out: Path) -> dict[str, Any] | None:
    import json

    p = out / STATE_FILE
    if not p.is_file():
        return None
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None


def _write_state(out: Path, state: dict[str, Any]) -> None:
    write_json(out / STATE_FILE, state)


def _clean(out: Path) -> None:
    for name in _OUTPUT_NAMES:
        p = out / name
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()
